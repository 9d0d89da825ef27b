"""PPO (Schulman et al. 2017): one update in the order of the math, CleanRL-style.

One update from a rollout of T steps of N environments, time-major (T, N):

    1. values      V(s_t) and V(s_{t+1}) of every state and next state
    2. GAE         delta_t = r_t + gamma (1 - term_t) V(s_{t+1}) - V(s_t)
                   A_t = delta_t + gamma lambda c_t A_{t+1},  R_t = A_t + V(s_t)
    3. advantages  standardised: (A_t - mean A) / (std A + eps)
    4. loss        rho_t = pi(a_t|s_t) / pi_old(a_t|s_t) = exp(log pi - log pi_old)
                   L = -mean_t[min(rho_t A_t, clip(rho_t, 1 - eps, 1 + eps) A_t)]
                       + c_v mean_t[(V(s_t) - R_t)^2] / 2 - c_H mean_t H[pi(.|s_t)]
    5. step        for each epoch, for each minibatch: theta <- Adam(theta, dL/dtheta)

c_t is 0 where an episode ends or the rollout is cut; a truncated episode still bootstraps
from V(s_{t+1}). Shared pieces come from policy.py (networks, masked means), returns.py and
optim.py; the float64 oracle is core/reference/algorithms.py.
"""

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from duetrl.backends.torch.policy import flatten, masked_mean, value_loss
from duetrl.backends.torch.returns import compute_gae, normalize_advantages

if TYPE_CHECKING:
    from duetrl.backends.torch.agents import Agent


@torch.no_grad()
def prepare(agent: "Agent", rollout: dict[str, Tensor]) -> dict[str, Tensor]:
    """Steps 1-3: advantages and value targets, held fixed during the update, flattened (B,)."""
    s, rewards, mask = agent.settings, rollout["rewards"], rollout["mask"]
    values = torch.reshape(agent.value(flatten(rollout["states"])), rewards.shape)  # V(s_t)
    next_values = torch.reshape(agent.value(flatten(rollout["next_states"])), rewards.shape)
    advantages, returns = compute_gae(rewards, values, next_values, rollout["terminations"],
                                      rollout["truncations"], s.gamma, s.gae_lambda)  # A, R
    if s.normalize_advantages:
        advantages = normalize_advantages(advantages, mask)  # (A - mean) / (std + eps)
    return {"states": flatten(rollout["states"]), "actions": flatten(rollout["actions"]),
            "advantages": flatten(advantages), "returns": flatten(returns), "mask": flatten(mask),
            "old_log_probs": flatten(rollout["log_probs"])}


def ppo_clip_loss(
    log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor, clip_eps: float,
    mask: Tensor | None = None,
) -> Tensor:
    """The clipped surrogate, negated to be minimised; all inputs (B,)."""
    ratio = torch.exp(log_probs - old_log_probs)  # rho_t = pi / pi_old
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)  # clip(rho_t, 1-eps, 1+eps)
    return -masked_mean(torch.minimum(ratio * advantages, clipped * advantages), mask)


def compute_loss(agent: "Agent", batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """Step 4: ``(L, {"loss", "policy_loss", "entropy", "value_loss"})`` on a (mini)batch."""
    s, mask = agent.settings, batch["mask"]
    log_probs, entropy = agent.policy.log_prob_entropy(batch["states"], batch["actions"])
    policy_loss = ppo_clip_loss(log_probs, batch["old_log_probs"], batch["advantages"],
                                s.clip_eps, mask)  # -mean[min(rho A, clip(rho) A)]
    entropy = masked_mean(entropy, mask)  # mean H[pi(.|s)]
    v_loss = value_loss(agent.value(batch["states"]), batch["returns"], mask)  # L_V
    loss = policy_loss + s.vf_coef * v_loss
    if s.ent_coef:  # a zero bonus would add nothing but its backward pass
        loss = loss - s.ent_coef * entropy
    return loss, {"loss": loss, "policy_loss": policy_loss, "entropy": entropy,
                  "value_loss": v_loss}


def train_step(
    agent: "Agent", batch: dict[str, Tensor], learning_rate: float | Tensor
) -> dict[str, Tensor]:
    """Step 5, once: dL/dtheta for every parameter (policy and value), then one Adam step."""
    loss, metrics = compute_loss(agent, batch)
    grads = torch.autograd.grad(loss, agent.optimizer.parameters, allow_unused=True)
    agent.optimizer.apply_gradients(grads, learning_rate)  # theta <- Adam(theta, dL/dtheta)
    return {k: v.detach() for k, v in metrics.items()}


def train_minibatch(
    agent: "Agent", batch: dict[str, Tensor], indices: Tensor, learning_rate: float | Tensor
) -> dict[str, Tensor]:
    """:func:`train_step` on the rows ``indices`` (B_mb,) of the flat batch."""
    return train_step(agent, {k: v[indices] for k, v in batch.items()}, learning_rate)


def train_epochs(
    agent: "Agent", batch: dict[str, Tensor], permutations: Tensor, learning_rate: float | Tensor
) -> dict[str, Tensor]:
    """Step 5 for every minibatch of ``permutations`` (epochs, minibatches, B_mb), in order;
    the metrics of the last step."""
    for epoch_permutation in permutations:  # every epoch sees the whole rollout
        for indices in epoch_permutation:
            metrics = train_minibatch(agent, batch, indices, learning_rate)
    return metrics


def update(agent: "Agent", rollout: dict[str, Any]) -> dict[str, float]:
    """One update from a rollout of host arrays: steps 1-3 once, step 5 for every minibatch of
    the core-drawn ``rollout["permutations"]`` (epochs, minibatches, minibatch size).

    Returns the metrics of the last gradient step as Python floats.
    """
    tensors, learning_rate = agent.to_tensors(rollout)
    batch = prepare(agent, tensors)
    permutations = agent.as_tensor(rollout["permutations"])
    metrics = train_epochs(agent, batch, permutations, learning_rate)
    return {k: float(v) for k, v in metrics.items()}
