"""Policy and value networks, their distributions and sampling, in float64 NumPy.

The networks are the outline's listing 5.2: ``fc1`` (ReLU) then ``fc2`` (logits, a mean, or
one value). Parameters are canonical dictionaries (``duetrl.core.weights``) with the prefixes
``policy.`` and ``value.``; a Gaussian policy adds a state-independent ``policy.log_std``.
Forward passes keep a cache so :func:`mlp_backward` can return exact analytic gradients.

What the policy gradient needs from a policy is grad_theta log pi_theta(a|s) (the score
function): the estimator of the policy-gradient theorem is

    grad_theta J ~ (1 / B) sum_t grad_theta log pi_theta(a_t|s_t) A_t,

and :func:`policy_backward` computes exactly that product, from dL/d log pi = -A_t / B.
The value network V(s) learns the Bellman expectation V(s_t) = E[r_t + gamma V(s_{t+1})]
by regression on returns (core/reference/returns.py).
"""

from __future__ import annotations

import math

import numpy as np

from duetrl.core.initializers import dense_params
from duetrl.core.interfaces.rl import ALGORITHMS, check_policy_config, uses_value_net
from duetrl.core.reference.functional import log_softmax

POLICY_OUTPUT_SCALE: float = 0.01
"""The policy head's initial kernel is scaled down so the first policy is near uniform."""

LOG_2PI: float = math.log(2.0 * math.pi)


def init_agent_params(
    algorithm: str, state_dim: int, hidden_dim: int, action_dim: int, continuous: bool, seed: int
) -> dict[str, np.ndarray]:
    """Draw an agent's initial parameters (float64) from ``seed``: Glorot kernels, zero biases.

    :returns: ``{"policy.fc1.kernel": (state_dim, hidden_dim), ..., "value.fc2.bias": (1,)}``.
    """
    check_policy_config(state_dim, hidden_dim, action_dim)
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm: expected one of {list(ALGORITHMS)}, got {algorithm!r}")
    rng = np.random.default_rng(seed)
    params = {**dense_params(rng, "policy.fc1", state_dim, hidden_dim),
              **dense_params(rng, "policy.fc2", hidden_dim, action_dim)}
    params["policy.fc2.kernel"] *= POLICY_OUTPUT_SCALE
    if continuous:
        params["policy.log_std"] = np.zeros(action_dim)
    if uses_value_net(algorithm):
        params.update(dense_params(rng, "value.fc1", state_dim, hidden_dim))
        params.update(dense_params(rng, "value.fc2", hidden_dim, 1))
    return params


def mlp_forward(params: dict, prefix: str, x: np.ndarray) -> tuple[np.ndarray, dict]:
    """out = relu(x W1 + b1) W2 + b2; returns ``(out (B, out_dim), cache for backward)``."""
    pre = x @ params[f"{prefix}.fc1.kernel"] + params[f"{prefix}.fc1.bias"]  # (B, hidden)
    hidden = np.maximum(pre, 0.0)
    out = hidden @ params[f"{prefix}.fc2.kernel"] + params[f"{prefix}.fc2.bias"]
    return out, {"x": x, "pre": pre, "hidden": hidden}


def mlp_backward(params: dict, prefix: str, cache: dict, d_out: np.ndarray) -> dict:
    """Gradients of a scalar loss w.r.t. the MLP parameters, given dL/d(out) ``(B, out_dim)``."""
    d_hidden = d_out @ params[f"{prefix}.fc2.kernel"].T
    d_pre = d_hidden * (cache["pre"] > 0)  # ReLU passes the gradient where it was active
    return {
        f"{prefix}.fc2.kernel": cache["hidden"].T @ d_out,
        f"{prefix}.fc2.bias": d_out.sum(axis=0),
        f"{prefix}.fc1.kernel": cache["x"].T @ d_pre,
        f"{prefix}.fc1.bias": d_pre.sum(axis=0),
    }


def value_forward(params: dict, states: np.ndarray) -> np.ndarray:
    """V(s) ``(B,)`` from the value network."""
    return mlp_forward(params, "value", states)[0][:, 0]


def categorical_log_prob(logits: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """log pi(a|s) = log softmax(logits)_a; ``(B, A), (B,) -> (B,)``."""
    return np.take_along_axis(log_softmax(logits), np.asarray(actions)[:, None], axis=-1)[:, 0]


def categorical_entropy(logits: np.ndarray) -> np.ndarray:
    """H = -sum_a pi(a|s) log pi(a|s); ``(B, A) -> (B,)``."""
    log_p = log_softmax(logits)
    return -(np.exp(log_p) * log_p).sum(axis=-1)


def sample_categorical(logits: np.ndarray, gumbel_noise: np.ndarray) -> np.ndarray:
    """Gumbel-max: argmax_a (logits_a + g_a), g = -log(-log u), is a sample of softmax(logits)."""
    return np.argmax(logits + gumbel_noise, axis=-1)


def gaussian_log_prob(mean: np.ndarray, log_std: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """log N(a; mu, sigma^2) summed over action dims:
    sum_d [ -((a - mu) / sigma)^2 / 2 - log sigma - log(2 pi) / 2 ]; ``-> (B,)``."""
    z = (actions - mean) / np.exp(log_std)
    return (-0.5 * z**2 - log_std - 0.5 * LOG_2PI).sum(axis=-1)


def gaussian_entropy(mean: np.ndarray, log_std: np.ndarray) -> np.ndarray:
    """H = sum_d [ log sigma + (1 + log 2 pi) / 2 ], the same for every state; ``-> (B,)``."""
    per_dim = log_std + 0.5 * (1.0 + LOG_2PI)
    return np.broadcast_to(per_dim, mean.shape).sum(axis=-1)


def sample_gaussian(mean: np.ndarray, log_std: np.ndarray, normal_noise: np.ndarray) -> np.ndarray:
    """a = mu + sigma * eps, eps ~ N(0, 1) drawn by core."""
    return mean + np.exp(log_std) * normal_noise


def policy_log_prob_entropy(
    params: dict, states: np.ndarray, actions: np.ndarray, continuous: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """``(log pi(a|s) (B,), entropy (B,), network output, cache)`` for either policy kind."""
    out, cache = mlp_forward(params, "policy", states)
    if continuous:
        log_std = params["policy.log_std"]
        return gaussian_log_prob(out, log_std, actions), gaussian_entropy(out, log_std), out, cache
    return categorical_log_prob(out, actions), categorical_entropy(out), out, cache


def policy_backward(
    params: dict, states_cache: dict, out: np.ndarray, actions: np.ndarray, continuous: bool,
    d_log_prob: np.ndarray, d_entropy: np.ndarray,
) -> dict:
    """Policy-parameter gradients from dL/d log pi ``(B,)`` and dL/dH ``(B,)``.

    Categorical: d log pi_a / dz = onehot(a) - p;  dH/dz_j = -p_j (log p_j + H).
    Gaussian:    d log pi / d mu = (a - mu) / sigma^2;  d log pi / d log sigma = z^2 - 1;
                 dH / d log sigma = 1 (per dimension and sample).
    """
    if continuous:
        log_std = params["policy.log_std"]
        z = (actions - out) / np.exp(log_std)
        d_out = d_log_prob[:, None] * z / np.exp(log_std)
        d_log_std = (d_log_prob[:, None] * (z**2 - 1.0)).sum(axis=0) + d_entropy.sum()
        grads = mlp_backward(params, "policy", states_cache, d_out)
        grads["policy.log_std"] = d_log_std
        return grads
    log_p = log_softmax(out)
    p = np.exp(log_p)
    onehot = np.eye(out.shape[1])[actions]
    entropy = -(p * log_p).sum(axis=-1, keepdims=True)
    d_out = d_log_prob[:, None] * (onehot - p) + d_entropy[:, None] * (-p * (log_p + entropy))
    return mlp_backward(params, "policy", states_cache, d_out)
