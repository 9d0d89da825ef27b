"""Supervised fine-tuning on demonstrations (outline 3.1.1, stage 1 of RLHF), for both backends.

The pretrained reference (``core/rlhf/pi_ref.py``) writes the task's *format* but not its
goal. SFT shows it the goal: demonstrations are a prompt and the ideal completion, written by
a rule per task (the "labeller" of InstructGPT):

=============  ======================================================================
task           demonstration after the prompt
=============  ======================================================================
sort-digits    the prompt's 8 digits, sorted, then the stop (``"31415926:"`` ->
               ``"11234569\\n"``)
sort-prompt    the same: the answer this task asks for
arithmetic     the true sum, then the stop
sentiment      a positive phrase, ``" good and warm."``, then the stop
format         exactly the n letters asked for, then the stop
=============  ======================================================================

Training is next-token cross-entropy **on the completion tokens only**
(``core/reference/rlhf_sft.py``): each backend's ``LMTrainer.train_step`` gets per-token weights
m = 1 on the completion (stop included), 0 on the prompt and the padding. The loop is
``core/lm/train.py``'s (warm-up + cosine, AdamW, a run folder, checkpoints, ``--resume``):
:class:`SFTRun` is its ``LMRun`` with the weights passed. The checkpoint is a GPT checkpoint
(kind ``duetrl.gpt``, metadata ``stage="sft"``) that ``load_reference`` reads, so RL
(``duetrl rlhf train --sft-checkpoint``) starts from it and uses it as the KL reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.checkpoint import CheckpointError
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.settings import setting
from duetrl.core.lm.data import train_rng
from duetrl.core.lm.train import LMRun, TrainConfig
from duetrl.core.rlhf.mdp import SequenceMDP, rollout
from duetrl.core.rlhf.pi_ref import load_reference
from duetrl.core.rlhf.preferences import encode_completions
from duetrl.core.rlhf.tasks import (
    FORMAT_LETTERS,
    POSITIVE,
    STOP,
    TextTask,
    get_task,
)
from duetrl.core.run import run
from duetrl.core.run.loop import run_paths

Demonstrator = Callable[[str, np.random.Generator], str]
"""``demonstrator(prompt, rng) -> completion`` (stop included): the ideal answer to a prompt."""


def _sort_demo(prompt: str, rng: np.random.Generator) -> str:
    return "".join(sorted(prompt.rstrip(":"))) + STOP  # "31415926:" -> "11234569\n"


def _arithmetic_demo(prompt: str, rng: np.random.Generator) -> str:
    a, b = prompt.rstrip("=").split("+")
    return str(int(a) + int(b)) + STOP


def _sentiment_demo(prompt: str, rng: np.random.Generator) -> str:
    a, b = (POSITIVE[i] for i in rng.integers(0, len(POSITIVE), size=2))
    return f" {a} and {b}." + STOP


def _format_demo(prompt: str, rng: np.random.Generator) -> str:
    n = int(prompt[len("len="):-1])
    return "".join(FORMAT_LETTERS[i] for i in rng.integers(0, len(FORMAT_LETTERS), size=n)) + STOP


DEMONSTRATORS: dict[str, Demonstrator] = {
    "sort-digits": _sort_demo,
    "sort-prompt": _sort_demo,  # the answer the task asks for: the prompt's digits, sorted
    "arithmetic": _arithmetic_demo,
    "sentiment": _sentiment_demo,
    "format": _format_demo,
}
"""The demonstration rule of each task that has one (kept here, not on ``TextTask``)."""


def demonstrator(task: str | TextTask) -> Demonstrator:
    """The demonstration rule of ``task``.

    :raises ValueError: naming the task and the tasks that have demonstrations.
    """
    name = get_task(task).name
    if name not in DEMONSTRATORS:
        raise ValueError(f"task: {name!r} has no demonstrations for SFT; tasks with "
                         f"demonstrations: {list(DEMONSTRATORS)}")
    return DEMONSTRATORS[name]


def make_demonstrations(
    task: str | TextTask, n: int, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """``n`` demonstrations ``(prompts, completions)``, prompts drawn with ``rng``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive int (demonstrations), got {n!r}")
    task = get_task(task)
    demo = demonstrator(task)
    prompts = task.prompts(n, rng)
    return prompts, [demo(p, rng) for p in prompts]


class DemonstrationData:
    """SFT batches ``(x, y, w)`` of demonstrations: ``x`` = rows[:, :-1], ``y`` = rows[:, 1:]
    ``(B, T-1)`` ids and ``w`` the completion mask m ``(B, T-1)`` of ``core/reference/rlhf_sft.py``
    (``encode_completions``: prompt + completion, right-padded with the stop id). The last
    ``val_fraction`` of the demonstrations is held out."""

    def __init__(self, task: str | TextTask, prompts: list[str], completions: list[str],
                 val_fraction: float = 0.1) -> None:
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction: expected a value in (0, 1), got {val_fraction!r}")
        self.mdp = SequenceMDP.for_task(task, "pretrained")
        tokens, mask = encode_completions(self.mdp, prompts, completions)
        split = int(len(prompts) * (1.0 - val_fraction))
        if split < 1 or split == len(prompts):
            raise ValueError(f"prompts: expected enough demonstrations for a train and a val "
                             f"split, got {len(prompts)}")
        self.splits = {"train": (tokens[:split], mask[:split]),
                       "val": (tokens[split:], mask[split:])}

    def batch(self, split: str, batch_size: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        tokens, mask = self.splits[split]
        rows = rng.integers(0, len(tokens), size=batch_size)
        return tokens[rows, :-1], tokens[rows, 1:], mask[rows]  # (B, T-1) each


@dataclass(frozen=True)
class SFTSettings:
    """How the reference is fine-tuned on demonstrations (``duetrl rlhf sft``)."""

    steps: int = setting(150, "AdamW updates on the demonstrations")
    batch_size: int = setting(32, "demonstrations per update")
    learning_rate: float = setting(3e-3, "peak learning rate (warm-up, then cosine)")
    demonstrations: int = setting(256, "demonstrations (a tenth held out)")
    seed: int = setting(0, "seed of the demonstrations and the batches")

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "demonstrations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if self.demonstrations < 2:
            raise ValueError(f"demonstrations: expected >= 2 (a train and a val split), got "
                             f"{self.demonstrations!r}")
        if not (isinstance(self.learning_rate, int | float) and self.learning_rate > 0):
            raise ValueError(f"learning_rate: expected > 0, got {self.learning_rate!r}")

    def train_config(self) -> TrainConfig:
        return TrainConfig(steps=self.steps, batch_size=self.batch_size,
                           learning_rate=self.learning_rate,
                           min_learning_rate=self.learning_rate / 10,
                           warmup_steps=max(1, self.steps // 10), eval_every=self.steps,
                           eval_batches=2, seed=self.seed)


class SFTRun(LMRun):
    """``LMRun`` (core/lm/train.py) on :class:`DemonstrationData`: each step hands the
    completion mask to ``LMTrainer.train_step`` as per-token weights; evaluation is the masked
    loss on held-out demonstrations."""

    def train_batch(self, step: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Demonstrations, with the completion mask as the loss's per-token weights: L_SFT."""
        c = self.config
        return self.data.batch("train", c.batch_size, train_rng(c.seed, step))


def policy_figures(
    backend: ModuleType, model: Any, task: str | TextTask, num: int = 64, seed: int = 0,
    reward_fn: Callable | None = None,
) -> dict[str, float]:
    """The task's TRUE reward and success rate of ``model``'s samples on ``num`` fixed prompts
    (one completion each, noise from ``seed``: every stage is scored on the same prompts and
    noise), the share that stopped and, with ``reward_fn`` (a reward model), its mean score."""
    task = get_task(task)
    mdp = SequenceMDP.for_task(task, "pretrained")
    prompts = task.prompts(num, np.random.default_rng((seed, 17)))
    data = rollout(backend, model, None, mdp, prompts, 1, seed=seed)
    figures = {"true_reward": float(data.rewards.mean()),
               "success": float(data.success.mean()),
               "stopped": float(data.stopped.mean())}
    if reward_fn is not None:
        figures["learned_reward"] = float(np.mean(reward_fn(data.prompts, data.completions)))
    return figures


def supervised_fine_tune(
    backend: ModuleType,
    task: str | TextTask,
    reference: str | Path | tuple[GPTConfig, dict[str, np.ndarray]],
    path: str | Path | None = None,
    settings: SFTSettings = SFTSettings(),
    progress: bool = False,
    resume: bool = False,
    tensorboard: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune the pretrained ``reference`` on ``task``'s demonstrations (masked loss).

    :param reference: the pretrained reference's checkpoint path, or its ``(config, params)``.
    :param path: the SFT checkpoint to write (kind ``duetrl.gpt``, metadata ``stage="sft"``);
        its run folder is ``<path stem>_run/`` beside it. None: not saved.
    :returns: ``(model, summary)``: the fine-tuned ``backend.GPT`` and the run's summary
        (``duetrl.core.run.BASE_KEYS``, val_loss, ...) with task, true_reward, success,
        stopped of its samples (:func:`policy_figures`) and ``checkpoint``.
    """
    task = get_task(task)
    config, params = (load_reference(reference, task) if isinstance(reference, str | Path)
                      else reference)
    prompts, completions = make_demonstrations(task, settings.demonstrations,
                                               np.random.default_rng((settings.seed, 19)))
    data = DemonstrationData(task, prompts, completions)
    model = backend.GPT(config)
    backend.import_params(model, params)
    metadata = {"tokenizer": data.mdp.tokenizer.to_dict(), "task": task.name,
                "reference": True, "stage": "sft",
                "init": str(reference) if isinstance(reference, str | Path) else ""}
    trainer = SFTRun(backend, model, data, settings.train_config(), metadata)
    with run_paths(path) as (folder, checkpoint):
        resume = resume and checkpoint is not None and checkpoint.is_file()
        summary = run(trainer, folder, resume=resume, quiet=not progress,
                      tensorboard=tensorboard, checkpoint_file=checkpoint)
    if path is None:
        summary["checkpoint"] = None
    summary.update(task=task.name, **policy_figures(backend, model, task, seed=settings.seed))
    return model, summary


def load_sft(path: str | Path, task: str | TextTask,
             flag: str = "sft_checkpoint") -> tuple[GPTConfig, dict[str, np.ndarray]]:
    """An SFT checkpoint's ``(config, params)``, checked: a GPT checkpoint of ``task`` written
    by :func:`supervised_fine_tune`.

    :raises CheckpointError: naming ``flag`` for a missing, damaged or mismatched file (another
        kind, another task's vocabulary, or a checkpoint that is no SFT model).
    """
    from duetrl.core.checkpoint import read_file

    task = get_task(task)
    if not Path(path).is_file():
        raise CheckpointError(f"{flag}: no file at {str(path)!r}; make one with `duetrl rlhf "
                              f"sft --task {task.name} --out {path}`")
    try:
        config, params = load_reference(path, task)
        _, metadata = read_file(path)
    except (CheckpointError, ValueError) as error:
        raise CheckpointError(f"{flag}: {error}") from None
    if metadata.get("stage") != "sft" or metadata.get("task") != task.name:
        raise CheckpointError(
            f"{flag}: {str(path)!r} is no SFT checkpoint of task {task.name!r} (stage "
            f"{metadata.get('stage', 'pretrained')!r}, task {metadata.get('task')!r}); make one "
            f"with `duetrl rlhf sft --task {task.name}`")
    return config, params
