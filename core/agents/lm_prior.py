"""The LM as prior (outline 9.3.1, 1.3.1): RL regularised toward the LM's action distribution.

The LM scores the admissible commands as the LM policy does (GLAM, ``core/agents/batch.py``
and ``backends/*/lm_agent.inference_outputs``): pi_0(a_k | s) = softmax_k(log p_LM(a_k | s)).
A small policy, one logit per (state, command), starts *at* the prior and is trained by
REINFORCE on the task's reward with a KL penalty toward it:

    pi_theta(a | s) = softmax_a(log pi_0(a | s) + theta[s, a])          (theta starts at 0)
    J(theta) = E[sum_t gamma^t r_t] - beta E_s[ KL(pi_theta(. | s) || pi_0(. | s)) ]
    KL(pi || pi_0) = sum_k pi_k (log pi_k - log pi_0_k)
    d KL / d z_k = pi_k (log pi_k - log pi_0_k - KL)                   (z = the policy's logits)

The maximiser of J in one state is pi*(a) proportional to pi_0(a) exp(Q(s, a) / beta): the
prior decides where the reward says nothing, and in a state never visited the policy *is* the
prior (a tabular policy on its own knows nothing there). beta = 0 with a uniform prior is
plain tabular REINFORCE, the baseline without an LM.

The LM here is a GPT that has read some demonstrations (the oracle's commands, LM loss on the
command's tokens only): what an LM "knows" about acting in these worlds, made in code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.agents.batch import layout
from duetrl.core.agents.lm_reward import make_text_env
from duetrl.core.agents.tokenizer import WordTokenizer
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.reference.functional import log_softmax


def kl_to_prior(logits: np.ndarray, log_prior: np.ndarray) -> float:
    """KL(pi || pi_0) = sum_k pi_k (log pi_k - log pi_0_k), pi = softmax(logits), float64."""
    log_pi = log_softmax(np.asarray(logits, np.float64))
    return float(np.sum(np.exp(log_pi) * (log_pi - np.asarray(log_prior, np.float64))))


def kl_gradient(logits: np.ndarray, log_prior: np.ndarray) -> np.ndarray:
    """d KL(softmax(z) || pi_0) / d z_k = pi_k (log pi_k - log pi_0_k - KL), float64."""
    log_pi = log_softmax(np.asarray(logits, np.float64))
    pi = np.exp(log_pi)
    diff = log_pi - np.asarray(log_prior, np.float64)
    return pi * (diff - np.sum(pi * diff))


@dataclass
class PriorSettings:
    """The prior LM (a GPT) and the demonstrations it reads."""

    episodes: int = 20
    steps: int = 150
    batch_size: int = 32
    learning_rate: float = 3e-3
    n_layer: int = 1
    n_head: int = 2
    n_embd: int = 32
    block_size: int = 96
    seed: int = 0


class PriorLM:
    """A GPT scoring admissible commands, trained on the oracle's commands in ``env_id``.

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``.
    """

    def __init__(self, backend: ModuleType, env_id: str,
                 settings: PriorSettings | None = None) -> None:
        self.backend, self.settings, self.env_id = backend, settings or PriorSettings(), env_id
        s = self.settings
        env = make_text_env(env_id)
        self.tokenizer = WordTokenizer.from_words(env.vocabulary())
        self.config = GPTConfig(vocab_size=self.tokenizer.vocab_size, block_size=s.block_size,
                                n_layer=s.n_layer, n_head=s.n_head, n_embd=s.n_embd)
        self.model = backend.GPT(self.config, seed=s.seed)
        self.value_head = backend.ValueHead(s.n_embd, seed=s.seed)  # unused: the grid's API
        self.losses: list[float] = []
        self._cache: dict[tuple, np.ndarray] = {}

    def demonstrations(self) -> list[dict[str, Any]]:
        """The oracle's (observation, command) pairs, the observation's admissible list cut
        to the command taken (one row each)."""
        env = make_text_env(self.env_id)
        rng = np.random.default_rng([self.settings.seed, 23])
        pairs = []
        for _ in range(self.settings.episodes):
            observation, _ = env.reset(seed=int(rng.integers(2**31)))
            done = False
            while not done:
                action = env.oracle_action()
                pairs.append({**observation, "admissible": (observation["admissible"][action],)})
                observation, _, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
        return pairs

    def fit(self) -> list[float]:
        """LM loss on the demonstrated commands' tokens (``mask`` of the grid as weights)."""
        s = self.settings
        grid = layout(self.tokenizer, self.demonstrations(), s.block_size)
        trainer = self.backend.LMTrainer(self.model, weight_decay=0.0)
        rng = np.random.default_rng([s.seed, 29])
        x, y = grid["tokens"][:, :-1], grid["tokens"][:, 1:]
        for _ in range(s.steps):
            pick = rng.integers(len(x), size=s.batch_size)
            self.losses.append(trainer.train_step(x[pick], y[pick], s.learning_rate,
                                                  grid["mask"][pick])[0])
        self._cache.clear()
        return self.losses

    def log_prior(self, observation: Mapping[str, Any]) -> np.ndarray:
        """log pi_0(. | s) over the admissible commands, ``(K,)`` float64 (cached)."""
        key = (observation["goal"], observation["text"], tuple(observation["admissible"]))
        if key not in self._cache:
            self._cache[key] = self.log_priors([observation])[0]
        return self._cache[key]

    def log_priors(self, observations: Sequence[Mapping[str, Any]]) -> list[np.ndarray]:
        grid = layout(self.tokenizer, observations, self.settings.block_size)
        log_pi, _ = self.backend.inference_outputs(
            self.model, self.value_head, grid["tokens"], grid["mask"], grid["admissible"],
            grid["prompt_last"])
        return [log_pi[i, : grid["counts"][i]] for i in range(len(observations))]


@dataclass
class PriorRLSettings:
    """Tabular REINFORCE with a KL penalty toward a prior, over many worlds."""

    env: str = "duetrl/KeyDoor-v0"
    episodes: int = 200
    beta: float = 0.1
    learning_rate: float = 0.5
    gamma: float = 0.99
    max_steps: int = 24
    seed: int = 0


def prior_rl_run(prior: PriorLM | None, settings: PriorRLSettings | None = None,
                 eval_every: int = 25, eval_episodes: int = 20) -> dict[str, Any]:
    """REINFORCE (a moving-average baseline) of pi_theta = softmax(log pi_0 + theta) with the
    KL penalty beta KL(pi_theta || pi_0); ``prior=None``: a uniform prior (no LM). Each episode
    is a new world (seeded); every ``eval_every`` episodes, the policy's success (sampled:
    the worlds are partly observed, the hall does not say where the key is) on
    ``eval_episodes`` other worlds. The per-episode success and KL, and the evaluations."""
    s = settings or PriorRLSettings()
    env = make_text_env(s.env, max_steps=s.max_steps)
    rng = np.random.default_rng([s.seed, 31])
    theta: dict[tuple, np.ndarray] = {}
    baseline = 0.0

    def logits_of(observation: Mapping[str, Any]) -> tuple[tuple, np.ndarray, np.ndarray]:
        key = (observation["goal"], observation["text"])
        k = len(observation["admissible"])
        log_prior = prior.log_prior(observation) if prior else np.full(k, -np.log(k))
        residual = theta.setdefault(key, np.zeros(k))
        return key, log_prior + residual, log_prior

    def evaluate() -> float:
        wins, noise = 0, np.random.default_rng([s.seed, 37])
        for i in range(eval_episodes):
            observation, _ = env.reset(seed=10**6 + i)
            while True:
                _, z, _ = logits_of(observation)
                action = int(np.argmax(z + noise.gumbel(size=len(z))))  # a sample of pi
                observation, _, terminated, truncated, info = env.step(action)
                if terminated or truncated:
                    wins += int(info["success"])
                    break
        return wins / eval_episodes

    history: dict[str, list[float]] = {"success": [], "kl": [], "eval_episode": [],
                                       "eval_success": []}
    for episode in range(s.episodes):
        if episode % eval_every == 0:
            history["eval_episode"].append(float(episode))
            history["eval_success"].append(evaluate())
        observation, _ = env.reset(seed=int(rng.integers(2**31)))
        steps, rewards, kls = [], [], []
        while True:
            key, z, log_prior = logits_of(observation)
            pi = np.exp(log_softmax(z))
            action = int(rng.choice(len(pi), p=pi / pi.sum()))
            steps.append((key, z, log_prior, action))
            kls.append(kl_to_prior(z, log_prior))
            observation, reward, terminated, truncated, info = env.step(action)
            rewards.append(reward)
            if terminated or truncated:
                break
        returns = np.zeros(len(rewards))
        running = 0.0
        for t in range(len(rewards) - 1, -1, -1):
            running = rewards[t] + s.gamma * running
            returns[t] = running
        for (key, z, log_prior, action), g in zip(steps, returns):
            pi = np.exp(log_softmax(z))
            grad = -pi
            grad[action] += 1.0  # d log pi(a) / d z
            theta[key] += s.learning_rate * ((g - baseline) * grad
                                             - s.beta * kl_gradient(z, log_prior))
        baseline += 0.05 * (returns[0] - baseline)
        history["success"].append(float(info["success"]))
        history["kl"].append(float(np.mean(kls)))
    history["eval_episode"].append(float(s.episodes))
    history["eval_success"].append(evaluate())
    return {"history": history, "final_success": history["eval_success"][-1],
            "states": len(theta)}


def prior_success(prior: PriorLM, env_id: str, episodes: int = 20, max_steps: int = 24,
                  seed: int = 0) -> float:
    """The LM alone as the policy (a sample of pi_0, Gumbel-max), on the evaluation worlds of
    :func:`prior_rl_run`."""
    env = make_text_env(env_id, max_steps=max_steps)
    wins, noise = 0, np.random.default_rng([seed, 37])
    for i in range(episodes):
        observation, _ = env.reset(seed=10**6 + i)
        while True:
            z = prior.log_prior(observation)
            observation, _, terminated, truncated, info = env.step(
                int(np.argmax(z + noise.gumbel(size=len(z)))))
            if terminated or truncated:
                wins += int(info["success"])
                break
    return wins / episodes


__all__ = ["PriorLM", "PriorRLSettings", "PriorSettings", "kl_gradient", "kl_to_prior",
           "prior_rl_run", "prior_success"]
