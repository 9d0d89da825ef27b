"""Reinforcement learning, the framework-neutral half: rollouts, replay, the trainers, and their
``train`` and ``compare`` runs. Nothing here imports torch or tensorflow; the backend's
``Agent`` (backends/<name>/agents.py) holds the networks and acts, and each algorithm's update
(returns or GAE, advantages, loss, gradient step) is one file per backend:
backends/<name>/reinforce.py, reinforce_baseline.py, ppo.py and dqn.py.

=================  ===========================================================================
module             what it holds
=================  ===========================================================================
rollout            collecting from Gymnasium vector environments; seeded noise and permutations
host_policy        acting on the host: the policy's sampling step in NumPy, for rollouts
replay             DQN's replay buffer: n-step returns, terminations and truncations apart
base               ``RLTrainer``: counters, checkpoint, summary and curve shared by the trainers
train              ``PolicyGradientTrainer``: REINFORCE, with baseline, PPO; one update a step
dqn_settings       ``DQNSettings`` (the policy-gradient settings: core/interfaces/rl_settings)
dqn                ``DQNTrainer``: eps-greedy acting, replay, target syncs; one update a step
session            ``train()`` / ``train_dqn()``: a whole run, through the one run loop
compare            both backends from the same start, through the one compare driver
=================  ===========================================================================

The run loop (log, checkpoints, ``--resume``, Ctrl-C, NaN stop, summary) and the compare
driver are core/run's, shared with every other trainer of duetrl.
"""
