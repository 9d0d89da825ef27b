"""Coursework: assignments handed out in either framework, graded by one set of hidden tests.

=============  ==================================================================================
module         what it holds
=============  ==================================================================================
specs          the assignments: solution module, functions to write, statement, forbidden imports
extract        the student's copy from the marked solution; the copy detector
cases          public and hidden cases, written once against the float64 reference
harness        the child process that runs a submission (limits, budget, the guard installed)
guard          the solution out of reach in that process: neutered, hidden, audit hook, import guard
integrity      the submission's file and backend; refusing imports and copies of the solution
sandbox        running the harness in child processes: limits, restarts, events, outputs
compare        the comparator of an answer with the reference (the grader and the exercises)
grader         grading: cases run and compared, scored all or nothing; a folder into a CSV
reports        the graded report as text, JSON or Gradescope's results.json
evaluate       the grader's own evaluation of a trained policy (learning assignments)
make           ``duetrl assignments make`` and ``duetrl assignments autograder`` (Gradescope)
public         the public tests a student runs at home
=============  ==================================================================================

The instructor's guide: ``INSTRUCTORS.md`` beside this file.
"""
