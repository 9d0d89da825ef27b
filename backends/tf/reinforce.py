"""REINFORCE (Williams 1992), the outline's listing 5.2, repaired; then the same update batched.

    1. returns     G_t = r_t + gamma G_{t+1}            (G_t = sum_{k>=t} gamma^(k-t) r_k)
    2. weights     the listing weights -log pi by G_t; the batched update standardises it
    3. loss        L = mean_t[-log pi(a_t|s_t) G_t]     (PolicyNet.compute_loss)
    4. step        theta <- Adam(theta, dL/dtheta), once per update

What was broken in the listing: ``compute_returns`` was never defined; it used the old Gym API
(``state = env.reset()``, a 4-tuple from ``env.step``) and ``Adam(lr=...)``, which Keras 3
rejects. Here: Gymnasium's ``reset() -> (obs, info)`` and 5-tuple ``step``, terminations and
truncations kept apart, duetrl's Adam with pinned constants, and sampling noise from NumPy so
the PyTorch and TensorFlow versions take the same actions. :func:`reinforce` is the listing:
one environment, one episode per update. :func:`update` is the batched version that
``duetrl train reinforce`` runs: N episodes from vector environments per update.
"""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf
from tensorflow import Tensor

from duetrl.backends.tf.optim import Adam
from duetrl.backends.tf.policy import PolicyNet, flatten, masked_mean
from duetrl.backends.tf.returns import compute_returns, normalize_advantages

if TYPE_CHECKING:
    from duetrl.backends.tf.agents import Agent


def compute_returns_listing(
    rewards: Sequence[float], gamma: float, truncated: bool = False
) -> Tensor:
    """The function listing 5.2 calls but never defines: G_t = r_t + gamma G_{t+1} for one episode.

    Args:
        rewards: the episode's rewards, a list of T floats.
        gamma: discount factor in [0, 1].
        truncated: the episode was cut (time limit) rather than terminated; REINFORCE has no
            critic to bootstrap from, so the return after the cut counts as 0 either way.

    Returns:
        (T,) tensor of returns.
    """
    rewards = tf.convert_to_tensor(np.asarray(rewards, dtype=np.float32))[:, None]  # (T, 1)
    ends = tf.range(tf.shape(rewards)[0])[:, None] == tf.shape(rewards)[0] - 1  # (T, 1)
    no_ends = tf.zeros_like(ends)
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
    # acting, one traced call per step: eagerly, Keras's call and the indexing cost ~2.4 ms a
    # step (30x torch's); a tf.function ~0.6 ms, and its concrete function (no argument
    # matching on each call) ~0.45
    dtype = policy_net.compute_dtype
    sample_action = tf.function(lambda state, noise: tf.argmax(policy_net(state) + noise, -1)[0],
                                autograph=False).get_concrete_function(
        tf.TensorSpec((1, policy_net.state_dim), dtype),
        tf.TensorSpec((1, policy_net.action_dim), dtype))
    episode_returns = []
    for episode in range(num_episodes):
        state, _ = env.reset(seed=seed + episode)
        states, actions, rewards = [], [], []
        done = truncated = False
        while not done:
            noise = noise_rng.gumbel(size=(1, policy_net.action_dim)).astype(np.float32)
            action = int(sample_action(tf.constant(state[None, :], dtype),
                                       tf.constant(noise, dtype)))  # a ~ pi(.|s) (Gumbel-max)
            next_state, reward, terminated, truncated, _ = env.step(action)
            done = terminated or truncated

            states.append(state)
            actions.append(action)
            rewards.append(reward)

            state = next_state

        states = tf.convert_to_tensor(np.asarray(states, dtype=np.float32))
        actions = tf.convert_to_tensor(np.asarray(actions, dtype=np.int64))
        returns = compute_returns_listing(rewards, gamma, truncated)  # 1. G_t

        with tf.GradientTape() as tape:
            loss = policy_net.compute_loss(states, actions, returns)  # 3. mean[-log pi(a|s) G]
        grads = tape.gradient(loss, optimizer.parameters)  # 4. dL/dtheta
        optimizer.apply_gradients(grads, learning_rate)

        episode_returns.append(float(sum(rewards)))
    return episode_returns


@tf.function(autograph=False)  # plain Python: AutoGraph adds ~0.5 s to the first trace
def prepare(agent: "Agent", rollout: dict[str, Tensor]) -> dict[str, Tensor]:
    """Steps 1-2, batched: returns (standardised), held fixed during the update, flattened."""
    s, mask = agent.settings, rollout["mask"]
    returns = compute_returns(rollout["rewards"], rollout["terminations"],
                              rollout["truncations"], s.gamma)  # G_t, 0 after any end
    advantages = returns  # no baseline: the weight of -log pi(a_t|s_t) is G_t itself
    if s.normalize_advantages:
        advantages = normalize_advantages(advantages, mask)  # (G - mean) / (std + eps)
    return {"states": flatten(rollout["states"]), "actions": flatten(rollout["actions"]),
            "advantages": flatten(advantages), "mask": flatten(mask)}


def compute_loss(agent: "Agent", batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """Step 3: ``(L, {"loss", "policy_loss", "entropy"})`` on a flat batch."""
    mask = batch["mask"]
    log_probs, entropy = agent.policy.log_prob_entropy(batch["states"], batch["actions"])
    loss = masked_mean(-log_probs * batch["advantages"], mask)  # mean[-log pi(a|s) G]
    return loss, {"loss": loss, "policy_loss": loss, "entropy": masked_mean(entropy, mask)}


@tf.function(autograph=False)  # plain Python: AutoGraph adds ~0.5 s to the first trace
def train_step(
    agent: "Agent", batch: dict[str, Tensor], learning_rate: float | Tensor
) -> dict[str, Tensor]:
    """Step 4: dL/dtheta for every parameter of the policy, then one Adam step."""
    with tf.GradientTape() as tape:
        loss, metrics = compute_loss(agent, batch)
    grads = tape.gradient(loss, agent.optimizer.parameters)
    agent.optimizer.apply_gradients(grads, learning_rate)  # theta <- Adam(theta, dL/dtheta)
    return metrics


def update(agent: "Agent", rollout: dict[str, Any]) -> dict[str, float]:
    """One update from a rollout of host arrays (N whole episodes): steps 1-4.

    Returns the metrics of the gradient step as Python floats.
    """
    tensors, learning_rate = agent.to_tensors(rollout)
    batch = prepare(agent, tensors)
    metrics = train_step(agent, batch, learning_rate)
    return {k: float(v) for k, v in metrics.items()}
