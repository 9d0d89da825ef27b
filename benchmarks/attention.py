"""Benchmark: our MultiHeadAttention vs each framework's built-in, forward + backward.

Run by hand (``make bench`` or ``python benchmarks/attention.py``), never in the test suite.
Same shapes for all four modules (batch 16, length 128, d_model 256, 8 heads);
each pair (ours vs the framework's built-in) is measured in the same run, alternating, and
reported as a ratio. Frameworks run one after the other, never at the same time.

    torch: duetrl.backends.torch.MultiHeadAttention   vs  a module on F.scaled_dot_product_attention
    tf:    duetrl.backends.tf.MultiHeadAttention      vs  keras.layers.MultiHeadAttention
           (both inside tf.function)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from duetrl.core.backend import load_backends


def time_alternating(steps: dict, repeats: int, warmup: int = 3) -> dict[str, float]:
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


def torch_steps(x_np: np.ndarray, d_model: int, heads: int) -> dict:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    from duetrl.backends.torch import MultiHeadAttention

    class SDPAAttention(nn.Module):
        """The built-in way: one fused qkv projection and F.scaled_dot_product_attention."""

        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(d_model, 3 * d_model)
            self.out = nn.Linear(d_model, d_model)

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = self.qkv(x).view(b, t, 3, heads, d_model // heads).permute(2, 0, 3, 1, 4)
            y = F.scaled_dot_product_attention(q, k, v)  # (B, heads, T, head_dim)
            return self.out(y.transpose(1, 2).reshape(b, t, d_model))

    x = torch.as_tensor(x_np, dtype=torch.float32).requires_grad_(True)
    ours, builtin = MultiHeadAttention(d_model, heads), SDPAAttention()

    def ours_step():
        ours.zero_grad(set_to_none=True)
        ours(x, x, x).sum().backward()

    def builtin_step():
        builtin.zero_grad(set_to_none=True)
        builtin(x).sum().backward()

    return {"ours": ours_step, "builtin": builtin_step}


def tf_steps(x_np: np.ndarray, d_model: int, heads: int) -> dict:
    import keras
    import tensorflow as tf

    from duetrl.backends.tf import MultiHeadAttention

    x = tf.constant(x_np, dtype=tf.float32)
    ours = MultiHeadAttention(d_model, heads)
    builtin = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=d_model // heads)
    ours(x, x, x)
    builtin(x, x)

    def compiled(layer, call):
        @tf.function
        def step():
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(call(layer))
            grads = tape.gradient(loss, layer.trainable_variables + [x])
            return loss, grads

        return lambda: tf.nest.map_structure(lambda t: t.numpy(), step())

    return {
        "ours": compiled(ours, lambda layer: layer(x, x, x)),
        "builtin": compiled(builtin, lambda layer: layer(x, x)),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    modules = load_backends(["torch", "tf"])
    x = np.random.default_rng(0).normal(size=(args.batch, args.length, args.d_model))
    results = {}
    for name, make_steps in (("torch", torch_steps), ("tf", tf_steps)):
        modules[name].set_num_threads(args.threads)
        results[name] = time_alternating(make_steps(x, args.d_model, args.heads), args.repeats)
        results[name]["ratio"] = results[name]["ours"] / results[name]["builtin"]
    if args.json:
        print(json.dumps(results, indent=2))
        return results
    print(f"forward+backward, batch {args.batch}, length {args.length}, d_model {args.d_model}, "
          f"{args.heads} heads, {args.threads} threads, median of {args.repeats}")
    builtin_names = {"torch": "F.scaled_dot_product_attention module",
                     "tf": "keras.layers.MultiHeadAttention (tf.function)"}
    print(f"{'backend':<8}{'ours ms':>10}{'built-in ms':>13}{'ours/built-in':>15}   built-in")
    for name, r in results.items():
        print(f"{name:<8}{r['ours']:>10.2f}{r['builtin']:>13.2f}{r['ratio']:>14.2f}x   "
              f"{builtin_names[name]}")
    print(f"tf/torch (ours): {results['tf']['ours'] / results['torch']['ours']:.2f}x")
    return results


if __name__ == "__main__":
    main()
