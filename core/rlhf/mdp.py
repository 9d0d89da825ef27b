"""The sequence MDP of a language model, made explicit (outline 2.3.1, 3.1.2-3.1.3), and the
rollouts that sample it in groups, once for both backends.

=========  ===============================================================================
MDP part   for a language model
=========  ===============================================================================
state      s_t = prompt + the completion tokens so far, (x_1..x_P, y_1..y_t)
action     a_t = y_{t+1}, the next token: one of the vocabulary's V ids
policy     pi_theta(a_t | s_t) = softmax(GPT(s_t))[a_t]
transition deterministic: s_{t+1} = s_t + (a_t,)
end        *terminated* when a_t is the stop token; *truncated* at the length limit
reward     R(s_T) = r(prompt, completion) once, at the end; optionally minus
           beta k1_t = beta (log pi(a_t|s_t) - log pi_ref(a_t|s_t)) at every token (KL shaping)
=========  ===============================================================================

Sampling a batch: each prompt is repeated ``group_size`` times (prompt-major, so entries
``[g k, (g + 1) k)`` share prompt g, as ``core/interfaces/rlhf.py`` expects), the backend's
cached decoder generates ``max_new_tokens`` tokens for every row with noise drawn in core
(``duetrl.core.sampling``: the same seed gives the same tokens in both backends), and
everything after a row's first stop token is masked out and overwritten with the stop id (the
batch is right-padded). Decoding past the stop wastes a few tokens of compute but keeps every
shape fixed, so TensorFlow traces once.

The batch handed to ``RLHFLearner.update`` (see ``core/interfaces/rlhf.py`` for the contract):

    tokens    (B, T)    prompt, completion, padding; T = P + max_new_tokens
    mask      (B, T-1)  column t is 1 when tokens[:, t+1] is a completion token (stop included)
    old_logp  (B, T-1)  log pi_old of tokens[:, t+1], from the sampling pass; 0 off the mask
    ref_logp  (B, T-1)  log pi_ref of the same tokens, from the frozen reference; 0 off the mask
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.lm.tokenizers import CharTokenizer
from duetrl.core.rlhf.tasks import TextTask, get_task

REFERENCES = ("pretrained", "uniform")
"""Reference policies: a GPT pretrained on the task's corpus, or uniform over the task's
``action_alphabet`` (the setting where the optimum is known exactly)."""


@dataclass(frozen=True)
class SequenceMDP:
    """The text environment a policy acts in: its tokeniser, stop token and length limit.

    :param task: the :class:`~duetrl.core.rlhf.tasks.TextTask` (prompts and reward).
    :param tokenizer: the policy's character tokeniser.
    :param stop_id: id of the stop token, or None when the vocabulary has none (every episode
        then runs to the length limit, as with the uniform reference over digits).
    :param max_new_tokens: the length limit, in tokens (the stop token included).
    """

    task: TextTask
    tokenizer: CharTokenizer
    stop_id: int | None
    max_new_tokens: int

    @classmethod
    def for_task(cls, task: str | TextTask, reference: str = "pretrained") -> SequenceMDP:
        """The MDP of ``task`` for a policy starting from ``reference``.

        ``"pretrained"``: the task's own alphabet, its stop token, ``max_completion`` tokens.
        ``"uniform"``: only the task's ``action_alphabet`` (sort-digits: the ten digits), no stop
        token, ``max_completion - 1`` tokens: every completion is a full answer, and a policy
        whose logits are all zero is exactly the uniform reference of ``core/rlhf/optimum.py``.

        :raises ValueError: for an unknown reference, or ``"uniform"`` on a task with no
            action alphabet.
        """
        task = get_task(task)
        if reference not in REFERENCES:
            raise ValueError(f"reference: expected one of {list(REFERENCES)}, got {reference!r}")
        if reference == "pretrained":
            return cls(task, task.tokenizer, task.stop_id, task.max_completion)
        if task.action_alphabet is None:
            with_alphabet = [n for n, t in _known_tasks().items() if t.action_alphabet]
            raise ValueError(
                f"reference: 'uniform' needs a task with a fixed action alphabet "
                f"({with_alphabet}); task {task.name!r} has none, use 'pretrained'"
            )
        return cls(task, CharTokenizer(list(task.action_alphabet)), None, task.max_completion - 1)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    @property
    def prompt_length(self) -> int:
        """Tokens per prompt, as the policy sees it."""
        example = self.task.prompts(1, np.random.default_rng(0))[0]
        return len(self.policy_prompt(example))

    @property
    def sequence_length(self) -> int:
        """T = prompt + length limit: the smallest ``block_size`` a policy needs."""
        return self.prompt_length + self.max_new_tokens

    def policy_prompt(self, prompt: str) -> str:
        """The prompt in the policy's alphabet: characters outside it are dropped (the uniform
        reference over digits reads ``"31415926:"`` as ``"31415926"``)."""
        if self.stop_id is not None:
            return prompt
        return "".join(c for c in prompt if c in self.tokenizer.index)

    # -- the MDP, one step at a time (for reading; batches use rollout() below) --------------

    def reset(self, prompt: str) -> np.ndarray:
        """s_0: the prompt's token ids ``(P,)``."""
        return self.tokenizer.encode(self.policy_prompt(prompt))

    def step(
        self, state: np.ndarray, action: int, prompt_length: int
    ) -> tuple[np.ndarray, bool, bool]:
        """s_{t+1} = s_t + (a_t,); returns ``(next state, terminated, truncated)``.

        terminated: the action is the stop token. truncated: the length limit is reached.
        """
        next_state = np.append(state, np.int64(action))
        terminated = self.stop_id is not None and int(action) == self.stop_id
        truncated = not terminated and len(next_state) - prompt_length >= self.max_new_tokens
        return next_state, terminated, truncated

    def completion_text(self, new_tokens: np.ndarray) -> str:
        """The completion the reward sees: text up to and including the first stop token."""
        text = self.tokenizer.decode(new_tokens)
        head, found, _ = text.partition(self.task.stop)
        return head + found if self.stop_id is not None else text

    def check_policy(self, config: GPTConfig, name: str = "policy") -> None:
        """Raise ValueError unless a GPT with ``config`` can act in this MDP.

        Its vocabulary must be the tokeniser's, and prompt + length limit must fit its context.
        """
        if config.vocab_size != self.vocab_size:
            raise ValueError(
                f"{name}: vocab_size={config.vocab_size} does not match the task's tokeniser "
                f"({self.vocab_size} tokens: {''.join(self.tokenizer.vocab)!r})"
            )
        if config.block_size < self.sequence_length:
            raise ValueError(
                f"prompt: {self.prompt_length} prompt tokens + {self.max_new_tokens} completion "
                f"tokens = {self.sequence_length} exceed the {name}'s block_size="
                f"{config.block_size}; use a model with block_size >= {self.sequence_length}"
            )


def _known_tasks() -> dict[str, TextTask]:
    from duetrl.core.rlhf.tasks import TASKS

    return TASKS


def check_reference(policy: GPTConfig, reference: GPTConfig) -> None:
    """Raise ValueError naming ``reference`` when its vocabulary or context differs from the
    policy's: their log-probabilities would not be of the same tokens."""
    for name in ("vocab_size", "block_size"):
        a, b = getattr(reference, name), getattr(policy, name)
        if a != b:
            raise ValueError(
                f"reference: {name}={a} differs from the policy's {name}={b}; the reference "
                f"model must share the policy's tokeniser and context (start the policy from "
                f"the reference's checkpoint)"
            )


def completion_mask(new_tokens: np.ndarray, stop_id: int | None) -> np.ndarray:
    """``(B, n)`` float: 1 on each completion token up to *and including* the first stop token,
    0 after it (all ones when ``stop_id`` is None or no stop was emitted: truncation)."""
    new_tokens = np.asarray(new_tokens)
    if stop_id is None:
        return np.ones(new_tokens.shape)
    is_stop = new_tokens == stop_id
    stops_before = np.cumsum(is_stop, axis=1) - is_stop  # stops strictly before position t
    return (stops_before == 0).astype(np.float64)


@dataclass
class Rollout:
    """A batch of episodes: B = prompts x group_size rows, prompt-major.

    prompts: the B prompt texts (each repeated group_size times, consecutively).
    completions: the B completion texts (up to and including the stop).
    tokens: ``(B, T)`` int64, right-padded with the stop id after the stop.
    mask: ``(B, T-1)`` completion mask (column t flags tokens[:, t+1]).
    old_logp: ``(B, T-1)`` log pi_old of the sampled tokens (0 off the mask).
    ref_logp: ``(B, T-1)`` log pi_ref of the same tokens (0 off the mask).
    rewards: ``(B,)`` the task's rewards r(prompt, completion).
    success: ``(B,)`` the task's success metric.
    group_size: k.
    """

    prompts: list[str]
    completions: list[str]
    tokens: np.ndarray
    mask: np.ndarray
    old_logp: np.ndarray
    ref_logp: np.ndarray
    rewards: np.ndarray
    success: np.ndarray
    group_size: int
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def lengths(self) -> np.ndarray:
        """``(B,)`` completion tokens of each row (stop included)."""
        return self.mask.sum(axis=1)

    @property
    def stopped(self) -> np.ndarray:
        """``(B,)`` bool: the episode ended at the stop token (True for every row of an MDP
        without one, where the length limit is the end by design)."""
        return self.extras.get("stopped", np.ones(len(self.rewards), dtype=bool))

    @property
    def sequence_kl(self) -> np.ndarray:
        """``(B,)`` sum_t k1_t = log pi_old(y) - log pi_ref(y): an unbiased estimate of
        KL(pi || pi_ref) for a whole completion (sampled from pi)."""
        return ((self.old_logp - self.ref_logp) * self.mask).sum(axis=1)

    @property
    def entropy(self) -> float:
        """Mean over completion tokens of -log pi(y_t): an unbiased estimate of the policy's
        per-token entropy (nats)."""
        return float(-(self.old_logp * self.mask).sum() / max(self.mask.sum(), 1.0))

    def batch(self, **extra: np.ndarray) -> dict[str, np.ndarray]:
        """The batch contract's dict: tokens, mask, old_logp, ref_logp, plus ``extra`` keys."""
        return {
            "tokens": self.tokens,
            "mask": self.mask,
            "old_logp": self.old_logp,
            "ref_logp": self.ref_logp,
            **extra,
        }


def check_group_size(group_size: Any, needs_group: bool, algo: str = "") -> int:
    """``group_size`` as an int; ValueError when it is < 1, or < 2 for a group method."""
    if isinstance(group_size, bool) or not isinstance(group_size, int | np.integer):
        raise ValueError(f"group_size: expected an int, got {group_size!r}")
    least = 2 if needs_group else 1
    if group_size < least:
        why = f" ({algo} compares completions of one prompt)" if needs_group else ""
        raise ValueError(f"group_size: expected an int >= {least}{why}, got {group_size}")
    return int(group_size)


def rollout(
    backend: ModuleType,
    policy: Any,
    reference: Any | None,
    mdp: SequenceMDP,
    prompts: Sequence[str],
    group_size: int,
    seed: int,
) -> Rollout:
    """Sample ``group_size`` completions per prompt with ``policy`` and score them.

    :param backend: ``duetrl.backends.torch`` or ``duetrl.backends.tf``: its ``generate``
        (cached decoding, noise from core) and ``inference_log_probs``.
    :param policy: the backend's GPT being trained.
    :param reference: the frozen reference GPT (None: ``ref_logp`` = ``old_logp``, KL 0).
    :param mdp: the task's :class:`SequenceMDP`.
    :param prompts: the prompt texts (all of one length).
    :param group_size: completions per prompt, k >= 1.
    :param seed: seed of the sampling noise; the same seed gives the same tokens in both
        backends from the same weights.
    """
    group_size = check_group_size(group_size, needs_group=False)
    texts = [mdp.policy_prompt(p) for p in prompts]
    encoded = [mdp.tokenizer.encode(t) for t in texts]
    lengths = sorted({len(e) for e in encoded})
    if len(lengths) != 1:
        raise ValueError(
            f"prompts: expected prompts of one length (a batch decodes without padding), got "
            f"lengths {lengths}"
        )
    mdp.check_policy(policy.config)
    prompt_ids = np.repeat(np.stack(encoded), group_size, axis=0)  # (B, P), prompt-major
    prompt_length, n = prompt_ids.shape[1], mdp.max_new_tokens
    generation = backend.generate(policy, prompt_ids, n, seed=seed)
    new_tokens = generation.new_tokens  # (B, n)
    completion = completion_mask(new_tokens, mdp.stop_id)  # (B, n)
    if mdp.stop_id is not None:  # right-pad: every token after the stop becomes the stop id
        new_tokens = np.where(completion > 0, new_tokens, mdp.stop_id)
    tokens = np.concatenate([prompt_ids, new_tokens], axis=1)  # (B, T)
    batch_size, width = tokens.shape
    mask = np.zeros((batch_size, width - 1))
    mask[:, prompt_length - 1 :] = completion  # column t predicts token t + 1
    old_logp = np.zeros((batch_size, width - 1))
    old_logp[:, prompt_length - 1 :] = generation.log_probs * completion
    if reference is None:
        ref_logp = old_logp.copy()
    else:
        check_reference(policy.config, reference.config)
        ref_logp = backend.inference_log_probs(reference, tokens) * mask  # no gradient
    completions = [mdp.completion_text(row) for row in new_tokens]
    repeated = [p for p in prompts for _ in range(group_size)]
    rewards = mdp.task.rewards(repeated, completions)
    success = mdp.task.success(repeated, completions)
    extras = {}
    if mdp.stop_id is not None:
        extras["stopped"] = np.any(generation.new_tokens == mdp.stop_id, axis=1)
    return Rollout(
        repeated, completions, tokens, mask, old_logp, ref_logp, rewards, success, group_size,
        extras,
    )
