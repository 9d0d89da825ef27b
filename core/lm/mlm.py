"""Masked-LM data (outline 7.1.2): lines of a built-in corpus, padded, masked by BERT's rule.

Each line of the text is one sequence; a character tokeniser trained on the text gives the
ids 0..C-1 and two special ids follow: [PAD] = C, [MASK] = C + 1 (vocabulary C + 2). Batches
and their masks are functions of ``(seed, step)``, drawn with NumPy, so both backends train on
the same masked batches (the rule itself: ``core/reference/encoder.py``).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.lm.corpora import load_corpus
from duetrl.core.lm.tokenizers import CharTokenizer
from duetrl.core.lm.train import TrainConfig, learning_rate_at
from duetrl.core.reference.encoder import MaskedBatch, mask_tokens

PAD, MASK = "[PAD]", "[MASK]"
MLM_KIND = "duetrl.mlm"
"""The ``kind`` of a masked-LM checkpoint: group ``params``, metadata ``config``."""


class MLMData:
    """Lines of ``text`` as padded sequences of at most ``block_size`` characters.

    :param text: one sequence per line (empty lines are skipped, longer ones cut).
    :param block_size: sequence length T (padded with [PAD]).
    :param val_fraction: share of the lines held out for evaluation (the last ones).
    """

    def __init__(self, text: str, block_size: int, val_fraction: float = 0.1) -> None:
        if not isinstance(block_size, int) or block_size < 2:
            raise ValueError(f"block_size: expected an int >= 2, got {block_size!r}")
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction: expected a value in (0, 1), got {val_fraction!r}")
        lines = [line[:block_size] for line in text.splitlines() if line.strip()]
        if len(lines) < 2:
            raise ValueError(f"text: expected at least 2 non-empty lines, got {len(lines)}")
        self.tokenizer = CharTokenizer.train("".join(lines))
        self.pad_id = self.tokenizer.vocab_size
        self.mask_id = self.tokenizer.vocab_size + 1
        self.vocab_size = self.tokenizer.vocab_size + 2
        self.block_size = block_size
        ids = np.full((len(lines), block_size), self.pad_id, dtype=np.int64)
        for row, line in enumerate(lines):
            ids[row, : len(line)] = self.tokenizer.encode(line)
        split = max(1, min(len(lines) - 1, int(round(len(lines) * (1.0 - val_fraction)))))
        self.splits = {"train": ids[:split], "val": ids[split:]}

    @classmethod
    def from_corpus(cls, name: str = "templates", num_chars: int = 60_000, block_size: int = 48,
                    seed: int = 0) -> MLMData:
        """The lines of a built-in corpus (``core/lm/corpora.py``; ``templates`` by default)."""
        return cls(load_corpus(name, num_chars, seed), block_size)

    def encode(self, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, attention_mask)``, each ``(len(lines), block_size)``, of the given lines;
        ``_`` in a line stands for [MASK]."""
        ids = np.full((len(lines), self.block_size), self.pad_id, dtype=np.int64)
        for row, line in enumerate(lines):
            if len(line) > self.block_size:
                raise ValueError(f"lines: expected at most block_size={self.block_size} "
                                 f"characters, got {len(line)} in {line!r}")
            for col, char in enumerate(line):
                ids[row, col] = self.mask_id if char == "_" else self.tokenizer.encode(char)[0]
        return ids, (ids != self.pad_id).astype(np.int64)

    def decode(self, ids: np.ndarray) -> str:
        """The characters of one row of ids; [MASK] shown as ``_``, padding dropped."""
        chars = []
        for i in np.asarray(ids).reshape(-1):
            if i == self.mask_id:
                chars.append("_")
            elif i != self.pad_id:
                chars.append(self.tokenizer.vocab[int(i)])
        return "".join(chars)

    def batch(self, split: str, batch_size: int, seed: int, step: int
              ) -> tuple[MaskedBatch, np.ndarray]:
        """``(masked batch, attention_mask)`` of ``batch_size`` lines of ``split``, drawn with
        ``default_rng((seed, step))`` (lines) and ``(seed, step, 1)`` (masks)."""
        if split not in self.splits:
            raise ValueError(f"split: expected 'train' or 'val', got {split!r}")
        lines = self.splits[split]
        rows = np.random.default_rng((seed, step)).integers(0, len(lines), size=batch_size)
        ids = lines[rows]
        attention_mask = (ids != self.pad_id).astype(np.int64)
        masked = mask_tokens(ids, self.mask_id, self.vocab_size, (seed, step, 1), attention_mask,
                             special_ids=(self.pad_id,))
        return masked, attention_mask


def encoder_module(backend: ModuleType) -> ModuleType:
    """The backend's encoder module ``duetrl.backends.<NAME>.encoder`` (``MaskedLM``,
    ``BertEncoder``, ``MLMTrainer``, ``masked_lm_loss``), imported on first use."""
    return importlib.import_module(f"duetrl.backends.{backend.NAME}.encoder")


def train_mlm(backend: ModuleType, model: Any, data: MLMData, config: TrainConfig,
              eval_batch_size: int = 64) -> dict[str, list[float]]:
    """Masked-LM training of ``model`` (a backend's ``MaskedLM``), the same in both backends.

    Step s trains on ``data.batch("train", config.batch_size, config.seed, s)`` at
    ``learning_rate_at(s, config)`` (warm-up, cosine) with AdamW (``config.weight_decay``,
    ``config.max_grad_norm``). Every ``config.eval_every`` steps and after the last one, the
    loss and masked-token accuracy of one fixed batch, ``data.batch("val", eval_batch_size,
    config.seed + 1, 0)``.

    :returns: ``{"step", "loss"}`` per step and ``{"eval_step", "val_loss", "accuracy"}`` per
        evaluation, lists of numbers.
    """
    trainer = encoder_module(backend).MLMTrainer(model, config.weight_decay, config.max_grad_norm)
    val_batch, val_mask = data.batch("val", eval_batch_size, config.seed + 1, 0)
    history: dict[str, list[float]] = {key: [] for key in
                                       ("step", "loss", "eval_step", "val_loss", "accuracy")}
    for step in range(config.steps):
        batch, attention_mask = data.batch("train", config.batch_size, config.seed, step)
        loss, _ = trainer.train_step(*batch, learning_rate_at(step, config), attention_mask)
        history["step"].append(step + 1)
        history["loss"].append(loss)
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            val_loss, accuracy = trainer.evaluate(*val_batch, val_mask)
            for key, value in (("eval_step", step + 1), ("val_loss", val_loss),
                               ("accuracy", accuracy)):
                history[key].append(value)
    return history
