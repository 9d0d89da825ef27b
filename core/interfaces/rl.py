"""The reinforcement-learning contract (outline 2.2, 4.2.3, listing 5.2), checked in one place.

=============  ==================  ============================================================
Symbol         Shape               Description
=============  ==================  ============================================================
states         (B, state_dim)      observations s_t (B = T * N flattened steps)
actions        (B,) int / (B, A)   a_t: a category index, or a real vector (Gaussian policy)
logits         (B, action_dim)     categorical policy output, pi(a|s) = softmax(logits)_a
returns        (B,)                G_t or an advantage: the weight of -log pi(a_t|s_t)
mask           (B,)                1 for a real transition, 0 for padding / an autoreset step
noise          (N, action_dim)     Gumbel noise (categorical) or N(0, 1) noise (Gaussian),
                                   drawn by core with NumPy so both backends act alike
=============  ==================  ============================================================

The checks live here, once, so both backends raise the very same ValueError message.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

ALGORITHMS: tuple[str, ...] = ("reinforce", "reinforce_baseline", "ppo")
"""The algorithms duetrl trains; all but plain REINFORCE learn a value network."""


def uses_value_net(algorithm: str) -> bool:
    """True for the algorithms with a learned baseline / critic."""
    return algorithm != "reinforce"



class PolicyModule(Protocol):
    """A categorical policy ``PolicyNet(state_dim, hidden_dim, action_dim)``: logits out."""

    state_dim: int
    hidden_dim: int
    action_dim: int

    def __call__(self, states: Any) -> Any: ...

    def compute_loss(self, states: Any, actions: Any, returns: Any, mask: Any = None) -> Any: ...


class Agent(Protocol):
    """What the core training loop needs from a backend: act on a batch, update from a rollout."""

    def act(self, states: Any, noise: Any) -> dict: ...

    def update(self, batch: dict) -> dict: ...


def check_discount(name: str, value: float) -> None:
    """Raise ValueError unless ``value`` (gamma or lambda) is a finite number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")


def check_positive_int(name: str, value: Any) -> None:
    """Raise ValueError unless ``value`` is a positive int."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")


def check_policy_config(state_dim: int, hidden_dim: int, action_dim: int) -> None:
    """Raise ValueError unless every size of a policy or value network is a positive int."""
    check_positive_int("state_dim", state_dim)
    check_positive_int("hidden_dim", hidden_dim)
    check_positive_int("action_dim", action_dim)


def _shape(x: Any) -> tuple[int, ...]:
    if not hasattr(x, "shape"):
        return (len(x),)
    return tuple(None if d is None else int(d) for d in x.shape)


def check_trajectory_arrays(
    rewards: Any, terminations: Any, truncations: Any, values: Any = None, next_values: Any = None
) -> None:
    """Raise ValueError unless every trajectory array has the rewards' shape ``(T, N)``, T >= 1."""
    shape = _shape(rewards)
    if len(shape) != 2 or shape[0] < 1:
        raise ValueError(f"rewards: expected shape (T, N) with T >= 1, got {shape}")
    named = dict(terminations=terminations, truncations=truncations, values=values,
                 next_values=next_values)
    for name, array in named.items():
        if array is not None and _shape(array) != shape:
            raise ValueError(f"{name}: expected shape {shape} (as rewards), got {_shape(array)}")


def check_loss_inputs(
    states_shape: Sequence[int], actions_shape: Sequence[int], returns_shape: Sequence[int],
    state_dim: int,
) -> None:
    """Raise ValueError unless states ``(B, state_dim)``, actions ``(B, ...)``, returns ``(B,)``."""
    states_shape, actions_shape = tuple(states_shape), tuple(actions_shape)
    returns_shape = tuple(returns_shape)
    if len(states_shape) != 2 or states_shape[1] != state_dim:
        raise ValueError(f"states: expected shape (B, {state_dim}), got {states_shape}")
    batch = states_shape[0]
    if len(actions_shape) < 1 or actions_shape[0] != batch:
        raise ValueError(f"actions: expected shape ({batch}, ...), got {actions_shape}")
    if returns_shape != (batch,):
        raise ValueError(f"returns: expected shape ({batch},), got {returns_shape}")
