"""``duetrl lm mlm``: train a BERT-style encoder by masked-LM (outline 7.1.2) and fill in blanks.

The encoder is the GPT's blocks under a padding mask instead of the causal one
(``backends/{torch,tf}/encoder.py``); the data is the lines of a corpus, masked by BERT's rule
(``core/lm/mlm.py``). ``--out`` receives model.safetensors (the weights, config and tokeniser)
and loss.png; ``--fill "the _eacher"`` prints each sentence with its ``_`` filled in::

    duetrl lm mlm --backend tf --steps 600 --fill "the old man follows a gr_en tree."
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from duetrl.core.backend import load_backend
from duetrl.core.cli.flags import add_run_flags


def add_mlm_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``duetrl lm mlm`` under ``duetrl lm``."""
    mlm = sub.add_parser("mlm", help="train a BERT-style encoder by masked-LM; fill in blanks")
    add_run_flags(mlm, "backend", "seed", "threads", "out", "json", out="runs/mlm", threads=2,
                  out_help="the run folder (model.safetensors, loss.png)")
    mlm.add_argument("--corpus", default="templates",
                     help="markov, templates, digits, pydoc, or a path to a text file (one "
                     "sequence per line)")
    mlm.add_argument("--num-chars", type=int, default=60_000, help="corpus length (chars)")
    mlm.add_argument("--block-size", type=int, default=48, help="characters per sequence")
    mlm.add_argument("--n-layer", type=int, default=2)
    mlm.add_argument("--n-head", type=int, default=4)
    mlm.add_argument("--n-embd", type=int, default=64)
    mlm.add_argument("--steps", type=int, default=600)
    mlm.add_argument("--batch-size", type=int, default=32)
    mlm.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    mlm.add_argument("--min-lr", type=float, default=3e-4)
    mlm.add_argument("--warmup", type=int, default=30)
    mlm.add_argument("--weight-decay", type=float, default=0.0)
    mlm.add_argument("--clip", type=float, default=1.0, help="max gradient norm (0: off)")
    mlm.add_argument("--eval-every", type=int, default=50)
    mlm.add_argument("--fill", action="append", default=[], metavar="TEXT",
                     help="a sentence with _ for each character to fill in (repeatable)")
    mlm.set_defaults(run=run_mlm)


def check_fill(sentences: list[str], data) -> None:
    """Refuse, naming ``--fill``, a sentence with no ``_``, longer than a sequence, or with a
    character the corpus never uses (before any training is spent)."""
    for sentence in sentences:
        if "_" not in sentence:
            raise ValueError(f"--fill: expected a sentence with at least one _, got {sentence!r}")
        if len(sentence) > data.block_size:
            raise ValueError(f"--fill: expected at most --block-size={data.block_size} "
                             f"characters, got {len(sentence)} in {sentence!r}")
        unknown = sorted({c for c in sentence if c != "_" and c not in data.tokenizer.index})
        if unknown:
            raise ValueError(f"--fill: characters {unknown} of {sentence!r} are not in the "
                             f"corpus's {data.tokenizer.vocab_size} characters")


def fill_blanks(backend, model, data, sentences: list[str]) -> list[str]:
    """Each sentence with every ``_`` replaced by the encoder's most likely character there.

    All blanks of a sentence are predicted at once, from both sides (BERT's one pass); the
    special ids ([PAD], [MASK]) are never a guess."""
    check_fill(sentences, data)
    ids, attention_mask = data.encode(sentences)
    logits = backend.to_numpy(model(ids, attention_mask))[..., : data.tokenizer.vocab_size]
    guess = logits.argmax(-1)
    return ["".join(data.tokenizer.vocab[int(guess[row, col])] if char == "_" else char
                    for col, char in enumerate(sentence))
            for row, sentence in enumerate(sentences)]


def run_mlm(args: argparse.Namespace) -> int:
    from duetrl.core.checkpoint import Checkpoint, save_checkpoint
    from duetrl.core.interfaces.gpt_config import GPTConfig
    from duetrl.core.lm.corpora import corpus_text
    from duetrl.core.lm.mlm import MLM_KIND, MLMData, encoder_module, train_mlm
    from duetrl.core.lm.train import TrainConfig
    from duetrl.core.plots import plot_curves

    data = MLMData(corpus_text(args.corpus, args.num_chars, args.seed), args.block_size)
    check_fill(args.fill, data)
    config = GPTConfig(vocab_size=data.vocab_size, block_size=args.block_size,
                       n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd)
    train_config = TrainConfig(steps=args.steps, batch_size=args.batch_size,
                               learning_rate=args.lr, min_learning_rate=args.min_lr,
                               warmup_steps=args.warmup, weight_decay=args.weight_decay,
                               max_grad_norm=args.clip or None, eval_every=args.eval_every,
                               seed=args.seed)
    backend = load_backend(args.backend)
    backend.set_num_threads(args.threads)
    model = encoder_module(backend).MaskedLM(config, seed=args.seed)
    history = train_mlm(backend, model, data, train_config)
    out = Path(args.out)
    checkpoint = save_checkpoint(out / "model.safetensors", Checkpoint(
        MLM_KIND, {"params": backend.export_params(model)},
        {"config": config.to_dict(), "tokenizer": data.tokenizer.to_dict(),
         "corpus": args.corpus, "history": history}))
    plot = plot_curves({f"{args.backend} train": (history["step"], history["loss"]),
                        f"{args.backend} val": (history["eval_step"], history["val_loss"])},
                       out / "loss.png", "step", "masked-LM loss (nats)",
                       "masked-LM training of a BERT-style encoder")
    summary = {"backend": args.backend, "steps": args.steps,
               "val_loss": history["val_loss"][-1], "accuracy": history["accuracy"][-1],
               "checkpoint": str(checkpoint), "plot": str(plot),
               "filled": fill_blanks(backend, model, data, args.fill)}
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"{args.backend}: val loss {summary['val_loss']:.3f}, masked-token accuracy "
          f"{summary['accuracy']:.3f} after {args.steps} steps; saved {checkpoint} and {plot}")
    for sentence, filled in zip(args.fill, summary["filled"]):
        print(f"  {sentence!r} -> {filled!r}")
    return 0
