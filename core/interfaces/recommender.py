"""The recommender's contracts (outline 6.2; Chen et al., WSDM 2019), shared by the float64
oracle (``core/reference/recommender.py``) and both backends (``backends/*/recommender.py``):
the methods, the pinned constants, the behaviour head's initial weights and the checks of bad
input (an item outside the catalogue, a behaviour probability that is zero).
"""

from __future__ import annotations

from typing import Any

import numpy as np

METHODS = ("supervised", "reinforce", "off_policy", "top_k")
"""What a run trains: ``supervised`` next-item prediction (cross-entropy on the user's own next
item); ``reinforce`` on the logged rewards with no correction; ``off_policy``: REINFORCE with
the capped importance weight pi / beta; ``top_k``: that weight times lambda_K."""

RL_METHODS = METHODS[1:]
"""The methods that learn from the logged rewards."""

PROPENSITIES = ("learned", "logged")
"""Where beta(a | s) of the importance weight comes from: the behaviour head (the paper's way:
the logging policy is unknown) or the probabilities the logging policy recorded."""

ITEM_OFFSET = 1
"""Token of item a: ``ITEM_OFFSET + a`` (token 0 is <bos>; the title words follow the items)."""

WEIGHT_CAP = 10.0
"""c of min(pi / beta, c): an item beta rarely shows cannot take over the gradient."""

BEHAVIOUR_HEAD_INIT_STD = 0.02
"""Standard deviation of the behaviour head's initial kernel (as GPT-2's layers)."""


def _shape(x: Any) -> tuple[int, ...]:
    shape = x.shape if hasattr(x, "shape") else np.shape(x)
    return tuple(int(d) for d in shape)


def check_items(name: str, items: Any, num_items: int) -> None:
    """Raise ValueError unless every id of ``items`` is an item of the catalogue, 0 <= a < N.

    Framework tensors inside a traced graph (no values) pass; their shapes were checked."""
    if hasattr(items, "numpy") and not hasattr(items, "__array__"):
        return
    try:
        values = np.asarray(items)
    except Exception:  # noqa: BLE001  (a symbolic tensor: nothing to read)
        return
    if values.dtype.kind not in "iu":
        raise ValueError(f"{name}: expected integer item ids, got dtype {values.dtype}")
    if values.size and (values.min() < 0 or values.max() >= num_items):
        bad = int(values.min() if values.min() < 0 else values.max())
        raise ValueError(
            f"{name}: expected item ids in [0, {num_items}) (the catalogue has "
            f"{num_items} items), got {bad}"
        )


def check_behaviour_probs(name: str, probs: Any) -> None:
    """Raise ValueError unless every behaviour probability is in (0, 1]: pi / beta is
    undefined where the logging policy could not have shown the item."""
    try:
        values = np.asarray(probs, dtype=np.float64)
    except Exception:  # noqa: BLE001  (a symbolic tensor: nothing to read)
        return
    if values.size == 0:
        return
    if not np.all(np.isfinite(values)) or values.min() <= 0 or values.max() > 1:
        bad = values[~(np.isfinite(values) & (values > 0) & (values <= 1))].ravel()[0]
        raise ValueError(
            f"{name}: expected behaviour probabilities in (0, 1] (beta(a | s) = 0 "
            f"means the logged item could not have been shown: no importance "
            f"weight pi / beta exists), got {float(bad)!r}"
        )


def check_finite(name: str, values: Any) -> None:
    """Raise ValueError unless every value is a finite number (a logged reward, for one)."""
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        bad = array[~np.isfinite(array)].ravel()[0]
        raise ValueError(f"{name}: expected finite numbers, got {float(bad)!r}")


def check_correction(method: str, cap: Any, k: Any) -> None:
    """Raise ValueError unless ``method`` is in :data:`METHODS`, ``cap`` > 0, ``k`` an int >= 1."""
    if method not in METHODS:
        raise ValueError(f"method: expected one of {list(METHODS)}, got {method!r}")
    if (
        isinstance(cap, bool)
        or not isinstance(cap, int | float | np.integer | np.floating)
        or not cap > 0
    ):
        raise ValueError(f"cap: expected a float > 0 (the largest importance weight), got {cap!r}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k: expected an int >= 1 (the slate size K), got {k!r}")


def check_events(mask: Any, **arrays: Any) -> None:
    """Raise ValueError unless ``mask`` is (B, E) and every other array has its shape."""
    shape = _shape(mask)
    if len(shape) != 2:
        raise ValueError(f"mask: expected shape (B, E) (sessions, events), got {shape}")
    for name, array in arrays.items():
        if array is not None and _shape(array) != shape:
            raise ValueError(f"{name}: expected shape {shape} (as mask), got {_shape(array)}")


def init_behaviour_head_params(
    n_embd: int, num_items: int, seed: int = 0, dtype: str = "float32"
) -> dict[str, np.ndarray]:
    """The behaviour head's canonical parameters: ``kernel`` (D, N) ~ N(0, 0.02^2), bias 0."""
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0.0, BEHAVIOUR_HEAD_INIT_STD, size=(n_embd, num_items))
    return {"kernel": kernel.astype(dtype), "bias": np.zeros(num_items, dtype)}
