"""Benchmark: GAE as a reverse scan (today's backends) vs the (T, T, N) matrix it replaced.

Run by hand (``python benchmarks/returns.py``), never in the test suite. Both ways solve the
backward recurrence A_t = delta_t + gamma lambda c_t A_{t+1} for T steps of N environments:

    scan    (backends/*/returns.py)  one step per t: O(T * N) memory, T small ops
    matrix  (before issue 7, kept here only for this comparison): every A_t at once as
            sum_k (prod_{t <= j < k} c_j) delta_k with a (T, T, N) matrix of discount products:
            O(T^2 * N) memory, a few large ops

Each pair is measured in the same run, alternating, one framework after the other, one
thread each; the table reports medians and the matrix/scan ratio. A matrix that would need
more than ``--max-matrix-gb`` is not built (its cell says how much it would need).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from duetrl.core.backend import load_backends

MATRIX_COPIES = 4
"""About how many (T, T, N) float32 tensors the matrix version holds at once."""


def time_alternating(steps: dict, repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median milliseconds of each step, measured in alternation so drift hits all alike."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            samples[name].append(1000 * (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in samples.items()}


def matrix_gb(steps: int, envs: int) -> float:
    """Memory the matrix version needs, in GB (float32)."""
    return MATRIX_COPIES * steps * steps * envs * 4 / 1e9


def torch_steps(inputs: np.ndarray, discounts: np.ndarray, with_matrix: bool) -> dict:
    import torch

    from duetrl.backends.torch.returns import discounted_sum

    a, c = torch.as_tensor(inputs), torch.as_tensor(discounts)

    def matrix_discounted_sum(inputs, discounts):  # the old backends/torch/returns.py
        steps = inputs.shape[0]
        upper = torch.triu(torch.ones(steps, steps, dtype=torch.bool))  # k >= t
        shifted = torch.cat([torch.ones_like(discounts[:1]), discounts[:-1]], dim=0)  # c_{k-1}
        strictly_upper = torch.triu(torch.ones(steps, steps, dtype=torch.bool), diagonal=1)
        factors = torch.where(strictly_upper[:, :, None], shifted[None],
                              torch.ones_like(shifted[None]))
        products = torch.cumprod(factors, dim=1) * upper[:, :, None]  # (T, T, N)
        return (products * inputs[None]).sum(dim=1)

    steps = {"scan": lambda: discounted_sum(a, c)}
    if with_matrix:
        steps["matrix"] = lambda: matrix_discounted_sum(a, c)
    return steps


def tf_steps(inputs: np.ndarray, discounts: np.ndarray, with_matrix: bool) -> dict:
    import tensorflow as tf

    from duetrl.backends.tf.returns import discounted_sum

    a, c = tf.constant(inputs), tf.constant(discounts)

    @tf.function  # as it ran before: inside the agent's traced prepare step
    def matrix_discounted_sum(inputs, discounts):  # the old backends/tf/returns.py
        steps = tf.shape(inputs)[0]
        index = tf.range(steps)
        upper = index[None, :] >= index[:, None]  # k >= t
        shifted = tf.concat([tf.ones_like(discounts[:1]), discounts[:-1]], axis=0)  # c_{k-1}
        strictly_upper = index[None, :] > index[:, None]
        factors = tf.where(strictly_upper[:, :, None], shifted[None], tf.ones_like(shifted[None]))
        products = tf.math.cumprod(factors, axis=1) * tf.cast(upper, inputs.dtype)[:, :, None]
        return tf.reduce_sum(products * inputs[None], axis=1)

    steps = {"scan": lambda: discounted_sum(a, c).numpy()}
    if with_matrix:
        steps["matrix"] = lambda: matrix_discounted_sum(a, c).numpy()
    return steps


def parse_size(text: str) -> tuple[int, int]:
    """``"4096x64"`` -> (4096, 64)."""
    try:
        steps, envs = (int(part) for part in text.lower().split("x"))
    except ValueError:
        message = f"--sizes: expected TxN such as 4096x64, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if steps < 1 or envs < 1:
        raise argparse.ArgumentTypeError(f"--sizes: expected positive T and N, got {text!r}")
    return steps, envs


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=parse_size, nargs="+",
                        default=[(256, 64), (1024, 64), (4096, 64)], help="T x N of each run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-matrix-gb", type=float, default=4.0,
                        help="skip the matrix version where it would need more memory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    modules = load_backends(["torch", "tf"])
    results: dict = {}
    for steps, envs in args.sizes:
        rng = np.random.default_rng(0)
        deltas = rng.normal(size=(steps, envs)).astype(np.float32)
        cont = (rng.random((steps, envs)) > 0.01).astype(np.float32)  # episodes of ~100 steps
        cont[-1] = 0.0
        discounts = (0.99 * 0.95 * cont).astype(np.float32)  # gamma lambda c_t
        with_matrix = matrix_gb(steps, envs) <= args.max_matrix_gb
        key = f"{steps}x{envs}"
        results[key] = {}
        for name, make_steps in (("torch", torch_steps), ("tf", tf_steps)):
            modules[name].set_num_threads(args.threads)
            timing = time_alternating(make_steps(deltas, discounts, with_matrix), args.repeats)
            timing["matrix_gb"] = matrix_gb(steps, envs)
            results[key][name] = timing
    if args.json:
        print(json.dumps(results, indent=2))
        return results
    print(f"GAE's backward recurrence, float32, {args.threads} thread(s), median of "
          f"{args.repeats}; matrix = the (T, T, N) version the scan replaced")
    print(f"{'T x N':<10}{'backend':<8}{'scan ms':>10}{'matrix ms':>12}{'matrix/scan':>13}"
          f"{'matrix memory':>15}")
    for key, by_backend in results.items():
        for name, r in by_backend.items():
            matrix = f"{r['matrix']:>12.1f}" if "matrix" in r else f"{'not built':>12}"
            ratio = f"{r['matrix'] / r['scan']:>12.2f}x" if "matrix" in r else f"{'':>13}"
            print(f"{key:<10}{name:<8}{r['scan']:>10.1f}{matrix}{ratio}"
                  f"{r['matrix_gb']:>12.2f} GB")
    return results


if __name__ == "__main__":
    main()
