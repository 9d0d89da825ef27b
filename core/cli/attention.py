"""``duetrl compare attention``: one input, one set of weights, both backends, side by side.

Prints max-abs differences of outputs, attention weights and gradients (each backend against
the float64 reference and against the other), the forward+backward time of each backend, and
saves a heat map of one head's attention weights in both frameworks.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from duetrl.core.backend import BACKENDS, load_backends
from duetrl.core.cli.flags import add_run_flags
from duetrl.core.reference.attention import (
    causal_mask,
    init_multi_head_attention_params,
    multi_head_attention,
)
from duetrl.core.tolerances import TOLERANCES, max_abs_error


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    parser = compare.add_parser(
        "attention", help="multi-head attention in both backends: differences and speed"
    )
    parser.add_argument("--batch", type=int, default=4, help="batch size")
    parser.add_argument("--length", type=int, default=32, help="sequence length (q = k)")
    parser.add_argument("--d-model", type=int, default=64, help="model width")
    parser.add_argument("--heads", type=int, default=4, help="number of heads")
    parser.add_argument("--mask", choices=["none", "causal", "padding"], default="causal")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=10, help="timed forward+backward passes")
    parser.add_argument(
        "--plot", default="runs/attention_heatmap.png", help="heat map PNG ('' for none)"
    )
    add_run_flags(parser, "seed", "threads", "json", threads=2,
                  seed_help="seeds the weights, the input and the mask",
                  json_help="print the figures as JSON")
    parser.set_defaults(run=run)


def make_mask(kind: str, batch: int, length: int, rng: np.random.Generator) -> np.ndarray | None:
    """``None``, a causal ``(T, T)`` mask, or a padding mask ``(B, 1, T)`` (random lengths >= 1)."""
    if kind == "none":
        return None
    if kind == "causal":
        return causal_mask(length)
    lengths = rng.integers(1, length + 1, size=batch)
    return (np.arange(length)[None, None, :] < lengths[:, None, None]).astype("float64")


def compare_attention(
    batch: int = 4,
    length: int = 32,
    d_model: int = 64,
    heads: int = 4,
    mask: str = "causal",
    dtype: str = "float32",
    repeats: int = 10,
    threads: int = 2,
    seed: int = 0,
) -> dict:
    """Run the same attention call through the reference and both backends.

    :returns: a dict with ``max_abs`` differences (``output``, ``weights``, ``gradients``; each
        backend vs reference, and torch vs tf), ``time_ms`` per backend (forward+backward,
        median of ``repeats``), ``tolerance`` for the dtype, and the example's ``weights``
        (``{backend: (heads, T, T) array}``) for plotting.
    """
    rng = np.random.default_rng(seed)
    params = init_multi_head_attention_params(d_model, seed)
    x = rng.normal(size=(batch, length, d_model))
    mask_array = make_mask(mask, batch, length, rng)
    reference_out, reference_weights = multi_head_attention(
        params, x, x, x, heads, mask_array, return_attention_weights=True
    )
    # the gradient of sum(output * probe), a fixed random projection, reaches every parameter
    probe_array = rng.normal(size=reference_out.shape)
    modules = load_backends(BACKENDS)
    results: dict = {"config": dict(batch=batch, length=length, d_model=d_model, heads=heads,
                                    mask=mask, dtype=dtype, threads=threads, seed=seed)}
    outputs, weights, grads, times = {}, {}, {}, {}
    for name, backend in modules.items():
        if threads:  # 0 = leave the framework to decide
            backend.set_num_threads(threads)
        layer = backend.MultiHeadAttention(d_model, heads, dtype=dtype)
        backend.import_params(layer, {k: v.astype(dtype) for k, v in params.items()})
        xt = backend.as_tensor(x.astype(dtype))
        mt = None if mask_array is None else backend.as_tensor(mask_array.astype(dtype))
        out, w = layer(xt, xt, xt, mt, return_attention_weights=True)
        outputs[name], weights[name] = backend.to_numpy(out), backend.to_numpy(w)
        probe = backend.as_tensor(probe_array.astype(dtype))
        loss_fn = lambda t, m=mt, p=probe, b=backend, f=layer: b.probe_loss(f(t, t, t, m), p)
        _, grads[name], _ = backend.loss_and_gradients(layer, loss_fn, x.astype(dtype))
        step = backend.compile_forward_backward(layer, loss_fn)
        step(xt)  # warm-up (and tf.function tracing)
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            backend.to_numpy(step(xt))
            samples.append(time.perf_counter() - start)
        times[name] = 1000 * float(np.median(samples))
    # gradients sum over batch * length terms: compare them relative to their largest entry
    # float(): a float32 maximum would make the ratio a NumPy float32, which JSON refuses
    grad_diff = max(
        max_abs_error(grads["torch"][k], grads["tf"][k])[0]
        / max(1.0, float(np.abs(grads["tf"][k]).max()))
        for k in params
    )
    results["max_abs"] = {
        "output torch vs reference": max_abs_error(outputs["torch"], reference_out)[0],
        "output tf vs reference": max_abs_error(outputs["tf"], reference_out)[0],
        "output torch vs tf": max_abs_error(outputs["torch"], outputs["tf"])[0],
        "weights torch vs tf": max_abs_error(weights["torch"], weights["tf"])[0],
        "weights tf vs reference": max_abs_error(weights["tf"], reference_weights)[0],
        "gradients torch vs tf (rel)": grad_diff,
    }
    results["tolerance"] = TOLERANCES["float64" if dtype == "float64" else "float32_layer"]
    results["time_ms"] = times
    results["weights"] = {name: w[0] for name, w in weights.items()}  # first example
    return results


def run(args: argparse.Namespace) -> int:
    print(f"comparing MultiHeadAttention: batch {args.batch}, length {args.length}, "
          f"d_model {args.d_model}, {args.heads} heads, {args.mask} mask, {args.dtype}",
          file=sys.stderr if args.json else sys.stdout)
    results = compare_attention(args.batch, args.length, args.d_model, args.heads, args.mask,
                                args.dtype, args.repeats, args.threads, args.seed)
    head_weights = results.pop("weights")
    if args.plot:
        from duetrl.core.plots import plot_attention_heatmaps

        path = plot_attention_heatmaps(
            {f"{name}, head 0": w[0] for name, w in head_weights.items()}, args.plot,
            title=f"MultiHeadAttention, {args.mask} mask: the same weights in both frameworks",
        )
        results["plot"] = str(Path(path))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    tol = results["tolerance"]
    print(f"\n{'comparison':<28}{'max abs diff':>14}   within {tol:.0e}")
    for label, value in results["max_abs"].items():
        print(f"{label:<28}{value:>14.3e}   {'yes' if value <= tol else 'NO'}")
    print(f"\n{'backend':<10}{'forward+backward':>18}")
    for name, ms in results["time_ms"].items():
        print(f"{name:<10}{ms:>15.2f} ms")
    if args.plot:
        print(f"\nheat map of head 0: {results['plot']}")
    return 0
