"""An LM agent trained by PPO in a text environment (outline 3.2.3-3.2.5; GLAM), once for both
backends.

Per update u:

1. play ``num_envs`` episodes, one per environment, each reset with a seed that is a function
   of (seed, u, i) only; in every state the LM scores the admissible commands
   (``backends/*/lm_agent.inference_outputs`` on the rows of ``core/agents/batch.layout``) and
   the action is a Gumbel-max sample, argmax_k(log pi(a_k | s) + g_k), with g from core's NumPy
   generator (seeded by (seed, u)), so both backends pick the same commands;
2. log pi_old(a_s | s) and V(s) are the rollout's own (``episodes.play`` keeps the scores
   each command was chosen with: the weights have not changed since); one small pass gives V
   of the last observation of each episode cut by the time limit (a truncation bootstraps, a
   termination does not);
3. GAE on host arrays, per episode (``core/reference/returns.gae``), advantages whitened;
4. ``epochs`` PPO steps of the backend's ``LMAgentLearner`` on the whole batch.

Logged per update (log.csv; the progress bar shows the first four): env_steps, success_rate
(of this update's episodes), episode_return, episode_length, loss, policy_loss, value_loss,
entropy (nats over the admissible commands), clip_fraction, approx_kl, grad_norm, wall_s. The
summary adds the success rate over ``eval_episodes`` seeded episodes, greedy (``success_rate``)
and sampled from pi (``sampled_success_rate``), on the training environment and on its held-out
split (``heldout_success_rate``, ``heldout_sampled_success_rate``: words seen in pretraining,
never in RL); they are computed by ``core/agents/evaluation.py``, and the episodes are played
by ``core/agents/episodes.play``. The policy is memoryless (its prompt is the goal and the
current text): KeyDoor's hall says what the searched rooms hold, so that a greedy policy of
the current text can be optimal (core/envs/text/keydoor.py says why).

``policy="mlp"`` swaps the GPT for ``backends/*/lm_agent.BagOfWordsMLP`` (the baseline of
outline 9.3.2: no LM, the words of the goal and the text as a bag, logits over
``MAX_ADMISSIBLE`` masked to the admissible commands), with the same rollout and PPO.

:class:`LMAgentRun` is a trainer of ``duetrl.core.run``, which owns the run (folder, log.csv,
progress bar, checkpoints, Ctrl-C, NaN stop, resume). An update is a function of the weights,
the Adam state and (seed, u) only, so a resumed run equals the uninterrupted one.
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.agents import evaluation
from duetrl.core.agents.batch import layout
from duetrl.core.agents.episodes import (
    MAX_EPISODE_STEPS,
    env_vocabulary,
    episode_seed,
    make_env,
    play,
)
from duetrl.core.agents.evaluation import transcript
from duetrl.core.agents.settings import (
    LM_AGENT_KIND,
    AgentSettings,
    check_resumable,
    settings_fields,
)
from duetrl.core.agents.tokenizer import WordTokenizer
from duetrl.core.checkpoint import Checkpoint, read_file
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.reference.returns import gae
from duetrl.core.run import run

__all__ = ["LM_AGENT_KIND", "MAX_EPISODE_STEPS", "AgentSettings", "LMAgentRun", "episode_seed",
           "env_vocabulary", "load_pretrained", "make_env", "settings_fields", "train",
           "transcript"]

def load_pretrained(path: str | Path) -> tuple[GPTConfig, dict[str, np.ndarray], WordTokenizer]:
    """``(config, params, tokenizer)`` of a pretrained GPT with a word tokeniser: a checkpoint
    with a ``params`` group and ``config`` and ``tokenizer`` metadata (an LM pretrained on
    sentences about the world, or another LM agent's checkpoint)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"lm_checkpoint: no file at {str(path)!r}")
    arrays, metadata = read_file(path)
    if "config" not in metadata or "tokenizer" not in metadata:
        raise ValueError(f"lm_checkpoint: {str(path)!r} has no GPT config and tokenizer in its "
                         "metadata; expected a GPT checkpoint with a word tokeniser")
    params = {k.partition(".")[2]: v for k, v in arrays.items() if k.startswith("params.")}
    return (GPTConfig.from_dict(metadata["config"]), params,
            WordTokenizer.from_dict(metadata["tokenizer"]))


class LMAgentRun:
    """One backend's LM policy (a GPT), value head and PPO learner in a text environment; a
    trainer of ``duetrl.core.run`` (:meth:`step` is update number :attr:`updates`).

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``.
    :param settings: the run's :class:`AgentSettings`.
    :raises ValueError: a vocabulary mismatch between a pretrained LM and the environment.
    """

    kind = LM_AGENT_KIND
    x_key = "env_steps"

    def __init__(self, backend: ModuleType, settings: AgentSettings) -> None:
        self.backend, self.settings = backend, settings
        s = settings
        self.envs = [make_env(s.env) for _ in range(s.num_envs)]
        vocabulary = env_vocabulary(self.envs[0])
        if s.lm_checkpoint:
            config, params, self.tokenizer = load_pretrained(s.lm_checkpoint)
            missing = self.tokenizer.missing(vocabulary)
            if missing:
                raise ValueError(
                    f"lm_checkpoint: vocabulary mismatch between the LM and the environment: "
                    f"{s.env} uses the words {missing[:20]}{' ...' if len(missing) > 20 else ''}"
                    f" that the LM's tokeniser ({self.tokenizer.vocab_size} tokens) lacks")
        else:
            self.tokenizer = WordTokenizer.from_words(vocabulary)
            config = GPTConfig(vocab_size=self.tokenizer.vocab_size, block_size=s.block_size,
                               n_layer=s.n_layer, n_head=s.n_head, n_embd=s.n_embd)
            params = None
        self.config = config
        ppo = {"learning_rate": s.learning_rate, "clip_eps": s.clip_eps, "vf_coef": s.vf_coef,
               "ent_coef": s.ent_coef, "max_grad_norm": s.max_grad_norm or None}
        self.lm_agent = importlib.import_module(f"{backend.__name__}.lm_agent")
        if s.policy == "mlp":  # no LM: the bag of words of the prompt, the same PPO
            self.policy = self.lm_agent.BagOfWordsMLP(self.tokenizer.vocab_size, s.mlp_hidden,
                                                      seed=s.seed)
            self.value_head = None
            self.learner = self.lm_agent.MLPAgentLearner(self.policy, **ppo)
        else:
            self.policy = backend.GPT(config, seed=s.seed)
            if params is not None:
                backend.import_params(self.policy, params)
            self.value_head = backend.ValueHead(config.n_embd, seed=s.seed)
            self.learner = backend.LMAgentLearner(self.policy, self.value_head, **ppo)
        self.backend_name, self.seed = backend.NAME, s.seed
        self.description = f"{s.policy} on {s.env} ({backend.NAME})"
        self.updates = self.env_steps = self.episodes = 0
        self.collect_seconds = self.step_seconds = 0.0
        self.history: dict[str, list[float]] = {}

    # -- the policy ---------------------------------------------------------------------------

    def outputs(self, observations: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        """The LM's pass over ``observations``: the grid's arrays (``core/agents/batch.layout``)
        with ``log_pi`` (S, K) and ``values`` (S,), float64."""
        grid = layout(self.tokenizer, observations, self.config.block_size)
        if self.value_head is None:  # policy mlp
            log_pi, values = self.lm_agent.mlp_inference_outputs(
                self.policy, grid["tokens"], grid["admissible"], grid["prompt_last"])
        else:
            log_pi, values = self.backend.inference_outputs(
                self.policy, self.value_head, grid["tokens"], grid["mask"], grid["admissible"],
                grid["prompt_last"])
        return {**grid, "log_pi": log_pi, "values": values}

    def probabilities(self, observation: Mapping[str, Any]) -> np.ndarray:
        """pi(a_k | s) over the admissible commands of one observation, ``(K_s,)``."""
        out = self.outputs([observation])
        return np.exp(out["log_pi"][0, : out["counts"][0]])

    def _play(self, seeds: Sequence[int], rng: np.random.Generator | None,
              envs: Sequence[Any] | None = None) -> dict[str, Any]:
        """Play one episode per seed in ``envs`` (default ``self.envs``): Gumbel-max samples
        with noise from ``rng``, or greedy when it is None (``core/agents/episodes.play``)."""
        envs = self.envs if envs is None else envs
        return {"trajectories": play(self.outputs, envs, seeds, rng)}

    # -- one update ---------------------------------------------------------------------------

    def update(self, update: int) -> dict[str, float]:
        """Play, compute advantages, run the PPO epochs; the update's metrics."""
        s = self.settings
        began = time.perf_counter()
        seeds = [episode_seed(s.seed, update, i) for i in range(s.num_envs)]
        rng = np.random.default_rng([s.seed, 7, update])
        trajectories = self._play(seeds, rng)["trajectories"]
        collected = time.perf_counter()
        self.collect_seconds += collected - began
        states = [o for t in trajectories for o in t["observations"]]
        cut = [t for t in trajectories if not t["terminated"]]
        grid = layout(self.tokenizer, states, self.config.block_size)  # the learner's rows
        values = np.array([v for t in trajectories for v in t["values"]])  # the rollout's V
        finals = self.outputs([t["final"] for t in cut])["values"] if cut else []
        final_value = iter(finals)
        advantages, returns, start = [], [], 0
        for t in trajectories:
            length = len(t["actions"])
            v = values[start: start + length]
            last = 0.0 if t["terminated"] else float(next(final_value))  # bootstrap a cut
            term = np.zeros((length, 1))
            term[-1] = float(t["terminated"])
            trunc = np.zeros((length, 1))
            trunc[-1] = 1.0 - float(t["terminated"])
            a, r = gae(np.array(t["rewards"])[:, None], v[:, None],
                       np.append(v[1:], last)[:, None], term, trunc, s.gamma, s.gae_lambda)
            advantages.append(a[:, 0])
            returns.append(r[:, 0])
            start += length
        advantages, returns = np.concatenate(advantages), np.concatenate(returns)
        if s.normalize_advantages and len(advantages) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        actions = np.array([a for t in trajectories for a in t["actions"]], dtype=np.int64)
        n = len(states)
        batch = {
            "tokens": grid["tokens"], "mask": grid["mask"], "admissible": grid["admissible"],
            "prompt_last": grid["prompt_last"], "actions": actions,
            "old_logp": np.array([lp for t in trajectories for lp in t["log_probs"]]),
            "advantages": advantages, "returns": returns,
        }
        stats: dict[str, float] = {}
        for _ in range(s.epochs):
            stats = self.learner.update(batch)
        self.env_steps += n
        self.episodes += len(trajectories)
        return {
            "update": float(update + 1),
            "env_steps": float(self.env_steps),
            "success_rate": float(np.mean([t["success"] for t in trajectories])),
            "episode_return": float(np.mean([sum(t["rewards"]) for t in trajectories])),
            "episode_length": float(n / len(trajectories)),
            **{key: stats[key] for key in ("loss", "policy_loss", "value_loss", "entropy",
                                           "clip_fraction", "approx_kl", "grad_norm")},
            "wall_s": time.perf_counter() - began,
        }

    # -- the run loop's trainer ---------------------------------------------------------------

    def progress(self) -> tuple[int, int]:
        return self.updates, self.settings.updates

    def finished(self) -> bool:
        return self.updates >= self.settings.updates

    def step(self) -> dict[str, float]:
        """Update number :attr:`updates`; its metrics, kept in :attr:`history` too.

        :raises FloatingPointError: when the loss is not finite.
        """
        began = time.perf_counter()
        metrics = self.update(self.updates)
        self.step_seconds += time.perf_counter() - began
        if not math.isfinite(metrics["loss"]):
            raise FloatingPointError(f"training diverged at update {self.updates + 1}: loss "
                                     f"{metrics['loss']} (nan or inf)")
        self.updates += 1
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(value)
        return metrics

    def state(self) -> Checkpoint:
        """Tensor groups ``params`` (the GPT), ``value_head``, ``optim``; metadata settings,
        config, tokenizer, counters, history."""
        b = self.backend
        tensors = {
            "params": b.export_params(self.policy),
            "value_head": {} if self.value_head is None else b.export_params(self.value_head),
            "optim": self.learner.optimizer.state_arrays(),
        }
        metadata = {
            "settings": asdict(self.settings), "config": self.config.to_dict(),
            "tokenizer": self.tokenizer.to_dict(), "update": self.updates,
            "env_steps": self.env_steps, "episodes": self.episodes, "backend": b.NAME,
            "history": self.history,
        }
        return Checkpoint(LM_AGENT_KIND, tensors, metadata)

    def load_state(self, checkpoint: Checkpoint, source: str) -> None:
        """Continue from :meth:`state`; CheckpointError when written with other settings."""
        check_resumable(checkpoint.metadata.get("settings", {}), self.settings, source)
        self.load_weights(checkpoint)
        self.learner.optimizer.load_state_arrays(checkpoint.tensors["optim"])
        meta = checkpoint.metadata
        self.updates, self.env_steps = int(meta["update"]), int(meta["env_steps"])
        self.episodes = int(meta["episodes"])
        self.history = {k: list(v) for k, v in meta.get("history", {}).items()}

    def load_weights(self, checkpoint: Checkpoint) -> None:
        """The GPT's and the value head's weights of ``checkpoint`` (for eval and watch)."""
        self.backend.import_params(self.policy, checkpoint.tensors["params"])
        if self.value_head is not None:  # policy mlp: the value is a head of the MLP
            self.backend.import_params(self.value_head, checkpoint.tensors["value_head"])

    # -- evaluation: core/agents/evaluation.py ------------------------------------------------

    def success_rate(self, episodes: int | None = None, split: str | None = None,
                     greedy: bool = True) -> dict[str, float]:
        """Success rate and mean return over seeded evaluation episodes, greedy or sampled, of
        the training environment or of ``split`` (``evaluation.success_rate``)."""
        return evaluation.success_rate(self, episodes, split, greedy)

    def has_splits(self) -> bool:
        """Whether the environment takes ``split`` (duetrl's text worlds do)."""
        return evaluation.has_splits(self)

    def generalisation(self) -> dict[str, float | None]:
        """Outline 9.3.2's figures: sampled success, greedy and sampled held-out success."""
        return evaluation.generalisation(self)

    def evaluate(self) -> dict[str, Any]:
        """The figures of the ``--json`` summary after the run loop's base keys."""
        return evaluation.summary(self)

    def plot(self, run_dir: Path) -> Path | None:
        """Success rate and mean return of each update's episodes against env steps."""
        return evaluation.plot(self, run_dir)

    def close(self) -> None:
        for env in [*self.envs, *(e for envs in getattr(self, "_envs_of_split", {}).values()
                                  for e in envs)]:
            env.close()


def train(
    backend: ModuleType,
    settings: AgentSettings,
    out: str | Path,
    resume: bool = False,
    progress: bool = True,
    tensorboard: bool = False,
) -> dict[str, Any]:
    """Run ``settings.updates`` PPO updates with ``duetrl.core.run.run``: log.csv, success.png,
    checkpoint.safetensors and summary.json under ``out``; the summary."""
    trainer = LMAgentRun(backend, settings)
    try:
        return run(trainer, out, resume=resume, quiet=not progress,
                   checkpoint_every=settings.checkpoint_every, tensorboard=tensorboard,
                   unit="update")
    finally:
        trainer.close()

