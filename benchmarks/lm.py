"""Benchmark: training and generation speed of duetrl's GPT in both backends, against Hugging
Face's ``GPT2LMHeadModel`` on PyTorch.

Run by hand (``python benchmarks/lm.py``), never in the test suite. One config for all
(default: 4 layers, d_model 256, 4 heads, training context 128); the models are built with
random weights locally (nothing is downloaded). Frameworks run one after the other, never at
the same time. Reported as ratios measured in this one run:

    training tokens/s: duetrl torch / Hugging Face (target >= 1), duetrl tf / duetrl torch
        (target >= 1/1.5); all three with AdamW, the same batches, clipping at 1.0
    generation tokens/s (greedy, batch 1, 256 new tokens): with the KV cache / without
        (target >= 3), in each backend; Hugging Face ``generate`` with its cache for scale
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from duetrl.core.backend import load_backends
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params


def median_rate(step, tokens: int, repeats: int, warmup: int = 3) -> float:
    """Median tokens per second of ``step()`` (which processes ``tokens`` tokens)."""
    for _ in range(warmup):
        step()
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - began)
    return tokens / statistics.median(seconds)


def hugging_face_rates(config: GPTConfig, batches, new_tokens: int, repeats: int) -> dict:
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

    train = median_rate(train_step, batches[0][0].size, repeats)
    model.eval()
    prompt = torch.zeros((1, 1), dtype=torch.long)

    def generate():
        with torch.inference_mode():
            model.generate(
                prompt,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                use_cache=True,
                pad_token_id=0,
            )

    def generate_uncached():
        with torch.inference_mode():
            model.generate(
                prompt,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                use_cache=False,
                pad_token_id=0,
            )

    return {
        "train_tokens_per_second": train,
        "generate_tokens_per_second_cached": median_rate(generate, new_tokens, 5, 1),
        "generate_tokens_per_second_uncached": median_rate(generate_uncached, new_tokens, 3, 1),
    }


def decode_step_breakdown(backend, model, start: int = 128, repeats: int = 200) -> dict:
    """Microseconds of one cached decoding step (batch 1, at position ``start``) split into
    its parts, each timed alone: embedding, attention (q/k/v, cache write, attention, out),
    MLP, the logits, the token choice on the host (NumPy), and the rest by difference from a
    whole ``Decoder`` call: the parts timed alone keep one layer's weights in the CPU cache, a
    real step streams all of them (12.5 MB at the default size) from memory, plus the Python
    overhead of the Decoder."""
    from duetrl.core.sampling import choose_tokens

    config = model.config
    decoder = backend.Decoder(model, 1)
    decoder(np.zeros((1, start), dtype=np.int64), 0)  # the prompt fills the cache
    token = np.zeros((1, 1), dtype=np.int64)

    def clock(fn) -> float:
        fn()
        began = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - began) / repeats * 1e6

    rng = np.random.default_rng(0)
    logits = np.zeros((1, config.vocab_size))
    step = clock(lambda: decoder(token, start))
    parts = {"sampling": clock(lambda: choose_tokens(logits, rng, greedy=True))}
    if backend.__name__.endswith("torch"):
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

        with torch.inference_mode():
            parts["embedding"] = clock(lambda: F.embedding(idx, w["wte"]) + w["wpe"][start:])
            parts["attention"] = config.n_layer * clock(attention)
            parts["mlp"] = config.n_layer * clock(mlp)
            parts["logits"] = clock(
                lambda: F.linear(F.layer_norm(x, (d,), *w["ln_f"], eps), w["wte"])
            )
        parts["rest_memory_and_overhead"] = step + parts["sampling"] - sum(parts.values())
    else:  # one XLA program: no split inside it
        parts["compiled_step_and_dispatch"] = step
    return {"decode_step_us": step + parts["sampling"], **parts}


def duetrl_rates(backend, config: GPTConfig, batches, new_tokens: int, repeats: int) -> dict:
    model = backend.import_params(backend.GPT(config), init_gpt_params(config, seed=0))
    trainer = backend.LMTrainer(model)
    counter = iter(range(10**9))

    def train_step():
        x, y = batches[next(counter) % len(batches)]
        trainer.train_step(x, y, 1e-4)

    rates = {"train_tokens_per_second": median_rate(train_step, batches[0][0].size, repeats)}
    prompt = np.zeros((1, 1), dtype=np.int64)
    for use_cache in (True, False):
        generate = lambda c=use_cache: backend.generate(
            model,
            prompt,
            new_tokens,  # noqa: E731
            use_cache=c,
            greedy=True,
        )
        key = f"generate_tokens_per_second_{'cached' if use_cache else 'uncached'}"
        rates[key] = median_rate(generate, new_tokens, 5 if use_cache else 3, 1)
    # the step after a prompt of half the context (128 at the default size)
    start = min(128, config.block_size // 2)
    rates["decode_step_breakdown_us"] = decode_step_breakdown(backend, model, start)
    return rates


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
    results = {
        "config": config.to_dict(),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "context": args.context,
    }
    results["torch"] = duetrl_rates(loaded["torch"], config, batches, args.new_tokens, args.repeats)
    try:
        results["hugging_face"] = hugging_face_rates(config, batches, args.new_tokens, args.repeats)
    except ImportError:
        results["hugging_face"] = None  # pip install -e ".[test-hf]"
    results["tf"] = duetrl_rates(loaded["tf"], config, batches, args.new_tokens, args.repeats)
    torch_train = results["torch"]["train_tokens_per_second"]
    results["ratios"] = {
        "torch_train_vs_hugging_face": (
            torch_train / results["hugging_face"]["train_tokens_per_second"]
            if results["hugging_face"]
            else None
        ),
        "tf_train_vs_torch": results["tf"]["train_tokens_per_second"] / torch_train,
        **{
            f"{name}_cached_vs_hugging_face": results[name]["generate_tokens_per_second_cached"]
            / results["hugging_face"]["generate_tokens_per_second_cached"]
            for name in ("torch", "tf")
            if results["hugging_face"]
        },
        **{
            f"{name}_kv_cache_speedup": results[name]["generate_tokens_per_second_cached"]
            / results[name]["generate_tokens_per_second_uncached"]
            for name in ("torch", "tf")
        },
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return results
    print(
        f"config {config}, batch {args.batch_size} x context {args.context}, "
        f"{args.threads} threads per framework"
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
