"""REINFORCE, REINFORCE with a learned baseline and PPO: losses, gradients and one update, float64.

A *rollout* is a dict of time-major host arrays, as the core loop collects it:
``states``/``next_states`` (T, N, state_dim), ``actions`` (T, N) or (T, N, A), ``rewards``,
``terminations``, ``truncations``, ``mask``, ``log_probs`` (T, N); PPO also reads
``permutations`` (epochs, minibatches, minibatch_size) and every algorithm ``learning_rate``.
``settings`` is an algorithm settings dataclass from :mod:`duetrl.core.interfaces.rl_settings`.

The policy-gradient theorem (Williams 1992; Sutton et al. 2000) is what every loss below
estimates: for a policy pi_theta and the return G_t of step t,

    grad_theta J(theta) = E_pi [ sum_t grad_theta log pi_theta(a_t|s_t) (G_t - b(s_t)) ]

for any baseline b(s) that does not depend on the action (E[grad log pi(a|s) b(s)] = 0), so
minimising L = mean_t[-log pi(a_t|s_t) A_t] with A_t held fixed takes a step along it.
REINFORCE uses A_t = G_t, REINFORCE with baseline A_t = G_t - V(s_t), PPO the GAE advantage
(core/reference/returns.py) and a clipped ratio that keeps the new policy near the old one.

Losses (masked means over the B = T * N flattened steps, m_t the mask):

    REINFORCE (listing 5.2)  L = mean_t[ -log pi(a_t|s_t) * G_t ]
    with baseline            L = mean_t[ -log pi(a_t|s_t) * A_t ] + c_v L_V - c_H mean_t H_t,
                             A_t = G_t - V(s_t) (held fixed), L_V = mean_t (V(s_t) - G_t)^2 / 2
    PPO (clipped)            L = -mean_t[ min(rho_t A_t, clip(rho_t, 1-eps, 1+eps) A_t) ]
                                 + c_v L_V - c_H mean_t H_t,  rho_t = exp(log pi - log pi_old)

Each backend writes one file per algorithm in this order (backends/<name>/reinforce.py,
reinforce_baseline.py, ppo.py): returns or GAE, advantages, the loss, the gradient step.
"""

from __future__ import annotations

import numpy as np

from duetrl.core.reference.optim import adam_step
from duetrl.core.reference.policy import (
    mlp_backward,
    mlp_forward,
    policy_backward,
    policy_log_prob_entropy,
    value_forward,
)
from duetrl.core.reference.returns import discounted_returns, gae, normalize_advantages


def flatten(array: np.ndarray) -> np.ndarray:
    """(T, N, ...) -> (T * N, ...)."""
    array = np.asarray(array)
    return array.reshape((-1,) + array.shape[2:])


def prepare_batch(algorithm: str, params: dict, rollout: dict, settings) -> dict:
    """Returns and advantages (held fixed during the update), flattened to ``(B, ...)``."""
    states, next_states = rollout["states"], rollout["next_states"]
    shape = rollout["rewards"].shape
    args = (rollout["rewards"], rollout["terminations"], rollout["truncations"])
    mask = np.asarray(rollout["mask"], dtype=np.float64)
    if algorithm == "reinforce":
        returns = discounted_returns(*args, settings.gamma)
        advantages = returns
    else:
        values = value_forward(params, flatten(states)).reshape(shape)
        next_values = value_forward(params, flatten(next_states)).reshape(shape)
        if algorithm == "reinforce_baseline":
            returns = discounted_returns(*args, settings.gamma, next_values)
            advantages = returns - values
        else:
            advantages, returns = gae(rollout["rewards"], values, next_values, *args[1:],
                                      settings.gamma, settings.gae_lambda)
    if settings.normalize_advantages:
        advantages = normalize_advantages(advantages, mask)
    return {
        "states": flatten(states), "actions": flatten(rollout["actions"]),
        "advantages": flatten(advantages), "returns": flatten(returns), "mask": flatten(mask),
        "old_log_probs": flatten(rollout["log_probs"]),
    }


def loss_and_gradients(
    algorithm: str, params: dict, batch: dict, settings, continuous: bool
) -> tuple[float, dict, dict]:
    """The algorithm's loss on a flat batch, its exact gradients and a few metrics."""
    mask = batch["mask"]
    count = max(mask.sum(), 1.0)
    log_prob, entropy, out, cache = policy_log_prob_entropy(
        params, batch["states"], batch["actions"], continuous
    )
    advantages = batch["advantages"]
    if algorithm == "ppo":
        ratio = np.exp(log_prob - batch["old_log_probs"])
        clipped = np.clip(ratio, 1 - settings.clip_eps, 1 + settings.clip_eps)
        unclipped_wins = ratio * advantages <= clipped * advantages
        objective = np.minimum(ratio * advantages, clipped * advantages)
        policy_loss = -(objective * mask).sum() / count
        d_log_prob = -(ratio * advantages * unclipped_wins) * mask / count
    else:
        policy_loss = (-log_prob * advantages * mask).sum() / count
        d_log_prob = -advantages * mask / count
    loss = policy_loss
    metrics = {"policy_loss": policy_loss, "entropy": (entropy * mask).sum() / count}
    ent_coef = 0.0 if algorithm == "reinforce" else settings.ent_coef
    loss -= ent_coef * metrics["entropy"]
    d_entropy = -ent_coef * mask / count
    grads = policy_backward(params, cache, out, batch["actions"], continuous, d_log_prob,
                            d_entropy)
    if algorithm != "reinforce":
        values_out, value_cache = mlp_forward(params, "value", batch["states"])
        error = values_out[:, 0] - batch["returns"]
        value_loss = 0.5 * (error**2 * mask).sum() / count
        loss += settings.vf_coef * value_loss
        d_values = (settings.vf_coef * error * mask / count)[:, None]
        grads.update(mlp_backward(params, "value", value_cache, d_values))
        metrics["value_loss"] = value_loss
    return float(loss), grads, metrics


def update(
    algorithm: str, params: dict, optimizer_state: dict, rollout: dict, settings, continuous: bool
) -> tuple[dict, dict, dict]:
    """One update from one rollout: a single Adam step (REINFORCE variants) or PPO's
    ``epochs x minibatches`` Adam steps over the core-drawn ``permutations``.

    :returns: ``(new params, new optimizer state, metrics of the last step)``.
    """
    batch = prepare_batch(algorithm, params, rollout, settings)
    learning_rate = float(rollout["learning_rate"])
    if algorithm != "ppo":
        loss, grads, metrics = loss_and_gradients(algorithm, params, batch, settings, continuous)
        params, optimizer_state = adam_step(params, grads, optimizer_state, learning_rate,
                                            settings.max_grad_norm)
        return params, optimizer_state, {"loss": loss, **metrics}
    for epoch_permutation in rollout["permutations"]:
        for indices in epoch_permutation:
            minibatch = {k: v[indices] for k, v in batch.items()}
            loss, grads, metrics = loss_and_gradients(algorithm, params, minibatch, settings,
                                                      continuous)
            params, optimizer_state = adam_step(params, grads, optimizer_state, learning_rate,
                                                settings.max_grad_norm)
    return params, optimizer_state, {"loss": loss, **metrics}
