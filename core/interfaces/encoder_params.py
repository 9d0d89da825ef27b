"""The BERT-style encoder's contracts (outline 7.1.2): its canonical parameters, the attention
mask it takes and the accuracy it reports. Both backends (``backends/{torch,tf}/encoder.py``) and
the float64 oracle (``core/reference/encoder.py``) build on these, as on ``gpt_params``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import INIT_STD, init_gpt_params, param_shapes


def head_param_shapes(config: GPTConfig) -> dict[str, tuple[int, ...]]:
    """``{canonical name: shape}`` of the masked-LM head: ``head.dense`` (D, D), ``head.ln``
    and ``head.bias`` (V,), the output bias (the output kernel is tied to ``wte``)."""
    d = config.n_embd
    return {"head.dense.kernel": (d, d), "head.dense.bias": (d,), "head.ln.scale": (d,),
            "head.ln.bias": (d,), "head.bias": (config.vocab_size,)}


def encoder_param_shapes(config: GPTConfig, head: bool = True) -> dict[str, tuple[int, ...]]:
    """Shapes of ``BertEncoder(config)`` (the GPT's names: wte, wpe, blocks, ln_f), and with
    ``head`` those of ``MaskedLM(config)``, which adds :func:`head_param_shapes`."""
    return {**param_shapes(config), **(head_param_shapes(config) if head else {})}


def init_encoder_params(config: GPTConfig, seed: int = 0, dtype: str = "float32",
                        head: bool = True, random_affine: bool = False) -> dict[str, np.ndarray]:
    """Initial parameters: the body is ``init_gpt_params(config, seed)`` exactly (the same
    numbers as a GPT of the same seed); the head's dense kernel ~ N(0, 0.02^2) from the
    generator ``(seed, 7)``, its biases 0 and LayerNorm scale 1 (drawn too with
    ``random_affine``, so tests exercise them)."""
    params = init_gpt_params(config, seed, dtype, random_affine)
    if not head:
        return params
    rng = np.random.default_rng((seed, 7))
    for name, shape in head_param_shapes(config).items():
        if name.endswith("kernel"):
            value = rng.normal(0.0, INIT_STD, size=shape)
        elif name.endswith("scale"):
            value = 1.0 + (rng.normal(0.0, 0.1, size=shape) if random_affine else np.zeros(shape))
        else:
            value = rng.normal(0.0, 0.1, size=shape) if random_affine else np.zeros(shape)
        params[name] = np.array(value, dtype=dtype)
    return params


def check_attention_mask(attention_mask: np.ndarray | None, shape: Sequence[int]) -> None:
    """Raise ValueError unless ``attention_mask`` is None or a 0/1 array of the ids' shape
    ``(B, T)`` (1 = a real token, 0 = padding)."""
    if attention_mask is None:
        return
    a = np.asarray(attention_mask)
    if a.shape != tuple(shape):
        raise ValueError(f"attention_mask: expected the ids' shape {tuple(shape)}, got {a.shape}")
    if not np.all((a == 0) | (a == 1)):
        raise ValueError(f"attention_mask: expected 0 (padding) or 1 (token), got values "
                         f"{np.unique(a)[:6].tolist()}")


def masked_accuracy(logits: np.ndarray, targets: np.ndarray, selected: np.ndarray) -> float:
    """Share of the selected positions whose argmax logit is the original token."""
    s = np.asarray(selected, dtype=bool)
    if not s.any():
        raise ValueError("selected: expected at least one selected position, got none")
    return float((np.argmax(np.asarray(logits), axis=-1) == np.asarray(targets))[s].mean())
