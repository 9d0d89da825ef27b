"""``duetrl lm train``, ``duetrl lm sample`` and ``duetrl compare lm``.

``lm train`` pretrains a small GPT on a corpus made in code (or fine-tunes one from a
checkpoint with ``--init-from``) with the one run loop (``duetrl.core.run``): ``--out`` holds
model.safetensors, log.csv (written as it goes), summary.json and the loss curve loss.png.
``lm sample`` generates text from a checkpoint. ``compare lm`` runs one set of weights in both
backends: logits differences, and training and generation speed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from duetrl.core.backend import load_backend
from duetrl.core.cli.flags import add_run_flags


def register(commands: argparse._SubParsersAction, compare: argparse._SubParsersAction) -> None:
    lm = commands.add_parser("lm", help="a small GPT language model: train, sample")
    sub = lm.add_subparsers(dest="lm_command", metavar="LM_COMMAND", required=True)

    train = sub.add_parser("train", help="pretrain (or fine-tune with --init-from) a small GPT")
    add_run_flags(train, *TRAIN_FLAGS, out="runs/lm", threads=2,
                  out_help="the run folder (model.safetensors, log.csv, summary.json, loss.png)",
                  json_help="print the summary as JSON")
    train.add_argument("--no-progress", dest="quiet", action="store_true",
                       help="the same as --quiet")
    train.add_argument(
        "--corpus",
        default="templates",
        help="markov, templates, digits, pydoc, or a path to a text file",
    )
    train.add_argument("--num-chars", type=int, default=200_000, help="corpus length (chars)")
    train.add_argument("--tokenizer", choices=["char", "bpe"], default="char")
    train.add_argument("--bpe-vocab", type=int, default=256, help="BPE vocabulary size")
    train.add_argument(
        "--init-from",
        default=None,
        help="fine-tune: start from this checkpoint's weights, config and tokeniser (the model "
        "flags --n-layer ... --dropout are then not used)",
    )
    train.add_argument("--n-layer", type=int, default=4)
    train.add_argument("--n-head", type=int, default=4)
    train.add_argument("--n-embd", type=int, default=128)
    train.add_argument("--block-size", type=int, default=64)
    train.add_argument("--dropout", type=float, default=0.0)
    train.add_argument("--steps", type=int, default=500)
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    train.add_argument("--min-lr", type=float, default=1e-4)
    train.add_argument("--warmup", type=int, default=50)
    train.add_argument("--weight-decay", type=float, default=0.1)
    train.add_argument("--clip", type=float, default=1.0, help="max gradient norm (0: off)")
    train.add_argument("--eval-every", type=int, default=100)
    train.add_argument("--checkpoint-every", type=int, default=0)
    train.set_defaults(run=run_train)

    sample = sub.add_parser("sample", help="generate text from a checkpoint")
    sample.add_argument("--checkpoint", default="runs/lm/model.safetensors")
    add_run_flags(sample, "backend", "seed", "threads", "json", threads=2,
                  seed_help="seeds the sampling noise", json_help="print text, tokens and "
                  "log-probs as JSON")
    sample.add_argument("--prompt", default="the", help="text to continue (not empty)")
    sample.add_argument("--max-new-tokens", type=int, default=50)
    sample.add_argument("--greedy", action="store_true")
    sample.add_argument("--temperature", type=float, default=1.0)
    sample.add_argument("--top-k", type=int, default=None)
    sample.add_argument("--top-p", type=float, default=None)
    sample.add_argument("--no-cache", action="store_true", help="recompute instead of KV cache")
    sample.set_defaults(run=run_sample)

    from duetrl.core.cli.lm_mlm import add_mlm_parser

    add_mlm_parser(sub)  # duetrl lm mlm: a BERT-style encoder (outline 7.1.2)

    cmp = compare.add_parser("lm", help="one GPT in both backends: logits, training, generation")
    cmp.add_argument("--n-layer", type=int, default=2)
    cmp.add_argument("--n-head", type=int, default=4)
    cmp.add_argument("--n-embd", type=int, default=64)
    cmp.add_argument("--block-size", type=int, default=64)
    cmp.add_argument("--vocab-size", type=int, default=100)
    cmp.add_argument("--batch-size", type=int, default=8)
    cmp.add_argument("--train-steps", type=int, default=10, help="timed training steps")
    cmp.add_argument("--new-tokens", type=int, default=32, help="generated tokens to time")
    add_run_flags(cmp, "seed", "threads", "json", threads=2,
                  seed_help="seeds the weights and the batches", json_help="print the figures "
                  "as JSON")
    cmp.set_defaults(run=run_compare)


TRAIN_FLAGS = ("backend", "out", "seed", "threads", "json", "quiet", "resume", "tensorboard")
"""The shared run flags ``lm train`` takes (core/cli/flags.py); ``--no-progress`` is --quiet."""


def run_train(args: argparse.Namespace) -> int:
    from duetrl.core.interfaces.gpt_config import GPTConfig
    from duetrl.core.lm.corpora import corpus_text
    from duetrl.core.lm.data import TokenData
    from duetrl.core.lm.tokenizers import BPETokenizer, CharTokenizer, tokenizer_from_dict
    from duetrl.core.lm.train import LMRun, TrainConfig, load_gpt_checkpoint
    from duetrl.core.run import run

    text = corpus_text(args.corpus, args.num_chars, args.seed)
    base = None
    if args.init_from:
        config, base = load_gpt_checkpoint(args.init_from)
        tokenizer = tokenizer_from_dict(base.metadata["tokenizer"])
    else:
        if args.tokenizer == "bpe":
            tokenizer = BPETokenizer.train(text, args.bpe_vocab)
        elif args.corpus == "markov":
            tokenizer = CharTokenizer.train(text)
        else:
            tokenizer = CharTokenizer.printable()
        config = GPTConfig(
            vocab_size=tokenizer.vocab_size,
            block_size=args.block_size,
            n_layer=args.n_layer,
            n_head=args.n_head,
            n_embd=args.n_embd,
            dropout=args.dropout,
        )
    train_config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        min_learning_rate=args.min_lr,
        warmup_steps=args.warmup,
        weight_decay=args.weight_decay,
        max_grad_norm=args.clip or None,
        eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    data = TokenData(tokenizer.encode(text), config.block_size)
    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    model = backend.GPT(config, seed=args.seed)
    if base is not None:
        backend.import_params(model, base.tensors["params"])
    out = Path(args.out)
    checkpoint = out / "model.safetensors"
    trainer = LMRun(backend, model, data, train_config,
                    metadata={"tokenizer": tokenizer.to_dict(), "corpus": args.corpus},
                    plot_name="loss.png")
    summary = run(trainer, out, resume=args.resume and checkpoint.is_file(), quiet=args.quiet,
                  checkpoint_every=args.checkpoint_every, tensorboard=args.tensorboard,
                  checkpoint_file=checkpoint)
    if args.json:
        print(json.dumps(summary))
    else:
        stopped = " (stopped by Ctrl-C; --resume continues)" if summary["interrupted"] else ""
        print(
            f"{args.backend}: val loss {summary['val_loss']:.4f} (perplexity "
            f"{summary['perplexity']:.2f}), {summary['train_tokens_per_second']:.0f} tokens/s "
            f"after {summary['updates']} steps{stopped}; saved {summary['checkpoint']}, "
            f"{summary['log']} and {summary['plot']}"
        )
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from duetrl.core.lm.tokenizers import tokenizer_from_dict
    from duetrl.core.lm.train import load_gpt_checkpoint

    config, checkpoint = load_gpt_checkpoint(args.checkpoint)
    if "tokenizer" not in checkpoint.metadata:
        raise ValueError(f"--checkpoint: {args.checkpoint!r} holds no tokeniser")
    tokenizer = tokenizer_from_dict(checkpoint.metadata["tokenizer"])
    if not args.prompt:
        raise ValueError("--prompt: expected at least one character, got ''")
    prompt = tokenizer.encode(args.prompt)
    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    model = backend.GPT(config)
    backend.import_params(model, checkpoint.tensors["params"])
    generation = backend.generate(
        model,
        prompt,
        args.max_new_tokens,
        use_cache=not args.no_cache,
        greedy=args.greedy,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
    )
    text = tokenizer.decode(generation.tokens[0])
    if args.json:
        print(
            json.dumps(
                {
                    "text": text,
                    "tokens": generation.new_tokens[0].tolist(),
                    "log_probs": generation.log_probs[0].tolist(),
                }
            )
        )
    else:
        print(text)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from duetrl.core.lm.compare import compare_lm

    figures = compare_lm(
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_embd=args.n_embd,
        block_size=args.block_size,
        vocab_size=args.vocab_size,
        batch_size=args.batch_size,
        train_steps=args.train_steps,
        new_tokens=args.new_tokens,
        threads=args.threads,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(figures))
        return 0
    print(
        f"logits max-abs difference: torch vs tf {figures['logits_max_abs']['torch_vs_tf']:.2e}, "
        f"torch vs reference {figures['logits_max_abs']['torch_vs_reference']:.2e}, "
        f"tf vs reference {figures['logits_max_abs']['tf_vs_reference']:.2e}"
    )
    print(f"same generated tokens in both backends: {figures['same_tokens']}")
    for name in ("torch", "tf"):
        s = figures["speed"][name]
        print(
            f"{name:>5}: train {s['train_tokens_per_second']:9.0f} tokens/s | generate "
            f"{s['generate_tokens_per_second_cached']:7.0f} tokens/s with KV cache, "
            f"{s['generate_tokens_per_second_uncached']:7.0f} without",
            file=sys.stdout,
        )
    return 0
