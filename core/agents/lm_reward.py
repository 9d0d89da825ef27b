"""The LM as reward, and reward design for agents (outline 3.2.4), host side.

**The judge.** A small GPT reads the text of a trajectory's last step and answers whether the
goal was achieved:

    x = "goal : <goal> . action : <last command> . <what the agent now sees> done :"
    J(x) = p_LM(yes | x) / (p_LM(yes | x) + p_LM(no | x))

It is trained in code, with the LM loss of chapter 2 (``backends/*/training.LMTrainer``)
weighted only at the answer position, on labelled transcripts: the ends of episodes played by
the oracle (yes) and by random play (yes when the episode succeeded, no otherwise). Its
agreement with the true reward (accuracy, false positives, false negatives) is measured on
fresh episodes, and on *near misses* (the oracle's episode stopped one command short): states
it never saw labelled.

**Reward design** (:func:`reward_design_run`): the same learner (tabular Q-learning,
epsilon-greedy, one fixed world) and the same seed, optimising one of

=====================  =========================================================================
``reward``             what the learner is paid
=====================  =========================================================================
``sparse``             1 on the step that reaches the goal
``shaped``             + 0.1 the first time each sub-goal is reached (paid once)
``shaped_repeating``   + 0.1 every time a sub-goal is reached: farmable (take, drop, take ...)
``judge``              J(x) of every step: the LM judge's belief that the goal is achieved now
=====================  =========================================================================

Each run logs, per episode, the return of the reward being optimised beside the true success:
where they part, the reward is being gamed. A per-step judge is farmable like
``shaped_repeating``: any state the judge scores above about (1 - gamma) is worth more visited
forever than left through the door.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.agents.tokenizer import WordTokenizer
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.reference.gpt import gpt_forward

JUDGE_WORDS = ("done", "yes", "no", "action")
"""Words the judge's texts add to the environment's vocabulary."""

REWARD_KINDS = ("sparse", "shaped", "shaped_repeating", "judge")
"""The rewards :func:`reward_design_run` optimises (see the module's docstring)."""


def make_text_env(env_id: str, **kwargs: Any) -> Any:
    """A duetrl text environment, unwrapped (no Gymnasium checker in the inner loops)."""
    import gymnasium as gym

    import duetrl.core.envs  # noqa: F401  (registers duetrl/...)

    return gym.make(env_id, disable_env_checker=True, **kwargs).unwrapped


def judge_text(goal: str, command: str, text: str) -> str:
    """The judge's input for one step: the goal, the command taken and what followed."""
    return f"goal : {goal} . action : {command} . {text} done :"


# ---------------------------------------------------------------------------------------------
# Labelled transcripts
# ---------------------------------------------------------------------------------------------


def play(env: Any, seed: int, policy: str, rng: np.random.Generator,
         stop_before_last: bool = False) -> dict[str, Any]:
    """One episode of ``policy`` (``"oracle"`` or ``"random"``) from ``reset(seed=seed)``.

    :param stop_before_last: end the oracle's episode one command before success (a near miss).
    :returns: goal, commands, texts (after each command), success.
    """
    observation, _ = env.reset(seed=seed)
    commands, texts, success = [], [], False
    while True:
        if policy == "oracle":
            action = env.oracle_action()
            state, _ = env._next(env.state, env.admissible()[action])
            if stop_before_last and env._success(state) and commands:
                break
        elif policy == "random":
            action = int(rng.integers(len(observation["admissible"])))
        else:
            raise ValueError(f"policy: expected 'oracle' or 'random', got {policy!r}")
        commands.append(observation["admissible"][action])
        observation, _, terminated, truncated, info = env.step(action)
        texts.append(observation["text"])
        success = bool(info["success"])
        if terminated or truncated:
            break
    return {"goal": observation["goal"], "commands": commands, "texts": texts,
            "success": success}


def final_examples(episodes: Sequence[dict[str, Any]]) -> tuple[list[str], np.ndarray]:
    """The judge's input of each episode's last step, and its true label (1: success)."""
    texts = [judge_text(e["goal"], e["commands"][-1], e["texts"][-1]) for e in episodes]
    return texts, np.array([float(e["success"]) for e in episodes])


def labelled_transcripts(env_id: str, episodes: int, seed: int,
                         policies: Sequence[str] = ("oracle", "random"),
                         stop_before_last: bool = False) -> list[dict[str, Any]]:
    """``episodes`` episodes of each policy, reset seeds drawn from ``seed``."""
    env = make_text_env(env_id)
    rng = np.random.default_rng([seed, 17])
    played = []
    for policy in policies:
        for _ in range(episodes):
            played.append(play(env, int(rng.integers(2**31)), policy, rng, stop_before_last))
    return played


# ---------------------------------------------------------------------------------------------
# The judge
# ---------------------------------------------------------------------------------------------


def judge_tokenizer(env_id: str) -> WordTokenizer:
    """A word tokeniser over the environment's vocabulary and :data:`JUDGE_WORDS`."""
    env = make_text_env(env_id)
    return WordTokenizer.from_words([*env.vocabulary(), *JUDGE_WORDS])


def encode_judge_inputs(tokenizer: WordTokenizer, texts: Sequence[str],
                        answers: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Right-padded rows ``text + answer``: ``tokens`` (N, T) int64, ``last`` (N,) the column of
    ``:`` after ``done`` (its logits predict the answer), and ``weights`` (N, T-1): 1 only at
    that column (the LM loss is taken at the answer alone)."""
    encoded = [tokenizer.encode(t, "text") for t in texts]
    length = max(len(e) for e in encoded) + 1
    tokens = np.full((len(texts), length), tokenizer.pad_id, dtype=np.int64)
    last = np.array([len(e) - 1 for e in encoded], dtype=np.int64)
    weights = np.zeros((len(texts), length - 1))
    yes, no = tokenizer.index["yes"], tokenizer.index["no"]
    for i, e in enumerate(encoded):
        tokens[i, : len(e)] = e
        if answers is not None:
            tokens[i, len(e)] = yes if answers[i] > 0.5 else no
        weights[i, last[i]] = 1.0
    return {"tokens": tokens, "last": last, "weights": weights}


def yes_probability(logits_at_last: np.ndarray, yes: int, no: int) -> np.ndarray:
    """J = p(yes) / (p(yes) + p(no)) from the logits (N, V) at the answer's column."""
    z = np.asarray(logits_at_last, np.float64)
    return 1.0 / (1.0 + np.exp(z[:, no] - z[:, yes]))


def reference_judge_scores(params: dict[str, np.ndarray], config: GPTConfig,
                           tokenizer: WordTokenizer, texts: Sequence[str]) -> np.ndarray:
    """J(x) in float64 NumPy (``core/reference/gpt.gpt_forward``), each text on its own."""
    scores = []
    for text in texts:
        ids = tokenizer.encode(text, "text")[None]
        logits = gpt_forward(params, ids, config)[0, -1]
        scores.append(yes_probability(logits[None], tokenizer.index["yes"],
                                      tokenizer.index["no"])[0])
    return np.array(scores)


@dataclass
class JudgeSettings:
    """The judge's GPT and its training."""

    n_layer: int = 1
    n_head: int = 2
    n_embd: int = 32
    block_size: int = 96
    steps: int = 150
    batch_size: int = 32
    learning_rate: float = 3e-3
    seed: int = 0


class LMJudge:
    """A small GPT that judges from a step's text whether the goal was achieved.

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``.
    :param env_id: the text environment whose words it reads.
    :param settings: the GPT and its training (same settings and seed: the same initial
        weights and batches in both backends).
    """

    def __init__(self, backend: ModuleType, env_id: str,
                 settings: JudgeSettings | None = None) -> None:
        self.backend, self.settings = backend, settings or JudgeSettings()
        s = self.settings
        self.tokenizer = judge_tokenizer(env_id)
        self.config = GPTConfig(vocab_size=self.tokenizer.vocab_size, block_size=s.block_size,
                                n_layer=s.n_layer, n_head=s.n_head, n_embd=s.n_embd)
        self.model = backend.GPT(self.config, seed=s.seed)
        self.trainer = backend.LMTrainer(self.model, weight_decay=0.0)
        self.losses: list[float] = []
        self._cache: dict[str, float] = {}

    def fit(self, texts: Sequence[str], labels: np.ndarray) -> list[float]:
        """``steps`` AdamW steps on batches drawn (seeded) from the labelled texts; the
        losses (cross-entropy of the answer)."""
        s = self.settings
        rows = encode_judge_inputs(self.tokenizer, texts, np.asarray(labels))
        if rows["tokens"].shape[1] > s.block_size:
            raise ValueError(f"texts: {rows['tokens'].shape[1]} tokens, more than the judge's "
                             f"block_size {s.block_size}")
        rng = np.random.default_rng([s.seed, 3])
        x, y = rows["tokens"][:, :-1], rows["tokens"][:, 1:]
        for _ in range(s.steps):
            pick = rng.integers(len(texts), size=s.batch_size)
            loss, _ = self.trainer.train_step(x[pick], y[pick], s.learning_rate,
                                              rows["weights"][pick])
            self.losses.append(loss)
        self._cache.clear()
        return self.losses

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """J(x) of each text, ``(N,)`` float64 (one batched forward pass of the GPT)."""
        rows = encode_judge_inputs(self.tokenizer, texts)
        b = self.backend
        logits = b.to_numpy(self.model(b.as_tensor(rows["tokens"])))
        at_last = logits[np.arange(len(texts)), rows["last"]]
        return yes_probability(at_last, self.tokenizer.index["yes"], self.tokenizer.index["no"])

    def score(self, text: str) -> float:
        """J(x) of one text, cached (a fixed world repeats its texts)."""
        if text not in self._cache:
            self._cache[text] = float(self.scores([text])[0])
        return self._cache[text]

    def params(self) -> dict[str, np.ndarray]:
        return self.backend.export_params(self.model)


def agreement(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The judge against the true reward: accuracy, false-positive rate (of the failures, the
    share judged successes), false-negative rate, and the count."""
    judged = np.asarray(scores) > threshold
    truth = np.asarray(labels) > 0.5
    failures, successes = max(int((~truth).sum()), 1), max(int(truth.sum()), 1)
    return {"accuracy": float(np.mean(judged == truth)),
            "false_positive_rate": float((judged & ~truth).sum() / failures),
            "false_negative_rate": float((~judged & truth).sum() / successes),
            "n": int(len(truth))}


def train_judge(backend: ModuleType, env_id: str, episodes: int = 200, seed: int = 0,
                settings: JudgeSettings | None = None) -> tuple[LMJudge, dict[str, Any]]:
    """Train a judge on ``episodes`` oracle and ``episodes`` random episodes; measure it on
    fresh ones and on near misses. ``(judge, {"train", "test", "near_miss", "losses"})``."""
    judge = LMJudge(backend, env_id, settings)
    texts, labels = final_examples(labelled_transcripts(env_id, episodes, seed))
    judge.fit(texts, labels)
    test_texts, test_labels = final_examples(labelled_transcripts(env_id, episodes, seed + 1))
    near = labelled_transcripts(env_id, max(episodes // 4, 10), seed + 2, ("oracle",), True)
    near_texts, near_labels = final_examples(near)
    near_scores = judge.scores(near_texts)
    return judge, {
        "train": agreement(judge.scores(texts), labels),
        "test": agreement(judge.scores(test_texts), test_labels),
        "near_miss": {**agreement(near_scores, near_labels),
                      "mean_score": float(np.mean(near_scores))},
        "positives": float(np.mean(labels)), "losses": judge.losses,
    }


# ---------------------------------------------------------------------------------------------
# Reward design: one learner, one seed, four rewards
# ---------------------------------------------------------------------------------------------


@dataclass
class DesignSettings:
    """Tabular Q-learning on one fixed world (the same for every reward); Q starts at
    ``optimism`` (optimistic: every untried command looks worth trying)."""

    env: str = "duetrl/KeyDoor-v0"
    episodes: int = 300
    world_seed: int = 0
    max_steps: int = 24
    gamma: float = 0.99
    alpha: float = 0.5
    epsilon: float = 0.1
    optimism: float = 1.0
    seed: int = 0


def greedy_episode(env: Any, q: dict[str, np.ndarray], world_seed: int,
                   reward_fn: Callable[[str, str, str, float], float]) -> tuple[float, bool]:
    """One greedy episode: (return of the optimised reward, true success)."""
    observation, _ = env.reset(seed=world_seed)
    total, success = 0.0, False
    while True:
        key = observation["text"]
        values = q.get(key, np.zeros(len(observation["admissible"])))
        action = int(np.argmax(values))
        command = observation["admissible"][action]
        observation, reward, terminated, truncated, info = env.step(action)
        total += reward_fn(observation["goal"], command, observation["text"], reward)
        success = bool(info["success"])
        if terminated or truncated:
            return total, success


def reward_design_run(reward: str, settings: DesignSettings | None = None,
                      judge: LMJudge | None = None) -> dict[str, Any]:
    """Q-learning on the reward ``reward`` (:data:`REWARD_KINDS`); per episode the
    optimised return and the true success of the epsilon-greedy episode, and at the end the
    greedy policy's return and success (and its commands)."""
    s = settings or DesignSettings()
    if reward not in REWARD_KINDS:
        raise ValueError(f"reward: expected one of {list(REWARD_KINDS)}, got {reward!r}")
    if reward == "judge" and judge is None:
        raise ValueError("judge: reward 'judge' needs an LMJudge")
    env_reward = "sparse" if reward == "judge" else reward
    env = make_text_env(s.env, reward=env_reward, max_steps=s.max_steps)

    def reward_fn(goal: str, command: str, text: str, env_r: float) -> float:
        return judge.score(judge_text(goal, command, text)) if reward == "judge" else env_r

    rng = np.random.default_rng([s.seed, 11])
    q: dict[str, np.ndarray] = {}
    history: dict[str, list[float]] = {"optimised_return": [], "true_success": []}
    for _ in range(s.episodes):
        observation, _ = env.reset(seed=s.world_seed)
        total, success = 0.0, False
        while True:
            key = observation["text"]
            values = q.setdefault(key, np.full(len(observation["admissible"]), s.optimism))
            if rng.random() < s.epsilon:
                action = int(rng.integers(len(values)))
            else:
                action = int(np.argmax(values))
            command = observation["admissible"][action]
            observation, env_r, terminated, truncated, info = env.step(action)
            r = reward_fn(observation["goal"], command, observation["text"], env_r)
            following = q.setdefault(observation["text"],
                                     np.full(len(observation["admissible"]), s.optimism))
            # a truncation bootstraps (the world goes on), a termination does not
            target = r + (0.0 if terminated else s.gamma * float(following.max()))
            values[action] += s.alpha * (target - values[action])
            total += r
            success = bool(info["success"])
            if terminated or truncated:
                break
        history["optimised_return"].append(total)
        history["true_success"].append(float(success))
    greedy_return, greedy_success = greedy_episode(env, q, s.world_seed, reward_fn)
    return {"reward": reward, "history": history, "greedy_return": greedy_return,
            "greedy_success": float(greedy_success), "states": len(q)}


def smooth(values: Sequence[float], window: int = 20) -> np.ndarray:
    """A trailing moving average (the first points average what there is)."""
    values = np.asarray(values, np.float64)
    sums = np.cumsum(np.insert(values, 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def plot_reward_design(runs: dict[str, dict[str, Any]], path: Any, window: int = 20) -> Any:
    """One panel per reward: the optimised return and the true success, smoothed, per episode."""
    from duetrl.core.plots import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(3.6 * len(runs), 3.4), squeeze=False)
    for ax, (name, result) in zip(axes[0], runs.items()):
        h = result["history"]
        x = np.arange(1, len(h["true_success"]) + 1)
        ax.plot(x, smooth(h["optimised_return"], window), label="optimised return")
        ax.plot(x, smooth(h["true_success"], window), label="true success")
        ax.set_title(name)
        ax.set_xlabel("episode")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    fig.suptitle("the same learner and seed, four rewards")
    return save_figure(fig, path)


__all__ = ["JUDGE_WORDS", "REWARD_KINDS", "DesignSettings", "JudgeSettings", "LMJudge",
           "agreement", "encode_judge_inputs", "final_examples", "greedy_episode",
           "judge_text", "judge_tokenizer", "labelled_transcripts",
           "make_text_env", "play", "plot_reward_design", "reference_judge_scores",
           "reward_design_run", "smooth", "train_judge", "yes_probability"]
