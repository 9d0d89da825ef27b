"""Acting on the host: the policy's sampling step in NumPy, for the rollouts of the RL loops.

A rollout calls the policy once per environment step on a batch of N observations. For the
small networks of the policy-gradient loops (4 -> 64 -> 2 on CartPole) the arithmetic of that
call takes some tens of microseconds, while one call into a framework costs more than that in
dispatch alone: ~0.2 ms for a compiled TensorFlow graph, ~0.1 ms for PyTorch's eager ops (the
conversions included; ``benchmarks/cartpole.py --act-cost`` measures each). So
:class:`PolicyGradientTrainer <duetrl.core.rl.train.PolicyGradientTrainer>` acts through a
:class:`HostActor`: a copy of the policy's weights taken at the start of every rollout (the
weights change only in the update, between rollouts), sampled with the equations of the
backends' own ``policy.sample``, in the trainer's dtype:

    h = relu(s W1 + b1),  out = h W2 + b2
    categorical  a = argmax_a (out_a + g_a)       log pi(a|s) = out_a - logsumexp(out)
    Gaussian     a = out + exp(log_std) * eps     log pi(a|s) = sum_d [-z_d^2 / 2 - log_std_d
                                                                - log(2 pi) / 2],
                                                   z = (a - out) / exp(log_std)

The noise (Gumbel g or N(0, 1) eps) comes from core as before, so both backends pick the
actions their networks would pick. Learning stays in the framework: gradients never flow here,
and ``Agent.act`` (the framework's own step) is unchanged for anyone calling it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

LOG_2PI = math.log(2.0 * math.pi)
POLICY_NAMES = ("fc1.kernel", "fc1.bias", "fc2.kernel", "fc2.bias")


def sample(
    weights: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    states: np.ndarray,
    noise: np.ndarray,
    log_std: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(actions, log pi(actions|s))`` of the two-layer policy ``weights = (W1, b1, W2, b2)``.

    :param states: ``(N, state_dim)`` in the weights' dtype.
    :param noise: ``(N, action_dim)``: Gumbel noise (categorical) or N(0, 1) (Gaussian).
    :param log_std: the Gaussian policy's ``(action_dim,)`` log std; None: categorical.
    :returns: actions ``(N,)`` int64 (categorical) or ``(N, action_dim)`` (Gaussian), and
        their log-probabilities ``(N,)``.
    """
    w1, b1, w2, b2 = weights
    hidden = states @ w1
    hidden += b1
    np.maximum(hidden, 0.0, out=hidden)  # relu
    out = hidden @ w2
    out += b2
    if log_std is None:  # Gumbel-max, then log softmax at the chosen action
        actions = np.argmax(out + noise, axis=-1)
        top = out.max(axis=-1, keepdims=True)
        log_z = top[:, 0] + np.log(np.exp(out - top).sum(axis=-1))
        chosen = np.take_along_axis(out, actions[:, None], axis=-1)[:, 0]
        return actions.astype(np.int64), chosen - log_z
    actions = out + np.exp(log_std) * noise  # a = mu + sigma eps
    z = (actions - out) / np.exp(log_std)
    return actions, (-0.5 * z**2 - log_std - 0.5 * LOG_2PI).sum(axis=-1)


class HostActor:
    """``act(states, noise)`` like a backend ``Agent``'s, from a copy of its policy's weights.

    :param policy_params: the policy's canonical parameters (``backend.export_params(
        agent.policy)``: ``fc1.kernel`` (S, H), ``fc1.bias``, ``fc2.kernel`` (H, A),
        ``fc2.bias``, and ``log_std`` (A,) for a Gaussian policy).
    :param dtype: the dtype the agent computes in (``"float32"`` or ``"float64"``).
    """

    def __init__(self, policy_params: Mapping[str, np.ndarray], dtype: str = "float32") -> None:
        self.dtype = np.dtype(dtype)
        self.weights = tuple(np.asarray(policy_params[k], self.dtype) for k in POLICY_NAMES)
        log_std = policy_params.get("log_std")
        self.log_std = None if log_std is None else np.asarray(log_std, self.dtype)

    def act(self, states: np.ndarray, noise: np.ndarray) -> dict[str, np.ndarray]:
        """``{"actions": (N,) or (N, A), "log_probs": (N,)}`` for observations ``(N, S)``."""
        actions, log_probs = sample(self.weights, np.asarray(states, self.dtype),
                                    np.asarray(noise, self.dtype), self.log_std)
        return {"actions": actions, "log_probs": log_probs}
