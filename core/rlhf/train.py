"""The RL-for-language-models training loop, once for both backends (outline 3.1.1, 3.1.5).

Per update u:

1. draw prompts (core's RNG, a function of (seed, u)) and sample k completions each with the
   policy (``core/rlhf/mdp.rollout``: noise from core, so both backends pick the same tokens);
2. score them with the task's reward r and the frozen reference's log-probs (KL estimates);
3. turn scores into advantages on host arrays (``core/reference/rlhf_advantages.py``):

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
   ``core/reference/rlhf_advantages.kl_k3``);
4. one call of the backend's ``RLHFLearner.update(batch, objective, **coefficients)``;
5. the KL controller (fixed beta, or Ziegler et al.'s adaptive one with ``kl_target``).

Logged per update (log.csv; the progress bar shows the first four): reward, kl (mean sequence
k1 of the policy's samples, nats), entropy (nats per token), clip_fraction, success, loss,
beta, length, grad_norm, wall_s; with ``reward="learned"`` (r from a reward model, see
``core/rlhf/reward_model.py``) also true_reward, the task's reward of the same samples. The
``--json`` summary averages reward and KL over the last 10% of updates.

:class:`RLHFRun` is a trainer of ``duetrl.core.run``, which owns the run (folder, log.csv,
progress bar, checkpoints, Ctrl-C, NaN stop, resume); its settings live in
``core/rlhf/settings.py``, its summary and plot in ``core/rlhf/summary.py``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.checkpoint import Checkpoint
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.reference import rlhf_advantages as oracle
from duetrl.core.rlhf.kl import AdaptiveKLController, FixedKLController
from duetrl.core.rlhf.mdp import Rollout, SequenceMDP, rollout
from duetrl.core.rlhf.pi_ref import ModelSize, load_reference, uniform_reference_params
from duetrl.core.rlhf.reward_model import load_reward_model
from duetrl.core.rlhf.settings import (
    ALGORITHMS,
    GROUP_ALGORITHMS,
    REWARD_SOURCES,
    RLHF_KIND,
    RLHFSettings,
    check_resumable,
    settings_fields,
)
from duetrl.core.rlhf.summary import exact_optimum, plot_reward_kl, summarize
from duetrl.core.run import run

__all__ = [  # the settings and the summary are re-exported: one import for a tutorial
    "ALGORITHMS", "GROUP_ALGORITHMS", "REWARD_SOURCES", "RLHF_KIND", "RLHFRun", "RLHFSettings",
    "exact_optimum", "noise_seed", "plot_reward_kl", "prompt_rng", "settings_fields",
    "summarize", "train",
]


def noise_seed(seed: int, update: int, stream: int = 0) -> int:
    """The sampling-noise seed of update ``update``: a function of (seed, update) only, so a
    resumed run and the other backend draw the same noise."""
    return int(np.random.SeedSequence([seed, 7, stream, update]).generate_state(1)[0])


def prompt_rng(seed: int, update: int) -> np.random.Generator:
    """The generator of update ``update``'s prompts."""
    return np.random.default_rng((seed, 3, update))


class RLHFRun:
    """One backend's policy, reference, optional value head, learner and KL controller; a
    trainer of ``duetrl.core.run`` (:meth:`step` is update number :attr:`updates`).

    :meth:`update` (update u: sample, score, advantages, learner step) is a function of the
    weights, Adam state, beta and (seed, u) only, so a resumed run equals the uninterrupted one
    and both backends draw the same prompts and noise.

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
            self.reward_model = load_reward_model(backend, settings.reward_model, settings.task)
        if settings.kl_target > 0:
            self.kl = AdaptiveKLController(settings.beta, settings.kl_target, settings.kl_horizon)
        else:
            self.kl = FixedKLController(settings.beta)
        # the run loop's trainer: counters, the history of every logged metric, the last rollout
        self.backend_name, self.seed = backend.NAME, settings.seed
        self.description = f"{settings.algo} ({backend.NAME})"
        self.updates, self.samples, self.step_seconds = 0, 0, 0.0
        self.history: dict[str, list[float]] = {}
        self.last: Rollout | None = None

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

    # -- the run loop's trainer ------------------------------------------------------------

    kind = RLHF_KIND
    x_key = "update"

    def progress(self) -> tuple[int, int]:
        return self.updates, self.settings.updates

    def finished(self) -> bool:
        return self.updates >= self.settings.updates

    def step(self) -> dict[str, float]:
        """Update number :attr:`updates`; its metrics, kept in :attr:`history` too.

        :raises FloatingPointError: when the loss is not finite (DPO: a batch of ties has
            none, so its NaN loss is no divergence).
        """
        began = time.perf_counter()
        metrics, data = self.update(self.updates)
        self.step_seconds += time.perf_counter() - began
        if not math.isfinite(metrics["loss"]) and self.settings.algo != "dpo":
            raise FloatingPointError(
                f"training diverged at update {self.updates + 1}: {metrics}")
        self.updates += 1
        self.samples += len(data.rewards)
        self.last = data
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(value)
        return metrics

    def state(self) -> Checkpoint:
        """Tensor groups policy ``params``, ``optim``, ``reference``, ``value_head`` (PPO);
        metadata settings, config, tokenizer, update, beta, backend, history."""
        b = self.backend
        tensors = {
            "params": b.export_params(self.policy),
            "optim": self.learner.optimizer.state_arrays(),
            "reference": self.reference_params,
        }
        if self.value_head is not None:
            tensors["value_head"] = b.export_params(self.value_head)
        metadata = {
            "settings": asdict(self.settings),
            "config": self.config.to_dict(),
            "tokenizer": self.mdp.tokenizer.to_dict(),
            "update": self.updates,
            "beta": self.kl.value,
            "backend": b.NAME,
            "history": self.history,
        }
        return Checkpoint(RLHF_KIND, tensors, metadata)

    def load_state(self, checkpoint: Checkpoint, source: str) -> None:
        """Continue from :meth:`state`; CheckpointError when it was written with other
        settings (all but ``updates`` and ``checkpoint_every`` must be the same)."""
        check_resumable(checkpoint.metadata.get("settings", {}), self.settings, source)
        b, tensors = self.backend, checkpoint.tensors
        b.import_params(self.policy, tensors["params"])
        if self.value_head is not None:
            b.import_params(self.value_head, tensors["value_head"])
        self.learner.optimizer.load_state_arrays(tensors["optim"])
        self.kl.value = float(checkpoint.metadata["beta"])
        self.updates = int(checkpoint.metadata["update"])
        saved = checkpoint.metadata.get("history", {})
        self.history = {k: list(v) for k, v in saved.items()}

    def evaluate(self) -> dict[str, Any]:
        """The figures of the ``--json`` summary after the run loop's base keys."""
        s = self.settings
        figures = summarize(self.history, self.updates)
        figures.pop("updates")  # a base key of the run loop
        summary = {
            "task": s.task, "algo": s.algo, "beta": s.beta, "reference": s.reference,
            **figures,
            "samples_per_s": self.samples / self.step_seconds if self.samples else float("nan"),
            "final_beta": self.kl.value,
        }
        exact = exact_optimum(s)
        if exact is not None:
            summary["exact"] = exact
        return summary

    def plot(self, run_dir: Path) -> Path | None:
        if not self.history:
            return None
        s = self.settings
        return plot_reward_kl({self.backend.NAME: self.history}, Path(run_dir) / "reward_kl.png",
                              exact_optimum(s), f"{s.algo} on {s.task}, beta={s.beta}")


def train(
    backend: ModuleType,
    settings: RLHFSettings,
    out: str | Path,
    reference_path: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    tensorboard: bool = False,
) -> dict[str, Any]:
    """Run ``settings.updates`` updates in ``backend`` with ``duetrl.core.run.run``: log.csv,
    reward_kl.png, checkpoint.safetensors and summary.json under ``out``; the summary.

    :param reference_path: the pretrained reference's checkpoint (``reference="pretrained"``).
    :param resume: continue from ``out``'s checkpoint if there is one (same settings;
        ``updates`` may grow).
    :param tensorboard: also write each update's metrics as TensorBoard scalars into ``out``,
        at step = the update's number (duetrl.core.tensorboard).
    """
    reference = None
    if settings.reference == "pretrained":
        if reference_path is None:
            raise ValueError("reference_path: the pretrained reference's checkpoint is needed")
        reference = load_reference(reference_path, settings.task)
    trainer = RLHFRun(backend, settings, reference)
    resume = resume and (Path(out) / "checkpoint.safetensors").is_file()
    return run(trainer, out, resume=resume, quiet=not progress,
               checkpoint_every=settings.checkpoint_every, tensorboard=tensorboard,
               unit="update")
