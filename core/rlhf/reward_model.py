"""A reward model learned from preferences (outline 2.3.2, 3.1.4, 9.2.1), once for both backends.

RLHF rarely has the reward function; it has people's choices between two answers. A reward
model r_phi is a GPT with a scalar head (``backend.ValueHead``) read at the last completion
token, fitted to pairs (y_w preferred to y_l, same prompt x) with the Bradley-Terry model

    P(y_w > y_l | x) = sigmoid(r_phi(x, y_w) - r_phi(x, y_l)),
    L(phi) = -1/N sum_n log sigmoid(r_phi(x_n, y_w,n) - r_phi(x_n, y_l,n))

(``core/reference/rlhf.bradley_terry_loss``; each backend's ``RLHFLearner.update(batch,
"reward_model")``). Only differences of r_phi are identified, so after training it is
calibrated by an affine map that leaves every preference unchanged: on fresh samples of the
reference distribution its mean and std are set to those of the true reward there,

    r_learned(x, y) = mu_true + sigma_true (r_phi(x, y) - mu_phi) / sigma_phi,

so learned and true reward start equal on average and can be drawn on one axis.

Here the "annotator" is a rule the policy never sees: the task's own reward. Pairs are two
completions of one prompt drawn from the reference distribution (the task's corpus, which the
pretrained pi_ref imitates: on sort-digits, 8 uniform digits and the stop token); the one with
the higher true reward is chosen, ties are dropped, and with probability ``label_noise`` the
label is flipped. A small model, few pairs and pairs only from pi_ref make r_phi an imperfect,
exploitable proxy: RL against it at a small KL coefficient drives the policy where r_phi was
never trained, and the learned reward keeps rising while the true reward falls (Gao, Schulman
and Hilton 2022, "Scaling laws for reward model overoptimization").

The pairs live in ``core/rlhf/preferences.py``, the training in
``core/rlhf/reward_training.py``, RL against the model in ``core/rlhf/overoptimisation.py``;
this file is the model itself, with its save and load.

Example:
    >>> backend = load_backend("torch")
    >>> model, figures = train_reward_model(backend, RewardModelSettings(pairs=512))
    >>> figures["held_out_accuracy"]  # share of held-out pairs ranked as the rule ranks them
    >>> model(["31415926:"], ["01234567\\n"])  # (1,) learned reward, usable as a RewardFn
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.interfaces.rlhf import init_value_head_params
from duetrl.core.rlhf.mdp import SequenceMDP
from duetrl.core.rlhf.preferences import PreferencePairs, encode_completions
from duetrl.core.rlhf.tasks import TextTask, check_rewards, get_task

REWARD_MODEL_KIND = "duetrl.reward_model"
"""The ``kind`` of a reward-model checkpoint: tensor groups ``params`` (the GPT trunk), ``head``
(the scalar head) and, from a training run, ``optim``; metadata task, config, tokenizer,
settings, calibration, figures (and a training run's update, batch_rng, history, pairs)."""


class RewardModel:
    """r(x, y): a backend's GPT trunk, a scalar head read at the last completion token, and
    the affine calibration of the module docstring. Call it as a ``RewardFn``.

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``.
    :param task: the task whose texts it scores (its tokeniser and length limit).
    :param config: the trunk's GPTConfig (the task's vocabulary).
    :param params: canonical trunk parameters (None: GPT-2 initialisation with ``seed``).
    :param head_params: canonical head parameters (None: core's initialiser with ``seed``).
    :param calibration: ``(mu_phi, sigma_phi, mu_true, sigma_true)``; None: the identity.
    """

    def __init__(
        self,
        backend: ModuleType,
        task: str | TextTask,
        config: GPTConfig,
        params: dict[str, np.ndarray] | None = None,
        head_params: dict[str, np.ndarray] | None = None,
        calibration: tuple[float, float, float, float] | None = None,
        seed: int = 0,
    ) -> None:
        self.backend, self.task = backend, get_task(task)
        self.mdp = SequenceMDP.for_task(self.task, "pretrained")
        self.mdp.check_policy(config, name="reward model")
        self.config = config
        self.trunk = backend.GPT(config)
        self.head = backend.ValueHead(config.n_embd, seed=None)
        backend.import_params(self.trunk, params if params is not None else
                              init_gpt_params(config, seed))
        backend.import_params(self.head, head_params if head_params is not None else
                              init_value_head_params(config.n_embd, seed))
        self.calibration = calibration or (0.0, 1.0, 0.0, 1.0)

    def raw_scores(self, tokens: np.ndarray, mask: np.ndarray, batch: int = 512) -> np.ndarray:
        """r_phi ``(N,)``: the head's value at each row's last completion token (no gradient)."""
        b, out = self.backend, []
        for start in range(0, len(tokens), batch):
            rows = slice(start, start + batch)
            values = self.head(b.hidden_states(self.trunk, tokens[rows]))  # (n, T)
            out.append(b.to_numpy(b.sequence_scores(values, mask[rows])).astype(np.float64))
        return np.concatenate(out) if out else np.zeros(0)

    def scores(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Calibrated r_learned = mu_true + sigma_true (r_phi - mu_phi) / sigma_phi, ``(N,)``."""
        mu_phi, sigma_phi, mu_true, sigma_true = self.calibration
        return mu_true + sigma_true * (self.raw_scores(tokens, mask) - mu_phi) / sigma_phi

    def __call__(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """The learned reward of each completion: a ``RewardFn`` ``(N,)`` float64."""
        tokens, mask = encode_completions(self.mdp, prompts, completions)
        return check_rewards(self.scores(tokens, mask), len(completions), name="reward model")

    def pair_accuracy(self, pairs: PreferencePairs) -> float:
        """Share of ``pairs`` with r(y_w) > r(y_l): the pairwise (held-out) accuracy."""
        chosen = self.raw_scores(*encode_completions(self.mdp, pairs.prompts, pairs.chosen))
        rejected = self.raw_scores(*encode_completions(self.mdp, pairs.prompts, pairs.rejected))
        return float(np.mean(chosen > rejected))

    def state(self) -> dict[str, dict[str, np.ndarray]]:
        """Tensor groups of a checkpoint: the trunk's and the head's canonical parameters."""
        return {"params": self.backend.export_params(self.trunk),
                "head": self.backend.export_params(self.head)}


def calibrate(model: RewardModel, num: int, rng: np.random.Generator) -> tuple[float, ...]:
    """``(mu_phi, sigma_phi, mu_true, sigma_true)`` on ``num`` fresh reference completions."""
    task = model.task
    prompts = task.prompts(num, rng)
    completions = [task.completion_fn(p, rng) for p in prompts]
    raw = model.raw_scores(*encode_completions(model.mdp, prompts, completions))
    true = task.rewards(prompts, completions)
    return (float(raw.mean()), float(raw.std()) or 1.0, float(true.mean()),
            float(true.std()) or 1.0)


def save_reward_model(
    path: str | Path, model: RewardModel, settings: Any = None,
    figures: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` (kind ``duetrl.reward_model``) through ``core/checkpoint.py``.

    :param settings: the ``RewardModelSettings`` it was trained with (a dataclass), if any.
    :param figures: its figures (``train_reward_model``'s), stored without ``checkpoint``.
    """
    return save_checkpoint(path, reward_model_checkpoint(model, settings, figures))


def reward_model_checkpoint(
    model: RewardModel, settings: Any = None, figures: dict[str, Any] | None = None
) -> Checkpoint:
    """The checkpoint of ``model``: tensor groups params and head; metadata task, config,
    tokenizer, calibration, settings, figures."""
    metadata = {
        "task": model.task.name,
        "config": model.config.to_dict(),
        "tokenizer": model.mdp.tokenizer.to_dict(),
        "calibration": list(model.calibration),
        "settings": asdict(settings) if settings is not None else {},
        "figures": {k: v for k, v in (figures or {}).items() if k != "checkpoint"},
    }
    return Checkpoint(REWARD_MODEL_KIND, model.state(), metadata)


def load_reward_model(
    backend: ModuleType, path: str | Path, task: str | TextTask | None = None
) -> RewardModel:
    """A saved reward model in ``backend`` (either backend loads a file of the other).

    :param task: the task it must score (None: the file's).
    :raises CheckpointError: for a missing or damaged file, another kind of checkpoint (an RL
        run, a reference GPT) or a reward model of another task.
    """
    checkpoint = load_checkpoint(path, REWARD_MODEL_KIND)
    saved_task = checkpoint.metadata.get("task")
    if task is not None and get_task(task).name != saved_task:
        raise CheckpointError(
            f"reward_model: {str(path)!r} scores task {saved_task!r}, not {get_task(task).name!r}"
        )
    config = GPTConfig.from_dict(checkpoint.metadata["config"])
    calibration = tuple(float(v) for v in checkpoint.metadata["calibration"])
    return RewardModel(backend, saved_task, config, checkpoint.tensors["params"],
                       checkpoint.tensors["head"], calibration)  # type: ignore[arg-type]
