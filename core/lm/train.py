"""The pretraining loop, once for both backends (outline 2.1.3, 4.1.3, 9.1.2).

    L(theta) = -1/(B T) sum_{b,t} log p_theta(x_{b,t+1} | x_{b,<=t}),   perplexity = exp(L)

Each step draws a batch from core's RNG (a function of (seed, step)), sets the learning rate
from the warm-up + cosine schedule and calls the backend's ``LMTrainer.train_step`` (forward,
backward, clipping, AdamW). :class:`LMRun` is that step, its evaluation, checkpoint and plot;
the run itself (folder, ``log.csv``, progress bar, checkpoints, Ctrl-C, NaN stop, resume) is
``duetrl.core.run.run``'s. Fine-tuning (9.1.2) is the same run started from a checkpoint's
weights on another corpus, usually with a smaller learning rate.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from duetrl.core.constants import ADAMW_WEIGHT_DECAY, GRAD_CLIP_NORM
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import check_params
from duetrl.core.interfaces.settings import setting
from duetrl.core.lm.data import TokenData, eval_rng, train_rng
from duetrl.core.run import run
from duetrl.core.run.loop import run_paths

GPT_KIND = "duetrl.gpt"
"""The ``kind`` of a GPT checkpoint (duetrl.core.checkpoint): tensor groups ``params`` and
``optim``; metadata ``config``, ``step``, ``history``, ``train_config``, ``tokenizer``."""


@dataclass
class TrainConfig:
    """Settings of a training run (the CLI's flags mirror these fields)."""

    steps: int = setting(1000, "optimiser updates in total (a resumed run continues to it)")
    batch_size: int = setting(16, "windows per batch")
    learning_rate: float = setting(1e-3, "peak learning rate, reached after the warm-up")
    min_learning_rate: float = setting(1e-4, "the cosine decays to this at the last step")
    warmup_steps: int = setting(100, "linear warm-up from 0 to learning_rate")
    weight_decay: float = setting(ADAMW_WEIGHT_DECAY, "AdamW's decoupled decay, matrices only")
    max_grad_norm: float | None = setting(GRAD_CLIP_NORM, "global-norm clipping (None: off)")
    eval_every: int = setting(100, "evaluate every this many steps (and at the end)")
    eval_batches: int = setting(8, "batches per evaluation (always the same ones)")
    checkpoint_every: int = setting(0, "save every this many steps (0: only at the end)")
    seed: int = setting(0, "seed of the batches")

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "eval_every", "eval_batches"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected a positive int, got {getattr(self, name)!r}")
        if self.warmup_steps < 0 or self.checkpoint_every < 0:
            raise ValueError("warmup_steps, checkpoint_every: expected ints >= 0")
        if not self.learning_rate > 0 or self.min_learning_rate < 0:
            raise ValueError(
                f"learning_rate: expected > 0 (and min_learning_rate >= 0), got "
                f"{self.learning_rate!r}, {self.min_learning_rate!r}"
            )


def learning_rate_at(step: int, config: TrainConfig) -> float:
    """Warm-up then cosine decay, for update ``step`` (0-based):

    lr = lr_max (step + 1) / warmup                                  if step < warmup
    lr = lr_min + (lr_max - lr_min) (1 + cos(pi r)) / 2,
         r = (step - warmup) / max(1, steps - warmup - 1)            otherwise
    """
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps - 1)
    progress = min(1.0, progress)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.min_learning_rate + (config.learning_rate - config.min_learning_rate) * cosine


def evaluate(trainer: Any, data: TokenData, config: TrainConfig, split: str = "val") -> float:
    """Mean cross-entropy over ``eval_batches`` fixed batches of ``split``."""
    rng = eval_rng(config.seed)
    losses = [
        trainer.eval_loss(*data.batch(split, config.batch_size, rng))
        for _ in range(config.eval_batches)
    ]
    return float(np.mean(losses))


@dataclass
class TrainResult:
    """What :func:`train` returns: the curves, the final figures, the checkpoint written, and
    the run's whole summary (``duetrl.core.run.BASE_KEYS``, then :meth:`LMRun.evaluate`)."""

    history: dict[str, list[float]] = field(default_factory=dict)
    val_loss: float = float("nan")
    perplexity: float = float("nan")
    tokens_per_second: float = float("nan")
    checkpoint: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)


def _empty_history() -> dict[str, list[float]]:
    return {
        "step": [],
        "train_loss": [],
        "lr": [],
        "grad_norm": [],
        "eval_step": [],
        "val_loss": [],
    }


def check_config(checkpoint: Checkpoint, config: GPTConfig, source: str) -> None:
    """CheckpointError unless ``checkpoint`` holds a GPT of ``config`` (naming the differing
    fields) whose parameters fit it."""
    saved, expected = checkpoint.metadata.get("config"), config.to_dict()
    if saved != expected:
        saved = saved if isinstance(saved, dict) else {}
        differing = {k: (saved.get(k), v) for k, v in expected.items() if saved.get(k) != v}
        raise CheckpointError(f"checkpoint {source!r}: was written with another config; fields "
                              f"(checkpoint, expected): {differing}")
    check_params(checkpoint.tensors.get("params", {}), config, f"checkpoint {source!r}")


def load_gpt_checkpoint(
    path: str | Path, expected_config: GPTConfig | None = None
) -> tuple[GPTConfig, Checkpoint]:
    """Read a GPT checkpoint: ``(its config, the checkpoint)``, parameters checked.

    :param expected_config: if given, the checkpoint's config must equal it.
    :raises CheckpointError: for a missing or damaged file, another kind of checkpoint, an
        invalid config or another one than expected (naming the differing fields), or
        parameters that do not fit the config.
    """
    match = None if expected_config is None else {"config": expected_config.to_dict()}
    checkpoint = load_checkpoint(path, GPT_KIND, match)
    try:
        config = GPTConfig.from_dict(checkpoint.metadata["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {str(path)!r}: invalid config ({error})") from None
    check_params(checkpoint.tensors.get("params", {}), config, f"checkpoint {str(path)!r}")
    return config, checkpoint


class LMRun:
    """Next-token training of one backend's GPT on ``data``: a trainer of ``duetrl.core.run``.

    Update u (0-based) is a function of (weights, Adam state, seed, u) only: its batch comes
    from ``train_rng(seed, u)`` and its learning rate from :func:`learning_rate_at`, so a
    resumed run equals the uninterrupted one.

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf`` (provides ``LMTrainer``,
        ``export_params``, ``import_params``).
    :param model: a ``backend.GPT`` (fine-tuning: already holding the pretrained weights).
    :param metadata: extra facts stored in the checkpoint (e.g. the tokeniser).
    :param plot_name: the loss-curve file :meth:`plot` draws in the run folder (None: none).
    """

    kind = GPT_KIND
    x_key = "update"

    def __init__(
        self,
        backend: ModuleType,
        model: Any,
        data: TokenData,
        config: TrainConfig,
        metadata: dict[str, Any] | None = None,
        plot_name: str | None = None,
    ) -> None:
        self.backend, self.model, self.data, self.config = backend, model, data, config
        self.trainer = backend.LMTrainer(model, config.weight_decay, config.max_grad_norm)
        self.backend_name, self.seed = backend.NAME, config.seed
        self.description = f"train ({backend.NAME})"
        self.metadata, self.plot_name = dict(metadata or {}), plot_name
        self.history = _empty_history()
        self.updates = 0
        self.train_seconds, self.tokens, self._timed = 0.0, 0, False

    def progress(self) -> tuple[int, int]:
        return self.updates, self.config.steps

    def finished(self) -> bool:
        return self.updates >= self.config.steps

    def train_batch(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Step ``step``'s ``(x, y, per-token loss weights)``: next-token windows, every token
        weighted alike (None). SFT (core/rlhf/sft.py) weights the completion's tokens only."""
        x, y = self.data.batch("train", self.config.batch_size, train_rng(self.config.seed, step))
        return x, y, None

    def step(self) -> dict[str, float]:
        """One AdamW update; evaluates every ``eval_every`` steps and at the last one."""
        c, step = self.config, self.updates
        lr = learning_rate_at(step, c)
        x, y, weights = self.train_batch(step)
        began = time.perf_counter()
        loss, grad_norm = self.trainer.train_step(x, y, lr, weights)
        if self._timed:  # the first step of a session traces/warms up: not in the speed
            self.train_seconds += time.perf_counter() - began
            self.tokens += x.size if weights is None else int(weights.sum())  # tokens learned
        self._timed = True
        if not math.isfinite(loss):
            raise FloatingPointError(f"training diverged at step {step + 1}: loss {loss}")
        self.updates = step + 1
        for key, value in (("step", self.updates), ("train_loss", loss), ("lr", lr),
                           ("grad_norm", grad_norm)):
            self.history[key].append(value)
        val_loss = float("nan")  # the log's column; filled where evaluated
        if self.updates % c.eval_every == 0 or self.updates == c.steps:
            val_loss = evaluate(self.trainer, self.data, c)
            self.history["eval_step"].append(self.updates)
            self.history["val_loss"].append(val_loss)
        return {"update": self.updates, "train_loss": float(loss), "lr": lr,
                "grad_norm": float(grad_norm), "val_loss": val_loss}

    def state(self) -> Checkpoint:
        """Tensor groups ``params`` and ``optim``; metadata config, step, history, ..."""
        info = {
            **self.metadata,
            "config": self.model.config.to_dict(),
            "step": self.updates,
            "train_config": asdict(self.config),
            "backend": self.backend.NAME,
            "history": self.history,
        }
        tensors = {"params": self.backend.export_params(self.model),
                   "optim": self.trainer.optimizer.state_arrays()}
        return Checkpoint(GPT_KIND, tensors, info)

    def load_state(self, checkpoint: Checkpoint, source: str) -> None:
        """Weights, Adam moments, step and history; CheckpointError for another config."""
        check_config(checkpoint, self.model.config, source)
        self.backend.import_params(self.model, checkpoint.tensors["params"])
        if checkpoint.tensors.get("optim"):
            self.trainer.optimizer.load_state_arrays(checkpoint.tensors["optim"])
        self.updates = int(checkpoint.metadata["step"])
        saved = checkpoint.metadata.get("history", {})
        self.history = {k: list(v) for k, v in {**_empty_history(), **saved}.items()}

    def evaluate(self) -> dict[str, Any]:
        """val_loss (of the last step; evaluated now if that step was not), perplexity,
        train_tokens_per_second (this session, first step left out), parameters."""
        h = self.history
        if h["eval_step"] and h["eval_step"][-1] == self.updates:
            val_loss = float(h["val_loss"][-1])
        else:  # stopped between evaluations, or nothing left to do: the model as it is
            val_loss = evaluate(self.trainer, self.data, self.config)
        speed = self.tokens / self.train_seconds if self.train_seconds else float("nan")
        return {"val_loss": val_loss, "perplexity": math.exp(val_loss),
                "train_tokens_per_second": speed,
                "parameters": int(self.model.num_parameters())}

    def plot(self, run_dir: Path) -> Path | None:
        if self.plot_name is None or not self.history["step"]:
            return None
        return plot_history({self.backend.NAME: self.history}, Path(run_dir) / self.plot_name)




def train(
    backend: ModuleType,
    model: Any,
    data: TokenData,
    config: TrainConfig,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    metadata: dict[str, Any] | None = None,
    progress: bool = True,
    run_dir: str | Path | None = None,
    tensorboard: bool = False,
) -> TrainResult:
    """Train ``model`` (a ``backend.GPT``) on ``data`` with ``duetrl.core.run.run``.

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``.
    :param checkpoint_path: where to save (every ``checkpoint_every`` steps, at the end and on
        Ctrl-C); None: no checkpoint is kept.
    :param resume: continue from ``checkpoint_path`` if it exists: weights, Adam moments,
        step and history; a checkpoint of another config raises ``CheckpointError``.
    :param metadata: extra facts stored in the checkpoint (e.g. the tokeniser).
    :param progress: show a progress bar on stderr (when it is a terminal).
    :param run_dir: the run folder (log.csv, summary.json); default: :func:`run_folder` of
        ``checkpoint_path``, or a temporary folder without one.
    :param tensorboard: also write the log rows as TensorBoard scalars into the run folder.
    """
    lm = LMRun(backend, model, data, config, metadata)
    with run_paths(checkpoint_path, run_dir) as (folder, checkpoint):
        resume = resume and checkpoint is not None and checkpoint.is_file()
        summary = run(lm, folder, resume=resume, quiet=not progress,
                      checkpoint_every=config.checkpoint_every, tensorboard=tensorboard,
                      checkpoint_file=checkpoint)
    return TrainResult(
        history=lm.history, val_loss=summary["val_loss"], perplexity=summary["perplexity"],
        tokens_per_second=summary["train_tokens_per_second"],
        checkpoint=str(checkpoint) if checkpoint is not None else None, summary=summary,
    )


def plot_history(
    histories: dict[str, dict[str, list[float]]],
    path: str | Path,
    hline: float | None = None,
    title: str = "next-token loss",
) -> Path:
    """Save training and validation loss curves of one or more runs (``{label: history}``)."""
    from duetrl.core.plots import plot_curves

    curves = {}
    for label, h in histories.items():
        curves[f"{label} train"] = (h["step"], h["train_loss"])
        curves[f"{label} val"] = (h["eval_step"], h["val_loss"])
    return plot_curves(
        curves, path, xlabel="step", ylabel="loss (nats/token)", title=title, hline=hline
    )
