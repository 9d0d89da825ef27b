"""The LM as reward (the judge), reward design and the LM as prior (core/agents/lm_reward.py,
core/agents/lm_prior.py): hand cases, float64 checks, and each reward's failure in a run."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.agents import lm_prior, lm_reward
from duetrl.core.backend import load_backends

ENV = "duetrl/KeyDoor-v0"


@pytest.fixture(scope="module")
def torch_backend():
    backend = load_backends(["torch"])["torch"]
    backend.set_num_threads(1)
    return backend


@pytest.fixture(scope="module")
def small_judge(torch_backend):
    """A judge of 60 steps, weights seed 1: right on every fresh episode, and farmed as a
    per-step reward. Whether the learner farms it turns on the judge's small scores of the
    states it visits, so on the judge's initial weights: measured (torch, 60 steps, 400
    Q-learning episodes), true success of the last 50 episodes 0.0 for judge seeds 1-5 and
    7-9, 0.04 for seed 6, 0.94 for seed 0 (the learner leaves). Seed 0 was farmed until the
    KeyDoor text gained the word "an" ("an orange key"): the judge's vocabulary grew by one
    word, its ids and initial weights moved, and with them those small scores."""
    return lm_reward.train_judge(torch_backend, ENV, episodes=20, seed=0,
                                 settings=lm_reward.JudgeSettings(steps=60, seed=1))


def test_judge_text_and_layout_hand_case(torch_backend) -> None:
    text = lm_reward.judge_text("open the red door and leave", "leave through the red door",
                                "you leave through the red door.")
    assert text.endswith("door. done :")
    tokenizer = lm_reward.judge_tokenizer(ENV)
    rows = lm_reward.encode_judge_inputs(tokenizer, [text, "goal : leave . done :"], np.array([1.0, 0.0]))
    n = len(tokenizer.encode(text))
    assert rows["last"][0] == n - 1 and rows["weights"][0].sum() == 1.0
    assert rows["weights"][0, n - 1] == 1.0
    assert rows["tokens"][0, n] == tokenizer.index["yes"]
    assert rows["tokens"][1, rows["last"][1] + 1] == tokenizer.index["no"]


def test_yes_probability_hand_case() -> None:
    logits = np.zeros((2, 4))
    logits[0, 1], logits[1, 2] = np.log(3.0), np.log(3.0)  # yes = 1, no = 2
    assert lm_reward.yes_probability(logits, 1, 2) == pytest.approx([0.75, 0.25])


def test_agreement_counts() -> None:
    m = lm_reward.agreement(np.array([0.9, 0.6, 0.2, 0.1]), np.array([1.0, 0.0, 1.0, 0.0]))
    assert m == {"accuracy": 0.5, "false_positive_rate": 0.5, "false_negative_rate": 0.5,
                 "n": 4}


def test_judge_scores_match_float64_and_agree_with_the_true_reward(small_judge) -> None:
    judge, measured = small_judge
    texts, labels = lm_reward.final_examples(lm_reward.labelled_transcripts(ENV, 4, seed=9))
    reference = lm_reward.reference_judge_scores(judge.params(), judge.config,
                                                 judge.tokenizer, texts)
    np.testing.assert_allclose(judge.scores(texts), reference, atol=1e-5)
    assert measured["test"]["accuracy"] >= 0.95
    assert measured["test"]["false_positive_rate"] <= 0.05


def test_kl_to_prior_against_float64_and_its_gradient() -> None:
    rng = np.random.default_rng(0)
    z, log_prior = rng.normal(size=6), np.log(rng.dirichlet(np.ones(6)))
    pi = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    expected = float(np.sum(pi * (np.log(pi) - log_prior)))
    assert lm_prior.kl_to_prior(z, log_prior) == pytest.approx(expected, abs=1e-12)
    assert lm_prior.kl_to_prior(log_prior, log_prior) == pytest.approx(0.0, abs=1e-12)
    eps, numeric = 1e-6, np.zeros(6)
    for k in range(6):
        step = np.eye(6)[k] * eps
        numeric[k] = (lm_prior.kl_to_prior(z + step, log_prior)
                      - lm_prior.kl_to_prior(z - step, log_prior)) / (2 * eps)
    np.testing.assert_allclose(lm_prior.kl_gradient(z, log_prior), numeric, atol=1e-8)


def test_kl_to_prior_in_torch_against_float64() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    z, log_prior = rng.normal(size=4), np.log(rng.dirichlet(np.ones(4)))
    zt = torch.tensor(z, requires_grad=True)
    log_pi = torch.log_softmax(zt, 0)
    kl = torch.sum(log_pi.exp() * (log_pi - torch.as_tensor(log_prior)))
    kl.backward()
    assert kl.item() == pytest.approx(lm_prior.kl_to_prior(z, log_prior), abs=1e-12)
    np.testing.assert_allclose(zt.grad.numpy(), lm_prior.kl_gradient(z, log_prior), atol=1e-12)


def test_reward_design_failures_show_in_runs(small_judge) -> None:
    judge, _ = small_judge
    settings = lm_reward.DesignSettings(episodes=400)
    runs = {kind: lm_reward.reward_design_run(kind, settings, judge=judge)
            for kind in lm_reward.REWARD_KINDS}
    assert runs["sparse"]["greedy_success"] == 1.0
    # shaped once: sampled episodes mostly succeed (0.76), yet the greedy policy stops after
    # collecting the bonuses (0.0) -- measured since the KeyDoor hall recalls searched rooms
    shaped = runs["shaped"]
    assert np.mean(shaped["history"]["true_success"][-50:]) > 0.5
    assert shaped["greedy_success"] == 0.0
    # farming: the optimised reward beats the honest runs' while true success stays near 0
    farm = runs["shaped_repeating"]["history"]
    assert np.mean(farm["optimised_return"][-50:]) > 1.0
    assert np.mean(farm["true_success"][-50:]) <= 0.05
    assert runs["shaped_repeating"]["greedy_success"] == 0.0
    # the per-step judge: right at the 0.5 threshold, farmed through its small scores
    judged = runs["judge"]["history"]
    assert np.mean(judged["optimised_return"][-50:]) > 0.1
    assert np.mean(judged["true_success"][-50:]) == 0.0
    again = lm_reward.reward_design_run("shaped_repeating", settings)
    assert again["history"] == farm  # seeded


def test_reward_design_bad_input() -> None:
    with pytest.raises(ValueError, match="reward"):
        lm_reward.reward_design_run("dense")
    with pytest.raises(ValueError, match="judge"):
        lm_reward.reward_design_run("judge")


def test_prior_beats_no_lm_on_new_worlds(torch_backend) -> None:
    prior = lm_prior.PriorLM(torch_backend, ENV, lm_prior.PriorSettings(episodes=20))
    prior.fit()
    log_pi = prior.log_prior(lm_reward.make_text_env(ENV).reset(seed=0)[0])
    assert np.exp(log_pi).sum() == pytest.approx(1.0, abs=1e-6)
    settings = lm_prior.PriorRLSettings(episodes=60)
    with_prior = lm_prior.prior_rl_run(prior, settings)
    without = lm_prior.prior_rl_run(None, settings)
    assert with_prior["final_success"] > without["final_success"]
