"""RL with verifiable rewards on questions (outline 6.3.1; DeepSeek-R1, 2025), once for both
backends: a short supervised warm-up, then GRPO, both on the run loop.

1. **Warm-up** (``core/rlhf/pi_ref.pretrain_reference``, i.e. ``core/lm/train.py``): next-token
   training on gold completions ``question<t>reasoning</t><a>answer</a>`` of training
   questions. It teaches the format and a first, unreliable version of the skill; it is also
   pi_ref, the model RL starts from and (with beta > 0) is held near.
2. **GRPO** (``core/rlhf/train.RLHFRun``: the same learner as every RL-for-LM run here):
   k completions per question, r = r_exact + w r_format, A_i = (r_i - mean_g r) / (std_g r +
   1e-4), the clipped token loss. :class:`QARun` adds to it what the case study measures:
   every ``eval_every`` updates, the greedy accuracy and format rate on held-out questions
   (``core/cases/qa/evaluate.py``), logged beside the training metrics; the warm-up model's
   own held-out accuracy is measured once, at the start, and is the baseline of the summary.

``train_qa`` writes ``<out>/warmup.safetensors`` (and its run folder ``warmup_run/``), then the
RL run folder ``<out>``: log.csv, qa_curves.png, checkpoint.safetensors, summary.json.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.cases.qa.evaluate import Evaluation, evaluate_policy, held_out_questions
from duetrl.core.cases.qa.settings import QASettings
from duetrl.core.checkpoint import Checkpoint, CheckpointError
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.rlhf.pi_ref import load_reference, pretrain_reference
from duetrl.core.rlhf.settings import RLHFSettings
from duetrl.core.rlhf.train import RLHFRun
from duetrl.core.run import run

HELD_OUT_KEYS = ("heldout_accuracy", "heldout_greedy", "heldout_format")
"""The log columns of the held-out evaluation (NaN in the rows between evaluations)."""


class QARun(RLHFRun):
    """GRPO (or another policy gradient) on a QA task, with held-out evaluations.

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``.
    :param settings: the RL phase's settings (a ``qa-*`` task).
    :param reference: ``(config, params)`` of the warm-up model: pi_ref and the policy's start.
    :param questions: the held-out questions every evaluation asks.
    :param eval_every: updates between evaluations (and the last update is evaluated).
    """

    def __init__(
        self,
        backend: ModuleType,
        settings: RLHFSettings,
        reference: tuple[GPTConfig, dict[str, np.ndarray]],
        questions: list[str],
        eval_every: int = 25,
    ) -> None:
        super().__init__(backend, settings, reference)
        if not questions:
            raise ValueError("questions: expected at least one held-out question, got none")
        self.questions, self.eval_every = list(questions), int(eval_every)
        self.description = f"qa {settings.algo} ({backend.NAME})"
        self.warmup = self.evaluate_model(self.reference)  # the supervised model alone
        self.latest: Evaluation = self.warmup

    def evaluate_model(self, model: Any) -> Evaluation:
        """Greedy held-out accuracy and format rate of ``model``."""
        return evaluate_policy(self.backend, model, self.mdp, self.questions,
                               seed=self.settings.seed)

    def step(self) -> dict[str, float]:
        """An RL update; every ``eval_every`` updates (and at the last) a held-out evaluation."""
        metrics = super().step()
        due = self.updates % self.eval_every == 0 or self.finished()
        if due:
            self.latest = self.evaluate_model(self.policy)
        latest = self.latest
        values = ((latest.accuracy, latest.greedy_accuracy, latest.format_rate) if due
                  else (np.nan,) * len(HELD_OUT_KEYS))
        for key, value in zip(HELD_OUT_KEYS, values):
            metrics[key] = float(value)
            self.history.setdefault(key, []).append(float(value))
        return metrics

    def state(self) -> Checkpoint:
        """``RLHFRun.state`` with the held-out set's size and ``eval_every`` in ``qa``."""
        checkpoint = super().state()
        checkpoint.metadata["qa"] = self._qa_metadata()
        return checkpoint

    def _qa_metadata(self) -> dict[str, Any]:
        return {"held_out": len(self.questions), "first_question": self.questions[0],
                "eval_every": self.eval_every}

    def load_state(self, checkpoint: Checkpoint, source: str) -> None:
        """As ``RLHFRun.load_state``; CheckpointError when the held-out set differs."""
        saved = checkpoint.metadata.get("qa")
        if saved is not None and saved != self._qa_metadata():
            raise CheckpointError(
                f"checkpoint {source!r}: was written with another held-out evaluation "
                f"(checkpoint, now): {saved}, {self._qa_metadata()}; resume with the same "
                f"--held-out, --eval-every and --seed, or use another --out"
            )
        super().load_state(checkpoint, source)
        if self.history.get(HELD_OUT_KEYS[0]):
            self.latest = self.evaluate_model(self.policy)

    def evaluate(self) -> dict[str, Any]:
        """The summary: held-out accuracy and format rate after RL, the warm-up's, the gain."""
        figures = super().evaluate()
        final = self.latest if self.history.get(HELD_OUT_KEYS[0]) else self.warmup
        return {
            "heldout_accuracy": final.accuracy,
            "heldout_greedy_accuracy": final.greedy_accuracy,
            "format_rate": final.format_rate,
            "warmup_accuracy": self.warmup.accuracy,
            "warmup_greedy_accuracy": self.warmup.greedy_accuracy,
            "warmup_format_rate": self.warmup.format_rate,
            "accuracy_gain": final.accuracy - self.warmup.accuracy,
            "held_out_questions": len(self.questions),
            **figures,
            "examples": final.examples(4),
        }

    def plot(self, run_dir: Path) -> Path | None:
        if not self.history:
            return None
        return plot_qa({self.backend.NAME: self.history}, Path(run_dir) / "qa_curves.png",
                       self.warmup.accuracy, f"{self.settings.algo} on {self.settings.task}")


def plot_qa(
    histories: dict[str, dict[str, list[float]]],
    path: str | Path,
    warmup_accuracy: float | None = None,
    title: str = "",
) -> Path:
    """Held-out pass@1 (left, solid; greedy accuracy dotted) and the training samples'
    success and reward (right) against updates, one line per run; a dashed line at the
    warm-up model's pass@1."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, h in histories.items():
        x, acc = np.asarray(h["update"]), np.asarray(h[HELD_OUT_KEYS[0]], dtype=float)
        seen = np.isfinite(acc)
        axes[0].plot(np.r_[0, x[seen]], np.r_[warmup_accuracy or np.nan, acc[seen]], marker="o",
                     label=f"{label} pass@1")
        if HELD_OUT_KEYS[1] in h:
            greedy = np.asarray(h[HELD_OUT_KEYS[1]], dtype=float)
            axes[0].plot(x[seen], greedy[seen], linestyle=":", marker=".",
                         label=f"{label} greedy")
        axes[1].plot(x, h["success"], label=f"{label} success (sampled)")
        axes[1].plot(x, h["reward"], linestyle=":", label=f"{label} reward")
    if warmup_accuracy is not None:
        axes[0].axhline(warmup_accuracy, color="grey", linestyle="--", linewidth=1,
                        label="supervised warm-up alone")
    for ax, ylabel in ((axes[0], "held-out accuracy"), (axes[1], "training batch")):
        ax.set_xlabel("RL update")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def warm_up(
    backend: ModuleType, settings: QASettings, path: str | Path, progress: bool = True,
    resume: bool = False,
) -> tuple[dict[str, Any], tuple[GPTConfig, dict[str, np.ndarray]]]:
    """The supervised warm-up saved at ``path``: (its run summary, (config, params))."""
    summary = pretrain_reference(backend, settings.task, path, settings.warmup_settings(),
                                 settings.size, progress=progress, resume=resume)
    return summary, load_reference(path, settings.task)


def stored_warm_up(path: str | Path, settings: QASettings
                   ) -> tuple[tuple[GPTConfig, dict[str, np.ndarray]], float]:
    """A warm-up stored for the book's full build (``ch06_3``'s ``DUETRL_RETRAIN=1`` run):
    ((config, params), its last validation loss), checked to be ``settings``' warm-up.

    :raises FileNotFoundError: no such file (the message says how to make it).
    :raises ValueError: it was trained with other steps, batch, learning rate, corpus or seed.
    """
    from duetrl.core.checkpoint import read_file
    from duetrl.core.tutorial import stored_path

    path = stored_path(path, "DUETRL_RETRAIN=1 python "
                             "tutorials/ch06_3_question_answering_with_verifiable_rewards.py")
    saved = read_file(path)[1]
    trained, wanted = saved.get("train_config", {}), settings.warmup_settings()
    found = (trained.get("steps"), trained.get("batch_size"), trained.get("learning_rate"),
             trained.get("seed"), saved.get("task"))
    expected = (wanted.steps, wanted.batch_size, wanted.learning_rate, wanted.seed,
                settings.task)
    if found != expected:
        raise ValueError(f"{path}: a warm-up of (steps, batch, learning rate, seed, task) "
                         f"{found}, expected {expected}; store it again with DUETRL_RETRAIN=1")
    return load_reference(path, settings.task), float(saved["history"]["val_loss"][-1])


def train_qa(
    backend: ModuleType,
    settings: QASettings,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    tensorboard: bool = False,
) -> dict[str, Any]:
    """Warm-up, then RL, under ``out``; the RL run's summary (with ``warmup_seconds``).

    :param resume: continue an interrupted run: the warm-up from its checkpoint (if it is not
        complete), the RL phase from ``out/checkpoint.safetensors`` (same settings; ``updates``
        may grow).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    warmup_path = out / "warmup.safetensors"
    warmup_summary, reference = warm_up(backend, settings, warmup_path, progress,
                                        resume and warmup_path.is_file())
    questions = held_out_questions(settings.family, settings.held_out, settings.seed)
    trainer = QARun(backend, settings.rl_settings(), reference, questions, settings.eval_every)
    resume = resume and (out / "checkpoint.safetensors").is_file()
    summary = run(trainer, out, resume=resume, quiet=not progress,
                  checkpoint_every=settings.checkpoint_every, tensorboard=tensorboard,
                  unit="update")
    summary["warmup_seconds"] = warmup_summary["seconds"]
    summary["warmup_checkpoint"] = str(warmup_path)
    return summary
