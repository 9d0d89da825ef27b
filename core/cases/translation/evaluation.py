"""Decoding a batch of sources, and the held-out figures of a translation model (outline 6.3.2).

Two ways to look at one model, and why they disagree (exposure bias; Ranzato et al., ICLR 2016,
"Sequence level training with recurrent neural networks", MIXER):

* **teacher-forced**: every target position is predicted from the *reference* prefix, as in
  training: the loss (nats per token) and the share of positions whose argmax is right;
* **free-running**: the model decodes greedily from its *own* prefix, as at test time: corpus
  BLEU (sacrebleu), BLEU by source length, exact matches, and the share of target positions
  whose decoded word equals the reference's.

Maximum likelihood only ever trains the teacher-forced view. Once a free-running decode makes
one mistake, every later prediction conditions on a prefix the model never saw in training, so
errors compound with length; a sequence-level objective (SCST here) trains the free-running
view itself. :func:`heldout_figures` reports both, position by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.cases.translation.bleu import bleu_by_length, corpus_bleu
from duetrl.core.cases.translation.language import Vocabulary

Pairs = Sequence[tuple[Sequence[str], Sequence[str]]]


def decode(
    backend: ModuleType, model: Any, vocab: Vocabulary, sources: Sequence[Sequence[str]],
    greedy: bool = True, seed: int = 0, repeat: int = 1,
) -> tuple[Any, list[str], np.ndarray]:
    """Translate ``sources`` (each ``repeat`` times, source-major): ``(the Generation,
    hypotheses as strings, output mask (B, max_target))``; sampling draws its noise from
    ``seed`` (``duetrl.core.sampling``: the same tokens in both backends)."""
    prompts = np.repeat(np.stack([vocab.prompt(s) for s in sources]), repeat, axis=0)
    out = backend.generate(model, prompts, vocab.max_target, greedy=greedy, seed=seed)
    sentences, mask = vocab.completion(out.new_tokens)
    return out, [" ".join(words) for words in sentences], mask


def translate(backend: ModuleType, model: Any, vocab: Vocabulary,
              sentences: Sequence[str | Sequence[str]]) -> list[str]:
    """Greedy translations of source ``sentences`` (strings of words or word lists), each
    checked first (ValueError naming ``sentence`` for an empty one or a foreign word)."""
    if not sentences:
        raise ValueError("sentences: expected at least one source sentence, got none")
    sources = [vocab.check_sentence(s, "source", "sentence") for s in sentences]
    return decode(backend, model, vocab, sources)[1]


def teacher_forced(backend: ModuleType, trainer: Any, vocab: Vocabulary,
                   pairs: Pairs) -> tuple[float, np.ndarray]:
    """(mean loss per target token, accuracy of the argmax at each target position
    ``(max_target,)``, NaN where no pair is that long), predicting from reference prefixes."""
    tokens, weights = vocab.rows(pairs)
    x, y = tokens[:, :-1], tokens[:, 1:]
    loss = trainer.eval_loss(x, y, weights)
    predicted = np.argmax(backend.inference_logits(trainer.model, x), axis=-1)  # (N, T)
    start = vocab.max_source  # column predicting the first target token
    right = (predicted == y)[:, start:] * weights[:, start:]  # (N, max_target)
    counts = weights[:, start:].sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(loss), right.sum(axis=0) / counts


def free_running_accuracy(hypotheses: Sequence[str], references: Sequence[str],
                          max_target: int) -> np.ndarray:
    """Share of reference positions (target words and <eos>) whose greedy word matches,
    ``(max_target,)``, NaN where no reference is that long."""
    right, counts = np.zeros(max_target), np.zeros(max_target)
    for hyp, ref in zip(hypotheses, references):
        h, r = [*hyp.split(), "<eos>"], [*ref.split(), "<eos>"]
        for p, word in enumerate(r):
            counts[p] += 1
            right[p] += p < len(h) and h[p] == word
    with np.errstate(invalid="ignore", divide="ignore"):
        return right / counts


def heldout_figures(backend: ModuleType, trainer: Any, vocab: Vocabulary,
                    pairs: Pairs) -> dict[str, Any]:
    """Every held-out figure of the model behind ``trainer`` (a backend ``LMTrainer``):
    ``bleu`` (corpus), ``bleu_by_length``, ``exact_match``, ``teacher_forced_loss``,
    ``teacher_forced_accuracy`` and ``free_running_accuracy`` (overall and by position)."""
    _, hypotheses, _ = decode(backend, trainer.model, vocab, [s for s, _ in pairs])
    references = [" ".join(t) for _, t in pairs]
    loss, forced = teacher_forced(backend, trainer, vocab, pairs)
    free = free_running_accuracy(hypotheses, references, vocab.max_target)
    _, weights = vocab.rows(pairs)
    counts = weights[:, vocab.max_source:].sum(axis=0)
    return {
        "bleu": corpus_bleu(hypotheses, references),
        "bleu_by_length": bleu_by_length(hypotheses, references, [len(s) for s, _ in pairs]),
        "exact_match": float(np.mean([h == r for h, r in zip(hypotheses, references)])),
        "teacher_forced_loss": loss,
        "teacher_forced_accuracy": float(np.nansum(forced * counts) / counts.sum()),
        "free_running_accuracy": float(np.nansum(free * counts) / counts.sum()),
        "teacher_forced_by_position": [None if np.isnan(v) else float(v) for v in forced],
        "free_running_by_position": [None if np.isnan(v) else float(v) for v in free],
        "examples": [{"source": " ".join(s), "reference": r, "output": h}
                     for (s, _), r, h in list(zip(pairs, references, hypotheses))[:3]],
    }


def plot_exposure(figures: dict[str, dict[str, Any]], path: str | Path) -> Path:
    """Accuracy by target position, teacher-forced (left) and free-running (right), one line
    per label (``{"MLE": figures, "SCST": figures}``): the gap between the panels is exposure
    bias."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (key, name) in zip(axes, (("teacher_forced_by_position", "teacher-forced"),
                                      ("free_running_by_position", "free-running"))):
        for label, f in figures.items():
            values = np.array([np.nan if v is None else v for v in f[key]])
            ax.plot(np.arange(1, values.size + 1), values, label=label)
        ax.set_title(f"{name}: from the {'reference' if 'forced' in key else 'own'} prefix")
        ax.set_xlabel("target position (words, then <eos>)")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("share of positions right")
    return save_figure(fig, path)
