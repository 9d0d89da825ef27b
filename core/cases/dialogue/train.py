"""Dialogue generation: a chatbot and a backward model trained by maximum likelihood, then the
chatbot trained by policy gradient on simulated conversations (outline 6.1.2; Li et al. 2016).

    phase 1, updates 1 .. mle_steps      L_MLE = -sum_t w_t log p(y_t | ...) / sum_t w_t on
                                         the reply only: the chatbot on (p, q) -> a, the
                                         backward model on a -> q, one batch each per update
    phase 2, the next rl_updates         M conversations from corpus openings (a question and
                                         the turn before it: ``corpus.openings``), H turns of
                                         self-play sampled from the policy; each turn a gets
                                         r(p, q, a) = 0.25 r1 + 0.25 r2 + 0.5 r3 (rewards.py),
                                         scored by the frozen MLE chatbot and the backward model
        a conversation ends at its first dull or repeated turn (the paper's end of a
        simulation): its later turns get no reward and no gradient
        G_k = sum_{j >= k} gamma^(j-k) r_j      (that conversation's live turns from k on)
        A_k = G_k - mean of G_k over the conversations live at turn k     (the baseline)
        L = -1/N sum_k A_k sum_t m_kt log pi(a_kt | p_k, q_k, a_k,<t)   (backend.DialogueLearner)

The curriculum (Li et al. 2016, section 3.4, after MIXER): the paper starts with simulations
of two turns and grows them to five, and within a reply optimises only the last tokens by
policy gradient at first. Here the horizon H starts at ``start_turns`` and grows by one every
``turns_every`` updates up to ``max_turns``; the mask m covers only the last K tokens of each
reply (its closing <sep> included), K starting at ``start_tokens`` and growing by one every
``tokens_every`` updates until it covers the reply. (The paper trains the first tokens by
maximum likelihood meanwhile; here they get no gradient of their own, though their
probabilities still move: every token is computed by the weights the others' gradient changes.)

:class:`DialogueRun` is a trainer of ``duetrl.core.run``. Update u is a function of (weights,
Adam states, seed, u) only: batches and openings from ``default_rng((seed, phase, u))``, the
sampling noise from ``(seed, u)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.cases.dialogue.corpus import (
    CONTEXT,
    SLOT,
    Vocabulary,
    backward_examples,
    examples,
    is_dull,
    make_dialogues,
    openings,
)
from duetrl.core.cases.dialogue.evaluate import dialogue_figures, dialogue_length, simulate
from duetrl.core.cases.dialogue.rewards import Reward, check_rewards, reward_rows
from duetrl.core.cases.schedule import mle_learning_rate
from duetrl.core.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    require_same_settings,
)
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.settings import setting

DIALOGUE_KIND = "duetrl.dialogue"
"""The checkpoint kind: tensor groups ``params``, ``backward_params``, ``optim``,
``backward_optim``, ``rl_optim`` and (after the switch) ``frozen_params``."""


@dataclass
class DialogueSettings:
    """Settings of a dialogue run (``duetrl dialogue train``'s flags mirror these)."""

    dialogues: int = setting(2000, "corpus dialogues to train on (6 turns each)")
    n_layer: int = setting(2, "GPT blocks")
    n_head: int = setting(4, "attention heads per block")
    n_embd: int = setting(48, "model width")
    mle_steps: int = setting(400, "maximum-likelihood AdamW updates of both models (phase 1)")
    batch_size: int = setting(64, "(p, q, a) examples per maximum-likelihood update")
    learning_rate: float = setting(3e-3, "MLE peak learning rate (warm-up, cosine to a tenth)")
    warmup_steps: int = setting(30, "MLE linear warm-up")
    rl_updates: int = setting(60, "policy-gradient updates after the MLE phase (phase 2)")
    conversations: int = setting(32, "simulated conversations per policy-gradient update (M)")
    start_turns: int = setting(2, "curriculum: turns simulated per conversation at first")
    max_turns: int = setting(4, "curriculum: turns simulated per conversation at most")
    turns_every: int = setting(20, "curriculum: one more simulated turn every this many updates")
    start_tokens: int = setting(4, "curriculum: last reply tokens trained at first")
    tokens_every: int = setting(2, "curriculum: one more reply token every this many updates")
    discount: float = setting(0.0, "gamma of the return G_k over a conversation's later turns")
    rl_learning_rate: float = setting(1e-3, "Adam step size of the policy-gradient phase")
    eval_conversations: int = setting(32, "held-out openings simulated for the figures")
    eval_turns: int = setting(6, "turns per held-out simulated conversation")
    eval_every: int = setting(20, "held-out figures every this many updates (and at the end)")
    seed: int = setting(0, "seeds the corpus, the weights, the batches and the noise")

    def __post_init__(self) -> None:
        for name in ("dialogues", "n_layer", "n_head", "n_embd", "batch_size", "conversations",
                     "start_turns", "max_turns", "turns_every", "start_tokens", "tokens_every",
                     "eval_conversations", "eval_turns", "eval_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {getattr(self, name)!r}")
        for name in ("mle_steps", "rl_updates", "warmup_steps"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {getattr(self, name)!r}")
        if self.mle_steps + self.rl_updates < 1:
            raise ValueError("mle_steps, rl_updates: expected at least one update in all")
        if self.max_turns < self.start_turns:
            raise ValueError(f"max_turns: expected >= start_turns ({self.start_turns}), got "
                             f"{self.max_turns}")
        if not 0 <= self.discount <= 1:
            raise ValueError(f"discount: expected a float in [0, 1], got {self.discount!r}")
        for name in ("learning_rate", "rl_learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected > 0, got {getattr(self, name)!r}")


def settings_fields() -> tuple:
    """The fields of :class:`DialogueSettings`, for the command line."""
    return fields(DialogueSettings)


_GROWABLE = ("rl_updates", "eval_every")
"""Settings a resumed run may change."""


def noise_seed(seed: int, update: int) -> int:
    """The sampling noise of update ``update``: a function of (seed, update) only."""
    return int(np.random.SeedSequence([seed, 17, update]).generate_state(1)[0])


def curriculum(rl_update: int, s: DialogueSettings) -> tuple[int, int]:
    """(H turns simulated, K last reply tokens trained) at policy-gradient update
    ``rl_update`` (0-based)."""
    turns = min(s.max_turns, s.start_turns + rl_update // s.turns_every)
    return turns, min(SLOT, s.start_tokens + rl_update // s.tokens_every)


def last_tokens(mask: np.ndarray, k: int) -> np.ndarray:
    """``mask`` (B, T) kept on each row's last ``k`` ones only."""
    from_end = np.cumsum(mask[:, ::-1], axis=1)[:, ::-1]  # ones at or after each column
    return mask * (from_end <= k)


def alive(conversations: list, opening: int = 2) -> np.ndarray:
    """``(M, turns)``: 1 while a conversation runs, 0 from the turn after its first dull or
    repeated generated turn on (the paper ends a simulation there)."""
    out = np.ones((len(conversations), len(conversations[0]) - opening))
    for m, c in enumerate(conversations):
        out[m, dialogue_length(c, opening) + 1:] = 0.0
    return out


def returns_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G_k = sum_{j >= k} gamma^(j-k) r_j along axis 0 of ``rewards`` (H, M)."""
    out, running = np.zeros_like(rewards), np.zeros(rewards.shape[1:])
    for k in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[k] + gamma * running
        out[k] = running
    return out


class DialogueRun:
    """One backend's chatbot, backward model, their MLE trainers and the policy-gradient
    learner; a trainer of ``duetrl.core.run``.

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``.
    :param settings: the run's :class:`DialogueSettings`.
    :param reward: replaces the paper's combined reward: ``reward([(p, q, a), ...]) -> (N,)``;
        a reward that is not finite stops the update with a ValueError naming ``reward``.
    """

    kind = DIALOGUE_KIND
    x_key = "update"

    def __init__(self, backend: ModuleType, settings: DialogueSettings,
                 reward: Reward | None = None) -> None:
        s = self.settings = settings
        self.backend, self.backend_name, self.seed = backend, backend.NAME, s.seed
        self.description = f"dialogue ({backend.NAME})"
        self.reward = reward
        self.vocab = Vocabulary()
        self.dialogues = make_dialogues(s.dialogues, s.seed)
        pairs = examples(self.dialogues)
        self.tokens, self.weights = self.vocab.rows(pairs)
        self.back_tokens, self.back_weights = self.vocab.rows(backward_examples(pairs))
        self.openings = openings(self.dialogues, s.seed)
        held = make_dialogues(s.eval_conversations, s.seed + 10_000)  # new draws
        self.heldout_openings = openings(held, s.seed + 10_000)
        self.config = GPTConfig(vocab_size=self.vocab.size, block_size=self.vocab.block_size,
                                n_layer=s.n_layer, n_head=s.n_head, n_embd=s.n_embd)
        self.model = backend.GPT(self.config, seed=s.seed)
        self.backward = backend.GPT(self.config, seed=s.seed + 1)
        self.frozen = backend.GPT(self.config, seed=s.seed)  # the MLE chatbot, at the switch
        self.trainer = backend.LMTrainer(self.model)
        self.back_trainer = backend.LMTrainer(self.backward)
        self.learner = backend.DialogueLearner(self.model, s.rl_learning_rate)
        self.updates, self.switched = 0, False
        self.history: dict[str, list[float]] = {}
        self.mle: dict[str, Any] | None = None  # held-out figures at the end of phase 1
        self.seconds = {"mle": 0.0, "rl": 0.0}
        self.counts = {"mle": 0, "rl": 0}  # examples, sampled turns (timed steps)
        self._timed: set[str] = set()
        self._final: tuple[int, dict[str, Any]] | None = None

    # -- rewards --------------------------------------------------------------------------------

    def turn_rewards(self, turns: list) -> dict[str, np.ndarray]:
        """``r1``, ``r2``, ``r3`` and ``reward`` of the turns ``(p, q, a)`` (the frozen MLE
        chatbot and the backward model score them), or ``reward`` from the replacement."""
        if self.reward is not None:
            return {"reward": check_rewards(self.reward(turns), len(turns))}
        scorer = self.frozen if self.switched else self.model
        out = self.backend.turn_rewards(scorer, self.backward, reward_rows(self.vocab, turns))
        check_rewards(out["reward"], len(turns))
        return out

    # -- one update -----------------------------------------------------------------------------

    def _mle_step(self, u: int) -> dict[str, float]:
        rng = np.random.default_rng((self.settings.seed, 1, u))
        rows = rng.integers(0, len(self.tokens), self.settings.batch_size)
        lr = mle_learning_rate(u, self.settings)
        x, w = self.tokens[rows], self.weights[rows]
        loss, grad_norm = self.trainer.train_step(x[:, :-1], x[:, 1:], lr, w)
        x, w = self.back_tokens[rows], self.back_weights[rows]
        back_loss, _ = self.back_trainer.train_step(x[:, :-1], x[:, 1:], lr, w)
        return {"loss": float(loss), "grad_norm": float(grad_norm), "lr": lr,
                "backward_loss": float(back_loss)}

    def _switch(self) -> None:
        """The end of phase 1: freeze a copy of the MLE chatbot (the rewards' p_seq2seq)."""
        b = self.backend
        b.import_params(self.frozen, b.export_params(self.model))
        self.switched = True

    def _rl_step(self, u: int) -> dict[str, float]:
        s = self.settings
        k_rl = u - s.mle_steps
        horizon, k_tokens = curriculum(k_rl, s)
        rng = np.random.default_rng((s.seed, 2, u))
        picked = rng.choice(len(self.openings), s.conversations, replace=False)
        conversations, records = simulate(self.backend, self.model, self.vocab,
                                          [self.openings[i] for i in picked],
                                          horizon, greedy=False, seed=noise_seed(s.seed, u))
        turns = [(c[k], c[k + 1], c[k + 2]) for k in range(horizon) for c in conversations]
        scored = self.turn_rewards(turns)
        live = alive(conversations)[:, :horizon].T  # (H, M): the conversation still runs
        rewards = scored["reward"].reshape(horizon, s.conversations) * live  # turn-major
        returns = returns_to_go(rewards, s.discount)
        counts = np.maximum(live.sum(axis=1, keepdims=True), 1)
        baseline = returns.sum(axis=1, keepdims=True) / counts  # turn k's mean over live ones
        advantages = ((returns - baseline) * live).reshape(-1)
        tokens = np.concatenate([t for t, _ in records])  # (H M, 3 SLOT)
        mask = np.zeros((len(tokens), self.vocab.block_size - 1))
        reply = np.concatenate([m for _, m in records])
        mask[:, CONTEXT - 1:] = last_tokens(reply, k_tokens)  # column t flags token t + 1
        mask *= live.reshape(-1, 1)  # an ended conversation's later turns are not trained
        self.learner.learning_rate = s.rl_learning_rate
        stats = self.learner.update(tokens, mask, advantages)
        dull = np.array([is_dull(t[2]) for t in turns]) & (live.reshape(-1) > 0)
        row = {"loss": stats["loss"], "grad_norm": stats["grad_norm"],
               "lr": s.rl_learning_rate, "reward": float(scored["reward"].mean()),
               "sample_dull_rate": float(dull.mean()),
               # < 0 when dull replies earn less than their turn's baseline: RL avoids them
               "dull_advantage": float(advantages[dull].mean()) if dull.any() else 0.0,
               "horizon": float(horizon), "trained_tokens": float(k_tokens)}
        for key in ("r1", "r2", "r3"):
            row[key] = float(scored[key].mean()) if key in scored else float("nan")
        return row

    def step(self) -> dict[str, float]:
        """Update number :attr:`updates` + 1: an MLE step of both models, or (after
        ``mle_steps``) a policy-gradient step; held-out figures every ``eval_every`` updates,
        at the switch and at the end.

        :raises FloatingPointError: when the loss is not finite.
        """
        s, u = self.settings, self.updates
        phase = "mle" if u < s.mle_steps else "rl"
        if phase == "rl" and not self.switched:
            if self.mle is None:
                self.mle = self.heldout()
            self._switch()
        began = time.perf_counter()
        row = self._mle_step(u) if phase == "mle" else self._rl_step(u)
        if phase in self._timed:  # the first step of a phase traces / warms up: not timed
            self.seconds[phase] += time.perf_counter() - began
            self.counts[phase] += (s.batch_size if phase == "mle"
                                   else s.conversations * int(row["horizon"]))
        self._timed.add(phase)
        if not math.isfinite(row["loss"]):
            raise FloatingPointError(f"training diverged at update {u + 1} ({phase}): loss "
                                     f"{row['loss']}")
        self.updates = u + 1
        dull = float("nan")
        if self.updates % s.eval_every == 0 or self.updates in (s.mle_steps, self.total):
            dull = self.heldout()["dull_rate"]
            if self.updates == s.mle_steps:
                self.mle = self.heldout()
        nan = float("nan")
        full = {"update": float(self.updates), "rl": float(phase == "rl"), "loss": row["loss"],
                "grad_norm": row["grad_norm"], "lr": row["lr"],
                **{k: row.get(k, nan) for k in ("backward_loss", "reward", "r1", "r2", "r3",
                                                 "sample_dull_rate", "dull_advantage", "horizon",
                                                 "trained_tokens")},
                "heldout_dull_rate": dull, "wall_s": time.perf_counter() - began}
        for key, value in full.items():
            self.history.setdefault(key, []).append(value)
        return full

    @property
    def total(self) -> int:
        return self.settings.mle_steps + self.settings.rl_updates

    def heldout(self) -> dict[str, Any]:
        """Greedy self-play from the held-out openings (``evaluate.dialogue_figures``),
        computed once per update count."""
        if self._final is None or self._final[0] != self.updates:
            conversations, _ = simulate(self.backend, self.model, self.vocab,
                                        self.heldout_openings, self.settings.eval_turns)
            self._final = (self.updates, dialogue_figures(conversations))
        return self._final[1]

    def sampled_reward(self, turns: int = 2, seed: int = 0) -> dict[str, float]:
        """Mean ``reward`` (and r1, r2, r3) of ``turns`` sampled self-play turns from each
        held-out opening, the noise fixed by ``seed``: the objective RL climbs, compared
        before and after with the same noise (common random numbers)."""
        conversations, _ = simulate(self.backend, self.model, self.vocab, self.heldout_openings,
                                    turns, greedy=False, seed=seed)
        scored = self.turn_rewards([(c[k], c[k + 1], c[k + 2]) for k in range(turns)
                                    for c in conversations])
        return {k: float(v.mean()) for k, v in scored.items()}

    # -- the run loop's trainer -----------------------------------------------------------------

    def progress(self) -> tuple[int, int]:
        return self.updates, self.total

    def finished(self) -> bool:
        return self.updates >= self.total

    def state(self) -> Checkpoint:
        b = self.backend
        tensors = {"params": b.export_params(self.model),
                   "backward_params": b.export_params(self.backward),
                   "optim": self.trainer.optimizer.state_arrays(),
                   "backward_optim": self.back_trainer.optimizer.state_arrays(),
                   "rl_optim": self.learner.optimizer.state_arrays()}
        if self.switched:
            tensors["frozen_params"] = b.export_params(self.frozen)
        info = {"settings": asdict(self.settings), "config": self.config.to_dict(),
                "updates": self.updates, "backend": b.NAME, "history": self.history,
                "mle": self.mle, "switched": self.switched}
        return Checkpoint(DIALOGUE_KIND, tensors, info)

    def load_state(self, checkpoint: Checkpoint, source: str) -> None:
        """Weights, the Adam states, counters, history; CheckpointError for other settings
        (all but ``rl_updates`` and ``eval_every`` must be the same)."""
        require_same_settings(checkpoint.metadata.get("settings"), asdict(self.settings), source,
                              _GROWABLE)
        b, tensors = self.backend, checkpoint.tensors
        b.import_params(self.model, tensors["params"])
        b.import_params(self.backward, tensors["backward_params"])
        self.trainer.optimizer.load_state_arrays(tensors["optim"])
        self.back_trainer.optimizer.load_state_arrays(tensors["backward_optim"])
        self.learner.optimizer.load_state_arrays(tensors["rl_optim"])
        self.switched = bool(checkpoint.metadata.get("switched"))
        if self.switched:
            b.import_params(self.frozen, tensors["frozen_params"])
        self.updates = int(checkpoint.metadata["updates"])
        self.history = {k: list(v) for k, v in checkpoint.metadata.get("history", {}).items()}
        self.mle = checkpoint.metadata.get("mle")
        self._final = None

    def evaluate(self) -> dict[str, Any]:
        """The headline figures, MLE against RL: ``mle_dull_rate``, ``rl_dull_rate``,
        dialogue lengths, distinct-1/2, each model's figures (with sample conversations),
        speeds and size."""
        now = self.heldout()
        mle = self.mle if self.mle is not None else now
        rl = now if self.updates > self.settings.mle_steps else None
        rate = {k: self.counts[k] / self.seconds[k] if self.seconds[k] else float("nan")
                for k in self.seconds}
        out: dict[str, Any] = {}
        for key in ("dull_rate", "dialogue_length", "distinct_1", "distinct_2"):
            out[f"mle_{key}"] = mle[key]
            out[f"rl_{key}"] = rl[key] if rl else None
        return {**out, "mle": mle, "rl": rl, "mle_examples_per_s": rate["mle"],
                "rl_turns_per_s": rate["rl"], "parameters": int(self.model.num_parameters())}

    def plot(self, run_dir: Path) -> Path | None:
        """``dialogue.png``: held-out dull-reply rate by update, and the policy-gradient
        phase's mean reward and sampled dull rate."""
        if not self.history:
            return None
        return plot_dialogue({self.backend.NAME: self.history}, Path(run_dir) / "dialogue.png",
                             self.settings.mle_steps)


def plot_dialogue(histories: dict[str, dict[str, list[float]]], path: str | Path,
                  switch: int | None = None) -> Path:
    """Held-out dull-reply rate (greedy self-play) and, in the RL phase, the sampled turns'
    dull rate and mean reward, one set of lines per label."""
    from duetrl.core.plots import plot_curves

    curves = {}
    for label, h in histories.items():
        update, dull = np.asarray(h["update"]), np.asarray(h["heldout_dull_rate"])
        evaluated = ~np.isnan(dull)
        curves[f"{label} held-out dull-reply rate (greedy)"] = (update[evaluated], dull[evaluated])
        rl = np.asarray(h["rl"]) > 0
        if rl.any():
            curves[f"{label} sampled dull-reply rate"] = (
                update[rl], np.asarray(h["sample_dull_rate"])[rl])
            curves[f"{label} mean reward"] = (update[rl], np.asarray(h["reward"])[rl])
    title = "MLE, then policy gradient" + (f" from update {switch + 1}" if switch else "")
    return plot_curves(curves, path, xlabel="update", ylabel="rate / reward", title=title)


def load_run(backend: ModuleType, path: str | Path) -> DialogueRun:
    """A :class:`DialogueRun` rebuilt from its checkpoint (corpus regenerated from the
    settings, which is deterministic), weights loaded."""
    checkpoint = load_checkpoint(path, DIALOGUE_KIND)
    try:
        settings = DialogueSettings(**dict(checkpoint.metadata.get("settings") or {}))
    except TypeError as error:
        raise CheckpointError(f"checkpoint {str(path)!r}: invalid settings ({error})") from None
    run = DialogueRun(backend, settings)
    run.load_state(checkpoint, str(path))
    return run
