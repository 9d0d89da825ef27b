"""Benchmark: training and generation speed of duetrl's GPT in both backends, against Hugging
Face's ``GPT2LMHeadModel`` on PyTorch.

Run by hand (``python benchmarks/lm.py``), never in the test suite. One config for all
(default: 4 layers, d_model 256, 4 heads, training context 128); the models are built with
random weights locally (nothing is downloaded). Frameworks run one after the other, never at
the same time, in rounds (one timed call of each per round, medians over rounds), so a change
of load on a shared machine hits all three alike. Reported as ratios measured in this one run:

    training tokens/s: duetrl torch / Hugging Face (target >= 1), duetrl tf / duetrl torch
        (target >= 1/1.5); all three with AdamW, the same batches, clipping at 1.0
    generation tokens/s (greedy, batch 1, 256 new tokens): with the KV cache / without
        (target >= 3), in each backend; against Hugging Face ``generate`` with its cache
        (target >= 2)
    one decode step (batch 1, after a prompt of half the context), split into its parts in
        each backend (:func:`decode_step_breakdown`)

Cached generation is timed in the steady state: the warm-up runs TensorFlow past its switch to
XLA (``XLA_DECODE_AFTER``); ``--tf-xla-decode on`` compiles from the first step, ``off`` never
(to see where XLA pays). ``--generate-batch`` generates several rows at once, ``--skip-train``
times generation only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params


def rotated_rates(steps: dict, tokens: int, repeats: int, warmup: int = 1) -> dict:
    """Median tokens per second of each ``steps[name]()``, timed in rounds: one call of each
    per round, so load that comes and goes on a shared machine falls on every name alike."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    seconds = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            began = time.perf_counter()
            step()
            seconds[name].append(time.perf_counter() - began)
    return {name: tokens / statistics.median(times) for name, times in seconds.items()}


def hugging_face_steps(config: GPTConfig, batches, new_tokens: int, batch: int) -> dict:
    """Hugging Face's GPT-2 of the same shape: ``{"train": step, "cached": generate with its
    cache, "uncached": without}``."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    hf_config = GPT2Config(
        vocab_size=config.vocab_size,
        n_positions=config.block_size,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    model = GPT2LMHeadModel(hf_config)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1, foreach=True
    )
    data = [(torch.as_tensor(x), torch.as_tensor(y)) for x, y in batches]
    counter = iter(range(10**9))

    def train_step():
        x, y = data[next(counter) % len(data)]
        model.train()
        optimizer.zero_grad(set_to_none=True)
        logits = model(x).logits
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), y.reshape(-1)
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        model.eval()

    prompt = torch.zeros((batch, 1), dtype=torch.long)

    def generate(use_cache: bool) -> None:
        with torch.inference_mode():
            model.generate(
                prompt,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                use_cache=use_cache,
                pad_token_id=0,
            )

    model.eval()
    return {
        "train": train_step,
        "cached": lambda: generate(True),
        "uncached": lambda: generate(False),
    }


def decode_step_breakdown(backend, model, start: int = 128, repeats: int = 200) -> dict:
    """Microseconds of one cached decoding step (batch 1, at position ``start``) split into
    its parts, each timed alone: embedding, attention (q/k/v, cache write, attention, out),
    MLP, the logits, the token choice on the host (NumPy), and the rest by difference from a
    whole ``Decoder`` call: the parts timed alone keep one layer's weights in the CPU cache, a
    real step streams all of them (12.5 MB at the default size) from memory, plus the Python
    overhead of the Decoder. Times are CPU seconds of this process (all its threads), which
    other processes on a shared machine disturb much less than wall time.

    TensorFlow runs the step as one XLA program; each part is compiled alone the same way and
    timed less ``dispatch``: the call of an empty compiled function with the step's arguments,
    NumPy to tensor and back (what every step pays once, whatever it computes)."""
    from duetrl.core.sampling import choose_tokens

    config = model.config
    decoder = backend.Decoder(model, 1)
    decoder(np.zeros((1, start), dtype=np.int64), 0)  # the prompt fills the cache
    token = np.zeros((1, 1), dtype=np.int64)

    def clock(fn, blocks: int = 10) -> float:
        fn()
        block_means = []
        for _ in range(blocks):  # the median block: a burst of load spoils one, not all
            began = time.process_time()
            for _ in range(repeats // blocks):
                fn()
            block_means.append((time.process_time() - began) / (repeats // blocks) * 1e6)
        return statistics.median(block_means)

    rng = np.random.default_rng(0)
    logits = np.zeros((1, config.vocab_size))
    step = clock(lambda: decoder(token, start))
    parts = {"sampling": clock(lambda: choose_tokens(logits, rng, greedy=True))}
    if backend.__name__.endswith("torch"):
        parts.update(torch_step_parts(config, decoder, token, start, clock))
    else:
        parts.update(tf_step_parts(config, decoder, token, start, clock))
    parts["rest_memory_and_overhead"] = step + parts["sampling"] - sum(parts.values())
    return {"decode_step_us": step + parts["sampling"], **parts}


def torch_step_parts(config: GPTConfig, decoder, token, start: int, clock) -> dict:
    """Embedding, attention and MLP of every layer, logits: torch's eager ops, timed alone."""
    import torch
    import torch.nn.functional as F

    from duetrl.backends.torch.generation import attend_with_cache

    w, cache = decoder.weights, decoder.cache
    x = torch.zeros((1, 1, config.n_embd))
    idx = torch.as_tensor(token)
    ln1_g, ln1_b, w_qkv, b_qkv, w_out, b_out, ln2_g, ln2_b, w_fc, b_fc, w_proj, b_proj = w[
        "blocks"
    ][0]
    d, heads, eps = config.n_embd, config.n_head, config.layer_norm_eps

    def attention():
        z = F.layer_norm(x, (d,), ln1_g, ln1_b, eps)
        qkv = F.linear(z, w_qkv, b_qkv).reshape(1, 1, 3, heads, d // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        out, _ = attend_with_cache(q, k, v, cache[0], start)
        return F.linear(out.transpose(1, 2).reshape(1, 1, d), w_out, b_out)

    def mlp():
        z = F.layer_norm(x, (d,), ln2_g, ln2_b, eps)
        return F.linear(F.gelu(F.linear(z, w_fc, b_fc), approximate="tanh"), w_proj, b_proj)

    parts = {}
    with torch.inference_mode():
        parts["embedding"] = clock(lambda: F.embedding(idx, w["wte"]) + w["wpe"][start:])
        parts["attention"] = config.n_layer * clock(attention)
        parts["mlp"] = config.n_layer * clock(mlp)
        parts["logits"] = clock(lambda: F.linear(F.layer_norm(x, (d,), *w["ln_f"], eps), w["wte"]))
    return parts


def tf_step_parts(config: GPTConfig, decoder, token, start: int, clock, chain: int = 16) -> dict:
    """The same parts as TensorFlow runs them, compiled like the step (XLA when the step runs
    it now) over the decoder's variables. A part alone is a few microseconds against ~0.2 ms
    of dispatch, so each is chained ``chain`` times in one function (its output is the next
    input, so no repetition can be shared) and timed as (chain call - dispatch) / chain."""
    import tensorflow as tf
    from keras import activations, ops

    from duetrl.backends.tf import generation

    w, cache = decoder.weights, decoder.cache
    ln1_g, ln1_b, w_qkv, b_qkv, w_out, b_out, ln2_g, ln2_b, w_fc, b_fc, w_proj, b_proj = w[
        "blocks"
    ][0]
    d, heads, eps = config.n_embd, config.n_head, config.layer_norm_eps

    def attention(x, idx, start):
        z = ops.layer_normalization(x, ln1_g, ln1_b, epsilon=eps)
        qkv = tf.reshape(tf.matmul(z, w_qkv) + b_qkv, (1, 1, 3, heads, d // heads))
        q, k, v = tf.unstack(tf.transpose(qkv, (2, 0, 3, 1, 4)))
        out, _ = generation.attend_with_cache(q, k, v, cache[0], start)
        return tf.matmul(tf.reshape(tf.transpose(out, (0, 2, 1, 3)), (1, 1, d)), w_out) + b_out

    def mlp(x, idx, start):
        z = ops.layer_normalization(x, ln2_g, ln2_b, epsilon=eps)
        z = activations.gelu(tf.matmul(z, w_fc) + b_fc, approximate=config.gelu == "tanh")
        return tf.matmul(z, w_proj) + b_proj

    def embedding(x, idx, start):
        return x + tf.gather(w["wte"], idx) + tf.gather(w["wpe"], [start])

    def logits(x, idx, start):  # (1, 1, V), its first d columns fed on
        z = ops.layer_normalization(x, *w["ln_f"], epsilon=eps)
        return tf.matmul(z, w["wte"], transpose_b=True)[..., :d]

    def chained(piece):
        def run(idx, start):
            x = tf.zeros((1, 1, d))
            for i in range(chain):  # another token each time: nothing to share
                x = piece(x, (idx + i) % config.vocab_size, start)
            return x

        return run

    pieces = {"embedding": embedding, "attention": attention, "mlp": mlp, "logits": logits}
    functions = {"dispatch": lambda idx, start: tf.zeros((1, config.vocab_size))}
    functions.update({name: chained(piece) for name, piece in pieces.items()})
    signature = [tf.TensorSpec((1, 1), tf.int64), tf.TensorSpec((), tf.int32)]
    per_layer = {"attention": config.n_layer, "mlp": config.n_layer}
    parts = {}
    for name, function in functions.items():
        compiled = tf.function(
            function, input_signature=signature, jit_compile="decode_xla" in decoder.state.steps
        ).get_concrete_function()
        seconds = clock(
            lambda c=compiled: c(tf.constant(token), tf.constant(start, tf.int32)).numpy()
        )
        alone = seconds if name == "dispatch" else (seconds - parts["dispatch"]) / chain
        parts[name] = per_layer.get(name, 1) * alone
    return parts


def duetrl_steps(backend, model, trainer, batches, new_tokens: int, batch: int) -> dict:
    """duetrl's GPT in one backend: ``{"train": step, "cached": generate, "uncached": ...}``."""
    counter = iter(range(10**9))

    def train_step():
        x, y = batches[next(counter) % len(batches)]
        trainer.train_step(x, y, 1e-4)

    prompt = np.zeros((batch, 1), dtype=np.int64)

    def generate(use_cache: bool) -> None:
        backend.generate(model, prompt, new_tokens, use_cache=use_cache, greedy=True)

    return {
        "train": train_step,
        "cached": lambda: generate(True),
        "uncached": lambda: generate(False),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=256)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--context", type=int, default=128, help="training sequence length")
    parser.add_argument("--vocab-size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=10, help="timed training steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--generate-batch", type=int, default=1, help="rows generated at once")
    parser.add_argument(
        "--tf-xla-decode",
        choices=("auto", "on", "off"),
        default="auto",
        help="auto: XLA after XLA_DECODE_AFTER steps (the warm-up runs past it); on: from the "
        "first step; off: never",
    )
    parser.add_argument("--skip-train", action="store_true", help="time generation only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    # positions for 1 prompt token + the generated ones; training uses the first `context`
    config = GPTConfig(
        vocab_size=args.vocab_size,
        block_size=max(args.context, args.new_tokens + 1),
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_embd=args.n_embd,
    )
    rng = np.random.default_rng(0)
    batches = [
        tuple(rng.integers(0, args.vocab_size, size=(2, args.batch_size, args.context)))
        for _ in range(4)
    ]
    loaded = load_backends(["torch", "tf"])
    for backend in loaded.values():
        backend.set_num_threads(args.threads)
    from duetrl.backends.tf import generation as tf_generation

    xla_after = {"on": 0, "off": None, "auto": tf_generation.XLA_DECODE_AFTER}
    tf_generation.XLA_DECODE_AFTER = xla_after[args.tf_xla_decode]
    results = {
        "config": config.to_dict(),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "context": args.context,
        "generate_batch": args.generate_batch,
        "tf_xla_decode_after": tf_generation.XLA_DECODE_AFTER,
        "load_average_1min": {"before": os.getloadavg()[0]},
    }
    steps, models = {}, {}
    for name in ("torch", "tf"):
        backend = loaded[name]
        models[name] = backend.import_params(backend.GPT(config), init_gpt_params(config, seed=0))
        trainer = backend.LMTrainer(models[name])
        steps[name] = duetrl_steps(
            backend, models[name], trainer, batches, args.new_tokens, args.generate_batch
        )
    try:
        steps["hugging_face"] = hugging_face_steps(
            config, batches, args.new_tokens, args.generate_batch
        )
    except ImportError:
        pass  # pip install -e ".[test-hf]"
    names = [name for name in ("torch", "hugging_face", "tf") if name in steps]
    results.update({name: {} for name in names})
    for kind, repeats in (("train", args.repeats), ("cached", 5), ("uncached", 3)):
        if kind == "train" and args.skip_train:
            continue
        tokens = batches[0][0].size if kind == "train" else args.new_tokens * args.generate_batch
        warmup = 3 if kind == "train" else 1
        if kind == "cached":  # the same warm-up for all, past TensorFlow's switch to XLA
            warmup += (tf_generation.XLA_DECODE_AFTER or 0) // args.new_tokens
        rates = rotated_rates({n: steps[n][kind] for n in names}, tokens, repeats, warmup)
        key = "train_tokens_per_second" if kind == "train" else f"generate_tokens_per_second_{kind}"
        for name in names:
            results[name][key] = rates[name]
    # the step after a prompt of half the context (128 at the default size)
    start = min(128, config.block_size // 2)
    for name in ("torch", "tf"):
        results[name]["decode_step_breakdown_us"] = decode_step_breakdown(
            loaded[name], models[name], start
        )
    results["load_average_1min"]["after"] = os.getloadavg()[0]
    results.setdefault("hugging_face", None)
    hf = results["hugging_face"]
    torch_train = results["torch"].get("train_tokens_per_second")
    results["ratios"] = {
        "torch_train_vs_hugging_face": (
            torch_train / hf["train_tokens_per_second"] if hf and torch_train else None
        ),
        "tf_train_vs_torch": (
            results["tf"]["train_tokens_per_second"] / torch_train if torch_train else None
        ),
        **{
            f"{name}_cached_vs_hugging_face": results[name]["generate_tokens_per_second_cached"]
            / hf["generate_tokens_per_second_cached"]
            for name in ("torch", "tf")
            if hf
        },
        **{
            f"{name}_kv_cache_speedup": results[name]["generate_tokens_per_second_cached"]
            / results[name]["generate_tokens_per_second_uncached"]
            for name in ("torch", "tf")
        },
        "tf_decode_step_vs_torch": results["tf"]["decode_step_breakdown_us"]["decode_step_us"]
        / results["torch"]["decode_step_breakdown_us"]["decode_step_us"],
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return results
    print(
        f"config {config}, batch {args.batch_size} x context {args.context}, "
        f"{args.threads} threads per framework, generating {args.generate_batch} rows, "
        f"tf XLA decode {args.tf_xla_decode}, load average {results['load_average_1min']}"
    )
    for name in ("torch", "hugging_face", "tf"):
        if results[name]:
            figures = ", ".join(
                f"{k.replace('_tokens_per_second', '')} {v:,.0f}"
                for k, v in results[name].items()
                if not isinstance(v, dict)
            )
            print(f"{name:>13} tokens/s: {figures}")
    for name in ("torch", "tf"):
        parts = results[name]["decode_step_breakdown_us"]
        figures = ", ".join(f"{k} {v:,.0f}" for k, v in parts.items())
        print(f"{name:>13} decode step (us): {figures}")
    for key, value in results["ratios"].items():
        print(f"{key:>30}: {'n/a' if value is None else f'{value:.2f}'}")
    return results


if __name__ == "__main__":
    main()
