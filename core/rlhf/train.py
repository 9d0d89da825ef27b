"""The RL-for-language-models training loop, once for both backends (outline 3.1.1, 3.1.5).

Per update u:

1. draw prompts (core's RNG, a function of (seed, u)) and sample k completions each with the
   policy (``core/rlhf/mdp.rollout``: noise from core, so both backends pick the same tokens);
2. score them with the task's reward r and the frozen reference's log-probs (KL estimates);
3. turn scores into advantages on host arrays (``core/reference/rlhf.py``):

   =========  ===========================================================================
   reinforce  R_i = r_i - beta KL_i,  A_i = R_i - mean_batch R      (KL_i = sum_t k1_t)
   rloo       R_i = r_i - beta KL_i,  A_i = R_i - mean_{j != i in the group} R_j
   grpo       A_i = (r_i - mean_g r) / (std_g r + 1e-4);  beta k3_t in the loss instead
   ppo        r_t = -beta k1_t (+ r at the last token), GAE(gamma=1, lambda) with the value
              head, whitened; ``epochs`` clipped steps on the batch
   dpo        pairs (best, worst of each group by r, ties dropped) of the policy's samples
              (online DPO, ``dpo_pairs="policy"``) or of pi_ref's (offline, "reference")
   =========  ===========================================================================

   k1 folded into the reward (reinforce, rloo, ppo) makes the expected update the gradient of
   E[r] - beta KL(pi || pi_ref) exactly; k3 in the loss (grpo) does not (see
   ``core/reference/rlhf.kl_k3``);
4. one call of the backend's ``RLHFLearner.update(batch, objective, **coefficients)``;
5. the KL controller (fixed beta, or Ziegler et al.'s adaptive one with ``kl_target``).

Logged per update (log.csv; the progress bar shows the first five): reward, kl (mean sequence
k1 of the policy's samples, nats), entropy (nats per token), clip_fraction, success, loss,
beta, length, grad_norm, wall_s; with ``reward="learned"`` (r from a reward model, see
``core/rlhf/reward_model.py``) also true_reward, the task's reward of the same samples. The
``--json`` summary averages reward and KL over the last 10% of updates.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from duetrl.core.constants import GRAD_CLIP_NORM, RLHF_CLIP_EPS, RLHF_VALUE_CLIP, RLHF_VF_COEF
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.rlhf import ADVANTAGE_SCALES, NORMALISATIONS, check_choice
from duetrl.core.reference import rlhf as oracle
from duetrl.core.rlhf.kl import AdaptiveKLController, FixedKLController
from duetrl.core.rlhf.mdp import REFERENCES, Rollout, SequenceMDP, check_group_size, rollout
from duetrl.core.rlhf.pi_ref import ModelSize, load_reference, uniform_reference_params
from duetrl.core.rlhf.tasks import get_task
from duetrl.core.tensorboard import ScalarWriter

ALGORITHMS = ("reinforce", "rloo", "grpo", "ppo", "dpo")
"""The objectives ``duetrl rlhf train --algo`` knows."""

GROUP_ALGORITHMS = ("rloo", "grpo", "dpo")
"""Objectives that compare completions of one prompt: they need group_size >= 2."""

RLHF_KIND = "duetrl.rlhf"
"""The ``kind`` of an RLHF checkpoint: tensor groups ``params`` (policy), ``optim``,
``reference``, ``value_head`` (PPO); metadata settings, config, update, beta, history."""

REWARD_SOURCES = ("task", "learned")
"""Where r comes from: the task's reward function, or a reward model learned from preferences
(``core/rlhf/reward_model.py``; the task's reward is then logged as ``true_reward``)."""

_RESUMABLE = ("updates", "checkpoint_every")
"""Settings a resumed run may change (a longer run continues a shorter one)."""


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass
class RLHFSettings:
    """Settings of an RL run on a text task (every field is a ``duetrl rlhf train`` flag)."""

    task: str = field(default="sort-digits", metadata=_help("text task (core/rlhf/tasks.py)"))
    algo: str = field(default="rloo", metadata=_help("reinforce, rloo, grpo, ppo or dpo"))
    beta: float = field(default=0.01, metadata=_help("KL coefficient of E[r] - beta KL"))
    kl_target: float = field(
        default=0.0, metadata=_help("adaptive KL controller toward this KL (0: fixed beta)")
    )
    kl_horizon: float = field(default=10000.0, metadata=_help("adaptive controller horizon"))
    reference: str = field(default="pretrained", metadata=_help("pretrained or uniform"))
    group_size: int = field(default=8, metadata=_help("completions per prompt, k"))
    prompts: int = field(default=8, metadata=_help("prompts per update"))
    updates: int = field(default=100, metadata=_help("policy updates (batches sampled)"))
    learning_rate: float = field(default=5e-3, metadata=_help("Adam step size"))
    warmup: int = field(default=10, metadata=_help("updates of linear learning-rate warm-up"))
    max_grad_norm: float = field(default=GRAD_CLIP_NORM, metadata=_help("0: no clipping"))
    epochs: int = field(default=1, metadata=_help("gradient steps per batch (ppo: 4)"))
    clip_eps: float = field(default=RLHF_CLIP_EPS, metadata=_help("ratio clip (grpo, ppo)"))
    normalisation: str = field(
        default="grpo", metadata=_help("token loss: grpo, bnpo, dr_grpo or dapo (grpo, ppo)")
    )
    advantage_scale: str = field(
        default="std", metadata=_help("grpo advantages: std (GRPO) or none (Dr. GRPO)")
    )
    dpo_pairs: str = field(
        default="policy",
        metadata=_help("dpo: pairs from the policy (online) or the reference (offline)"),
    )
    missing_stop_penalty: float = field(
        default=0.0, metadata=_help("subtracted from r when a completion never stops")
    )
    gae_lambda: float = field(default=0.95, metadata=_help("ppo: GAE lambda (gamma = 1)"))
    vf_coef: float = field(default=RLHF_VF_COEF, metadata=_help("ppo: value-loss weight"))
    value_clip: float = field(default=RLHF_VALUE_CLIP, metadata=_help("ppo: value clip range"))
    n_layer: int = field(default=2, metadata=_help("uniform reference: GPT blocks"))
    n_head: int = field(default=2, metadata=_help("uniform reference: attention heads"))
    n_embd: int = field(default=32, metadata=_help("uniform reference: model width"))
    seed: int = field(default=0, metadata=_help("seeds prompts, sampling noise and heads"))
    checkpoint_every: int = field(default=0, metadata=_help("updates between checkpoints"))
    reward: str = field(
        default="task",
        metadata=_help("reward source: the task's rule, or a learned reward model (logs both)"),
    )
    reward_model: str = field(
        default="", metadata=_help("--reward learned: the reward model's checkpoint")
    )

    def __post_init__(self) -> None:
        get_task(self.task)
        if self.algo not in ALGORITHMS:
            raise ValueError(f"algo: expected one of {list(ALGORITHMS)}, got {self.algo!r}")
        if self.reference not in REFERENCES:
            raise ValueError(
                f"reference: expected one of {list(REFERENCES)}, got {self.reference!r}"
            )
        if not (isinstance(self.beta, int | float) and math.isfinite(self.beta)) or self.beta < 0:
            raise ValueError(
                f"beta: expected a finite float >= 0 (the KL coefficient), got {self.beta!r}"
            )
        if not self.missing_stop_penalty >= 0:
            raise ValueError(
                f"missing_stop_penalty: expected >= 0, got {self.missing_stop_penalty!r}"
            )
        if self.kl_target < 0:
            raise ValueError(f"kl_target: expected >= 0 (0: fixed beta), got {self.kl_target!r}")
        if self.kl_target > 0 and self.beta <= 0:
            raise ValueError("beta: the adaptive KL controller needs beta > 0 to start from")
        check_group_size(self.group_size, self.algo in GROUP_ALGORITHMS, self.algo)
        for name in ("prompts", "updates", "epochs", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected > 0, got {self.learning_rate!r}")
        check_choice("normalisation", self.normalisation, NORMALISATIONS)
        check_choice("advantage_scale", self.advantage_scale, ADVANTAGE_SCALES)
        check_choice("dpo_pairs", self.dpo_pairs, ("policy", "reference"))
        check_choice("reward", self.reward, REWARD_SOURCES)
        if self.reward == "learned" and not self.reward_model:
            raise ValueError(
                "reward_model: --reward learned needs a reward model checkpoint; train one with "
                f"`duetrl rlhf reward-model --task {self.task}`"
            )
        for name in ("checkpoint_every", "warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {value!r}")

    @property
    def batch_size(self) -> int:
        """B = prompts x group_size completions per update."""
        return self.prompts * self.group_size


def noise_seed(seed: int, update: int, stream: int = 0) -> int:
    """The sampling-noise seed of update ``update``: a function of (seed, update) only, so a
    resumed run and the other backend draw the same noise."""
    return int(np.random.SeedSequence([seed, 7, stream, update]).generate_state(1)[0])


def prompt_rng(seed: int, update: int) -> np.random.Generator:
    """The generator of update ``update``'s prompts."""
    return np.random.default_rng((seed, 3, update))


class RLHFRun:
    """One backend's policy, reference, optional value head, learner and KL controller.

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``.
    :param settings: the run's :class:`RLHFSettings`.
    :param reference: ``(config, params)`` of pi_ref (pretrained mode); the policy starts as a
        copy. None with ``settings.reference == "uniform"``: the uniform reference is built.
    """

    def __init__(
        self,
        backend: ModuleType,
        settings: RLHFSettings,
        reference: tuple[GPTConfig, dict[str, np.ndarray]] | None = None,
    ) -> None:
        self.backend, self.settings = backend, settings
        self.mdp = SequenceMDP.for_task(settings.task, settings.reference)
        if reference is None:
            if settings.reference != "uniform":
                raise ValueError(
                    "reference: the pretrained reference's (config, params) are needed; make "
                    f"one with `duetrl rlhf pretrain --task {settings.task}`"
                )
            size = ModelSize(settings.n_layer, settings.n_head, settings.n_embd)
            reference = uniform_reference_params(settings.task, size, settings.seed)
        config, params = reference
        self.mdp.check_policy(config, name="reference")
        self.config = config
        self.reference_params = {k: np.asarray(v) for k, v in params.items()}
        self.policy = backend.GPT(config)
        self.reference = backend.GPT(config)
        backend.import_params(self.policy, self.reference_params)
        backend.import_params(self.reference, self.reference_params)
        self.value_head = (
            backend.ValueHead(config.n_embd, seed=settings.seed) if settings.algo == "ppo" else None
        )
        self.learner = backend.RLHFLearner(
            self.policy,
            self.value_head,
            learning_rate=settings.learning_rate,
            max_grad_norm=settings.max_grad_norm or None,
        )
        self.reward_model = None
        if settings.reward == "learned":
            from duetrl.core.rlhf.reward_model import load_reward_model

            self.reward_model = load_reward_model(backend, settings.reward_model, settings.task)
        if settings.kl_target > 0:
            self.kl = AdaptiveKLController(settings.beta, settings.kl_target, settings.kl_horizon)
        else:
            self.kl = FixedKLController(settings.beta)

    # -- one update ---------------------------------------------------------------------------

    def sample(self, update: int, stream: int = 0, policy: Any = None) -> Rollout:
        """Update ``update``'s rollout of ``policy`` (default: the policy being trained)."""
        s = self.settings
        prompts = self.mdp.task.prompts(s.prompts, prompt_rng(s.seed, update))
        data = rollout(
            self.backend, policy if policy is not None else self.policy, self.reference,
            self.mdp, prompts, s.group_size, noise_seed(s.seed, update, stream),
        )
        if self.reward_model is not None:  # r = the learned reward; the task's is kept aside
            data.extras["true_reward"] = data.rewards
            data.rewards = self.reward_model(data.prompts, data.completions)
        return data

    def update(self, update: int) -> tuple[dict[str, float], Rollout]:
        """Sample, score, compute advantages, step the learner; ``(metrics, rollout)``."""
        s, beta = self.settings, self.kl.value
        began = time.perf_counter()
        # linear warm-up: Adam's first steps move every weight by ~lr whatever the gradient
        self.learner.learning_rate = s.learning_rate * min(1.0, (update + 1) / max(1, s.warmup))
        data = self.sample(update)
        stats: dict[str, float] = {}
        if s.algo == "dpo":
            stats = self._dpo_step(data if s.dpo_pairs == "policy" else None, update, beta)
        else:
            batch, coefficients = self._batch(data, beta)
            for _ in range(s.epochs):
                stats = self.learner.update(batch, s.algo, **coefficients)
        kl = float(data.sequence_kl.mean())
        self.kl.update(kl, n_steps=len(data.rewards))
        metrics = {
            "update": float(update + 1),
            "reward": float(data.rewards.mean()),
            "kl": kl,
            "entropy": float(stats.get("entropy", data.entropy)),
            "clip_fraction": float(stats.get("clip_fraction", 0.0)),
            "success": float(data.success.mean()),
            "stopped": float(data.stopped.mean()),
            "loss": float(stats.get("loss", float("nan"))),
            "beta": beta,
            "length": float(data.lengths.mean()),
            "grad_norm": float(stats.get("grad_norm", float("nan"))),
            "samples": float(len(data.rewards)),
            "wall_s": time.perf_counter() - began,
        }
        if "true_reward" in data.extras:
            metrics["true_reward"] = float(data.extras["true_reward"].mean())
        for key in ("chosen_reward", "rejected_reward", "value_loss"):
            if key in stats:
                metrics[key] = float(stats[key])
        return metrics, data

    def scores(self, data: Rollout) -> np.ndarray:
        """The training signal: r minus ``missing_stop_penalty`` for a completion cut by the
        length limit (TRL's ``missing_eos_penalty``). Without it nothing in r asks for the stop
        token and at small beta RL lets it drift away; with it, a policy can also learn to stop
        at once (reward 0 but no penalty), so it is off by default."""
        return data.rewards - self.settings.missing_stop_penalty * ~data.stopped

    def _batch(self, data: Rollout, beta: float) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The learner's batch and coefficients for a policy-gradient objective."""
        s = self.settings
        score = self.scores(data)
        if s.algo in ("reinforce", "rloo"):
            shaped = score - beta * data.sequence_kl  # R_i = r_i - beta sum_t k1_t
            if s.algo == "rloo":
                advantages = oracle.rloo_advantages(shaped, data.group_size)
            else:
                advantages = shaped - shaped.mean()  # batch-mean baseline
            return data.batch(advantages=advantages), {}
        if s.algo == "grpo":
            advantages = oracle.group_advantages(score, data.group_size, s.advantage_scale)
            coefficients = {"clip_eps": s.clip_eps, "beta": beta, "normalisation": s.normalisation}
            return data.batch(advantages=advantages), coefficients
        # ppo: per-token KL-shaped rewards, GAE with the value head, whitened advantages
        values = self.values(data.tokens) * data.mask  # V(s_t), (B, T-1)
        rewards = oracle.kl_shaped_rewards(score, data.old_logp, data.ref_logp, data.mask, beta)
        advantages, returns = oracle.token_gae(rewards, values, data.mask, 1.0, s.gae_lambda)
        advantages = oracle.whiten_advantages(advantages, data.mask)
        batch = data.batch(advantages=advantages, returns=returns, old_values=values)
        coefficients = {
            "clip_eps": s.clip_eps, "clip_range": s.value_clip, "vf_coef": s.vf_coef,
            "normalisation": s.normalisation,
        }
        return batch, coefficients

    def values(self, tokens: np.ndarray) -> np.ndarray:
        """V(s_t) ``(B, T-1)`` of the value head at every column t (no gradient)."""
        values = self.backend.inference_values(self.policy, self.value_head, tokens)
        return values.astype(np.float64)  # (B, T-1)

    def _dpo_step(self, pairs: Rollout | None, update: int, beta: float) -> dict[str, float]:
        """Preference pairs (best vs worst of each group, labelled by the task's reward) from
        ``pairs`` (the policy's own samples: online DPO) or, when None, from fresh samples of
        pi_ref (offline DPO: the policy never generates its training data); one DPO step."""
        s = self.settings
        if pairs is None:
            pairs = self.sample(update, stream=1, policy=self.reference)  # offline: pi_ref's
        grouped = self.scores(pairs).reshape(-1, s.group_size)
        offsets = np.arange(grouped.shape[0]) * s.group_size
        chosen = offsets + np.argmax(grouped, axis=1)
        rejected = offsets + np.argmin(grouped, axis=1)
        keep = grouped.max(axis=1) > grouped.min(axis=1)  # a tie says nothing: dropped
        if not np.any(keep):
            return {}
        chosen, rejected = chosen[keep], rejected[keep]
        ref_sequence = (pairs.ref_logp * pairs.mask).sum(axis=1)  # log pi_ref(y)
        batch = {
            "chosen_tokens": pairs.tokens[chosen],
            "rejected_tokens": pairs.tokens[rejected],
            "chosen_mask": pairs.mask[chosen],
            "rejected_mask": pairs.mask[rejected],
            "ref_chosen_logp": ref_sequence[chosen],
            "ref_rejected_logp": ref_sequence[rejected],
        }
        stats: dict[str, float] = {}
        for _ in range(s.epochs):
            stats = self.learner.update(batch, "dpo", beta=beta)
        return stats

    # -- checkpoints --------------------------------------------------------------------------

    def state(self) -> dict[str, dict[str, np.ndarray]]:
        """Tensor groups of a checkpoint: policy, optimiser, reference, value head."""
        b = self.backend
        tensors = {
            "params": b.export_params(self.policy),
            "optim": self.learner.optimizer.state_arrays(),
            "reference": self.reference_params,
        }
        if self.value_head is not None:
            tensors["value_head"] = b.export_params(self.value_head)
        return tensors

    def load_state(self, tensors: dict[str, dict[str, np.ndarray]], beta: float) -> None:
        """Restore :meth:`state` (and the controller's beta)."""
        b = self.backend
        b.import_params(self.policy, tensors["params"])
        if self.value_head is not None:
            b.import_params(self.value_head, tensors["value_head"])
        self.learner.optimizer.load_state_arrays(tensors["optim"])
        self.kl.value = float(beta)


def summarize(history: dict[str, list[float]], updates: int | None = None) -> dict[str, float]:
    """mean_reward, kl, entropy, success: each averaged over the last 10% of updates (>= 1)."""
    n = len(history["reward"])
    tail = max(1, math.ceil(0.1 * n))
    out = {
        key: float(np.mean(history[key][-tail:])) if n else float("nan")
        for key in ("reward", "kl", "entropy", "success")
    }
    extra = {}
    if "true_reward" in history:  # a learned reward: the task's own, over the same updates
        extra["mean_true_reward"] = float(np.mean(history["true_reward"][-tail:]))
        extra["initial_true_reward"] = float(history["true_reward"][0])
    return {
        **extra,
        "mean_reward": out["reward"],
        "kl": out["kl"],
        "entropy": out["entropy"],
        "success_rate": out["success"],
        "initial_reward": float(history["reward"][0]) if n else float("nan"),
        "updates": int(updates if updates is not None else n),
        "last_updates_averaged": tail,
    }


def write_log(history: dict[str, list[float]], path: str | Path) -> Path:
    """One CSV row per update, one column per metric."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = list(history)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(keys)
        for row in zip(*(history[k] for k in keys)):
            writer.writerow([f"{v:.6g}" for v in row])
    return path


def plot_reward_kl(
    histories: dict[str, dict[str, list[float]]],
    path: str | Path,
    exact: dict[str, float] | None = None,
    title: str = "",
) -> Path:
    """Reward (left) and KL(pi || pi_ref) (right) against updates, one line per run; dashed
    lines at the exact optimum's values when given."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, h in histories.items():
        axes[0].plot(h["update"], h["reward"], label=label)
        if "true_reward" in h:  # --reward learned: the task's reward of the same samples
            axes[0].plot(h["update"], h["true_reward"], linestyle="--", label=f"{label} (true r)")
        axes[1].plot(h["update"], h["kl"], label=label)
    for ax, key, ylabel in ((axes[0], "mean_reward", "mean reward"), (axes[1], "kl", "KL (nats)")):
        if exact is not None:
            ax.axhline(exact[key], color="grey", linestyle="--", linewidth=1, label="exact pi*")
        ax.set_xlabel("update")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def exact_optimum(settings: RLHFSettings) -> dict[str, float] | None:
    """E_pi*[r] and KL(pi* || pi_ref) when they are known (sort-digits, uniform reference)."""
    if settings.task != "sort-digits" or settings.reference != "uniform" or settings.beta <= 0:
        return None
    if settings.kl_target > 0:
        return None
    from duetrl.core.rlhf.optimum import sort_digits_optimum

    optimum = sort_digits_optimum(settings.beta)
    return {"mean_reward": optimum.mean_reward, "kl": optimum.kl}


def _check_resumable(saved: dict[str, Any], settings: RLHFSettings, path: Path) -> None:
    now = asdict(settings)
    defaults = {f.name: f.default for f in dataclasses.fields(RLHFSettings)}
    saved = {**defaults, **saved}  # a field added since the checkpoint was written: its default
    differing = {
        k: (saved.get(k), now[k]) for k in now if k not in _RESUMABLE and saved.get(k) != now[k]
    }
    if differing:
        raise CheckpointError(
            f"checkpoint {str(path)!r}: was written with other settings; fields (checkpoint, "
            f"now): {differing}; resume with the same settings or use another --out"
        )


def train(
    backend: ModuleType,
    settings: RLHFSettings,
    out: str | Path,
    reference_path: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    tensorboard: bool = False,
) -> dict[str, Any]:
    """Run ``settings.updates`` updates in ``backend``; write log.csv, reward_kl.png and
    checkpoint.safetensors under ``out``; return the summary (``--json``).

    :param reference_path: the pretrained reference's checkpoint (``reference="pretrained"``).
    :param resume: continue from ``out``'s checkpoint (same settings; ``updates`` may grow).
    :param tensorboard: also write each update's metrics as TensorBoard scalars into ``out``,
        at step = the update's number (duetrl.core.tensorboard).
    """
    out = Path(out)
    checkpoint_path = out / "checkpoint.safetensors"
    reference = None
    if settings.reference == "pretrained":
        if reference_path is None:
            raise ValueError("reference_path: the pretrained reference's checkpoint is needed")
        reference = load_reference(reference_path, settings.task)
    run = RLHFRun(backend, settings, reference)
    history: dict[str, list[float]] = {}
    start = 0
    if resume and checkpoint_path.is_file():
        saved = load_checkpoint(checkpoint_path, RLHF_KIND)
        _check_resumable(saved.metadata.get("settings", {}), settings, checkpoint_path)
        run.load_state(saved.tensors, saved.metadata["beta"])
        start = int(saved.metadata["update"])
        history = {k: list(v) for k, v in saved.metadata.get("history", {}).items()}

    def save(update: int) -> str:
        metadata = {
            "settings": asdict(settings),
            "config": run.config.to_dict(),
            "tokenizer": run.mdp.tokenizer.to_dict(),
            "update": update,
            "beta": run.kl.value,
            "backend": backend.NAME,
            "history": history,
        }
        return str(save_checkpoint(checkpoint_path, Checkpoint(RLHF_KIND, run.state(), metadata)))

    from tqdm.auto import tqdm

    bar = tqdm(
        range(start, settings.updates), initial=start, total=settings.updates, file=sys.stderr,
        disable=not progress, desc=f"{settings.algo} ({backend.NAME})",
    )
    began, samples, checkpoint = time.perf_counter(), 0, None
    resume_step = start + 1 if resume and start else None  # the checkpoint logged up to `start`
    with ScalarWriter(out, "update", tensorboard, resume_step) as scalars:
        for update in bar:
            metrics, data = run.update(update)
            samples += len(data.rewards)
            scalars.write({"update": update + 1, **metrics})
            for key, value in metrics.items():
                history.setdefault(key, []).append(value)
            if not math.isfinite(metrics["loss"]) and settings.algo != "dpo":
                raise FloatingPointError(f"training diverged at update {update + 1}: {metrics}")
            bar.set_postfix(
                reward=f"{metrics['reward']:.3f}", kl=f"{metrics['kl']:.3f}",
                H=f"{metrics['entropy']:.2f}", clip=f"{metrics['clip_fraction']:.2f}",
                sample=repr(data.prompts[0] + data.completions[0]),
            )
            last = update + 1 == settings.updates
            every = settings.checkpoint_every
            if last or (every and (update + 1) % every == 0):
                checkpoint = save(update + 1)
    bar.close()
    wall = time.perf_counter() - began
    if checkpoint is None and settings.updates <= start:
        checkpoint = str(checkpoint_path) if checkpoint_path.is_file() else None
    log = write_log(history, out / "log.csv") if history else None
    exact = exact_optimum(settings)
    plot = (
        plot_reward_kl({backend.NAME: history}, out / "reward_kl.png", exact,
                       f"{settings.algo} on {settings.task}, beta={settings.beta}")
        if history else None
    )
    summary = {
        "task": settings.task,
        "algo": settings.algo,
        "backend": backend.NAME,
        "beta": settings.beta,
        "reference": settings.reference,
        **summarize(history, settings.updates),
        "wall_s": wall,
        "samples_per_s": samples / wall if wall > 0 and samples else float("nan"),
        "final_beta": run.kl.value,
        "checkpoint": checkpoint,
        "log": str(log) if log else None,
        "plot": str(plot) if plot else None,
    }
    if exact is not None:
        summary["exact"] = exact
    return summary


def settings_fields() -> list[dataclasses.Field]:
    """The fields of :class:`RLHFSettings`, for building command-line flags."""
    return list(dataclasses.fields(RLHFSettings))
