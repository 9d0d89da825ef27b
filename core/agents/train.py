"""An LM agent trained by PPO in a text environment (outline 3.2.3-3.2.5; GLAM), once for both
backends.

Per update u:

1. play ``num_envs`` episodes, one per environment, each reset with a seed that is a function
   of (seed, u, i) only; in every state the LM scores the admissible commands
   (``backends/*/lm_agent.inference_outputs`` on the rows of ``core/agents/batch.layout``) and
   the action is a Gumbel-max sample, argmax_k(log pi(a_k | s) + g_k), with g from core's NumPy
   generator (seeded by (seed, u)), so both backends pick the same commands;
2. one pass over every state of the update gives log pi_old(a_s | s) and V(s) (and V of the
   last observation of an episode cut by the time limit: a truncation bootstraps, a
   termination does not);
3. GAE on host arrays, per episode (``core/reference/returns.gae``), advantages whitened;
4. ``epochs`` PPO steps of the backend's ``LMAgentLearner`` on the whole batch.

Logged per update (log.csv; the progress bar shows the first four): env_steps, success_rate
(of this update's episodes), episode_return, episode_length, loss, policy_loss, value_loss,
entropy (nats over the admissible commands), clip_fraction, approx_kl, grad_norm, wall_s. The
summary adds the success rate over ``eval_episodes`` seeded episodes, greedy (``success_rate``)
and sampled from pi (``sampled_success_rate``), on the training environment and on its held-out
split (``heldout_success_rate``, ``heldout_sampled_success_rate``: words seen in pretraining,
never in RL). A memoryless policy (the prompt is the current observation only) that plays
greedily repeats itself in the hall of KeyDoor, which looks the same before and after a room
was searched: there the sampled figure is the one that measures the policy.

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

from duetrl.core.agents.batch import layout
from duetrl.core.agents.settings import (
    LM_AGENT_KIND,
    AgentSettings,
    check_resumable,
    settings_fields,
)
from duetrl.core.agents.tokenizer import WordTokenizer
from duetrl.core.checkpoint import Checkpoint, read_file
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.text_env import MAX_ADMISSIBLE, check_action
from duetrl.core.reference.returns import gae
from duetrl.core.run import run

__all__ = ["LM_AGENT_KIND", "AgentSettings", "LMAgentRun", "episode_seed", "env_vocabulary",
           "load_pretrained", "settings_fields", "train"]

MAX_EPISODE_STEPS = 500
"""An episode still running after this many steps is cut (a truncation), whatever the env."""


def episode_seed(seed: int, update: int, index: int, stream: int = 0) -> int:
    """The reset seed of episode ``index`` of update ``update`` (stream 1: evaluation)."""
    return int(np.random.SeedSequence([seed, 5, stream, update, index]).generate_state(1)[0])


def make_env(env_id: str, **kwargs: Any) -> Any:
    """A Gymnasium text environment (duetrl's are registered by importing duetrl.core.envs);
    ``kwargs`` go to its constructor (e.g. ``split="heldout"``)."""
    import gymnasium as gym

    import duetrl.core.envs  # noqa: F401  (registers duetrl/...)

    return gym.make(env_id, **kwargs)


def env_vocabulary(env: Any) -> list[str]:
    """Every word ``env`` may say: its ``vocabulary()`` (the text-environment contract)."""
    vocabulary = getattr(env.unwrapped, "vocabulary", None)
    if vocabulary is None:
        raise ValueError(f"env: {env.spec.id if env.spec else env} has no vocabulary(); a text "
                         "environment must list its words (core/interfaces/text_env.py)")
    return list(vocabulary())


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
        """Play one episode per seed in ``envs`` (default ``self.envs``; ``len(seeds) <=
        len(envs)``): Gumbel-max samples with noise from ``rng``, or greedy when it is None.
        The trajectories."""
        envs = self.envs if envs is None else envs
        n = len(seeds)
        observations = [envs[i].reset(seed=int(seed))[0] for i, seed in enumerate(seeds)]
        trajectories = [{"observations": [], "actions": [], "rewards": []} for _ in range(n)]
        ends: list[dict[str, Any]] = [{} for _ in range(n)]
        active = list(range(n))
        for _ in range(MAX_EPISODE_STEPS):
            if not active:
                break
            noise = rng.gumbel(size=(n, MAX_ADMISSIBLE)) if rng is not None else None
            out = self.outputs([observations[i] for i in active])
            still = []
            for row, i in enumerate(active):
                count = int(out["counts"][row])
                scores = out["log_pi"][row, :count]
                if noise is not None:
                    scores = scores + noise[i, :count]  # Gumbel-max: a sample of pi
                action = int(np.argmax(scores))
                next_observation, reward, terminated, truncated, info = envs[i].step(action)
                t = trajectories[i]
                t["observations"].append(observations[i])
                t["actions"].append(action)
                t["rewards"].append(float(reward))
                if terminated or truncated:
                    ends[i] = {"terminated": bool(terminated), "final": next_observation,
                               "success": bool(info.get("success", False))}
                else:
                    observations[i] = next_observation
                    still.append(i)
            active = still
        for i in active:  # cut by MAX_EPISODE_STEPS: a truncation
            ends[i] = {"terminated": False, "final": observations[i], "success": False}
        for t, end in zip(trajectories, ends):
            t.update(end)
        return {"trajectories": trajectories}

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
        out = self.outputs(states + [t["final"] for t in cut])  # one pass: pi_old, V
        values, finals = out["values"][: len(states)], out["values"][len(states):]
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
        k = out["admissible"].shape[1]
        batch = {
            "tokens": out["tokens"][: n * k], "mask": out["mask"][: n * k],
            "admissible": out["admissible"][:n], "prompt_last": out["prompt_last"][:n],
            "actions": actions, "old_logp": out["log_pi"][np.arange(n), actions],
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

    def success_rate(self, episodes: int | None = None, split: str | None = None,
                     greedy: bool = True) -> dict[str, float]:
        """Play over ``episodes`` seeded episodes (default ``eval_episodes``), seeds apart from
        training's: success_rate, mean return. ``greedy``: argmax pi, else sampled from pi
        (noise seeded by the run's seed); ``split``: the environment made with this ``split``
        (e.g. ``"heldout"``; default: the training environment)."""
        s = self.settings
        episodes = s.eval_episodes if episodes is None else episodes
        seeds = [episode_seed(s.seed, 0, i, stream=1) for i in range(episodes)]
        envs = self.envs if split is None else self._split_envs(split)
        rng = None if greedy else np.random.default_rng([s.seed, 11])
        played = []
        for first in range(0, episodes, s.num_envs):
            played += self._play(seeds[first: first + s.num_envs], rng, envs)["trajectories"]
        return {"success_rate": float(np.mean([t["success"] for t in played])),
                "eval_return": float(np.mean([sum(t["rewards"]) for t in played])),
                "eval_episodes": episodes}

    def _split_envs(self, split: str) -> list[Any]:
        """``num_envs`` environments of ``split`` (made once)."""
        made = getattr(self, "_envs_of_split", {})
        if split not in made:
            made[split] = [make_env(self.settings.env, split=split)
                           for _ in range(self.settings.num_envs)]
            self._envs_of_split = made
        return made[split]

    def has_splits(self) -> bool:
        """Whether the environment takes ``split`` (duetrl's text worlds do)."""
        return hasattr(self.envs[0].unwrapped, "split")

    def generalisation(self) -> dict[str, float | None]:
        """Outline 9.3.2's figures: greedy and sampled success on the training environment and
        on its held-out split (objects and colours seen in pretraining, never in RL; None for
        an environment without splits)."""
        figures: dict[str, float | None] = {
            "sampled_success_rate": self.success_rate(greedy=False)["success_rate"]}
        heldout = self.has_splits()
        for prefix, greedy in (("heldout_", True), ("heldout_sampled_", False)):
            figures[f"{prefix}success_rate"] = (
                self.success_rate(split="heldout", greedy=greedy)["success_rate"]
                if heldout else None)
        return figures

    def evaluate(self) -> dict[str, Any]:
        """The figures of the ``--json`` summary after the run loop's base keys."""
        s, h = self.settings, self.history
        return {
            "env": s.env, "policy": s.policy, **self.success_rate(), **self.generalisation(),
            "env_steps": self.env_steps, "episodes": self.episodes,
            "train_success_rate": h["success_rate"][-1] if h.get("success_rate") else None,
            "env_steps_per_s": (self.env_steps / self.collect_seconds
                                if self.collect_seconds else None),
            "updates_per_s": self.updates / self.step_seconds if self.step_seconds else None,
        }

    def plot(self, run_dir: Path) -> Path | None:
        """Success rate and mean return of each update's episodes against env steps."""
        if not self.history:
            return None
        from duetrl.core.plots import pyplot, save_figure

        plt = pyplot()
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        h = self.history
        for ax, key in zip(axes, ("success_rate", "episode_return")):
            ax.plot(h["env_steps"], h[key])
            ax.set_xlabel("env steps")
            ax.set_ylabel(key.replace("_", " "))
            ax.grid(alpha=0.3)
        fig.suptitle(self.description)
        return save_figure(fig, Path(run_dir) / "success.png")

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


def transcript(trainer: LMAgentRun, seed: int, greedy: bool = True) -> list[dict[str, Any]]:
    """One episode played by ``trainer``'s policy (greedy, or sampled with noise from
    ``seed``): per step the text, each command with its probability, the command taken, the
    reward, and at the end whether it succeeded."""
    env, rng = trainer.envs[0], np.random.default_rng([seed, 13])
    observation, _ = env.reset(seed=seed)
    steps = []
    for _ in range(MAX_EPISODE_STEPS):
        probabilities = trainer.probabilities(observation)
        scores = np.log(probabilities)
        if not greedy:
            scores = scores + rng.gumbel(size=len(probabilities))
        action = check_action(int(np.argmax(scores)), observation["admissible"])
        next_observation, reward, terminated, truncated, info = env.step(action)
        steps.append({"goal": observation["goal"], "text": observation["text"],
                      "commands": list(observation["admissible"]),
                      "probabilities": [float(p) for p in probabilities], "action": action,
                      "reward": float(reward), "done": bool(terminated or truncated),
                      "success": bool(info.get("success", False))})
        if terminated or truncated:
            break
        observation = next_observation
    return steps
