"""Reinforcement learning, the framework-neutral half: settings, rollouts, the training loop,
checkpoints, ``train`` and ``compare`` runs. Nothing here imports torch or tensorflow; the
backend's ``Agent`` (backends/<name>/agents.py) holds the networks and acts, and each
algorithm's update (returns or GAE, advantages, loss, gradient step) is one file per backend:
backends/<name>/reinforce.py, reinforce_baseline.py and ppo.py.

=================  ===========================================================================
module             what it holds
=================  ===========================================================================
settings           one dataclass per algorithm; field docs become ``--help``
rollout            collecting from Gymnasium vector environments; seeded noise and permutations
train              ``PolicyGradientTrainer``: one update per ``step()``; checkpoint save/load
checkpoint         safetensors file with params, optimiser state and run metadata
session            ``train()``: a whole run with progress bar, CSV log, curve, Ctrl-C handling
compare            both backends from the same start, stepped in alternation
=================  ===========================================================================
"""
