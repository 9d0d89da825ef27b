"""BLEU from ``sacrebleu`` (outline 6.3.2): the sentence reward and the corpus metric.

    BLEU = BP exp( sum_{n=1..4} 1/4 log p_n ),   BP = min(1, exp(1 - |ref| / |hyp|))

p_n is the clipped n-gram precision of the hypothesis against the reference. The corpus score
pools the n-gram counts of every sentence before dividing (sacrebleu's ``corpus_bleu``, what
papers report); a sentence score (the reward) uses sacrebleu's default ``exp`` smoothing and
the effective order, so a short sentence without a matching 4-gram is not worth 0. A real
library, not our own n-gram code: the numbers are the ones every MT paper means. Scores here
are on sacrebleu's 0-100 scale; the reward divides by 100 so that r is in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from sacrebleu.metrics import BLEU

Reward = Callable[[list[str], list[str]], np.ndarray]
"""``reward(hypotheses, references) -> (N,)``: one number per (hypothesis, reference) pair,
each a sentence of words joined by spaces."""

_SENTENCE = BLEU(effective_order=True)  # sacrebleu's sentence_bleu settings
_CORPUS = BLEU()


def sentence_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """The SCST reward: sacrebleu's sentence BLEU of each hypothesis / 100, in [0, 1]."""
    if len(hypotheses) != len(references):
        raise ValueError(f"references: expected one per hypothesis ({len(hypotheses)}), got "
                         f"{len(references)}")
    return np.array([_SENTENCE.sentence_score(h, [r]).score / 100.0
                     for h, r in zip(hypotheses, references)])


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu's corpus BLEU (0-100) of ``hypotheses`` against one reference each."""
    if len(hypotheses) != len(references) or not references:
        raise ValueError(f"references: expected one per hypothesis ({len(hypotheses)}, at "
                         f"least 1), got {len(references)}")
    return float(_CORPUS.corpus_score(list(hypotheses), [list(references)]).score)


def check_rewards(rewards: object, hypotheses: Sequence[str], references: Sequence[str],
                  name: str = "reward") -> np.ndarray:
    """The rewards as float64 ``(N,)``, or a ValueError naming ``name`` and the first pair
    whose reward is not a finite number (a NaN reward would turn every weight into NaN)."""
    try:
        values = np.asarray(rewards, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected {len(hypotheses)} numbers, got "
                         f"{type(rewards).__name__} {rewards!r:.80}") from None
    if values.shape != (len(hypotheses),):
        raise ValueError(f"{name}: expected shape ({len(hypotheses)},) (one per hypothesis), "
                         f"got {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"{name}: expected finite numbers, got {values[i]} for hypothesis "
                         f"{hypotheses[i]!r} against reference {references[i]!r} "
                         f"({bad.size} of {values.size} not finite)")
    return values


def bleu_by_length(hypotheses: Sequence[str], references: Sequence[str],
                   source_lengths: Sequence[int],
                   edges: Sequence[int] = (5, 8, 11, 17)) -> dict[str, float]:
    """Corpus BLEU of each source-length bucket ``[edges[i], edges[i+1])``: ``{"5-7": ..}``
    (empty buckets left out). Where exposure bias bites, long sentences lose most."""
    lengths = np.asarray(source_lengths)
    figures = {}
    for low, high in zip(edges[:-1], edges[1:]):
        rows = np.flatnonzero((lengths >= low) & (lengths < high))
        if rows.size:
            figures[f"{low}-{high - 1}"] = corpus_bleu([hypotheses[i] for i in rows],
                                                       [references[i] for i in rows])
    return figures
