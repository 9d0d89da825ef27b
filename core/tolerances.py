"""The tolerance table and the comparison helper every equivalence test uses.

One table, here; a test that relaxes a tolerance says why in a comment next to it.

======================  ==========  =================================================
comparison              atol        why
======================  ==========  =================================================
float64 vs reference    1e-10       same formula, same dtype: only rounding order differs
float32 layer           1e-5        one layer of float32 arithmetic
float32 model / steps   1e-4        many layers, or a short training run
weight round trip       0 (exact)   copying numbers must not change them
======================  ==========  =================================================
"""

from __future__ import annotations

from typing import Any

import numpy as np

TOLERANCES: dict[str, float] = {
    "float64": 1e-10,
    "float32_layer": 1e-5,
    "float32_model": 1e-4,
    "exact": 0.0,
}


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array from a torch tensor, a TF tensor/variable or an array-like.

    The one conversion of the project (both backends re-export it). Duck-typed, so core
    imports no framework; torch's half types, which NumPy lacks, become float32.
    """
    if hasattr(x, "detach"):  # torch.Tensor
        x = x.detach().cpu()
        if str(x.dtype) in ("torch.bfloat16", "torch.float16"):
            x = x.float()
        return x.numpy()
    if hasattr(x, "numpy"):  # tf.Tensor, tf.Variable, keras.Variable
        return np.asarray(x.numpy())
    return np.asarray(x)


def max_abs_error(actual: Any, expected: Any) -> tuple[float, tuple[int, ...]]:
    """Largest absolute difference and its index (``(0.0, ())`` for empty arrays)."""
    a, e = to_numpy(actual), to_numpy(expected)
    if a.size == 0:
        return 0.0, ()
    diff = np.abs(a.astype(np.float64) - e.astype(np.float64))
    diff = np.where(np.isnan(diff), np.inf, diff)
    index = np.unravel_index(int(np.argmax(diff)), diff.shape)
    return float(diff[index]), tuple(int(i) for i in index)


def assert_close(
    actual: Any,
    expected: Any,
    atol: float | str,
    name: str = "value",
    check_dtype: bool = False,
) -> None:
    """Assert two arrays agree: shape, then NaN/inf positions, then values within ``atol``.

    :param actual: the array under test (NumPy, torch or TF).
    :param expected: the oracle.
    :param atol: an absolute tolerance, or a key of :data:`TOLERANCES`.
    :param name: what is compared, for the message.
    :param check_dtype: also require equal dtypes.
    :raises AssertionError: naming the max-abs error, its index and both values.
    """
    tol = TOLERANCES[atol] if isinstance(atol, str) else float(atol)
    a, e = to_numpy(actual), to_numpy(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{name}: shape {a.shape} != expected {e.shape}")
    if check_dtype and a.dtype != e.dtype:
        raise AssertionError(f"{name}: dtype {a.dtype} != expected {e.dtype}")
    if np.issubdtype(a.dtype, np.floating) or np.issubdtype(e.dtype, np.floating):
        a_nonfinite, e_nonfinite = ~np.isfinite(a), ~np.isfinite(e)
        if not np.array_equal(a_nonfinite, e_nonfinite):
            where = np.argwhere(a_nonfinite != e_nonfinite)[0]
            raise AssertionError(
                f"{name}: NaN/inf positions differ, first at index {tuple(where)}: "
                f"{a[tuple(where)]!r} vs expected {e[tuple(where)]!r}"
            )
        a = np.where(a_nonfinite, 0.0, a)
        e = np.where(e_nonfinite, 0.0, e)
    err, index = max_abs_error(a, e)
    if err > tol:
        raise AssertionError(
            f"{name}: max abs error {err:.3e} > atol {tol:.1e} at index {index}: "
            f"{a[index]!r} vs expected {e[index]!r}"
        )
