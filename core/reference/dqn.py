"""DQN's update in float64 NumPy: the oracle both backends are tested against (outline 9.2.2).

A Q-network maps a state to one value per action, Q(s, .) = fc3(relu(fc2(relu(fc1(s))))).
One update on a batch of B transitions (from the replay buffer, duetrl.core.rl.replay):

    a*  = argmax_a Q_target(s', a)                 (DQN)
    a*  = argmax_a Q(s', a)                        (Double DQN: the online net chooses,
                                                    the target net evaluates)
    y   = r^(n) + gamma^n (1 - term) Q_target(s', a*)
    L   = mean_i huber(Q(s_i, a_i) - y_i),   huber(x) = x^2 / 2 if |x| <= delta
                                                      = delta (|x| - delta / 2) otherwise
    theta <- Adam(theta, dL/dtheta)                (y is a constant: no gradient through it)
    every C updates: theta_target <- theta

======== ============ ===================================================================
symbol   shape        description
======== ============ ===================================================================
s, s'    (B, S)       states; s' is n steps later (or where the episode stopped)
a        (B,)         actions taken, int64
r^(n)    (B,)         sum_{k<m} gamma^k r_{t+k}, m = min(n, steps to the episode's end)
gamma^n  (B,)         ``discounts``: gamma^m, the discount of the bootstrap
term     (B,)         1 if the episode *terminated* within those m steps; a *truncation*
                      (time limit) leaves term = 0, so y still bootstraps from s'
======== ============ ===================================================================

Parameters are canonical dictionaries: ``q.fc1.kernel`` ... ``q.fc3.bias`` for the online
network and ``q_target.*`` for the target network.
"""

from __future__ import annotations

import numpy as np

from duetrl.core.constants import HUBER_DELTA
from duetrl.core.initializers import dense_params
from duetrl.core.interfaces.rl import check_policy_config
from duetrl.core.reference.optim import adam_step

LAYERS: tuple[str, ...] = ("fc1", "fc2", "fc3")
"""The Q-network's dense layers, in order; ReLU after all but the last."""


def init_q_params(state_dim: int, hidden_dim: int, action_dim: int,
                  seed: int) -> dict[str, np.ndarray]:
    """Initial online and target parameters (float64, equal): Glorot kernels, zero biases."""
    check_policy_config(state_dim, hidden_dim, action_dim)
    rng = np.random.default_rng(seed)
    sizes = (state_dim, hidden_dim, hidden_dim, action_dim)
    params: dict[str, np.ndarray] = {}
    for layer, fan_in, fan_out in zip(LAYERS, sizes[:-1], sizes[1:]):
        params.update(dense_params(rng, f"q.{layer}", fan_in, fan_out))
    params.update({"q_target." + k[2:]: v.copy() for k, v in list(params.items())})
    return params


def q_forward(params: dict, prefix: str, states: np.ndarray) -> tuple[np.ndarray, list]:
    """Q(s, .) (B, A) of the network ``prefix`` ("q" or "q_target"), and a cache for backward."""
    x, cache = states, []
    for index, layer in enumerate(LAYERS):
        pre = x @ params[f"{prefix}.{layer}.kernel"] + params[f"{prefix}.{layer}.bias"]
        cache.append((x, pre))
        x = pre if index == len(LAYERS) - 1 else np.maximum(pre, 0.0)
    return x, cache


def q_backward(params: dict, prefix: str, cache: list, d_out: np.ndarray) -> dict:
    """Gradients of a scalar loss w.r.t. the network's parameters, given dL/dQ (B, A)."""
    grads, d = {}, d_out
    for index in reversed(range(len(LAYERS))):
        layer = LAYERS[index]
        x, pre = cache[index]
        if index < len(LAYERS) - 1:
            d = d * (pre > 0)  # through the ReLU
        grads[f"{prefix}.{layer}.kernel"] = x.T @ d
        grads[f"{prefix}.{layer}.bias"] = d.sum(axis=0)
        d = d @ params[f"{prefix}.{layer}.kernel"].T
    return grads


def huber(x: np.ndarray, delta: float = HUBER_DELTA) -> np.ndarray:
    """x^2 / 2 where |x| <= delta, else delta (|x| - delta / 2); elementwise."""
    absolute = np.abs(x)
    return np.where(absolute <= delta, 0.5 * x**2, delta * (absolute - 0.5 * delta))


def td_targets(params: dict, batch: dict, double: bool = False) -> np.ndarray:
    """y = r + gamma^n (1 - term) Q_target(s', a*) (B,); a* from Q (double) or Q_target."""
    q_next_target, _ = q_forward(params, "q_target", batch["next_states"])
    chooser = q_forward(params, "q", batch["next_states"])[0] if double else q_next_target
    next_actions = np.argmax(chooser, axis=1)
    q_next = np.take_along_axis(q_next_target, next_actions[:, None], axis=1)[:, 0]
    not_terminal = 1.0 - batch["terminations"].astype(np.float64)
    return batch["rewards"] + batch["discounts"] * not_terminal * q_next


def dqn_loss_and_grads(params: dict, batch: dict, double: bool = False,
                       delta: float = HUBER_DELTA) -> tuple[float, dict, dict]:
    """``(loss, gradients of the online network, metrics)`` of one batch."""
    y = td_targets(params, batch, double)
    q_all, cache = q_forward(params, "q", batch["states"])
    rows = np.arange(q_all.shape[0])
    q_taken = q_all[rows, batch["actions"]]
    error = q_taken - y
    loss = float(huber(error, delta).mean())
    d_q = np.zeros_like(q_all)
    d_q[rows, batch["actions"]] = np.clip(error, -delta, delta) / error.size  # huber'(x) / B
    metrics = {"loss": loss, "q_mean": float(q_taken.mean()), "td_error": float(
        np.abs(error).mean())}
    return loss, q_backward(params, "q", cache, d_q), metrics


def dqn_update(params: dict, optim_state: dict, batch: dict, learning_rate: float,
               double: bool = False, max_grad_norm: float | None = None) -> tuple[dict, dict, dict]:
    """One Adam step of the online network; returns ``(params, optim state, metrics)``."""
    _, grads, metrics = dqn_loss_and_grads(params, batch, double)
    online = {k: v for k, v in params.items() if k.startswith("q.")}
    new_online, optim_state = adam_step(online, grads, optim_state, learning_rate, max_grad_norm)
    return {**params, **new_online}, optim_state, metrics


def sync_target(params: dict) -> dict:
    """theta_target <- theta: a copy of ``params`` with ``q_target.*`` set to ``q.*``."""
    synced = dict(params)
    for name, value in params.items():
        if name.startswith("q."):
            synced["q_target." + name[2:]] = value.copy()
    return synced
