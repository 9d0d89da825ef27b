"""Text tasks for RL on language models (outline 2.3.2, 3.1.2, 3.1.4, 9.2.1), framework-free.

A task is everything the environment side of the sequence MDP needs:

- **prompts**: the initial states s_0 (all of one length, so a batch decodes without padding);
- **a reward function** r(prompt, completion) in [0, 1], paid once, at the end of the episode;
- **a success metric** (did the completion do the job?);
- **a stop character** that ends the episode, and the longest completion allowed
  (``max_completion`` tokens, the stop token included);
- **a pretraining corpus** (prompt + an ordinary completion + stop, one document per line), so
  a reference GPT learns the *format* in seconds but not the *goal*: RL has to teach that;
- **a character tokeniser** (``core/lm/tokenizers.CharTokenizer``) over the task's alphabet.

A completion, as the reward function sees it, is the generated text up to *and including* the
stop character; when the length limit came first it has no stop character.

=============  =====================  ==========================================  ===========
task           prompt                 reward r in [0, 1]                          reference
=============  =====================  ==========================================  ===========
sort-digits    ``"31415926:"``        fraction of the 7 adjacent pairs of the      0.55
                                      8-digit answer with x[i+1] >= x[i] (the
                                      prompt is ignored: see below)
sort-prompt    ``"31415926:"``        share of the 8 positions equal to the        ~0.21
                                      sorted prompt ``"11234569"``, halved
                                      without the stop
arithmetic     ``"07+45="``           share of the sum's digits right, place by   ~0.5
                                      place (1 only for the exact sum)
sentiment      ``"the film was"``     (1 + (pos - neg) / (pos + neg)) / 2 over a  0.5
                                      small lexicon; 0.5 for no opinion word
format         ``"len=5:"``           1 - |len - n| / n, halved without the stop  ~0.5
=============  =====================  ==========================================  ===========

``sort-digits`` rewards the answer alone: ``"00000000"`` scores 1.0 after any prompt. That is
what makes the optimum of E[r] - beta KL(pi || pi_ref) from a uniform reference the same for
every prompt and exactly computable (``core/rlhf/optimum.py``); the other tasks' rewards read
the prompt. ``sort-prompt`` is the task sort-digits stands in for: the answer must be *the
prompt's* digits sorted. Its corpus answers with 8 of the prompt's digits in no order (the
format; r = 0.21 on average, a pretrained reference's samples ~0.16), so RL has to find the
order (the goal); ``core/rlhf/reward_design.py`` trains it under five reward designs.

Example:
    >>> task = get_task("sort-digits")
    >>> task.rewards(["31415926:"], ["11234569\\n"]).tolist()
    [1.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from duetrl.core.lm.tokenizers import CharTokenizer

RewardFn = Callable[[Sequence[str], Sequence[str]], np.ndarray]
"""``reward_fn(prompts, completions) -> (N,)`` float rewards, one per completion."""

STOP = "\n"
"""The stop character of every shipped task (GPT-2's ``<|endoftext|>`` plays this part)."""


@dataclass(frozen=True)
class TextTask:
    """A text environment: prompts, a terminal reward, a success test, a corpus.

    :param name: registry name (``get_task(name)``).
    :param description: one line for ``--help`` and the tutorial.
    :param alphabet: the characters of the tokeniser, in id order (the stop character included).
    :param prompt_fn: ``prompt_fn(n, rng) -> n prompts``, all of ``prompt_length`` characters.
    :param completion_fn: ``completion_fn(prompt, rng) -> completion`` (stop included): what the
        pretraining corpus writes after a prompt. It sets the reference policy's behaviour.
    :param reward_fn: see :data:`RewardFn`; checked by :meth:`rewards`.
    :param success_fn: ``success_fn(prompts, completions) -> (N,) bool``.
    :param prompt_length: number of characters (= tokens) of every prompt.
    :param max_completion: the length limit of an episode, in tokens, stop token included.
    :param stop: the stop character; generation ends there and later tokens are masked.
    :param action_alphabet: for tasks whose exact optimum is known under a uniform reference
        (``sort-digits``: the ten digits), the tokens such a reference spreads its mass over.
    """

    name: str
    description: str
    alphabet: str
    prompt_fn: Callable[[int, np.random.Generator], list[str]]
    completion_fn: Callable[[str, np.random.Generator], str]
    reward_fn: RewardFn
    success_fn: Callable[[Sequence[str], Sequence[str]], np.ndarray]
    prompt_length: int
    max_completion: int
    stop: str = STOP
    action_alphabet: str | None = None

    def __post_init__(self) -> None:
        if self.stop not in self.alphabet:
            raise ValueError(f"stop: {self.stop!r} is not in the alphabet {self.alphabet!r}")
        if self.max_completion < 1 or self.prompt_length < 1:
            raise ValueError(f"max_completion, prompt_length: expected positive ints, got "
                             f"{self.max_completion!r}, {self.prompt_length!r}")

    @property
    def tokenizer(self) -> CharTokenizer:
        """One id per character of :attr:`alphabet`."""
        return CharTokenizer(list(self.alphabet))

    @property
    def stop_id(self) -> int:
        """Token id of the stop character."""
        return self.alphabet.index(self.stop)

    @property
    def sequence_length(self) -> int:
        """prompt + longest completion: the smallest ``block_size`` a policy needs."""
        return self.prompt_length + self.max_completion

    def prompts(self, n: int, rng: np.random.Generator) -> list[str]:
        """``n`` prompts drawn with ``rng`` (checked to be of ``prompt_length`` characters)."""
        prompts = self.prompt_fn(n, rng)
        lengths = sorted({len(p) for p in prompts})
        if len(prompts) != n or lengths != [self.prompt_length]:
            raise ValueError(f"prompt_fn: expected {n} prompts of {self.prompt_length} "
                             f"characters, got {len(prompts)} of lengths {lengths}")
        return prompts

    def corpus(self, num_documents: int, seed: int = 0) -> list[str]:
        """Pretraining documents ``prompt + completion`` (each ending with the stop character)."""
        rng = np.random.default_rng(seed)
        return [p + self.completion_fn(p, rng) for p in self.prompts(num_documents, rng)]

    def rewards(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """The checked rewards ``(N,)`` float64 of ``completions`` (text up to the stop).

        :raises ValueError: naming ``reward_fn`` when it returns a wrong number of rewards, a
            wrong shape, or a value that is NaN or infinite.
        """
        if len(prompts) != len(completions):
            raise ValueError(f"completions: expected one per prompt ({len(prompts)}), got "
                             f"{len(completions)}")
        return check_rewards(self.reward_fn(prompts, completions), len(completions))

    def success(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """``(N,)`` bool: did each completion do the job?"""
        return np.asarray(self.success_fn(prompts, completions), dtype=bool).reshape(-1)


def check_rewards(rewards: object, expected: int, name: str = "reward_fn") -> np.ndarray:
    """``rewards`` as float64 ``(expected,)``; a ValueError naming ``name`` otherwise."""
    try:
        values = np.asarray(rewards, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected {expected} float rewards, got "
                         f"{type(rewards).__name__}") from None
    if values.shape != (expected,):
        raise ValueError(
            f"{name}: expected {expected} rewards (one per completion, shape ({expected},)), got "
            f"shape {values.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(
            f"{name}: rewards must be finite, got {values[bad[0]]} for completion {bad[0]} "
            f"({bad.size} of {expected} not finite)"
        )
    return values


def strip_stop(completion: str, stop: str = STOP) -> tuple[str, bool]:
    """``(text before the stop, whether the stop was emitted)``."""
    head, found, _ = completion.partition(stop)
    return head, bool(found)


# --------------------------------------------------------------------------- sort-digits

SORT_LENGTH = 8  # digits in the prompt and in the answer
DIGITS = "0123456789"


def sorted_pairs_fraction(completion: str, length: int = SORT_LENGTH) -> float:
    """r = (1 / (L-1)) sum_{i=0}^{L-2} [x_i, x_{i+1} digits and x_{i+1} >= x_i],

    over the first L = ``length`` characters before the stop; missing or non-digit positions
    earn nothing. For uniform random digits each pair scores with probability
    P(x_{i+1} >= x_i) = 55/100, so r averages 0.55.
    """
    text, _ = strip_stop(completion)
    text = text[:length]
    good = sum(1 for a, b in zip(text, text[1:]) if a in DIGITS and b in DIGITS and b >= a)
    return good / (length - 1)


def _sort_prompts(n: int, rng: np.random.Generator) -> list[str]:
    digits = rng.integers(0, 10, size=(n, SORT_LENGTH))
    return ["".join(map(str, row)) + ":" for row in digits]


def _sort_completion(prompt: str, rng: np.random.Generator) -> str:
    # the reference learns the format (8 digits, then stop) with uniform digits: r ~ 0.55
    return "".join(map(str, rng.integers(0, 10, size=SORT_LENGTH))) + STOP


def _sort_rewards(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    return np.array([sorted_pairs_fraction(c) for c in completions])


def _sort_success(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    return np.array([sorted_pairs_fraction(c) == 1.0 for c in completions])


SORT_DIGITS = TextTask(
    name="sort-digits",
    description="answer 8 digits in non-decreasing order (reward: share of sorted pairs; it "
    "ignores the prompt, which gives the KL-regularised optimum its closed form)",
    alphabet=DIGITS + ":" + STOP,
    prompt_fn=_sort_prompts,
    completion_fn=_sort_completion,
    reward_fn=_sort_rewards,
    success_fn=_sort_success,
    prompt_length=SORT_LENGTH + 1,
    max_completion=SORT_LENGTH + 1,
    action_alphabet=DIGITS,
)

# --------------------------------------------------------------------------- sort-prompt


def sorted_prompt(prompt: str) -> str:
    """The right answer to a sort prompt: its digits (before the ``:``) in non-decreasing order."""
    return "".join(sorted(prompt.rstrip(":")))


def sorted_prompt_credit(prompt: str, completion: str) -> float:
    """r = (1 / L) #{i < L : c_i = s_i}, halved when the completion has no stop character,

    with s the sorted prompt (L = 8 digits) and c the completion before the stop. Only the exact
    sorted answer followed by the stop scores 1. A random order of the prompt's digits scores
    E[sum_d n_d^2] / 64 = (8 + 56/10) / 64 = 0.2125 on average (n_d: how often digit d occurs).
    """
    answer = sorted_prompt(prompt)
    text, stopped = strip_stop(completion)
    score = sum(1 for a, c in zip(answer, text) if a == c) / len(answer)
    return score if stopped else 0.5 * score


def _prompt_digits(prompt: str, rng: np.random.Generator) -> str:
    # the reference learns to answer with 8 of the prompt's own digits, in no order
    return "".join(rng.choice(list(prompt.rstrip(":")), size=SORT_LENGTH)) + STOP


SORT_PROMPT = TextTask(
    name="sort-prompt",
    description="answer the prompt's 8 digits sorted, then stop (reward: share of positions "
    "right, halved without the stop)",
    alphabet=DIGITS + ":" + STOP,
    prompt_fn=_sort_prompts,
    completion_fn=_prompt_digits,
    reward_fn=lambda ps, cs: np.array([sorted_prompt_credit(p, c) for p, c in zip(ps, cs)]),
    success_fn=lambda ps, cs: np.array([c == sorted_prompt(p) + STOP for p, c in zip(ps, cs)]),
    prompt_length=SORT_LENGTH + 1,
    max_completion=SORT_LENGTH + 1,
)

# --------------------------------------------------------------------------- arithmetic


def digit_credit(answer: str, completion: str) -> float:
    """Partial credit per digit, place by place from the left:

    r = #{i : c_i = a_i} / max(len(a), len(c))

    with a the right sum and c the completion before the stop; r = 1 only for the exact sum
    (extra or missing digits lower it).
    """
    text, _ = strip_stop(completion)
    if not text:
        return 0.0
    matches = sum(1 for x, y in zip(answer, text) if x == y)
    return matches / max(len(answer), len(text))


def _sum_of(prompt: str) -> str:
    a, b = prompt.rstrip("=").split("+")
    return str(int(a) + int(b))


def _arithmetic_prompts(n: int, rng: np.random.Generator) -> list[str]:
    pairs = rng.integers(0, 100, size=(n, 2))
    return [f"{a:02d}+{b:02d}=" for a, b in pairs]  # zero-padded: every prompt 6 characters


def _arithmetic_completion(prompt: str, rng: np.random.Generator) -> str:
    # half the corpus has the right sum, half a random one: the reference is right about as
    # often as it is wrong, and partial credit shows every digit RL gets right
    if rng.uniform() < 0.5:
        return _sum_of(prompt) + STOP
    return str(int(rng.integers(0, 199))) + STOP


def _arithmetic_rewards(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    return np.array([digit_credit(_sum_of(p), c) for p, c in zip(prompts, completions)])


def _arithmetic_success(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    return np.array([strip_stop(c)[0] == _sum_of(p) for p, c in zip(prompts, completions)])


ARITHMETIC = TextTask(
    name="arithmetic",
    description="add two 2-digit numbers, 'a+b=' (reward: partial credit per digit)",
    alphabet=DIGITS + "+=" + STOP,
    prompt_fn=_arithmetic_prompts,
    completion_fn=_arithmetic_completion,
    reward_fn=_arithmetic_rewards,
    success_fn=_arithmetic_success,
    prompt_length=6,
    max_completion=4,  # at most 3 digits (99 + 99 = 198), then the stop
)

# --------------------------------------------------------------------------- sentiment

POSITIVE = ("good", "great", "fine", "fun", "warm", "kind", "nice", "calm")
NEGATIVE = ("bad", "dull", "poor", "cold", "sad", "rude", "slow", "grim")
NEUTRAL = ("long", "new", "old", "loud", "red", "big", "small", "odd")
NOUNS = ("film", "food", "song", "book", "play", "meal", "park", "room")  # all 4 letters


def lexicon_score(completion: str) -> float:
    """r = (1 + (pos - neg) / (pos + neg)) / 2, with pos and neg the counts of words of the
    completion (before the stop) in the positive and negative lexicons; 0.5 when neither
    occurs. All positive words: 1; all negative: 0."""
    text, _ = strip_stop(completion)
    words = text.replace(".", " ").split()
    pos = sum(w in POSITIVE for w in words)
    neg = sum(w in NEGATIVE for w in words)
    if pos + neg == 0:
        return 0.5
    return 0.5 * (1.0 + (pos - neg) / (pos + neg))


def _sentiment_prompts(n: int, rng: np.random.Generator) -> list[str]:
    return [f"the {NOUNS[i]} was" for i in rng.integers(0, len(NOUNS), size=n)]


def _sentiment_completion(prompt: str, rng: np.random.Generator) -> str:
    # " ADJ and ADJ." with adjectives from the three lists alike: the reference has no opinion
    pool = POSITIVE + NEGATIVE + NEUTRAL
    a, b = (pool[i] for i in rng.integers(0, len(pool), size=2))
    return f" {a} and {b}." + STOP


def _sentiment_rewards(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    return np.array([lexicon_score(c) for c in completions])


def _sentiment_success(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    return np.array([lexicon_score(c) == 1.0 for c in completions])


SENTIMENT = TextTask(
    name="sentiment",
    description="continue 'the film was' with a review (reward: a small sentiment lexicon)",
    alphabet=" .abcdefghijklmnopqrstuvwxyz" + STOP,
    prompt_fn=_sentiment_prompts,
    completion_fn=_sentiment_completion,
    reward_fn=_sentiment_rewards,
    success_fn=_sentiment_success,
    prompt_length=12,
    max_completion=18,  # " small and small." is 17 characters, then the stop
)

# --------------------------------------------------------------------------- format

FORMAT_LETTERS = "abcdefgh"
FORMAT_MAX = 9  # requested lengths are 1..FORMAT_MAX


def length_score(prompt: str, completion: str) -> float:
    """r = max(0, 1 - |len - n| / n), halved when the completion has no stop character,

    with n the length the prompt asks for (``"len=5:"``) and len the number of characters
    before the stop. Exactly n characters and then the stop: 1.
    """
    n = int(prompt[len("len=") : -1])
    text, stopped = strip_stop(completion)
    score = max(0.0, 1.0 - abs(len(text) - n) / n)
    return score if stopped else 0.5 * score


def _format_prompts(n: int, rng: np.random.Generator) -> list[str]:
    return [f"len={k}:" for k in rng.integers(1, FORMAT_MAX + 1, size=n)]


def _format_completion(prompt: str, rng: np.random.Generator) -> str:
    # lengths drawn independently of the request: the reference ignores the constraint
    k = int(rng.integers(1, FORMAT_MAX + 1))
    return "".join(FORMAT_LETTERS[i] for i in rng.integers(0, len(FORMAT_LETTERS), size=k)) + STOP


def _format_rewards(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    return np.array([length_score(p, c) for p, c in zip(prompts, completions)])


def _format_success(prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
    return np.array([length_score(p, c) == 1.0 for p, c in zip(prompts, completions)])


FORMAT = TextTask(
    name="format",
    description="write exactly n letters, then stop ('len=5:'; reward: length and stop)",
    alphabet="0123456789=:" + "".join(sorted(set("len" + FORMAT_LETTERS))) + STOP,
    prompt_fn=_format_prompts,
    completion_fn=_format_completion,
    reward_fn=_format_rewards,
    success_fn=_format_success,
    prompt_length=6,
    max_completion=FORMAT_MAX + 3,  # room to overshoot, then the stop
)

TASKS: dict[str, TextTask] = {
    t.name: t for t in (SORT_DIGITS, SORT_PROMPT, ARITHMETIC, SENTIMENT, FORMAT)
}
"""The shipped tasks by name."""

CASE_TASKS: dict[str, TextTask] = {}
"""Tasks of the case studies (``core/cases``), added by :func:`register_task` when their package
is imported; kept apart from :data:`TASKS`, whose list and tests stay those of this file."""


def register_task(task: TextTask) -> TextTask:
    """Make ``task`` known to :func:`get_task` (and so to ``RLHFSettings`` and ``RLHFRun``);
    a ValueError when another task already has its name."""
    known = TASKS.get(task.name) or CASE_TASKS.get(task.name)
    if known is not None and known is not task:
        raise ValueError(f"task: the name {task.name!r} is taken by another task")
    CASE_TASKS[task.name] = task
    return task


def get_task(name: str | TextTask) -> TextTask:
    """The task called ``name`` (a :class:`TextTask` is returned as is); a ValueError listing
    the known ones for an unknown name."""
    if isinstance(name, TextTask):
        return name
    if name in CASE_TASKS:
        return CASE_TASKS[name]
    if name not in TASKS:
        raise ValueError(f"task: expected one of {list(TASKS) + list(CASE_TASKS)}, got {name!r}")
    return TASKS[name]
