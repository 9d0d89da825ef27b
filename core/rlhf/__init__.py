"""RL to train language models (outline 1.3.2, 2.3, 3.1, 9.2.1, 9.3.3), written once.

The sequence MDP (state = prompt + tokens so far, action = next token, reward at the end),
text tasks with their rewards, the exact optimum of the KL-regularised objective, and the
training loop that drives either backend. Framework-neutral: imports no framework.
"""
