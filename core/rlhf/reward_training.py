"""Training a reward model on preference pairs with the Bradley-Terry loss (outline 2.3.2,
3.1.4), as a trainer of ``duetrl.core.run``: log.csv as it goes, a usable checkpoint on
Ctrl-C, a stop on NaN, ``--resume``.

    L(phi) = -1/N sum_n log sigmoid(r_phi(x_n, y_w,n) - r_phi(x_n, y_l,n))

Pairs, initial weights and the batches come from NumPy with ``settings.seed`` (the batch
generator's state is saved in the checkpoint), so both backends start from the same model and
see the same batches, and a resumed run equals the uninterrupted one. After training the model
is calibrated (core/rlhf/reward_model.py) and scored on held-out pairs.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.checkpoint import Checkpoint, CheckpointError, require_same_settings
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.settings import setting
from duetrl.core.rlhf.mdp import SequenceMDP
from duetrl.core.rlhf.preferences import PreferencePairs, make_preference_pairs, pair_batch
from duetrl.core.rlhf.reward_model import (
    REWARD_MODEL_KIND,
    RewardModel,
    calibrate,
    reward_model_checkpoint,
)
from duetrl.core.rlhf.tasks import get_task
from duetrl.core.run import run
from duetrl.core.run.loop import run_paths

RESUMABLE = ("steps",)
"""Settings a resumed run may change (the warm-up, 10% of ``steps``, then differs)."""


@dataclass
class RewardModelSettings:
    """How a reward model is trained (every field is a ``duetrl rlhf reward-model`` flag)."""

    task: str = setting("sort-digits", "text task whose reward labels")
    pairs: int = setting(256, "training preference pairs (ties dropped)")
    held_out: int = setting(1024, "held-out pairs for the accuracy")
    label_noise: float = setting(0.0, "probability a label is flipped")
    steps: int = setting(300, "Adam steps on the Bradley-Terry loss")
    batch_size: int = setting(64, "pairs per step")
    learning_rate: float = setting(3e-3, "Adam step size")
    n_layer: int = setting(1, "GPT blocks of the reward model")
    n_head: int = setting(2, "attention heads")
    n_embd: int = setting(16, "model width")
    # seed 1: a reward model RL exploits within 80 updates at beta <= 0.01 (seeds 1 and 2 of
    # 0-3 do; 0 and 3 happen to reward repeated digits, which are sorted: see the tutorial)
    seed: int = setting(1, "seeds the pairs, the weights and the batches")

    def __post_init__(self) -> None:
        get_task(self.task)
        for name in ("pairs", "held_out", "steps", "batch_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if not (isinstance(self.label_noise, int | float) and 0.0 <= self.label_noise < 0.5):
            raise ValueError(
                f"label_noise: expected a probability in [0, 0.5) (0.5 erases the labels), got "
                f"{self.label_noise!r}"
            )
        if not (isinstance(self.learning_rate, int | float) and self.learning_rate > 0):
            raise ValueError(f"learning_rate: expected > 0, got {self.learning_rate!r}")


def reward_model_fields() -> list[dataclasses.Field]:
    """The fields of :class:`RewardModelSettings`, for building command-line flags."""
    return list(dataclasses.fields(RewardModelSettings))


class RewardModelTrainer:
    """Bradley-Terry training of one backend's :class:`RewardModel`: a ``duetrl.core.run``
    trainer (one step = one Adam step on ``batch_size`` pairs).

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``.
    :param settings: the run's :class:`RewardModelSettings` (None: the defaults).
    :param extra_pairs: more training pairs, appended to the ``settings.pairs`` drawn from
        the reference distribution (e.g. the policy's own samples, ``label_pairs``).
    """

    kind = REWARD_MODEL_KIND
    x_key = "update"

    def __init__(
        self,
        backend: ModuleType,
        settings: RewardModelSettings | None = None,
        extra_pairs: PreferencePairs | None = None,
    ) -> None:
        s = self.settings = settings if settings is not None else RewardModelSettings()
        self.backend, self.task = backend, get_task(s.task)
        self.mdp = SequenceMDP.for_task(self.task, "pretrained")
        config = GPTConfig(vocab_size=self.mdp.vocab_size, block_size=self.mdp.sequence_length,
                           n_layer=s.n_layer, n_head=s.n_head, n_embd=s.n_embd)
        pairs = make_preference_pairs(self.task, s.pairs, np.random.default_rng((s.seed, 11)),
                                      s.label_noise)
        if extra_pairs is not None and len(extra_pairs):
            pairs = PreferencePairs(
                pairs.prompts + list(extra_pairs.prompts),
                pairs.chosen + list(extra_pairs.chosen),
                pairs.rejected + list(extra_pairs.rejected),
                np.concatenate([pairs.true_margin, extra_pairs.true_margin]),
            )
        self.pairs = pairs
        self.held_out = make_preference_pairs(self.task, s.held_out,
                                              np.random.default_rng((s.seed, 12)))
        self.model = RewardModel(backend, self.task, config, seed=s.seed)
        self.learner = backend.RLHFLearner(self.model.trunk, self.model.head,
                                           learning_rate=s.learning_rate)
        self.batch_rng = np.random.default_rng((s.seed, 13))
        self.batch = min(s.batch_size, len(pairs))  # one batch shape: TF traces once
        self.backend_name, self.seed = backend.NAME, s.seed
        self.description = f"reward model ({backend.NAME})"
        self.updates, self.seconds = 0, 0.0
        self.losses: list[float] = []
        self._figures: tuple[int, dict[str, Any]] | None = None

    def progress(self) -> tuple[int, int]:
        return self.updates, self.settings.steps

    def finished(self) -> bool:
        return self.updates >= self.settings.steps

    def step(self) -> dict[str, float]:
        """One Adam step on a batch of pairs; linear warm-up over the first 10% of steps."""
        s, began = self.settings, time.perf_counter()
        lr = s.learning_rate * min(1.0, (self.updates + 1) / max(1, s.steps // 10))
        self.learner.learning_rate = lr
        rows = self.batch_rng.choice(len(self.pairs), size=self.batch, replace=False)
        stats = self.learner.update(pair_batch(self.mdp, self.pairs, rows), "reward_model")
        if not math.isfinite(stats["loss"]):
            raise FloatingPointError(f"reward model diverged at step {self.updates + 1}: {stats}")
        self.updates += 1
        self.losses.append(float(stats["loss"]))
        self.seconds += time.perf_counter() - began
        return {"update": self.updates, "loss": float(stats["loss"]),
                "accuracy": float(stats["accuracy"]), "learning_rate": lr}

    def figures(self) -> dict[str, Any]:
        """Calibrate the model as it is now and score it: task, pairs, train_accuracy,
        held_out_accuracy (fresh pairs, no label noise), loss (mean of the last 10% of
        steps), seconds, parameters. Computed once per update count."""
        if self._figures is not None and self._figures[0] == self.updates:
            return self._figures[1]
        began, model = time.perf_counter(), self.model
        model.calibration = calibrate(model, 2048, np.random.default_rng((self.seed, 14)))
        tail = max(1, math.ceil(0.1 * len(self.losses)))
        figures = {
            "task": self.task.name,
            "pairs": len(self.pairs),
            "train_accuracy": model.pair_accuracy(self.pairs),
            "held_out_accuracy": model.pair_accuracy(self.held_out),
            "loss": float(np.mean(self.losses[-tail:])) if self.losses else float("nan"),
            "seconds": self.seconds + time.perf_counter() - began,
            "parameters": int(sum(v.size for group in model.state().values()
                                  for v in group.values())),
        }
        self._figures = (self.updates, figures)
        return figures

    def state(self) -> Checkpoint:
        """A usable reward model (calibrated now) plus what a resumed run needs: Adam's state,
        the update count, the batch generator's state and the loss history."""
        checkpoint = reward_model_checkpoint(self.model, self.settings,
                                             {"backend": self.backend_name, **self.figures()})
        checkpoint.tensors["optim"] = self.learner.optimizer.state_arrays()
        checkpoint.metadata.update(update=self.updates, pairs=len(self.pairs),
                                   batch_rng=self.batch_rng.bit_generator.state,
                                   history={"loss": self.losses})
        return checkpoint

    def load_state(self, checkpoint: Checkpoint, source: str) -> None:
        """Continue from :meth:`state`; CheckpointError for other settings or pairs."""
        meta, now = checkpoint.metadata, asdict(self.settings)
        require_same_settings(meta.get("settings", {}), now, source, RESUMABLE, defaults=now)
        if meta.get("pairs", len(self.pairs)) != len(self.pairs):
            raise CheckpointError(f"checkpoint {source!r}: was written with other settings; "
                                  f"{meta['pairs']} preference pairs (with extra_pairs), this run "
                                  f"has {len(self.pairs)}")
        b = self.backend
        b.import_params(self.model.trunk, checkpoint.tensors["params"])
        b.import_params(self.model.head, checkpoint.tensors["head"])
        if checkpoint.tensors.get("optim"):
            self.learner.optimizer.load_state_arrays(checkpoint.tensors["optim"])
        # a file of the previous version was written once, at the end of its steps
        self.updates = int(meta.get("update", {**now, **meta.get("settings", {})}["steps"]))
        if "batch_rng" in meta:
            self.batch_rng.bit_generator.state = meta["batch_rng"]
        self.losses = [float(v) for v in meta.get("history", {}).get("loss", [])]

    def evaluate(self) -> dict[str, Any]:
        return dict(self.figures())

    def plot(self, run_dir: Path) -> Path | None:
        return None


def train_reward_model(
    backend: ModuleType, settings: RewardModelSettings | None = None,
    path: str | Path | None = None, progress: bool = False,
    extra_pairs: PreferencePairs | None = None, resume: bool = False,
    tensorboard: bool = False,
) -> tuple[RewardModel, dict[str, Any]]:
    """Fit a reward model to ``settings.pairs`` labelled pairs with the Bradley-Terry loss, by
    ``duetrl.core.run.run`` (its run folder: ``<path stem>_run/`` beside ``path``).

    :param path: where to save it (kind ``duetrl.reward_model``); None: not saved.
    :param extra_pairs: more training pairs (see :class:`RewardModelTrainer`).
    :param resume: continue from ``path`` if it holds an unfinished run of the same settings.
    :returns: ``(model, figures)``: the run's summary (``duetrl.core.run.BASE_KEYS``, then
        task, pairs, train_accuracy, held_out_accuracy, loss, seconds, parameters);
        ``checkpoint`` is None without ``path``.
    """
    trainer = RewardModelTrainer(backend, settings, extra_pairs)
    with run_paths(path) as (folder, checkpoint):
        resume = resume and checkpoint is not None and checkpoint.is_file()
        figures = run(trainer, folder, resume=resume, quiet=not progress,
                      tensorboard=tensorboard, checkpoint_file=checkpoint)
    if path is None:
        figures["checkpoint"] = None
    return trainer.model, figures
