"""The outline's listing 5.2 (written there in TensorFlow), repaired, in PyTorch.

What was broken in the listing: ``compute_returns`` was never defined; it used the old Gym API
(``state = env.reset()``, a 4-tuple from ``env.step``) and ``Adam(lr=...)``, which Keras 3
rejects. Here: Gymnasium's ``reset() -> (obs, info)`` and 5-tuple ``step``, terminations and
truncations kept apart, duetrl's Adam with pinned constants, and sampling noise from NumPy so
the PyTorch and TensorFlow versions take the same actions. One environment, one episode per
update, as in the listing; ``duetrl train reinforce`` is the fast, batched version.
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from duetrl.backends.torch.optim import Adam
from duetrl.backends.torch.policy import PolicyNet
from duetrl.backends.torch.returns import compute_returns


def compute_returns_listing(
    rewards: Sequence[float], gamma: float, truncated: bool = False
) -> torch.Tensor:
    """The function listing 5.2 calls but never defines: G_t = r_t + gamma G_{t+1} for one episode.

    Args:
        rewards: the episode's rewards, a list of T floats.
        gamma: discount factor in [0, 1].
        truncated: the episode was cut (time limit) rather than terminated; REINFORCE has no
            critic to bootstrap from, so the return after the cut counts as 0 either way.

    Returns:
        (T,) tensor of returns.
    """
    rewards = torch.as_tensor(np.asarray(rewards, dtype=np.float32))[:, None]  # (T, 1)
    ends = torch.zeros_like(rewards, dtype=torch.bool)
    ends[-1] = True
    no_ends = torch.zeros_like(ends)
    terminations, truncations = (no_ends, ends) if truncated else (ends, no_ends)
    return compute_returns(rewards, terminations, truncations, gamma)[:, 0]


def reinforce(
    env: Any, policy_net: PolicyNet, num_episodes: int, gamma: float = 0.99,
    learning_rate: float = 1e-3, seed: int = 0,
) -> list[float]:
    """Train ``policy_net`` on ``env`` with REINFORCE, one episode per update (listing 5.2).

    Returns:
        the list of episode returns.
    """
    optimizer = Adam(policy_net)
    noise_rng = np.random.default_rng(seed)  # core-style noise: the same in both frameworks
    episode_returns = []
    for episode in range(num_episodes):
        state, _ = env.reset(seed=seed + episode)
        states, actions, rewards = [], [], []
        done = truncated = False
        while not done:
            with torch.inference_mode():
                logits = policy_net(torch.as_tensor(state[None, :]))
            noise = torch.as_tensor(noise_rng.gumbel(size=logits.shape).astype(np.float32))
            action = int(torch.argmax(logits + noise, dim=-1)[0])
            next_state, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated

            states.append(state)
            actions.append(action)
            rewards.append(reward)

            state = next_state

        states = torch.as_tensor(np.asarray(states, dtype=np.float32))
        actions = torch.as_tensor(np.asarray(actions, dtype=np.int64))
        returns = compute_returns_listing(rewards, gamma, truncated)

        loss = policy_net.compute_loss(states, actions, returns)
        grads = torch.autograd.grad(loss, optimizer.parameters)
        optimizer.apply_gradients(grads, learning_rate)

        episode_returns.append(float(sum(rewards)))
    return episode_returns
