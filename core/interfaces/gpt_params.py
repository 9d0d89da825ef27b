"""GPT parameters in the canonical layout: names, initial values and GPT-2 conversion.

Canonical names are the attribute paths both backends use::

    wte.embeddings (V, D)  wpe.embeddings (T, D)
    blocks.{i}.ln_1.{scale,bias}                    (D,)
    blocks.{i}.attn.{q_linear,k_linear,v_linear,out}.{kernel (D, D), bias (D,)}
    blocks.{i}.ln_2.{scale,bias}                    (D,)
    blocks.{i}.mlp.fc.{kernel (D, 4D), bias (4D,)}  blocks.{i}.mlp.proj.{kernel (4D, D), bias}
    ln_f.{scale,bias}                               (D,)

The output head is tied to ``wte.embeddings`` (logits = h W_te^T), so it has no name of its
own. Nothing here imports a framework: a Hugging Face state dict of torch tensors is read
through duck typing (``.detach().cpu().numpy()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.tolerances import to_numpy

INIT_STD = 0.02  # GPT-2's initialiser: N(0, 0.02^2) for kernels and embeddings


def param_shapes(config: GPTConfig) -> dict[str, tuple[int, ...]]:
    """``{canonical name: shape}`` of every parameter of ``GPT(config)``, in model order."""
    d, hidden = config.n_embd, config.mlp_ratio * config.n_embd
    shapes: dict[str, tuple[int, ...]] = {
        "wte.embeddings": (config.vocab_size, d),
        "wpe.embeddings": (config.block_size, d),
    }
    for i in range(config.n_layer):
        p = f"blocks.{i}"
        shapes.update({f"{p}.ln_1.scale": (d,), f"{p}.ln_1.bias": (d,)})
        for name in ("q_linear", "k_linear", "v_linear", "out"):
            shapes.update({f"{p}.attn.{name}.kernel": (d, d), f"{p}.attn.{name}.bias": (d,)})
        shapes.update({f"{p}.ln_2.scale": (d,), f"{p}.ln_2.bias": (d,)})
        shapes.update({f"{p}.mlp.fc.kernel": (d, hidden), f"{p}.mlp.fc.bias": (hidden,)})
        shapes.update({f"{p}.mlp.proj.kernel": (hidden, d), f"{p}.mlp.proj.bias": (d,)})
    shapes.update({"ln_f.scale": (d,), "ln_f.bias": (d,)})
    return shapes


def init_gpt_params(
    config: GPTConfig, seed: int = 0, dtype: str = "float32", random_affine: bool = False
) -> dict[str, np.ndarray]:
    """GPT-2's initialisation, drawn with NumPy so both backends start from the same numbers.

    Kernels and embeddings ~ N(0, 0.02^2); the two residual projections (``attn.out``,
    ``mlp.proj``) ~ N(0, (0.02 / sqrt(2 n_layer))^2) so the residual stream's variance does not
    grow with depth; biases 0, LayerNorm scales 1.

    :param config: the model's configuration.
    :param seed: seed of ``numpy.random.default_rng``.
    :param dtype: dtype of the returned arrays.
    :param random_affine: draw biases and LayerNorm parameters at random too (tests use it so
        that every parameter takes part in the comparison).
    """
    rng = np.random.default_rng(seed)
    residual_std = INIT_STD / np.sqrt(2 * config.n_layer)
    params = {}
    for name, shape in param_shapes(config).items():
        if name.endswith(("attn.out.kernel", "mlp.proj.kernel")):
            value = rng.normal(0.0, residual_std, size=shape)
        elif name.endswith(("kernel", "embeddings")):
            value = rng.normal(0.0, INIT_STD, size=shape)
        elif name.endswith("scale"):
            value = 1.0 + (rng.normal(0.0, 0.1, size=shape) if random_affine else 0.0)
            value = np.broadcast_to(value, shape)
        else:  # biases
            value = rng.normal(0.0, 0.1, size=shape) if random_affine else np.zeros(shape)
        params[name] = np.array(value, dtype=dtype)  # a writable copy
    return params


def gpt2_to_canonical(
    state_dict: Mapping[str, Any], n_head: int, dtype: str = "float32"
) -> tuple[GPTConfig, dict[str, np.ndarray]]:
    """Convert a Hugging Face ``GPT2LMHeadModel`` (or ``GPT2Model``) state dict.

    GPT-2's ``Conv1D`` weights are already ``(in, out)``, the canonical layout; its fused
    ``c_attn`` (D, 3D) is split into the q, k, v kernels (columns [0:D], [D:2D], [2D:3D]).
    ``lm_head.weight`` is tied to ``wte`` and the causal-mask buffers are not parameters, so
    both are skipped.

    :param state_dict: ``{name: torch tensor or NumPy array}``.
    :param n_head: number of heads (a state dict does not record it; GPT-2 small: 12).
    :param dtype: dtype of the returned arrays.
    :returns: ``(config, canonical params)``.
    :raises ValueError: naming a missing key or a shape that does not fit.
    """
    sd = {k.removeprefix("transformer."): v for k, v in state_dict.items()}
    for key in ("wte.weight", "wpe.weight", "ln_f.weight"):
        if key not in sd:
            raise ValueError(f"state_dict: expected a GPT-2 key {key!r}, not found")
    wte, wpe = to_numpy(sd["wte.weight"]), to_numpy(sd["wpe.weight"])
    n_layer = len({k.split(".")[1] for k in sd if k.startswith("h.")})
    n_embd = wte.shape[1]
    if n_embd % n_head != 0:
        raise ValueError(f"n_head: expected a divisor of n_embd={n_embd}, got {n_head}")
    hidden = to_numpy(sd["h.0.mlp.c_fc.weight"]).shape[1] if n_layer else 4 * n_embd
    if hidden % n_embd != 0:
        raise ValueError(f"state_dict: MLP width {hidden} is not a multiple of n_embd={n_embd}")
    config = GPTConfig(
        vocab_size=wte.shape[0],
        block_size=wpe.shape[0],
        n_layer=n_layer,
        n_head=n_head,
        n_embd=n_embd,
        mlp_ratio=hidden // n_embd,
    )
    get = lambda key: to_numpy(sd[key]).astype(dtype)  # noqa: E731
    params = {"wte.embeddings": wte.astype(dtype), "wpe.embeddings": wpe.astype(dtype)}
    for i in range(n_layer):
        h, p = f"h.{i}", f"blocks.{i}"
        params[f"{p}.ln_1.scale"], params[f"{p}.ln_1.bias"] = (
            get(f"{h}.ln_1.weight"),
            get(f"{h}.ln_1.bias"),
        )
        qkv_kernel, qkv_bias = get(f"{h}.attn.c_attn.weight"), get(f"{h}.attn.c_attn.bias")
        for j, name in enumerate(("q_linear", "k_linear", "v_linear")):
            columns = slice(j * n_embd, (j + 1) * n_embd)
            params[f"{p}.attn.{name}.kernel"] = np.ascontiguousarray(qkv_kernel[:, columns])
            params[f"{p}.attn.{name}.bias"] = np.ascontiguousarray(qkv_bias[columns])
        params[f"{p}.attn.out.kernel"] = get(f"{h}.attn.c_proj.weight")
        params[f"{p}.attn.out.bias"] = get(f"{h}.attn.c_proj.bias")
        params[f"{p}.ln_2.scale"], params[f"{p}.ln_2.bias"] = (
            get(f"{h}.ln_2.weight"),
            get(f"{h}.ln_2.bias"),
        )
        params[f"{p}.mlp.fc.kernel"] = get(f"{h}.mlp.c_fc.weight")
        params[f"{p}.mlp.fc.bias"] = get(f"{h}.mlp.c_fc.bias")
        params[f"{p}.mlp.proj.kernel"] = get(f"{h}.mlp.c_proj.weight")
        params[f"{p}.mlp.proj.bias"] = get(f"{h}.mlp.c_proj.bias")
    params["ln_f.scale"], params["ln_f.bias"] = get("ln_f.weight"), get("ln_f.bias")
    check_params(params, config)
    return config, params


def check_params(params: Mapping[str, Any], config: GPTConfig, source: str = "params") -> None:
    """Raise ``CheckpointError`` unless ``params`` has exactly the names and shapes of
    ``GPT(config)`` (dtypes are not compared)."""
    from duetrl.core.weights import validate_params

    expected = {name: (shape, "") for name, shape in param_shapes(config).items()}
    validate_params(params, expected, f"{source} (for GPT({config}))", check_dtype=False)
