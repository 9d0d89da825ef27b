"""DQN (outline 9.2.2): a Q-network, its target copy, the Huber TD loss and one Adam step.

Read :meth:`DQNAgent.update` beside the equation it implements (the float64 oracle is
core/reference/dqn.py; the replay buffer, epsilon schedule and loop are core/rl):

    a*  = argmax_a Q_target(s', a)          or, Double DQN, argmax_a Q(s', a)
    y   = r + gamma^n (1 - term) Q_target(s', a*)
    L   = mean huber(Q(s, a) - y)

``duetrl diff dqn`` shows this file beside its twin in the other backend.
"""

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from duetrl.backends.torch.optim import Adam
from duetrl.backends.torch.runtime import resolve_dtype
from duetrl.backends.torch.weights import export_params, import_params
from duetrl.core.constants import HUBER_DELTA
from duetrl.core.interfaces.rl import check_policy_config

BATCH_KEYS = ("states", "actions", "rewards", "next_states", "terminations", "discounts")
METRICS = ("loss", "q_mean", "td_error")


def huber_loss(errors: Tensor, delta: float = HUBER_DELTA) -> Tensor:
    """mean of x^2 / 2 where |x| <= delta, else delta (|x| - delta / 2); (B,) -> ()."""
    return F.huber_loss(errors, torch.zeros_like(errors), delta=delta)


def td_targets(
    q_next: Tensor, q_next_target: Tensor, rewards: Tensor, terminations: Tensor,
    discounts: Tensor, double: bool,
) -> Tensor:
    """y = r + gamma^n (1 - term) Q_target(s', a*); Q(s', .) and Q_target(s', .) are (B, A)."""
    chooser = q_next if double else q_next_target  # Double DQN: the online net picks a*
    next_actions = torch.argmax(chooser, dim=1)
    q_star = torch.gather(q_next_target, 1, next_actions[:, None])[:, 0]  # Q_target(s', a*)
    return rewards + discounts * (1.0 - terminations) * q_star


class QNetwork(nn.Module):
    """Q(s, .) = fc3(relu(fc2(relu(fc1(s))))); (B, state_dim) -> (B, action_dim).

    Args:
        state_dim: observation size; hidden_dim: width of fc1 and fc2; action_dim: actions.
        dtype: parameter dtype (``"float32"`` by default, ``"float64"`` for tests).
    """

    def __init__(
        self, state_dim: int, hidden_dim: int, action_dim: int, dtype: str | None = None,
    ) -> None:
        super().__init__()
        check_policy_config(state_dim, hidden_dim, action_dim)
        self.state_dim, self.hidden_dim, self.action_dim = state_dim, hidden_dim, action_dim
        dtype = resolve_dtype(dtype or "float32")
        # initial weights come from core (duetrl.core.reference.dqn.init_q_params)
        self.fc1 = nn.Linear(state_dim, hidden_dim, dtype=dtype)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim, dtype=dtype)
        self.fc3 = nn.Linear(hidden_dim, action_dim, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class DQNAgent(nn.Module):
    """The online network ``q``, the target network ``q_target`` and Adam on ``q``.

    Args:
        state_dim: observation size; action_dim: number of (discrete) actions.
        hidden_dim: width of the Q-network's hidden layers.
        double: Double DQN targets; max_grad_norm: clip the gradient norm (None: off).
        dtype: ``"float32"`` or ``"float64"``.
    """

    def __init__(
        self, state_dim: int, action_dim: int, hidden_dim: int = 64, double: bool = False,
        max_grad_norm: float | None = None, dtype: str = "float32",
    ) -> None:
        super().__init__()
        self.double, self.dtype_name = double, dtype
        self.q = QNetwork(state_dim, hidden_dim, action_dim, dtype)
        self.q_target = QNetwork(state_dim, hidden_dim, action_dim, dtype)
        self.optimizer = Adam(self.q, max_grad_norm)

    def as_tensor(self, array: Any) -> Tensor:
        """A tensor: float arrays in the agent's dtype, bools and integers as they are."""
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.floating):
            array = array.astype(self.dtype_name, copy=False)
        return torch.as_tensor(array)

    def batch_tensors(self, arrays: dict[str, np.ndarray]) -> dict[str, Tensor]:
        """The arrays of :data:`BATCH_KEYS` as tensors, terminations in the rewards' dtype."""
        tensors = {k: self.as_tensor(arrays[k]) for k in BATCH_KEYS}
        tensors["terminations"] = tensors["terminations"].to(tensors["rewards"].dtype)
        return tensors

    def q_values(self, states: np.ndarray) -> np.ndarray:
        """Q(s, .) for a batch of observations (N, state_dim) -> (N, action_dim), NumPy."""
        return self.q_step(self.as_tensor(states)).numpy()

    @torch.inference_mode()
    def q_step(self, states: Tensor) -> Tensor:
        """Q(s, .) of :meth:`q_values`, as a tensor."""
        return self.q(states)

    def sync_target(self) -> None:
        """theta_target <- theta."""
        import_params(self.q_target, export_params(self.q))

    def update(self, batch: dict[str, np.ndarray], learning_rate: float) -> dict[str, float]:
        """One gradient step on a replay batch of host arrays; returns the metrics as floats."""
        tensors = self.batch_tensors(batch)
        metrics = self.update_step(tensors, float(learning_rate))
        return {k: float(v) for k, v in metrics.items()}

    def update_many(self, batches: dict[str, np.ndarray], learning_rate: float) -> dict[str, float]:
        """One gradient step per stacked batch (G, B, ...), in order, in one call; the last
        step's metrics (one host transfer for G steps)."""
        tensors = self.batch_tensors(batches)
        metrics = self.update_loop(tensors, float(learning_rate))
        return {k: float(v) for k, v in metrics.items()}

    def update_loop(self, batches: dict[str, Tensor], learning_rate: float) -> dict[str, Tensor]:
        """:meth:`update_step` on ``batches[k][i]`` for i = 0 .. G-1."""
        metrics = {k: torch.zeros((), dtype=batches["rewards"].dtype) for k in METRICS}
        for i in range(batches["states"].shape[0]):
            metrics = self.update_step({k: v[i] for k, v in batches.items()}, learning_rate)
        return metrics

    def update_step(self, batch: dict[str, Tensor], learning_rate: float) -> dict[str, Tensor]:
        """The update, top to bottom beside the equation (module docstring)."""
        with torch.no_grad():  # outside autograd: y is a constant, no gradient
            q_next_target = self.q_target(batch["next_states"])             # Q_target(s', .)
            q_next = self.q(batch["next_states"]) if self.double else q_next_target
            y = td_targets(q_next, q_next_target, batch["rewards"], batch["terminations"],
                           batch["discounts"], self.double)
        q_all = self.q(batch["states"])                                       # Q(s, .)
        q_taken = torch.gather(q_all, 1, batch["actions"][:, None].long())[:, 0]  # Q(s, a)
        loss = huber_loss(q_taken - y)                                        # mean huber
        grads = torch.autograd.grad(loss, self.optimizer.parameters)
        self.optimizer.apply_gradients(grads, learning_rate)
        return {"loss": loss.detach(), "q_mean": q_taken.detach().mean(),
                "td_error": torch.abs(q_taken - y).detach().mean()}
