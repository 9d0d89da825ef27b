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
    FORMAT,
    SENTIMENT,
    SORT_DIGITS,
    TASKS,
    check_rewards,
    get_task,
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
