"""Translation trained by maximum likelihood, then by self-critical sequence training with a
sentence-BLEU reward (outline 6.3.2; Rennie et al., CVPR 2017), once for both backends.

    phase 1, updates 1 .. mle_steps          L_MLE = -sum_t w_t log p(y_t | x, y_<t) / sum_t w_t
                                             (target words and <eos> only; teacher forcing)
    phase 2, the next scst_updates updates   for M train sources x_i:
        y^_i = greedy decode,  y_ij ~ pi(. | x_i)  (k samples, noise from core)
        r = sentence BLEU / 100 (sacrebleu) against the reference
        A_ij = r(y_ij) - r(y^_i)                              the self-critical baseline
        L = -1/N sum_ij A_ij sum_t m_ijt log pi(y_ijt | x_i, y_ij,<t)   (backend.SCSTLearner)

At the switch, the maximum-likelihood model is evaluated on the held-out sentences (corpus
BLEU, by length, teacher-forced against free-running: ``evaluation.heldout_figures``), so one
run's summary holds MLE and SCST side by side. :class:`TranslationRun` is a trainer of
``duetrl.core.run`` (log.csv, checkpoints, ``--resume``, Ctrl-C, NaN stop). Update u is a
function of (weights, Adam states, seed, u) only: its batch or sources come from
``default_rng((seed, phase, u))`` and its sampling noise from ``noise_seed``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.cases.schedule import mle_learning_rate
from duetrl.core.cases.translation.bleu import Reward, check_rewards, corpus_bleu, sentence_bleu
from duetrl.core.cases.translation.evaluation import decode, heldout_figures, plot_exposure
from duetrl.core.cases.translation.language import Vocabulary, make_corpus, word_by_word
from duetrl.core.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    require_same_settings,
)
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.settings import setting

TRANSLATION_KIND = "duetrl.translation"
"""The checkpoint kind: tensor groups ``params``, ``optim`` (maximum likelihood's AdamW) and
``scst_optim``; metadata ``settings``, ``config``, ``updates``, ``history``, ``mle``."""


@dataclass
class TranslationSettings:
    """Settings of a translation run (``duetrl translate train``'s flags mirror these)."""

    train_pairs: int = setting(1000, "sentence pairs to train on")
    heldout_pairs: int = setting(300, "held-out pairs (sources never seen in training)")
    n_layer: int = setting(1, "GPT blocks")
    n_head: int = setting(2, "attention heads per block")
    n_embd: int = setting(32, "model width")
    mle_steps: int = setting(1000, "maximum-likelihood AdamW updates (phase 1)")
    batch_size: int = setting(32, "sentence pairs per maximum-likelihood update")
    learning_rate: float = setting(3e-3, "MLE peak learning rate (warm-up, cosine to a tenth)")
    warmup_steps: int = setting(20, "MLE linear warm-up")
    scst_updates: int = setting(20, "self-critical updates after the MLE phase (phase 2)")
    sources: int = setting(32, "train sources per SCST update (M)")
    samples: int = setting(16, "sampled translations per source (k), one greedy baseline")
    scst_learning_rate: float = setting(1e-4, "Adam step size of the SCST phase")
    eval_every: int = setting(100, "held-out BLEU every this many updates (and at the end)")
    seed: int = setting(0, "seeds the corpus, the weights, the batches and the noise")

    def __post_init__(self) -> None:
        for name in ("train_pairs", "heldout_pairs", "n_layer", "n_head", "n_embd",
                     "batch_size", "sources", "samples", "eval_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {getattr(self, name)!r}")
        for name in ("mle_steps", "scst_updates", "warmup_steps"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {getattr(self, name)!r}")
        if self.mle_steps + self.scst_updates < 1:
            raise ValueError("mle_steps, scst_updates: expected at least one update in all")
        if self.sources > self.train_pairs:
            raise ValueError(f"sources: expected at most train_pairs ({self.train_pairs}), "
                             f"got {self.sources}")
        for name in ("learning_rate", "scst_learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected > 0, got {getattr(self, name)!r}")


def settings_fields() -> tuple:
    """The fields of :class:`TranslationSettings`, for the command line."""
    return fields(TranslationSettings)


_GROWABLE = ("scst_updates", "eval_every")
"""Settings a resumed run may change (more SCST updates, another evaluation period)."""


def noise_seed(seed: int, update: int) -> int:
    """The sampling noise of update ``update``: a function of (seed, update) only."""
    return int(np.random.SeedSequence([seed, 13, update]).generate_state(1)[0])


class TranslationRun:
    """One backend's translation GPT, its MLE trainer and its SCST learner; a trainer of
    ``duetrl.core.run`` (:meth:`step` is update number :attr:`updates` + 1).

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``.
    :param settings: the run's :class:`TranslationSettings`.
    :param reward: ``reward(hypotheses, references) -> (N,)`` (default: sacrebleu's sentence
        BLEU / 100); a reward that is not finite stops the update with a ValueError.
    """

    kind = TRANSLATION_KIND
    x_key = "update"

    def __init__(self, backend: ModuleType, settings: TranslationSettings,
                 reward: Reward | None = None) -> None:
        s = self.settings = settings
        self.backend, self.backend_name, self.seed = backend, backend.NAME, s.seed
        self.description = f"translate ({backend.NAME})"
        self.reward = reward or sentence_bleu
        self.vocab = Vocabulary()
        self.corpus = make_corpus(s.train_pairs, s.heldout_pairs, s.seed)
        self.train_tokens, self.train_weights = self.vocab.rows(self.corpus.train)
        self.config = GPTConfig(vocab_size=self.vocab.size, block_size=self.vocab.block_size,
                                n_layer=s.n_layer, n_head=s.n_head, n_embd=s.n_embd)
        self.model = backend.GPT(self.config, seed=s.seed)
        self.trainer = backend.LMTrainer(self.model)  # AdamW, phase 1
        self.learner = backend.SCSTLearner(self.model, s.scst_learning_rate)  # Adam, phase 2
        self.updates = 0
        self.history: dict[str, list[float]] = {}
        self.mle: dict[str, Any] | None = None  # held-out figures at the end of phase 1
        self.seconds = {"mle": 0.0, "scst": 0.0}
        self.counts = {"mle": 0, "scst": 0}  # train pairs, sampled translations (timed steps)
        self._timed: set[str] = set()
        self._final: tuple[int, dict[str, Any]] | None = None

    # -- one update -----------------------------------------------------------------------------

    def _mle_step(self, u: int) -> dict[str, float]:
        rng = np.random.default_rng((self.settings.seed, 1, u))
        rows = rng.integers(0, len(self.corpus.train), self.settings.batch_size)
        x, w = self.train_tokens[rows], self.train_weights[rows]
        lr = mle_learning_rate(u, self.settings)
        loss, grad_norm = self.trainer.train_step(x[:, :-1], x[:, 1:], lr, w)
        return {"loss": float(loss), "grad_norm": float(grad_norm), "lr": lr}

    def scores(self, hypotheses: list[str], references: list[str]) -> np.ndarray:
        """The reward of each hypothesis, checked (ValueError naming ``reward`` otherwise)."""
        return check_rewards(self.reward(hypotheses, references), hypotheses, references)

    def _scst_step(self, u: int) -> dict[str, float]:
        s, vocab = self.settings, self.vocab
        rng = np.random.default_rng((s.seed, 2, u))
        picked = rng.choice(len(self.corpus.train), s.sources, replace=False)
        sources = [self.corpus.train[i][0] for i in picked]
        references = [" ".join(self.corpus.train[i][1]) for i in picked]
        _, greedy, _ = decode(self.backend, self.model, vocab, sources)  # the baseline y^_i
        sampled, hypotheses, output_mask = decode(self.backend, self.model, vocab, sources,
                                                  greedy=False, seed=noise_seed(s.seed, u),
                                                  repeat=s.samples)
        greedy_rewards = self.scores(greedy, references)
        sample_rewards = self.scores(hypotheses, list(np.repeat(references, s.samples)))
        mask = np.zeros((len(hypotheses), vocab.block_size - 1))
        mask[:, vocab.max_source:] = output_mask  # column t flags token t + 1: the outputs
        self.learner.learning_rate = s.scst_learning_rate
        stats = self.learner.update(sampled.tokens, mask, sample_rewards, greedy_rewards)
        return {"loss": stats["loss"], "grad_norm": stats["grad_norm"],
                "lr": s.scst_learning_rate, "reward": float(sample_rewards.mean()),
                "greedy_reward": float(greedy_rewards.mean()), "positive": stats["positive"],
                "length": float(output_mask.sum(axis=1).mean())}

    def step(self) -> dict[str, float]:
        """Update number :attr:`updates` + 1: an MLE step, or (after ``mle_steps``) an SCST
        step; held-out BLEU every ``eval_every`` updates, at the switch and at the end.

        :raises FloatingPointError: when the loss is not finite.
        """
        s, u = self.settings, self.updates
        phase = "mle" if u < s.mle_steps else "scst"
        if phase == "scst" and self.mle is None:  # the switch: keep the MLE model's figures
            self.mle = self.heldout()
        began = time.perf_counter()
        row = self._mle_step(u) if phase == "mle" else self._scst_step(u)
        if phase in self._timed:  # the first step of a phase traces / warms up: not timed
            self.seconds[phase] += time.perf_counter() - began
            self.counts[phase] += s.batch_size if phase == "mle" else s.sources * s.samples
        self._timed.add(phase)
        if not math.isfinite(row["loss"]):
            raise FloatingPointError(f"training diverged at update {u + 1} ({phase}): loss "
                                     f"{row['loss']}")
        self.updates = u + 1
        bleu = float("nan")
        if self.updates % s.eval_every == 0 or self.updates in (s.mle_steps, self.total):
            bleu = self.heldout()["bleu"]
            if self.updates == s.mle_steps:  # the end of phase 1: the MLE model's figures
                self.mle = self.heldout()
        full = {"update": float(self.updates), "scst": float(phase == "scst"),
                "loss": row["loss"], "grad_norm": row["grad_norm"], "lr": row["lr"],
                "reward": row.get("reward", float("nan")),
                "greedy_reward": row.get("greedy_reward", float("nan")),
                "positive": row.get("positive", float("nan")),
                "length": row.get("length", float("nan")), "heldout_bleu": bleu,
                "wall_s": time.perf_counter() - began}
        for key, value in full.items():
            self.history.setdefault(key, []).append(value)
        return full

    @property
    def total(self) -> int:
        return self.settings.mle_steps + self.settings.scst_updates

    def heldout(self) -> dict[str, Any]:
        """The model's held-out figures now (``evaluation.heldout_figures``), computed once
        per update count."""
        if self._final is None or self._final[0] != self.updates:
            self._final = (self.updates, heldout_figures(self.backend, self.trainer, self.vocab,
                                                         self.corpus.heldout))
        return self._final[1]

    # -- the run loop's trainer -----------------------------------------------------------------

    def progress(self) -> tuple[int, int]:
        return self.updates, self.total

    def finished(self) -> bool:
        return self.updates >= self.total

    def state(self) -> Checkpoint:
        b = self.backend
        tensors = {"params": b.export_params(self.model),
                   "optim": self.trainer.optimizer.state_arrays(),
                   "scst_optim": self.learner.optimizer.state_arrays()}
        info = {"settings": asdict(self.settings), "config": self.config.to_dict(),
                "updates": self.updates, "backend": b.NAME, "history": self.history,
                "mle": self.mle}
        return Checkpoint(TRANSLATION_KIND, tensors, info)

    def load_state(self, checkpoint: Checkpoint, source: str) -> None:
        """Weights, both Adam states, counters, history; CheckpointError for other settings
        (all but ``scst_updates`` and ``eval_every`` must be the same)."""
        require_same_settings(checkpoint.metadata.get("settings"), asdict(self.settings), source,
                              _GROWABLE)
        b, tensors = self.backend, checkpoint.tensors
        b.import_params(self.model, tensors["params"])
        self.trainer.optimizer.load_state_arrays(tensors["optim"])
        self.learner.optimizer.load_state_arrays(tensors["scst_optim"])
        self.updates = int(checkpoint.metadata["updates"])
        self.history = {k: list(v) for k, v in checkpoint.metadata.get("history", {}).items()}
        self.mle = checkpoint.metadata.get("mle")
        self._final = None

    def evaluate(self) -> dict[str, Any]:
        """``mle_bleu`` and ``scst_bleu`` (held-out corpus BLEU, sacrebleu), ``copy_bleu`` (the
        word-by-word baseline), each model's figures, speeds and size."""
        now = self.heldout()
        mle = self.mle if self.mle is not None else now  # phase 1 not over: the model as it is
        scst = now if self.updates > self.settings.mle_steps else None
        heldout = self.corpus.heldout
        copy = corpus_bleu([" ".join(word_by_word(src)) for src, _ in heldout],
                           [" ".join(tgt) for _, tgt in heldout])
        rate = {k: self.counts[k] / self.seconds[k] if self.seconds[k] else float("nan")
                for k in self.seconds}
        return {"mle_bleu": mle["bleu"], "scst_bleu": scst["bleu"] if scst else None,
                "copy_bleu": copy, "mle": mle, "scst": scst,
                "mle_pairs_per_s": rate["mle"], "scst_samples_per_s": rate["scst"],
                "parameters": int(self.model.num_parameters())}

    def plot(self, run_dir: Path) -> Path | None:
        """``bleu.png`` (held-out BLEU, SCST's sample and greedy rewards) and, after the
        switch, ``exposure.png`` (teacher-forced vs free-running accuracy by position)."""
        if not self.history:
            return None
        figures = self.evaluate()
        if figures["scst"] is not None:
            plot_exposure({"MLE": figures["mle"], "SCST": figures["scst"]},
                          Path(run_dir) / "exposure.png")
        return plot_bleu({self.backend.NAME: self.history}, Path(run_dir) / "bleu.png",
                         self.settings.mle_steps)


def plot_bleu(histories: dict[str, dict[str, list[float]]], path: str | Path,
              switch: int | None = None) -> Path:
    """Held-out corpus BLEU by update, and the SCST phase's mean sample and greedy rewards
    (x 100, BLEU's scale), one set of lines per label; ``switch``: where SCST starts."""
    from duetrl.core.plots import plot_curves

    curves = {}
    for label, h in histories.items():
        update, bleu = np.asarray(h["update"]), np.asarray(h["heldout_bleu"])
        evaluated = ~np.isnan(bleu)
        curves[f"{label} held-out BLEU (greedy)"] = (update[evaluated], bleu[evaluated])
        scst = np.asarray(h["scst"]) > 0
        if scst.any():
            curves[f"{label} SCST sample reward x100"] = (
                update[scst], 100 * np.asarray(h["reward"])[scst])
            curves[f"{label} SCST greedy reward x100"] = (
                update[scst], 100 * np.asarray(h["greedy_reward"])[scst])
    title = "MLE, then SCST" + (f" from update {switch + 1}" if switch is not None else "")
    return plot_curves(curves, path, xlabel="update", ylabel="BLEU", title=title)


def load_run(backend: ModuleType, path: str | Path) -> TranslationRun:
    """A :class:`TranslationRun` rebuilt from its checkpoint (corpus regenerated from the
    settings, which is deterministic), weights loaded."""
    checkpoint = load_checkpoint(path, TRANSLATION_KIND)
    try:
        settings = TranslationSettings(**dict(checkpoint.metadata.get("settings") or {}))
    except TypeError as error:
        raise CheckpointError(f"checkpoint {str(path)!r}: invalid settings ({error})") from None
    run = TranslationRun(backend, settings)
    run.load_state(checkpoint, str(path))
    return run
