"""The checks behind the exercises of the tutorials whose checks need more than a few lines.

One module per tutorial (or pair of tutorials on one subject), each with a ``CHECKS`` tuple, the
tutorial's ``check_exercise_1, check_exercise_2, ...`` in order, as
``core/cases/qa/exercises.py`` does. Every check goes through :mod:`duetrl.core.exercises`
(``compare`` and ``report``): the same ✓/✗ lines, the same comparator as the grader, a torch or
tf answer read back as NumPy. Nothing here imports a framework.
"""
