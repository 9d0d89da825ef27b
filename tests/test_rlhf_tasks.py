"""Text tasks and the sequence MDP: rewards by hand, the 0.55 of a random answer, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from duetrl.core.checkpoint import Checkpoint, save_checkpoint
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.lm.train import GPT_KIND
from duetrl.core.rlhf.mdp import SequenceMDP, check_reference, completion_mask
from duetrl.core.rlhf.pi_ref import DocumentData, load_reference, uniform_reference_params
from duetrl.core.rlhf.tasks import (
    ARITHMETIC,
    CASE_TASKS,
    FORMAT,
    NEGATIVE,
    NEUTRAL,
    NOUNS,
    POSITIVE,
    SENTIMENT,
    SORT_DIGITS,
    SORT_PROMPT,
    TASKS,
    check_rewards,
    get_task,
    register_task,
    sorted_prompt,
)
from duetrl.core.rlhf.train import RLHFSettings


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("01234567\n", 1.0),  # every pair sorted
        ("00000000\n", 1.0),  # ties count (x[i+1] >= x[i])
        ("98765432\n", 0.0),
        ("10000000\n", 6 / 7),
        ("0123\n", 3 / 7),  # stopped early: the missing pairs earn nothing
        ("0123:567\n", 5 / 7),  # a non-digit breaks its two pairs
        ("012345678", 1.0),  # no stop: the first 8 digits count
        ("\n", 0.0),
    ],
)
def test_sort_digits_reward_by_hand(completion: str, expected: float) -> None:
    assert SORT_DIGITS.rewards(["31415926:"], [completion])[0] == pytest.approx(expected, abs=1e-15)


def test_uniform_random_answer_scores_055() -> None:
    # P(b >= a) for independent uniform digits = 55/100; the mean of 7 pairs is 0.55 too
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 10, size=(20000, 8))
    completions = ["".join(map(str, row)) + "\n" for row in digits]
    rewards = SORT_DIGITS.rewards(["0" * 8 + ":"] * len(completions), completions)
    assert rewards.mean() == pytest.approx(0.55, abs=0.005)


def test_other_rewards_by_hand() -> None:
    assert ARITHMETIC.rewards(["07+45="] * 4, ["52\n", "53\n", "520\n", "\n"]).tolist() == [
        1.0, 0.5, 2 / 3, 0.0]
    assert ARITHMETIC.success(["99+99="], ["198\n"]).tolist() == [True]
    assert SENTIMENT.rewards(["the film was"] * 4, [
        " good and kind.\n", " bad and good.\n", " red and odd.\n", " sad and dull.\n"
    ]).tolist() == [1.0, 0.5, 0.5, 0.0]
    assert FORMAT.rewards(["len=4:"] * 4, ["abcd\n", "ab\n", "abcd", "abcdefgh\n"]).tolist() == [
        1.0, 0.5, 0.5, 0.0]


@pytest.mark.parametrize("name", list(TASKS))
def test_corpus_and_prompts_fit_the_task(name: str) -> None:
    task = get_task(name)
    documents = task.corpus(200, seed=1)
    assert all(d.endswith(task.stop) for d in documents)
    assert all(len(d) <= task.sequence_length for d in documents)
    prompts = [d[: task.prompt_length] for d in documents]
    completions = [d[task.prompt_length :] for d in documents]
    rewards = task.rewards(prompts, completions)
    assert rewards.shape == (200,) and np.all((rewards >= 0) & (rewards <= 1))
    task.tokenizer.encode("".join(documents))  # every character is in the alphabet
    data = DocumentData(documents, task.tokenizer, task.sequence_length)
    x, y = data.batch("train", 4, np.random.default_rng(0))
    assert x.shape == (4, task.sequence_length) and np.array_equal(x[:, 1:], y[:, :-1])


def test_unknown_task_is_named() -> None:
    with pytest.raises(ValueError, match=r"task: expected one of \['sort-digits'"):
        get_task("sort-letters")


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda p, c: np.full(len(c), np.nan), r"reward_fn: rewards must be finite, got nan"),
        (lambda p, c: np.zeros(len(c) + 1), r"reward_fn: expected 2 rewards .* got shape \(3,\)"),
        (lambda p, c: np.zeros((len(c), 1)), r"reward_fn: expected 2 rewards"),
        (lambda p, c: None, r"reward_fn: expected 2"),
    ],
)
def test_bad_reward_function_is_named(bad, message: str) -> None:
    task = dataclasses.replace(SORT_DIGITS, reward_fn=bad)
    with pytest.raises(ValueError, match=message):
        task.rewards(["01234567:"] * 2, ["0\n", "1\n"])


def test_check_rewards_accepts_lists() -> None:
    assert check_rewards([0.5, 1], 2).dtype == np.float64


def test_completion_mask_includes_the_stop_and_masks_after_it() -> None:
    stop = 11
    new = np.array([[1, 2, stop, 3, stop], [1, 2, 3, 4, 5], [stop, 1, 1, 1, 1]])
    assert completion_mask(new, stop).tolist() == [
        [1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert completion_mask(new, None).sum() == new.size


def test_mdp_step_terminates_at_stop_and_truncates_at_the_limit() -> None:
    mdp = SequenceMDP.for_task("sort-digits")
    state = mdp.reset("01234567:")
    state, terminated, truncated = mdp.step(state, mdp.stop_id, 9)
    assert terminated and not truncated and len(state) == 10
    state = mdp.reset("01234567:")
    for _ in range(mdp.max_new_tokens):
        state, terminated, truncated = mdp.step(state, 3, 9)
    assert truncated and not terminated


def test_uniform_mdp_has_only_digits_and_a_uniform_reference() -> None:
    mdp = SequenceMDP.for_task("sort-digits", "uniform")
    assert mdp.vocab_size == 10 and mdp.stop_id is None and mdp.max_new_tokens == 8
    assert mdp.policy_prompt("31415926:") == "31415926"
    config, params = uniform_reference_params("sort-digits")
    from duetrl.core.reference.gpt import gpt_forward

    logits = gpt_forward(params, np.array([[3, 1, 4, 1, 5, 9, 2, 6, 0, 9]]), config)
    assert np.all(logits == 0.0)  # exactly uniform over the ten digits
    with pytest.raises(ValueError, match="reference: 'uniform' needs a task"):
        SequenceMDP.for_task("arithmetic", "uniform")


def test_prompt_longer_than_the_context_is_named() -> None:
    mdp = SequenceMDP.for_task("sort-digits")
    small = GPTConfig(vocab_size=12, block_size=12, n_layer=1, n_head=1, n_embd=8)
    with pytest.raises(ValueError, match=r"prompt: 9 prompt tokens \+ 9 completion tokens = 18 "
                                         r"exceed the policy's block_size=12"):
        mdp.check_policy(small)


def test_reference_with_another_vocabulary_or_context_is_named(tmp_path) -> None:
    policy = GPTConfig(vocab_size=12, block_size=18, n_layer=1, n_head=1, n_embd=8)
    with pytest.raises(ValueError, match=r"reference: vocab_size=13 differs"):
        check_reference(policy, dataclasses.replace(policy, vocab_size=13))
    with pytest.raises(ValueError, match=r"reference: block_size=24 differs"):
        check_reference(policy, dataclasses.replace(policy, block_size=24))
    # an arithmetic model offered as the sort-digits reference
    config = GPTConfig(vocab_size=13, block_size=18, n_layer=1, n_head=1, n_embd=8)
    metadata = {"config": config.to_dict(), "step": 0,
                "tokenizer": ARITHMETIC.tokenizer.to_dict()}
    path = save_checkpoint(tmp_path / "ref.safetensors",
                           Checkpoint(GPT_KIND, {"params": init_gpt_params(config)}, metadata))
    with pytest.raises(ValueError, match=r"reference: .* was trained with the tokeniser"):
        load_reference(path, "sort-digits")


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match=r"group_size: expected an int >= 2 \(grpo"):
        RLHFSettings(algo="grpo", group_size=1)
    with pytest.raises(ValueError, match=r"group_size: expected an int >= 2 \(rloo"):
        RLHFSettings(algo="rloo", group_size=1)
    RLHFSettings(algo="reinforce", group_size=1)  # a batch baseline needs no group
    with pytest.raises(ValueError, match=r"beta: expected a finite float >= 0"):
        RLHFSettings(beta=-0.1)
    with pytest.raises(ValueError, match=r"algo: expected one of"):
        RLHFSettings(algo="a2c")
    with pytest.raises(ValueError, match=r"reference: expected one of"):
        RLHFSettings(reference="random")
    with pytest.raises(ValueError, match=r"normalisation: expected one of"):
        RLHFSettings(normalisation="mean")


# ---- hand cases from mutation testing (MUTATION.md) ----------------------------------------


def test_a_task_needs_at_least_one_prompt_token_and_one_completion_token() -> None:
    dataclasses.replace(SORT_DIGITS, max_completion=1, prompt_length=1)  # the smallest task
    for field in ("max_completion", "prompt_length"):
        with pytest.raises(ValueError, match=r"max_completion, prompt_length: expected positive"):
            dataclasses.replace(SORT_DIGITS, **{field: 0})


def test_prompts_of_the_wrong_number_or_length_are_named() -> None:
    rng = np.random.default_rng(0)
    few = dataclasses.replace(SORT_DIGITS, prompt_fn=lambda n, rng: ["01234567:"] * (n - 1))
    with pytest.raises(ValueError, match=r"prompt_fn: expected 3 prompts of 9 characters, got 2 "
                                         r"of lengths \[9\]"):
        few.prompts(3, rng)
    short = dataclasses.replace(SORT_DIGITS, prompt_fn=lambda n, rng: ["0123:"] * n)
    with pytest.raises(ValueError, match=r"got 3 of lengths \[5\]"):
        short.prompts(3, rng)


def test_the_corpus_seed_defaults_to_0() -> None:
    assert FORMAT.corpus(20) == FORMAT.corpus(20, seed=0) != FORMAT.corpus(20, seed=1)


def test_success_by_hand_one_bool_per_completion() -> None:
    assert SORT_DIGITS.success(["31415926:"] * 2, ["01234567\n", "10000000\n"]).tolist() == [
        True, False]
    assert SENTIMENT.success(["the film was"] * 2, [" good and kind.\n", " bad and good.\n"]
                             ).tolist() == [True, False]
    success = FORMAT.success(["len=2:"] * 3, ["ab\n", "abc\n", "ab"])
    assert success.dtype == bool and success.tolist() == [True, False, False]
    column = dataclasses.replace(FORMAT, success_fn=lambda p, c: [[1], [0]])  # (N, 1) ints
    success = column.success(["len=1:"] * 2, ["a\n", "b"])
    assert success.dtype == bool and success.tolist() == [True, False]


def test_integer_rewards_come_back_as_float64() -> None:
    rewards = check_rewards([1, 0], 2)
    assert rewards.dtype == np.float64 and rewards.tolist() == [1.0, 0.0]


def test_format_reward_without_the_stop_is_halved() -> None:
    """len=4: "ab" without the stop scores (1 - 2/4) / 2 = 0.25; eight letters score 0 either
    way."""
    assert FORMAT.rewards(["len=4:"] * 2, ["ab", "abcdefgh"]).tolist() == [0.25, 0.0]


def _frequencies(items: list, values) -> np.ndarray:
    return np.array([items.count(v) for v in values]) / len(items)


def test_sort_digits_corpus_draws_all_ten_digits_uniformly() -> None:
    """The prompts and the reference's answers: uniform digits (so r averages 0.55)."""
    documents = SORT_DIGITS.corpus(1000, seed=0)
    for text in ("".join(d[:8] for d in documents), "".join(d[9:17] for d in documents)):
        assert np.all(np.abs(_frequencies(list(text), "0123456789") - 0.1) < 0.015)


def test_arithmetic_corpus_is_half_right_sums_and_half_any_sum() -> None:
    """Operands 00..99; half the answers are the sum, the others uniform over 0..198."""
    operands, wrong, right = set(), [], 0
    documents = ARITHMETIC.corpus(4000, seed=0)
    for document in documents:
        a, b, answer = int(document[:2]), int(document[3:5]), int(document[6:-1])
        operands |= {a, b}
        if answer == a + b:
            right += 1
        else:
            wrong.append(answer)
    assert operands == set(range(100))
    assert abs(right / len(documents) - 0.5) < 0.03, right
    assert (min(wrong), max(wrong)) == (0, 198)


def test_sentiment_corpus_has_every_noun_and_adjective_alike() -> None:
    """The reference has no opinion: nouns uniform over 8, adjectives over the 24 words."""
    documents = SENTIMENT.corpus(4000, seed=0)
    nouns = [d.split()[1] for d in documents]
    assert np.all(np.abs(_frequencies(nouns, NOUNS) - 1 / 8) < 0.025)
    adjectives = [w for d in documents for w in d[12:].replace(".", " ").split() if w != "and"]
    pool = POSITIVE + NEGATIVE + NEUTRAL
    assert np.all(np.abs(_frequencies(adjectives, pool) - 1 / 24) < 0.01)


def test_format_corpus_requests_and_writes_every_length_from_1_to_9() -> None:
    documents = FORMAT.corpus(4000, seed=0)
    requested = [int(d[4:5]) for d in documents]
    written = [len(d[6:-1]) for d in documents]
    assert set(requested) == set(written) == set(range(1, 10))
    letters = list("".join(d[6:-1] for d in documents))
    assert np.all(np.abs(_frequencies(letters, "abcdefgh") - 1 / 8) < 0.01)


def test_the_longest_documents_fit_the_context_exactly() -> None:
    """sequence_length is the smallest block_size: arithmetic's longest answer "198" and the
    stop; sentiment's " small and small." and the stop; format's len=9 overshot by two letters
    and then the stop (9 + 2 + 1 = 12 completion tokens)."""
    assert ARITHMETIC.sequence_length == len("99+99=" + "198\n") == 10
    assert SENTIMENT.sequence_length == len("the film was" + " small and small.\n") == 30
    assert FORMAT.sequence_length == len("len=9:" + "a" * 11 + "\n") == 18


def test_a_case_task_is_registered_once_and_found_by_name() -> None:
    task = dataclasses.replace(SORT_DIGITS, name="sort-digits-test-only")
    try:
        assert register_task(task) is task and get_task("sort-digits-test-only") is task
        assert register_task(task) is task  # the same task again
        with pytest.raises(ValueError, match=r"task: the name 'sort-digits-test-only' is taken"):
            register_task(dataclasses.replace(task, description="another"))
        with pytest.raises(ValueError, match=r"task: the name 'sort-digits' is taken"):
            register_task(dataclasses.replace(SORT_DIGITS, description="another"))
    finally:
        CASE_TASKS.pop("sort-digits-test-only", None)


# ---- sort-prompt: the answer must be the prompt's digits sorted ---------------------------


@pytest.mark.parametrize(
    "completion, expected",
    [
        ("11234569\n", 1.0),  # the sorted prompt and the stop
        ("11234569", 0.5),  # no stop: halved
        ("112345699", 0.5),  # ran on past the answer: halved
        ("01234569\n", 7 / 8),  # one position wrong
        ("44444444\n", 1 / 8),  # a constant sorted answer: only the 4 of "11234569"
        ("96543211\n", 0.0),  # the prompt's digits, reversed
        ("1123\n", 4 / 8),  # stopped early: the missing positions earn nothing
        ("11230000", 4 / 8 / 2),  # half right and no stop: the half is halved (not doubled)
        ("\n", 0.0),
    ],
)
def test_sort_prompt_reward_by_hand(completion: str, expected: float) -> None:
    assert SORT_PROMPT.rewards(["31415926:"], [completion])[0] == pytest.approx(expected, abs=1e-15)


def test_sort_prompt_reads_the_prompt_and_succeeds_only_with_the_stop() -> None:
    assert sorted_prompt("31415926:") == "11234569" and sorted_prompt("90000009:") == "00000099"
    rewards = SORT_PROMPT.rewards(["31415926:", "90000009:"], ["11234569\n"] * 2)
    assert rewards.tolist() == [1.0, 1 / 8]  # the same answer, another prompt: only the 9
    assert SORT_PROMPT.success(["31415926:"] * 3, ["11234569\n", "11234569", "11234569:"]
                               ).tolist() == [True, False, False]


def test_sort_prompt_episode_is_the_answer_and_its_stop() -> None:
    """The longest completion is the 8 digits and the stop: a ninth digit ends the episode
    (run on, no stop, reward halved); a longer limit would let the policy write past it."""
    assert SORT_PROMPT.max_completion == 9 and SORT_PROMPT.prompt_length == 9
    assert SORT_PROMPT.sequence_length == 18


def test_sort_prompt_corpus_answers_with_the_prompts_digits_in_no_order() -> None:
    """The format (8 of the prompt's digits, the stop), not the goal: few answers are sorted,
    and the reference's reward averages E[sum_d n_d^2] / 64 = 0.2125."""
    documents = SORT_PROMPT.corpus(4000, seed=0)
    prompts, completions = [d[:9] for d in documents], [d[9:] for d in documents]
    assert all(set(c[:-1]) <= set(p[:-1]) and len(c) == 9 for p, c in zip(prompts, completions))
    assert SORT_PROMPT.rewards(prompts, completions).mean() == pytest.approx(0.2125, abs=0.01)
    assert SORT_PROMPT.success(prompts, completions).mean() < 0.005
    with pytest.raises(ValueError, match="reference: 'uniform' needs a task"):
        SequenceMDP.for_task("sort-prompt", "uniform")
