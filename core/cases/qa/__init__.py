"""Question answering with verifiable rewards (outline 6.3.1): RLVR on a small GPT.

``problems`` makes the questions and checks them, ``rewards`` scores completions (exact match
and format, float64 oracle in ``core/reference/qa_rewards.py``), ``tasks`` turns them into
text tasks of ``core/rlhf``, ``train`` runs the supervised warm-up then GRPO on the run loop.
"""
