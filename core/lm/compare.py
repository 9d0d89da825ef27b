"""One GPT in both backends: how far apart their logits are, and how fast each trains and
generates. Used by ``duetrl compare lm`` and ``benchmarks/lm.py``. Backends are timed one
after the other, never at the same time (two frameworks sharing 2 cores distort timings)."""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.reference.gpt import gpt_forward
from duetrl.core.tolerances import max_abs_error


def time_training(backend: ModuleType, model: Any, batches: list, warmup: int = 2) -> float:
    """Training tokens per second of ``backend.LMTrainer`` over ``batches`` [(x, y), ...]
    (the first ``warmup`` steps, which trace or warm caches, are not timed)."""
    trainer = backend.LMTrainer(model)
    for x, y in batches[:warmup]:
        trainer.train_step(x, y, 1e-4)
    began, tokens = time.perf_counter(), 0
    for x, y in batches[warmup:]:
        trainer.train_step(x, y, 1e-4)
        tokens += x.size
    return tokens / (time.perf_counter() - began)


def time_generation(
    backend: ModuleType, model: Any, prompt: np.ndarray, new_tokens: int, use_cache: bool
) -> tuple[float, np.ndarray]:
    """Generated tokens per second (greedy, after one untimed warm-up call) and the tokens."""
    backend.generate(model, prompt, min(new_tokens, 2), use_cache=use_cache, greedy=True)
    began = time.perf_counter()
    generation = backend.generate(model, prompt, new_tokens, use_cache=use_cache, greedy=True)
    seconds = time.perf_counter() - began
    return generation.new_tokens.size / seconds, generation.new_tokens


def compare_lm(
    n_layer: int = 2,
    n_head: int = 4,
    n_embd: int = 64,
    block_size: int = 64,
    vocab_size: int = 100,
    batch_size: int = 8,
    train_steps: int = 10,
    new_tokens: int = 32,
    threads: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """Same weights in both backends (and the float64 reference).

    :returns: ``{"logits_max_abs": {torch_vs_tf, torch_vs_reference, tf_vs_reference},
        "same_tokens": bool, "speed": {backend: {train_tokens_per_second,
        generate_tokens_per_second_cached, generate_tokens_per_second_uncached}}, "config"}``.
    """
    config = GPTConfig(
        vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd
    )
    if new_tokens >= block_size:
        raise ValueError(
            f"new_tokens: expected fewer than block_size={block_size}, got {new_tokens}"
        )
    params = init_gpt_params(config, seed, "float32", random_affine=True)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, vocab_size, size=(2, block_size))
    reference = gpt_forward(params, idx, config)
    batches = [
        tuple(rng.integers(0, vocab_size, size=(2, batch_size, block_size)))
        for _ in range(train_steps + 2)
    ]
    prompt = rng.integers(0, vocab_size, size=(1, 1))
    logits, tokens, speed = {}, {}, {}
    for name, backend in load_backends(["torch", "tf"]).items():
        backend.set_num_threads(threads)
        model = backend.GPT(config)
        backend.import_params(model, params)
        logits[name] = backend.to_numpy(model(idx))
        cached, tokens[name] = time_generation(backend, model, prompt, new_tokens, True)
        uncached, _ = time_generation(backend, model, prompt, new_tokens, False)
        speed[name] = {
            "train_tokens_per_second": time_training(backend, model, batches),
            "generate_tokens_per_second_cached": cached,
            "generate_tokens_per_second_uncached": uncached,
        }
    return {
        "config": config.to_dict(),
        "logits_max_abs": {
            "torch_vs_tf": max_abs_error(logits["torch"], logits["tf"])[0],
            "torch_vs_reference": max_abs_error(logits["torch"], reference)[0],
            "tf_vs_reference": max_abs_error(logits["tf"], reference)[0],
        },
        "same_tokens": bool(np.array_equal(tokens["torch"], tokens["tf"])),
        "speed": speed,
    }
