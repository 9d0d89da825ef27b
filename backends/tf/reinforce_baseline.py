"""REINFORCE with a learned baseline V(s), one update in the order of the math.

One update from N whole episodes, time-major (T, N) (c_t = 0 where an episode ends):

    1. values      V(s_t), and V(s_{t+1}) to bootstrap an episode cut by a time limit
    2. returns     G_t = r_t + gamma (1 - term_t) [c_t G_{t+1} + (1 - c_t) V(s_{t+1})]
    3. advantages  A_t = G_t - V(s_t), then standardised: (A_t - mean A) / (std A + eps)
    4. loss        L = mean_t[-log pi(a_t|s_t) A_t] + c_v mean_t[(V(s_t) - G_t)^2] / 2
                       - c_H mean_t H[pi(.|s_t)]
    5. step        theta <- Adam(theta, dL/dtheta), once per rollout

A baseline that does not depend on the action leaves the policy gradient's expectation as it
is (E[grad log pi(a|s) b(s)] = 0) and lowers its variance. Shared pieces come from policy.py
(networks, masked means), returns.py and optim.py; the float64 oracle is
core/reference/algorithms.py.
"""

from typing import TYPE_CHECKING, Any

import tensorflow as tf
from tensorflow import Tensor

from duetrl.backends.tf.policy import flatten, masked_mean, value_loss
from duetrl.backends.tf.returns import compute_returns, normalize_advantages

if TYPE_CHECKING:
    from duetrl.backends.tf.agents import Agent


@tf.function(autograph=False)  # plain Python: AutoGraph adds ~0.5 s to the first trace
def prepare(agent: "Agent", rollout: dict[str, Tensor]) -> dict[str, Tensor]:
    """Steps 1-3: returns and advantages, held fixed during the update, flattened to (B,)."""
    s, rewards, mask = agent.settings, rollout["rewards"], rollout["mask"]
    values = tf.reshape(agent.value(flatten(rollout["states"])), rewards.shape)  # V(s_t)
    next_values = tf.reshape(agent.value(flatten(rollout["next_states"])), rewards.shape)
    returns = compute_returns(rewards, rollout["terminations"], rollout["truncations"], s.gamma,
                              next_values)  # G_t, bootstrapped from V(s_{t+1}) at a cut
    advantages = returns - values  # A_t = G_t - V(s_t)
    if s.normalize_advantages:
        advantages = normalize_advantages(advantages, mask)  # (A - mean) / (std + eps)
    return {"states": flatten(rollout["states"]), "actions": flatten(rollout["actions"]),
            "advantages": flatten(advantages), "returns": flatten(returns), "mask": flatten(mask)}


def compute_loss(agent: "Agent", batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """Step 4: ``(L, {"loss", "policy_loss", "entropy", "value_loss"})`` on a flat batch."""
    s, mask = agent.settings, batch["mask"]
    log_probs, entropy = agent.policy.log_prob_entropy(batch["states"], batch["actions"])
    policy_loss = masked_mean(-log_probs * batch["advantages"], mask)  # mean[-log pi(a|s) A]
    entropy = masked_mean(entropy, mask)  # mean H[pi(.|s)]
    v_loss = value_loss(agent.value(batch["states"]), batch["returns"], mask)  # L_V
    loss = policy_loss + s.vf_coef * v_loss
    if s.ent_coef:  # a zero bonus would add nothing but its backward pass
        loss = loss - s.ent_coef * entropy
    return loss, {"loss": loss, "policy_loss": policy_loss, "entropy": entropy,
                  "value_loss": v_loss}


@tf.function(autograph=False)  # plain Python: AutoGraph adds ~0.5 s to the first trace
def train_step(
    agent: "Agent", batch: dict[str, Tensor], learning_rate: float | Tensor
) -> dict[str, Tensor]:
    """Step 5: dL/dtheta for every parameter (policy and value), then one Adam step."""
    with tf.GradientTape() as tape:
        loss, metrics = compute_loss(agent, batch)
    grads = tape.gradient(loss, agent.optimizer.parameters)
    agent.optimizer.apply_gradients(grads, learning_rate)  # theta <- Adam(theta, dL/dtheta)
    return metrics


def update(agent: "Agent", rollout: dict[str, Any]) -> dict[str, float]:
    """One update from a rollout of host arrays (N whole episodes): steps 1-5.

    Returns the metrics of the gradient step as Python floats.
    """
    tensors, learning_rate = agent.to_tensors(rollout)
    batch = prepare(agent, tensors)
    metrics = train_step(agent, batch, learning_rate)
    return {k: float(v) for k, v in metrics.items()}
