"""The pretraining loop, once for both backends (outline 2.1.3, 4.1.3, 9.1.2).

    L(theta) = -1/(B T) sum_{b,t} log p_theta(x_{b,t+1} | x_{b,<=t}),   perplexity = exp(L)

Each step draws a batch from core's RNG, sets the learning rate from the warm-up + cosine
schedule and calls the backend's ``LMTrainer.train_step`` (forward, backward, clipping, AdamW).
Evaluation, checkpoints (atomic, resumable), the progress bar and the loss-curve plot live
here. Fine-tuning (9.1.2) is the same loop started from a checkpoint's weights on another
corpus, usually with a smaller learning rate.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from duetrl.core.constants import ADAMW_WEIGHT_DECAY, GRAD_CLIP_NORM
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import check_params
from duetrl.core.lm.data import TokenData, eval_rng, train_rng

GPT_KIND = "duetrl.gpt"
"""The ``kind`` of a GPT checkpoint (duetrl.core.checkpoint): tensor groups ``params`` and
``optim``; metadata ``config``, ``step``, ``history``, ``train_config``, ``tokenizer``."""


@dataclass
class TrainConfig:
    """Settings of a training run (the CLI's flags mirror these fields)."""

    steps: int = 1000  # optimiser updates in total (a resumed run continues to this number)
    batch_size: int = 16  # windows per batch
    learning_rate: float = 1e-3  # peak learning rate, reached at the end of the warm-up
    min_learning_rate: float = 1e-4  # the cosine decays to this at the last step
    warmup_steps: int = 100  # linear warm-up from 0 to learning_rate
    weight_decay: float = ADAMW_WEIGHT_DECAY  # AdamW's decoupled decay, matrices only
    max_grad_norm: float | None = GRAD_CLIP_NORM  # global-norm clipping (None: off)
    eval_every: int = 100  # evaluate every this many steps (and at the end)
    eval_batches: int = 8  # batches per evaluation (always the same ones)
    checkpoint_every: int = 0  # save every this many steps (0: only at the end)
    seed: int = 0  # seed of the batches

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
    """What :func:`train` returns: the curves, the final figures, the checkpoint written."""

    history: dict[str, list[float]] = field(default_factory=dict)
    val_loss: float = float("nan")
    perplexity: float = float("nan")
    tokens_per_second: float = float("nan")
    checkpoint: str | None = None


def _empty_history() -> dict[str, list[float]]:
    return {
        "step": [],
        "train_loss": [],
        "lr": [],
        "grad_norm": [],
        "eval_step": [],
        "val_loss": [],
    }


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


def train(
    backend: ModuleType,
    model: Any,
    data: TokenData,
    config: TrainConfig,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    metadata: dict[str, Any] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` (a ``backend.GPT``) on ``data``.

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf`` (provides ``LMTrainer``,
        ``export_params``, ``import_params``).
    :param checkpoint_path: where to save (every ``checkpoint_every`` steps and at the end).
    :param resume: continue from ``checkpoint_path`` if it exists: weights, Adam moments,
        step and history; a checkpoint of another config raises ``CheckpointError``.
    :param metadata: extra facts stored in the checkpoint (e.g. the tokeniser).
    :param progress: show a tqdm progress bar on stderr.
    """
    trainer = backend.LMTrainer(model, config.weight_decay, config.max_grad_norm)
    history, start = _empty_history(), 0
    if resume and checkpoint_path is not None and Path(checkpoint_path).is_file():
        _, saved = load_gpt_checkpoint(checkpoint_path, expected_config=model.config)
        backend.import_params(model, saved.tensors["params"])
        if saved.tensors.get("optim"):
            trainer.optimizer.load_state_arrays(saved.tensors["optim"])
        start = int(saved.metadata["step"])
        history = {**_empty_history(), **saved.metadata.get("history", {})}

    def save(step: int) -> str:
        info = {
            **(metadata or {}),
            "config": model.config.to_dict(),
            "step": step,
            "train_config": asdict(config),
            "backend": backend.NAME,
            "history": history,
        }
        params, optim = backend.export_params(model), trainer.optimizer.state_arrays()
        tensors = {"params": params, "optim": optim}
        return str(save_checkpoint(checkpoint_path, Checkpoint(GPT_KIND, tensors, info)))

    from tqdm.auto import tqdm

    bar = tqdm(
        range(start, config.steps),
        initial=start,
        total=config.steps,
        file=sys.stderr,
        disable=not progress,
        desc=f"train ({backend.NAME})",
    )
    train_seconds, tokens = 0.0, 0
    result = TrainResult(history=history)
    for step in bar:
        lr = learning_rate_at(step, config)
        x, y = data.batch("train", config.batch_size, train_rng(config.seed, step))
        began = time.perf_counter()
        loss, grad_norm = trainer.train_step(x, y, lr)
        if step > start:  # the first step traces/warms up; leave it out of the speed
            train_seconds += time.perf_counter() - began
            tokens += x.size
        for key, value in (
            ("step", step + 1),
            ("train_loss", loss),
            ("lr", lr),
            ("grad_norm", grad_norm),
        ):
            history[key].append(value)
        if not math.isfinite(loss):
            raise FloatingPointError(f"training diverged at step {step + 1}: loss {loss}")
        last = step + 1 == config.steps
        if (step + 1) % config.eval_every == 0 or last:
            history["eval_step"].append(step + 1)
            history["val_loss"].append(evaluate(trainer, data, config))
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{history['val_loss'][-1]:.3f}")
        if checkpoint_path is not None and (
            last or (config.checkpoint_every and (step + 1) % config.checkpoint_every == 0)
        ):
            result.checkpoint = save(step + 1)
    bar.close()
    if not history["val_loss"]:  # nothing left to do: report the loaded model
        history["eval_step"].append(start)
        history["val_loss"].append(evaluate(trainer, data, config))
    result.val_loss = history["val_loss"][-1]
    result.perplexity = math.exp(result.val_loss)
    result.tokens_per_second = tokens / train_seconds if train_seconds else float("nan")
    return result


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
