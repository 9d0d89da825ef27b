"""Offline RL as sequence modelling: the Decision Transformer (outline 3.2.1, 3.2.5; Chen et al.,
NeurIPS 2021), once for both backends.

    1. data      a behaviour policy of mixed quality acts; its episodes are the dataset
                 (``dt_data.collect_behaviour``)
    2. tokens    R_1 s_1 a_1 R_2 s_2 a_2 ..., R_t = sum_{t' >= t} r_t' (``dt_data``)
    3. learn     the unchanged GPT, next-token cross-entropy weighted 1 only where the target is
                 an action: ``LMTrainer.train_step(x, y, lr, weights)``
    4. act       ask for a target return R_1; feed s_t, take a_t from the action logits, receive
                 r_t, R_{t+1} = R_t - r_t; repeat (:func:`act`)
    5. evaluate  return achieved against return asked for, beside behaviour cloning (the same
                 model and windows with one constant return token, so it cannot be told which
                 return to reach) and the behaviour policy's mean

:class:`DTRun` is a trainer of ``duetrl.core.run``: each update trains the Decision Transformer
and, on the same windows, its behaviour-cloning twin (same initial weights). The acting noise
(Gumbel, ``core.sampling``) comes from NumPy, so both backends act alike.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.agents.dt_data import (
    Episodes,
    ReturnBuckets,
    Vocabulary,
    batch,
    check_window,
    collect_behaviour,
    make_env,
    without_returns,
)
from duetrl.core.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    require_same_settings,
)
from duetrl.core.constants import ADAMW_WEIGHT_DECAY
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.settings import setting
from duetrl.core.sampling import gumbel_noise

DT_KIND = "duetrl.decision_transformer"
"""The checkpoint kind: tensor groups ``params``/``optim`` (the DT) and ``bc_params``/
``bc_optim`` (behaviour cloning); metadata ``settings``, ``config``, ``updates``, ``history``."""


@dataclass
class DTSettings:
    """Settings of a Decision Transformer run (``duetrl dt train``'s flags mirror these)."""

    env: str = setting("FrozenLake-v1", "a Gymnasium toy-text env with a known model")
    slippery: bool = setting(False, "FrozenLake's slippery ice (stochastic moves)")
    episodes: int = setting(1000, "behaviour episodes in the dataset")
    epsilon_low: float = setting(0.0, "each episode acts at random with probability "
                                 "epsilon ~ U[epsilon_low, epsilon_high], else optimally")
    epsilon_high: float = setting(1.0, "see epsilon_low")
    return_buckets: int = setting(5, "return-to-go tokens over the dataset's return range")
    window: int = setting(4, "K, timesteps of context (3K tokens <= the GPT's block size)")
    n_layer: int = setting(2, "GPT blocks")
    n_head: int = setting(2, "attention heads per block")
    n_embd: int = setting(32, "model width")
    steps: int = setting(300, "AdamW updates (each trains the DT and its BC twin)")
    batch_size: int = setting(64, "windows per update")
    learning_rate: float = setting(3e-3, "peak learning rate, after the warm-up")
    warmup_steps: int = setting(20, "linear warm-up, then cosine decay to a tenth")
    weight_decay: float = setting(ADAMW_WEIGHT_DECAY, "AdamW's decoupled decay")
    behaviour_cloning: bool = setting(True, "also train the BC twin (return tokens removed)")
    eval_episodes: int = setting(100, "episodes per target return at evaluation")
    greedy: bool = setting(False, "argmax actions at evaluation (default: sampled)")
    targets: str = setting("", "comma-separated target returns to evaluate (default: the "
                           "dataset's lowest, middle and highest)")
    seed: int = setting(0, "seeds the dataset, the weights, the batches and the acting noise")

    def __post_init__(self) -> None:
        for name in ("episodes", "window", "steps", "batch_size", "eval_episodes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {getattr(self, name)!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps: expected an int >= 0, got {self.warmup_steps}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected > 0, got {self.learning_rate}")


def settings_fields() -> tuple:
    """The fields of :class:`DTSettings`, for the command line."""
    return fields(DTSettings)


def parse_targets(text: str) -> list[float]:
    """``"0,0.5,1"`` -> [0.0, 0.5, 1.0]; ValueError naming ``targets`` otherwise."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"targets: expected comma-separated numbers, got {text!r}") from None


def learning_rate_at(step: int, settings: DTSettings) -> float:
    """Linear warm-up to ``learning_rate``, then cosine decay to a tenth of it (as
    ``core/lm/train.learning_rate_at``)."""
    peak, low = settings.learning_rate, settings.learning_rate / 10
    if step < settings.warmup_steps:
        return peak * (step + 1) / settings.warmup_steps
    progress = min(1.0, (step - settings.warmup_steps)
                   / max(1, settings.steps - settings.warmup_steps - 1))
    return low + (peak - low) * 0.5 * (1.0 + math.cos(math.pi * progress))


# ---- acting: ask for a return, subtract what you get ------------------------------------------
def act(
    backend: ModuleType,
    model: Any,
    vocab: Vocabulary,
    buckets: ReturnBuckets | None,
    settings: DTSettings,
    target: float | None,
    episodes: int,
    seed: int,
) -> np.ndarray:
    """Play ``episodes`` seeded episodes in lockstep; their returns ``(episodes,)``.

    Each step: the last K timesteps as tokens (R_t, s_t, a_t; the current s_t last), the
    logits of the action ids at s_t's position, an action (argmax with ``settings.greedy``,
    else a Gumbel-max sample from ``np.random.default_rng((seed, 4))``: the same noise in
    both backends), then R_{t+1} = R_t - r_t.

    :param buckets: the return tokens; None with ``target`` None (behaviour cloning).
    :param target: the return asked for; None: behaviour cloning (``vocab.no_return``).
    :raises ValueError: a target outside the dataset's return range (naming ``target_return``).
    """
    k, a = settings.window, vocab.num_actions
    check_window(k, model.config.block_size)
    if target is not None:
        target = buckets.check_target(target)
    envs = [make_env(settings.env, settings.slippery) for _ in range(episodes)]
    state = np.array([env.reset(seed=seed * 100_003 + i)[0] for i, env in enumerate(envs)])
    rng = np.random.default_rng((seed, 4))
    togo = np.full(episodes, 0.0 if target is None else target)
    history: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (R token, s, a) per step
    returns, active = np.zeros(episodes), np.ones(episodes, bool)
    while active.any():
        r_token = (np.full(episodes, vocab.no_return) if target is None
                   else buckets.token(togo))  # a running R past the range goes to its end
        history.append((r_token, state.copy(), np.zeros(episodes, np.int64)))
        recent = history[-k:]
        tokens = np.full((episodes, 3 * k), vocab.pad, np.int64)  # (N, 3K), right-padded
        for j, (r_j, s_j, a_j) in enumerate(recent):
            tokens[:, 3 * j] = r_j
            tokens[:, 3 * j + 1] = vocab.state_offset + s_j
            tokens[:, 3 * j + 2] = vocab.action_offset + a_j  # the last one is not read
        logits = backend.inference_logits(model, tokens)  # (N, 3K, V)
        at_state = logits[:, 3 * (len(recent) - 1) + 1, vocab.action_offset:][:, :a]  # (N, A)
        at_state = at_state.astype(np.float64)
        noise = 0.0 if settings.greedy else gumbel_noise(rng, at_state.shape)
        action = np.argmax(at_state + noise, axis=1)
        history[-1][2][:] = action
        for i in np.flatnonzero(active):
            next_state, reward, terminated, truncated, _ = envs[i].step(int(action[i]))
            returns[i] += reward
            togo[i] -= reward  # R_{t+1} = R_t - r_t
            state[i] = next_state
            active[i] = not (terminated or truncated)
    for env in envs:
        env.close()
    return returns


# ---- the trainer of the run loop ---------------------------------------------------------------
class DTRun:
    """The Decision Transformer and its behaviour-cloning twin, trained offline on one
    behaviour dataset: a trainer of ``duetrl.core.run`` (log.csv, checkpoints, resume).

    Update u (0-based) is a function of (weights, Adam state, seed, u) only: its windows come
    from ``np.random.default_rng((seed, 1, u))``.

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``.
    :param data: the behaviour dataset (default: collected from ``settings``).
    """

    kind = DT_KIND
    x_key = "update"

    def __init__(self, backend: ModuleType, settings: DTSettings,
                 data: Episodes | None = None) -> None:
        s = self.settings = settings
        self.backend, self.backend_name, self.seed = backend, backend.NAME, s.seed
        self.description = f"dt ({backend.NAME})"
        self.data = data if data is not None else collect_behaviour(
            s.env, s.episodes, s.seed, s.slippery, s.epsilon_low, s.epsilon_high)
        returns = self.data.returns
        self.buckets = ReturnBuckets(float(returns.min()), float(returns.max()), s.return_buckets)
        env = make_env(s.env, s.slippery)
        self.vocab = Vocabulary(s.return_buckets, int(env.observation_space.n),
                                int(env.action_space.n))
        env.close()
        self.return_tokens = [self.buckets.token(r) for r in self.data.returns_to_go()]
        self.config = GPTConfig(vocab_size=self.vocab.size, block_size=3 * s.window,
                                n_layer=s.n_layer, n_head=s.n_head, n_embd=s.n_embd)
        self.model = backend.GPT(self.config, seed=s.seed)
        self.trainer = backend.LMTrainer(self.model, s.weight_decay)
        self.bc_model = backend.GPT(self.config, seed=s.seed) if s.behaviour_cloning else None
        self.bc_trainer = (backend.LMTrainer(self.bc_model, s.weight_decay)
                           if self.bc_model is not None else None)
        self.updates = 0
        self.history: dict[str, list[float]] = {"update": [], "loss": [], "bc_loss": []}
        self.train_seconds, self.tokens, self._timed = 0.0, 0, False
        self._evaluation: tuple[int, dict[str, Any]] | None = None

    def progress(self) -> tuple[int, int]:
        return self.updates, self.settings.steps

    def finished(self) -> bool:
        return self.updates >= self.settings.steps

    def step(self) -> dict[str, float]:
        """One AdamW update of the DT (and of BC on the same windows, returns removed)."""
        s, u = self.settings, self.updates
        lr = learning_rate_at(u, s)
        rng = np.random.default_rng((s.seed, 1, u))
        x, y, w = batch(self.data, self.return_tokens, s.window, self.vocab, rng, s.batch_size)
        began = time.perf_counter()
        loss, grad_norm = self.trainer.train_step(x, y, lr, w)
        if self._timed:  # the first step of a session traces/warms up: not in the speed
            self.train_seconds += time.perf_counter() - began
            self.tokens += x.size
        self._timed = True
        if not math.isfinite(loss):
            raise FloatingPointError(f"training diverged at update {u + 1}: loss {loss}")
        bc_loss = float("nan")
        if self.bc_trainer is not None:
            bc_x, bc_y = without_returns(x, self.vocab)
            bc_loss, _ = self.bc_trainer.train_step(bc_x, bc_y, lr, w)
            if not math.isfinite(bc_loss):
                raise FloatingPointError(f"training diverged at update {u + 1}: BC loss "
                                         f"{bc_loss}")
        self.updates = u + 1
        for key, value in (("update", self.updates), ("loss", loss), ("bc_loss", bc_loss)):
            self.history[key].append(float(value))
        speed = self.tokens / self.train_seconds if self.train_seconds else float("nan")
        return {"update": self.updates, "loss": float(loss), "bc_loss": float(bc_loss),
                "lr": lr, "grad_norm": float(grad_norm), "tokens_per_s": speed}

    def state(self) -> Checkpoint:
        tensors = {"params": self.backend.export_params(self.model),
                   "optim": self.trainer.optimizer.state_arrays()}
        if self.bc_model is not None:
            tensors["bc_params"] = self.backend.export_params(self.bc_model)
            tensors["bc_optim"] = self.bc_trainer.optimizer.state_arrays()
        info = {"settings": asdict(self.settings), "config": self.config.to_dict(),
                "updates": self.updates, "backend": self.backend.NAME, "history": self.history}
        return Checkpoint(DT_KIND, tensors, info)

    def load_state(self, checkpoint: Checkpoint, source: str) -> None:
        """Weights, Adam moments, counters; CheckpointError for other settings."""
        require_same_settings(checkpoint.metadata.get("settings"), asdict(self.settings), source,
                              _EVAL_ONLY)
        self.backend.import_params(self.model, checkpoint.tensors["params"])
        self.trainer.optimizer.load_state_arrays(checkpoint.tensors["optim"])
        if self.bc_model is not None:
            self.backend.import_params(self.bc_model, checkpoint.tensors["bc_params"])
            self.bc_trainer.optimizer.load_state_arrays(checkpoint.tensors["bc_optim"])
        self.updates = int(checkpoint.metadata["updates"])
        self.history = {k: list(v) for k, v in checkpoint.metadata.get("history", {}).items()}
        self._evaluation = None

    def default_targets(self) -> list[float]:
        """The dataset's lowest, middle and highest return (or ``settings.targets``)."""
        if self.settings.targets.strip():
            return parse_targets(self.settings.targets)
        low, high = self.buckets.low, self.buckets.high
        return [low, (low + high) / 2, high]

    def returns_asked(self, targets: list[float] | None = None,
                      episodes: int | None = None) -> dict[str, Any]:
        """Return achieved for each return asked (DT), BC's and the behaviour policy's means:
        mean returns over ``episodes`` seeded episodes (the same seeds for every row)."""
        targets = self.default_targets() if targets is None else list(targets)
        for target in targets:  # every bad target named before any episode is played
            self.buckets.check_target(target)
        n = self.settings.eval_episodes if episodes is None else int(episodes)
        seed = self.settings.seed + 1  # evaluation episodes: not the dataset's
        achieved = [float(act(self.backend, self.model, self.vocab, self.buckets, self.settings,
                              t, n, seed).mean()) for t in targets]
        bc = (float(act(self.backend, self.bc_model, self.vocab, None, self.settings, None, n,
                        seed).mean()) if self.bc_model is not None else None)
        described = self.data.describe()
        return {"targets": targets, "achieved": achieved, "bc_return": bc,
                "behaviour_return": described["mean_return"], "eval_episodes": n,
                "dataset": described}

    def evaluate(self) -> dict[str, Any]:
        """The run's figures: returns asked vs achieved, BC, behaviour, tokens/s, parameters."""
        if self._evaluation is None or self._evaluation[0] != self.updates:
            self._evaluation = (self.updates, self.returns_asked())
        speed = self.tokens / self.train_seconds if self.train_seconds else float("nan")
        return {"env": self.settings.env, "slippery": self.settings.slippery,
                **self._evaluation[1], "final_loss": self.history["loss"][-1]
                if self.history.get("loss") else float("nan"),
                "train_tokens_per_second": speed,
                "parameters": int(self.model.num_parameters())}

    def plot(self, run_dir: Path) -> Path | None:
        """``returns.png``: return achieved against return asked (BC and behaviour beside)."""
        figures = self.evaluate()
        return plot_returns({self.backend.NAME: figures}, Path(run_dir) / "returns.png")


_EVAL_ONLY = ("eval_episodes", "greedy", "targets")
"""Settings that change only the evaluation: a checkpoint loads whatever they were."""


def plot_returns(results: dict[str, dict[str, Any]], path: str | Path) -> Path:
    """Return achieved against return asked for, one line per label, BC and behaviour dashed
    (horizontal: they are not told a return), and the diagonal achieved = asked."""
    from duetrl.core.plots import plot_curves

    curves: dict[str, tuple[list[float], list[float]]] = {}
    everything = [t for r in results.values() for t in r["targets"]]
    span = [min(everything), max(everything)]
    curves["asked = achieved"] = (span, span)
    for label, r in results.items():
        curves[f"DT {label}"] = (r["targets"], r["achieved"])
        if r.get("bc_return") is not None:
            curves[f"BC {label}"] = (span, [r["bc_return"]] * 2)
    behaviour = next(iter(results.values()))["behaviour_return"]
    curves["behaviour policy"] = (span, [behaviour] * 2)
    return plot_curves(curves, path, xlabel="return asked for", ylabel="mean return achieved",
                       title="Decision Transformer: return asked vs achieved")


def load_run(backend: ModuleType, path: str | Path, **overrides: Any) -> DTRun:
    """A :class:`DTRun` rebuilt from its checkpoint (dataset recollected from the settings, which
    is deterministic), weights loaded; ``overrides`` change evaluation-only settings."""
    checkpoint = load_checkpoint(path, DT_KIND)
    saved = dict(checkpoint.metadata.get("settings") or {})
    bad = sorted(set(overrides) - set(_EVAL_ONLY))
    if bad:
        raise ValueError(f"overrides: only {list(_EVAL_ONLY)} may change after training, got {bad}")
    try:
        settings = DTSettings(**{**saved, **overrides})
    except TypeError as error:
        raise CheckpointError(f"checkpoint {str(path)!r}: invalid settings ({error})") from None
    run = DTRun(backend, settings)
    run.load_state(checkpoint, str(path))
    return run
