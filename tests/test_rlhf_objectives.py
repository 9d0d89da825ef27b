"""RL objectives for language models (issue 8, item 2): the float64 reference on the published
test vectors and hand-computed cases, both backends against it (values and gradients), one
``RLHFLearner.update`` per objective in torch vs tf, and the bad inputs.

Every loss test uses ragged completion lengths: rows of MASK hold 5, 2, 1 and 3 completion
tokens after prompts of different lengths.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import numpy as np
import pytest

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.interfaces.rlhf import (
    NORMALISATIONS,
    init_value_head_params,
    objective_coefficients,
)
from duetrl.core.reference import rlhf as ref
from duetrl.core.reference import rlhf_advantages as ref_advantages
from duetrl.core.reference import rlhf_policy as ref_policy
from duetrl.core.reference.returns import gae
from duetrl.core.tolerances import assert_close, to_numpy

REF_OBJECTIVES = SimpleNamespace(**{  # the float64 oracle of a backend's objectives.py
    name: getattr(module, name) for module in (ref_advantages, ref) for name in module.__all__
})

B, T = 4, 6
MASK = np.array(
    [[0, 1, 1, 1, 1, 1], [0, 0, 1, 1, 0, 0], [0, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1]], float
)  # completion lengths 5, 2, 1, 3
EQUAL_MASK = np.array([[0, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 0], [1, 1, 1, 0, 0, 0],
                       [0, 0, 0, 1, 1, 1]], float)  # every completion 3 tokens long


def token_arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """Log-probs, advantages, values and returns for B x T tokens, some ratios clipped."""
    rng = np.random.default_rng(seed)
    logp = rng.normal(-1.0, 0.3, (B, T))
    return {
        "logp": logp,
        "old_logp": logp + rng.normal(0.0, 0.25, (B, T)),  # ratios from about 0.6 to 1.6
        "ref_logp": logp + rng.normal(0.0, 0.4, (B, T)),
        "advantages": rng.normal(size=B),
        "token_advantages": rng.normal(size=(B, T)),
        "values": rng.normal(size=(B, T)),
        "old_values": rng.normal(size=(B, T)),
        "returns": rng.normal(size=(B, T)),
        "per_token": rng.normal(size=(B, T)),
        "score": rng.normal(size=B),
        "pairs": rng.normal(-5.0, 1.0, (4, B)),  # lp_w, lp_l, ref_w, ref_l
    }


# ---------------------------------------------------------------------------------------------
# The published test vectors (DESIGN.md)
# ---------------------------------------------------------------------------------------------

GROUP = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # 8 rewards, 3 correct


def test_group_advantage_vectors():
    assert_close(ref_advantages.group_advantages(GROUP, 8, "std")[[0, 3]], [1.20738, -0.72443], 5e-6)
    assert_close(ref_advantages.rloo_advantages(GROUP, 8)[[0, 3]], [0.714286, -0.428571], 5e-7)
    assert_close(ref_advantages.group_advantages(GROUP, 8, "none")[[0, 3]], [0.625, -0.375], 1e-15)


def test_group_std_is_unbiased_and_eps_pinned():
    std = np.sqrt(((GROUP - 0.375) ** 2).sum() / 7)  # Bessel-corrected, as torch.std
    expected = (GROUP - 0.375) / (std + 1e-4)
    assert_close(ref_advantages.group_advantages(GROUP, 8), expected, "float64")
    population = (GROUP - 0.375) / (GROUP.std() + 1e-4)  # tf.math.reduce_std's convention
    assert abs(ref_advantages.group_advantages(GROUP, 8)[0] - population[0]) > 0.05


def test_kl_estimator_vectors():
    logp, ref_logp = np.log([[0.5]]), np.log([[0.25]])
    assert_close(ref_advantages.kl_k1(logp, ref_logp), [[0.693147]], 5e-7)
    assert_close(ref_advantages.kl_k2(logp, ref_logp), [[0.240227]], 5e-7)
    assert_close(ref_advantages.kl_k3(logp, ref_logp), [[0.193147]], 5e-7)


@pytest.mark.parametrize(
    "advantage, ratio, loss, clipped",
    [(1.0, 1.3, -1.2, 1.0), (-1.0, 0.7, 0.8, 1.0), (-1.0, 1.3, 1.3, 0.0), (1.0, 0.7, -0.7, 0.0),
     (1.0, 1.0, -1.0, 0.0), (-2.0, 1.0, 2.0, 0.0)],
)
def test_ppo_clip_vectors(advantage, ratio, loss, clipped):
    value, stats = ref.clipped_policy_loss(
        np.log([[ratio]]), np.zeros((1, 1)), np.array([advantage]), np.ones((1, 1)), 0.2
    )
    assert value == pytest.approx(loss, abs=1e-12)
    assert stats["clip_fraction"] == clipped


def test_gae_vector_on_tokens_after_a_prompt():
    # the DESIGN.md vector, shifted behind a 2-token prompt and followed by padding
    mask = np.array([[0, 0, 1, 1, 1, 0]], float)
    rewards = np.array([[5.0, 5.0, 0.0, 0.0, 1.0, 9.0]])  # outside the mask: ignored
    values = np.array([[7.0, 7.0, 0.5, 0.5, 0.5, 3.0]])
    advantages, returns = ref_advantages.token_gae(rewards, values, mask, gamma=1.0, lam=0.95)
    assert_close(advantages, [[0, 0, 0.45125, 0.475, 0.5, 0]], "float64")
    assert_close(returns, [[0, 0, 0.95125, 0.975, 1.0, 0]], "float64")


# ---------------------------------------------------------------------------------------------
# Advantages: hand-computed and boundary cases
# ---------------------------------------------------------------------------------------------


def test_groups_are_prompt_major():
    rewards = np.array([0.0, 1.0, 2.0, 10.0, 10.0, 13.0])  # prompt 0: 0,1,2; prompt 1: 10,10,13
    assert_close(ref_advantages.group_advantages(rewards, 3, "none"), [-1, 0, 1, -1, -1, 2], "float64")
    assert_close(ref_advantages.rloo_advantages(rewards, 3), [-1.5, 0, 1.5, -1.5, -1.5, 3], "float64")
    scaled = ref_advantages.group_advantages(rewards, 3, "std")
    assert_close(scaled[:3], np.array([-1, 0, 1]) / (1.0 + 1e-4), "float64")  # std = 1


def test_rloo_is_a_rescaled_group_advantage():
    rewards = np.random.default_rng(3).normal(size=12)
    for k in (2, 3, 4, 6):
        centred = ref_advantages.group_advantages(rewards, k, "none")
        assert_close(ref_advantages.rloo_advantages(rewards, k), centred * k / (k - 1), "float64")


@pytest.mark.parametrize("method", ["std", "none", "rloo"])
def test_equal_rewards_give_zero_advantages(method):
    rewards = np.array([0.7] * 4 + [0.0] * 4 + [1.0] * 4)
    if method == "rloo":
        advantages = ref_advantages.rloo_advantages(rewards, 4)
    else:
        advantages = ref_advantages.group_advantages(rewards, 4, method)
    assert np.all(np.isfinite(advantages))
    assert_close(advantages, np.zeros(12), "float64")


def test_kl_estimators_properties():
    rng = np.random.default_rng(1)
    logp, ref_logp = rng.normal(-2, 1, (3, 5)), rng.normal(-2, 1, (3, 5))
    assert np.all(ref_advantages.kl_k3(logp, ref_logp) >= 0) and np.all(ref_advantages.kl_k2(logp, ref_logp) >= 0)
    assert np.any(ref_advantages.kl_k1(logp, ref_logp) < 0)  # k1 can be negative on a sample
    assert_close(ref_advantages.kl_k3(logp, logp), np.zeros((3, 5)), 0.0)
    # all three are unbiased / consistent on an exact expectation under pi
    pi, pi_ref = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.2, 0.6])
    exact = float((pi * np.log(pi / pi_ref)).sum())
    for estimator in (ref_advantages.kl_k1, ref_advantages.kl_k3):
        expectation = float((pi * estimator(np.log(pi), np.log(pi_ref))).sum())
        assert expectation == pytest.approx(exact, abs=1e-14)


def test_kl_shaped_rewards_by_hand():
    logp = np.log(np.full((B, T), 0.5))
    ref_logp = np.log(np.full((B, T), 0.25))  # k1 = log 2 on every token
    score = np.array([1.0, 2.0, 3.0, 4.0])
    rewards = ref_advantages.kl_shaped_rewards(score, logp, ref_logp, MASK, beta=0.1)
    expected = -0.1 * np.log(2) * MASK
    expected[[0, 1, 2, 3], [5, 3, 1, 5]] += score  # the last completion token of each row
    assert_close(rewards, expected, "float64")
    assert_close(rewards.sum(1), score - 0.1 * np.log(2) * MASK.sum(1), "float64")


def test_whitening_uses_only_the_mask():
    a = np.random.default_rng(2).normal(size=(B, T)) + 100.0 * (1 - MASK)  # junk off the mask
    white = ref_advantages.whiten_advantages(a, MASK)
    on = MASK > 0
    assert white[on].mean() == pytest.approx(0.0, abs=1e-12)
    assert white[on].std() == pytest.approx(1.0, abs=1e-6)
    assert np.all(white[~on] == 0)


def test_token_gae_matches_returns_gae_time_major():
    rng = np.random.default_rng(4)
    rewards, values = rng.normal(size=(B, T)), rng.normal(size=(B, T))
    advantages, returns = ref_advantages.token_gae(rewards, values, MASK, gamma=0.9, lam=0.8)
    for b in range(B):
        cols = np.flatnonzero(MASK[b])
        r, v = rewards[b, cols][:, None], values[b, cols][:, None]
        nxt = np.append(v[1:, 0], 0.0)[:, None]
        term = np.zeros_like(r)
        term[-1] = 1
        a, g = gae(r, v, nxt, term, np.zeros_like(r), 0.9, 0.8)
        assert_close(advantages[b, cols], a[:, 0], "float64")
        assert_close(returns[b, cols], g[:, 0], "float64")


# ---------------------------------------------------------------------------------------------
# Losses: normalisations on ragged completions, hand-computed values
# ---------------------------------------------------------------------------------------------


def test_normalisations_by_hand_on_ragged_lengths():
    loss = np.arange(B * T, dtype=float).reshape(B, T)
    rows = (loss * MASK).sum(1)  # 1+2+3+4+5, 8+9, 13, 21+22+23
    lengths = MASK.sum(1)  # 5, 2, 1, 3
    expected = {
        "grpo": (rows / lengths).mean(),
        "bnpo": rows.sum() / 11,
        "dr_grpo": rows.sum() / (B * T),
        "dapo": rows.sum() / 11,
    }
    for name, value in expected.items():
        assert ref.aggregate_token_loss(loss, MASK, name) == pytest.approx(value, abs=1e-12)
    assert ref.aggregate_token_loss(loss, MASK, "dr_grpo", max_length=8) == pytest.approx(
        rows.sum() / 32, abs=1e-12
    )
    assert ref.aggregate_token_loss(loss, MASK, "dapo", total_tokens=40) == pytest.approx(
        rows.sum() / 40, abs=1e-12
    )
    values = [expected["grpo"], expected["bnpo"], expected["dr_grpo"]]
    assert len({round(v, 9) for v in values}) == 3  # ragged: they differ


def test_normalisations_agree_on_equal_lengths():
    loss = np.random.default_rng(5).normal(size=(B, T))
    values = [ref.aggregate_token_loss(loss, EQUAL_MASK, n, max_length=3) for n in NORMALISATIONS]
    assert max(values) - min(values) < 1e-12


def test_grpo_loss_normalisations_differ_only_when_ragged():
    d = token_arrays()
    args = (d["logp"], d["old_logp"], d["ref_logp"], d["advantages"])
    ragged = {n: ref.grpo_loss(*args, MASK, 0.2, 0.1, n)[0] for n in NORMALISATIONS}
    equal = {n: ref.grpo_loss(*args, EQUAL_MASK, 0.2, 0.1, n)[0] for n in NORMALISATIONS}
    assert len({round(ragged[n], 9) for n in ("grpo", "bnpo", "dr_grpo")}) == 3
    assert ragged["dapo"] == ragged["bnpo"]  # one micro-batch on one device
    assert equal["grpo"] == pytest.approx(equal["bnpo"], abs=1e-12)
    assert equal["dapo"] == pytest.approx(equal["bnpo"], abs=1e-12)
    assert equal["dr_grpo"] == pytest.approx(equal["bnpo"] * 3 / T, abs=1e-12)  # L=3 of T=6


def test_clipped_policy_loss_by_hand():
    d = token_arrays()
    ratio = np.exp(d["logp"] - d["old_logp"])
    a = d["advantages"][:, None]
    per_token = -np.minimum(ratio * a, np.clip(ratio, 0.8, 1.2) * a)
    loss, stats = ref.clipped_policy_loss(d["logp"], d["old_logp"], d["advantages"], MASK, 0.2,
                                          "bnpo")
    assert loss == pytest.approx((per_token * MASK).sum() / MASK.sum(), abs=1e-12)
    clipped = ((ratio > 1.2) & (a > 0)) | ((ratio < 0.8) & (a < 0))
    assert stats["clip_fraction"] == pytest.approx((clipped * MASK).sum() / MASK.sum())
    assert 0 < stats["clip_fraction"] < 1  # the data exercise both branches
    approx_kl = ((ratio - 1 - np.log(ratio)) * MASK).sum() / MASK.sum()
    assert stats["approx_kl"] == pytest.approx(approx_kl, abs=1e-12)


@pytest.mark.parametrize("advantage", [1.0, -1.0, 0.0])
def test_ratio_exactly_at_the_clip_edge_is_not_clipped(advantage):
    # clip_eps = 0 puts both edges at exactly 1, where an equal log-prob puts the ratio
    logp = np.full((1, 3), -0.7)
    loss, stats = ref.clipped_policy_loss(logp, logp, np.array([advantage]), np.ones((1, 3)), 0.0)
    assert loss == -advantage and stats["clip_fraction"] == 0.0 and stats["approx_kl"] == 0.0


def test_ratio_just_past_the_edge_is_clipped():
    old_logp = np.zeros((1, 2))
    logp = np.log1p(np.array([[0.2 + 1e-9, 0.2 - 1e-9]]))  # just outside, just inside
    _, stats = ref.clipped_policy_loss(logp, old_logp, np.array([1.0]), np.ones((1, 2)), 0.2)
    assert stats["clip_fraction"] == 0.5


def test_reinforce_loss_by_hand():
    logp = np.full((B, T), -0.5)
    advantages = np.array([1.0, -2.0, 0.5, 0.0])
    expected = -np.mean(advantages * (-0.5) * MASK.sum(1))  # -mean_b A_b sum_t logp
    assert ref.reinforce_loss(logp, advantages, MASK) == pytest.approx(expected, abs=1e-12)
    per_token = np.repeat(advantages[:, None], T, 1)
    assert ref.reinforce_loss(logp, per_token, MASK) == pytest.approx(expected, abs=1e-12)


def test_grpo_loss_is_clip_plus_beta_k3():
    d = token_arrays()
    clip_only = ref.grpo_loss(d["logp"], d["old_logp"], d["ref_logp"], d["advantages"], MASK,
                              0.2, 0.0, "grpo")[0]
    loss, stats = ref.grpo_loss(d["logp"], d["old_logp"], d["ref_logp"], d["advantages"], MASK,
                                0.2, 0.5, "grpo")
    k3 = ref.aggregate_token_loss(ref_advantages.kl_k3(d["logp"], d["ref_logp"]), MASK, "grpo")
    assert loss == pytest.approx(clip_only + 0.5 * k3, abs=1e-12)
    plain = ref.clipped_policy_loss(d["logp"], d["old_logp"], d["advantages"], MASK, 0.2, "grpo")
    assert clip_only == pytest.approx(plain[0], abs=1e-12)
    assert stats["kl"] == pytest.approx(ref.masked_token_mean(ref_advantages.kl_k3(d["logp"], d["ref_logp"]),
                                                              MASK))


def test_value_loss_clipped_by_hand():
    values = np.array([[0.0, 1.0, 2.0, 0.1]])
    old_values = np.array([[0.0, 0.0, 0.0, 0.0]])
    returns = np.array([[1.0, 1.0, -1.0, 0.0]])
    mask = np.array([[1.0, 1.0, 1.0, 0.0]])
    # t0: (0-1)^2=1 vs same -> 1; t1: 0 vs (0.2-1)^2=0.64 -> 0.64 (clipped term active)
    # t2: (2+1)^2=9 vs (0.2+1)^2=1.44 -> 9
    loss, stats = ref.value_loss_clipped(values, old_values, returns, mask, 0.2)
    assert loss == pytest.approx(0.5 * (1 + 0.64 + 9) / 3, abs=1e-12)
    assert stats["value_clip_fraction"] == pytest.approx(1 / 3)


def test_ppo_lm_loss_is_policy_plus_value():
    d = token_arrays()
    loss, stats = ref.ppo_lm_loss(d["logp"], d["old_logp"], d["token_advantages"], d["values"],
                                  d["old_values"], d["returns"], MASK, 0.2, 0.2, 0.5)
    assert loss == pytest.approx(stats["policy_loss"] + 0.5 * stats["value_loss"], abs=1e-12)


def test_dpo_and_bradley_terry_by_hand():
    lp_w, lp_l, ref_w, ref_l = np.array([-3.0]), np.array([-5.0]), np.array([-4.0]), np.array(
        [-4.0])
    loss, r_w, r_l = ref.dpo_loss(lp_w, lp_l, ref_w, ref_l, beta=0.5)
    assert_close(r_w, [0.5], 0.0)
    assert_close(r_l, [-0.5], 0.0)
    assert loss == pytest.approx(np.log1p(np.exp(-1.0)), abs=1e-15)  # -log sigmoid(1)
    bt_loss, accuracy = ref.bradley_terry_loss(r_w, r_l)
    assert bt_loss == pytest.approx(loss, abs=1e-15) and accuracy == 1.0
    assert ref.bradley_terry_loss(np.zeros(3), np.zeros(3)) == (pytest.approx(np.log(2)), 0.0)
    big = ref.bradley_terry_loss(np.array([-800.0]), np.array([800.0]))[0]  # stable
    assert big == pytest.approx(1600.0)


def test_sequence_log_probs_and_scores():
    logp = np.arange(B * T, dtype=float).reshape(B, T)
    assert_close(ref.sequence_log_probs(logp, MASK), (logp * MASK).sum(1), 0.0)
    values = np.arange(B * (T + 1), dtype=float).reshape(B, T + 1)
    assert_close(ref_policy.sequence_scores(values, MASK), values[[0, 1, 2, 3], [6, 4, 2, 6]], 0.0)


# ---------------------------------------------------------------------------------------------
# Which gradient does each KL placement give? A one-token categorical policy, exactly
# ---------------------------------------------------------------------------------------------


def _categorical(theta):
    logp = theta - np.log(np.exp(theta).sum())
    return np.exp(logp), logp


def _exact_objective(theta, reward, ref_logp, beta):
    pi, logp = _categorical(theta)
    return float((pi * reward).sum() - beta * (pi * (logp - ref_logp)).sum())  # E[r] - beta KL


def _expected_surrogate_gradient(theta, reward, ref_logp, beta, kl_in):
    """E_{y ~ pi}[ gradient of the per-sample surrogate ], summed exactly over the K outcomes."""
    pi, logp = _categorical(theta)
    score = np.eye(len(theta)) - pi  # row y: grad_theta log pi(y)
    k1 = ref_advantages.kl_k1(logp, ref_logp)
    if kl_in == "reward":  # REINFORCE with r - beta k1 as the (stop-gradient) reward
        return (pi[:, None] * score * (reward - beta * k1)[:, None]).sum(0)
    # GRPO: REINFORCE on r, plus beta k3 as a loss term differentiated through logp
    dk3_dlogp = 1.0 - np.exp(ref_logp - logp)  # d/dlogp (e^l - 1 - l), l = ref - logp
    return (pi[:, None] * score * (reward - beta * dk3_dlogp)[:, None]).sum(0)


def test_k1_in_the_reward_is_the_exact_gradient_and_k3_in_the_loss_is_not():
    theta = np.array([0.3, -0.2, 1.0, 0.0])
    reward = np.array([1.0, 0.0, 0.5, 0.2])
    ref_logp = np.log(np.array([0.4, 0.3, 0.1, 0.2]))
    beta, h = 0.7, 1e-6
    exact = np.array([  # central differences of E[r] - beta KL(pi || pi_ref)
        (_exact_objective(theta + h * e, reward, ref_logp, beta)
         - _exact_objective(theta - h * e, reward, ref_logp, beta)) / (2 * h)
        for e in np.eye(4)
    ])
    with_k1 = _expected_surrogate_gradient(theta, reward, ref_logp, beta, "reward")
    with_k3 = _expected_surrogate_gradient(theta, reward, ref_logp, beta, "loss")
    assert_close(with_k1, exact, 1e-8)  # k1 in the reward: exactly grad(E[r] - beta KL)
    assert np.abs(with_k3 - exact).max() > 0.05  # k3 as a loss: another gradient ...
    pi, _ = _categorical(theta)
    # ... that of E[r] - beta KL(pi_ref || pi): grad = Cov(score, r) - beta (pi - pi_ref)
    grad_reverse = (pi * reward - pi * (pi * reward).sum()) - beta * (pi - np.exp(ref_logp))
    assert_close(with_k3, grad_reverse, 1e-12)


# ---------------------------------------------------------------------------------------------
# Both backends against the reference: values (float64 1e-10, float32 1e-5) and gradients
# ---------------------------------------------------------------------------------------------


def _cases() -> list[tuple[str, str, list[str], dict]]:
    """(id, function, array arguments, keyword arguments)."""
    lp, old, rl, adv = "logp", "old_logp", "ref_logp", "advantages"
    cases = [
        ("kl_k1", "kl_k1", [lp, rl], {}),
        ("kl_k2", "kl_k2", [lp, rl], {}),
        ("kl_k3", "kl_k3", [lp, rl], {}),
        ("group_std", "group_advantages", ["rewards"], {"group_size": 4, "scale": "std"}),
        ("group_none", "group_advantages", ["rewards"], {"group_size": 4, "scale": "none"}),
        ("rloo", "rloo_advantages", ["rewards"], {"group_size": 4}),
        ("shaped", "kl_shaped_rewards", ["score", lp, rl, "mask"], {"beta": 0.1}),
        ("seq_logp", "sequence_log_probs", [lp, "mask"], {}),
        ("reinforce", "reinforce_loss", [lp, adv, "mask"], {}),
        ("reinforce_tok", "reinforce_loss", [lp, "token_advantages", "mask"], {}),
        ("value", "value_loss_clipped", ["values", "old_values", "returns", "mask"],
         {"clip_range": 0.2}),
        ("ppo", "ppo_lm_loss", [lp, old, "token_advantages", "values", "old_values", "returns",
                                "mask"], {"clip_eps": 0.2, "clip_range": 0.2, "vf_coef": 0.3}),
        ("dpo", "dpo_loss", ["lp_w", "lp_l", "ref_w", "ref_l"], {"beta": 0.2}),
        ("bt", "bradley_terry_loss", ["lp_w", "lp_l"], {}),
    ]
    for n in NORMALISATIONS:
        cases.append((f"agg_{n}", "aggregate_token_loss", ["per_token", "mask"],
                      {"normalisation": n}))
        cases.append((f"clip_{n}", "clipped_policy_loss", [lp, old, adv, "mask"],
                      {"clip_eps": 0.2, "normalisation": n}))
        cases.append((f"grpo_{n}", "grpo_loss", [lp, old, rl, adv, "mask"],
                      {"clip_eps": 0.2, "beta": 0.1, "normalisation": n}))
    cases.append(("agg_dr_grpo_L", "aggregate_token_loss", ["per_token", "mask"],
                  {"normalisation": "dr_grpo", "max_length": 9}))
    cases.append(("agg_dapo_N", "aggregate_token_loss", ["per_token", "mask"],
                  {"normalisation": "dapo", "total_tokens": 30.0}))
    return cases


CASES = _cases()


def _arrays() -> dict[str, np.ndarray]:
    d = token_arrays()
    d["mask"] = MASK
    d["rewards"] = np.concatenate([GROUP, np.random.default_rng(6).normal(size=4)])
    d["lp_w"], d["lp_l"], d["ref_w"], d["ref_l"] = d.pop("pairs")
    return d


def _rlhf(backend):
    """The backend's policy, value head and learner module."""
    return importlib.import_module(f"{backend.__name__}.rlhf")


def _objectives(backend):
    """The backend's objectives module (pure functions of tensors)."""
    return importlib.import_module(f"{backend.__name__}.objectives")


def _tensor(backend, array):
    if backend.NAME == "torch":
        import torch

        return torch.tensor(array)
    import tensorflow as tf

    return tf.constant(array)


def _flatten(output) -> list[np.ndarray]:
    """A function's output as a list of arrays: a dict by sorted key, tuples in order."""
    if isinstance(output, dict):
        return [np.asarray(to_numpy(output[k]), float) for k in sorted(output)]
    if isinstance(output, tuple):
        return [a for item in output for a in _flatten(item)]
    return [np.asarray(to_numpy(output), float)]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_backend_matches_reference(backend, dtype, case):
    _, name, keys, kwargs = case
    arrays = _arrays()
    expected = _flatten(getattr(REF_OBJECTIVES, name)(*[arrays[k] for k in keys], **kwargs))
    inputs = [_tensor(backend, arrays[k].astype(dtype)) for k in keys]
    actual = _flatten(getattr(_objectives(backend), name)(*inputs, **kwargs))
    assert len(actual) == len(expected)
    tolerance = "float64" if dtype == "float64" else "float32_layer"
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert_close(a, e, tolerance, name=f"{name} output {i}")


def _probe(shape) -> np.ndarray:
    return np.random.default_rng(7).normal(size=shape)


def _scalar_of(output, probe=None):
    """The scalar a gradient is taken of: the loss, or sum(output * probe) for an array."""
    first = output[0] if isinstance(output, tuple) else output
    return first if probe is None else first * probe  # summed by the caller


def _reference_gradient(name, keys, kwargs, arrays, wrt, h=1e-6):
    fn = getattr(REF_OBJECTIVES, name)
    out = fn(*[arrays[k] for k in keys], **kwargs)
    first = out[0] if isinstance(out, tuple) else out
    probe = _probe(np.shape(first)) if np.ndim(first) else None
    grad = np.zeros_like(arrays[wrt])
    for index in np.ndindex(grad.shape):
        values = []
        for step in (h, -h):
            moved = {**arrays, wrt: arrays[wrt].copy()}
            moved[wrt][index] += step
            values.append(float(np.sum(_scalar_of(fn(*[moved[k] for k in keys], **kwargs),
                                                  probe))))
        grad[index] = (values[0] - values[1]) / (2 * h)
    return grad, probe


def _backend_gradient(backend, name, keys, kwargs, arrays, wrt, probe):
    fn = getattr(_objectives(backend), name)
    if backend.NAME == "torch":
        import torch

        tensors = {k: torch.tensor(arrays[k], requires_grad=(k == wrt)) for k in keys}
        out = fn(*[tensors[k] for k in keys], **kwargs)
        scalar = _scalar_of(out, None if probe is None else torch.tensor(probe)).sum()
        scalar.backward()
        return tensors[wrt].grad.numpy()
    import tensorflow as tf

    tensors = {k: tf.constant(arrays[k]) for k in keys}
    with tf.GradientTape() as tape:
        tape.watch(tensors[wrt])
        out = fn(*[tensors[k] for k in keys], **kwargs)
        scalar = tf.reduce_sum(_scalar_of(out, None if probe is None else tf.constant(probe)))
    return tape.gradient(scalar, tensors[wrt]).numpy()


DIFFERENTIABLE = {"logp", "ref_logp", "values", "token_advantages", "advantages", "rewards",
                  "score", "lp_w", "lp_l", "per_token"}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_backend_gradients_match_reference(backends, case):
    _, name, keys, kwargs = case
    arrays = _arrays()
    wrt = next(k for k in keys if k in DIFFERENTIABLE)
    # an all-equal group has std 0, where sqrt has no derivative: differentiate elsewhere
    arrays["rewards"] = np.random.default_rng(12).normal(size=12)
    expected, probe = _reference_gradient(name, keys, kwargs, arrays, wrt)
    grads = {}
    for backend_name, backend in backends.items():
        grads[backend_name] = _backend_gradient(backend, name, keys, kwargs, arrays, wrt, probe)
        # central differences with h = 1e-6: truncation ~h^2, rounding ~1e-16 / h
        assert_close(grads[backend_name], expected, 1e-7, name=f"{backend_name} d{name}/d{wrt}")
    assert_close(grads["torch"], grads["tf"], "float64", name=f"torch vs tf d{name}/d{wrt}")


@pytest.mark.parametrize("method", ["std", "none", "rloo"])
def test_backend_equal_rewards_give_zero_advantages(backend, method):
    objectives = _objectives(backend)
    rewards = _tensor(backend, np.array([0.7] * 4 + [0.0] * 4))
    if method == "rloo":
        advantages = objectives.rloo_advantages(rewards, 4)
    else:
        advantages = objectives.group_advantages(rewards, 4, method)
    assert_close(advantages, np.zeros(8), "float64")  # finite, exactly zero


def test_clip_edge_gradients_agree_between_backends(backends):
    old_logp = np.zeros((1, 4))
    logp = np.log(np.array([[0.8, 1.2, 0.8, 1.2]]))
    advantages = np.array([[1.0, 1.0, -1.0, -1.0]])
    grads = [
        _backend_gradient(b, "clipped_policy_loss", ["logp", "old_logp", "advantages", "mask"],
                          {"clip_eps": 0.2}, {"logp": logp, "old_logp": old_logp,
                                              "advantages": advantages, "mask": np.ones((1, 4))},
                          "logp", None)
        for b in backends.values()
    ]
    assert_close(grads[0], grads[1], "float64", name="torch vs tf at ratio 1 +- eps")
    assert np.all(np.isfinite(grads[0]))


# ---------------------------------------------------------------------------------------------
# The GPT as a policy: token log-probs, hidden states and the scalar head
# ---------------------------------------------------------------------------------------------

CONFIG = GPTConfig(vocab_size=12, block_size=16, n_layer=1, n_head=2, n_embd=16)
TOKENS = np.random.default_rng(8).integers(0, 12, (B, T + 1))


def _models(backend, dtype, seed=0):
    params = init_gpt_params(CONFIG, seed, dtype, random_affine=True)
    model = backend.import_params(backend.GPT(CONFIG, dtype, seed=None), params)
    head = _rlhf(backend).ValueHead(CONFIG.n_embd, dtype, seed=seed + 1)
    return model, head, params, init_value_head_params(CONFIG.n_embd, seed + 1, "float64")


def test_reference_hidden_states_give_the_reference_logits():
    from duetrl.core.reference.gpt import gpt_forward

    params = init_gpt_params(CONFIG, 0, "float64", random_affine=True)
    hidden = ref_policy.hidden_states(params, TOKENS, CONFIG)
    assert_close(hidden @ params["wte.embeddings"].T, gpt_forward(params, TOKENS, CONFIG),
                 "float64")


def test_token_log_probs_and_head_match_reference(backend, dtype):
    rlhf = _rlhf(backend)
    model, head, params, head_params = _models(backend, dtype)
    tolerance = "float64" if dtype == "float64" else "float32_model"
    expected = ref_policy.token_log_probs(params, TOKENS, CONFIG)
    assert_close(rlhf.token_log_probs(model, TOKENS), expected, tolerance, "token_log_probs")
    values = ref_policy.scalar_head(params, head_params, TOKENS, CONFIG)
    hidden = rlhf.hidden_states(model, TOKENS)
    assert_close(head(hidden), values, tolerance, "ValueHead")
    logp, entropy, head_values = rlhf.policy_outputs(model, _tensor(backend, TOKENS), head)
    assert_close(logp, expected, tolerance, "policy_outputs logp")
    assert_close(head_values, values[:, :-1], tolerance, "policy_outputs values")
    logits = ref_policy.hidden_states(params, TOKENS[:, :-1], CONFIG) @ params["wte.embeddings"].T
    assert_close(entropy, ref_policy.token_entropy(logits), tolerance, "entropy")
    assert_close(rlhf.sequence_scores(_tensor(backend, values), MASK),
                 ref_policy.sequence_scores(values, MASK), tolerance, "sequence_scores")


# ---------------------------------------------------------------------------------------------
# One RLHFLearner.update per objective: torch vs tf, and the loss vs the float64 reference
# ---------------------------------------------------------------------------------------------


def _batch() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(9)
    params = init_gpt_params(CONFIG, 0, "float64", random_affine=True)
    head = init_value_head_params(CONFIG.n_embd, 1, "float64")
    old_logp = ref_policy.token_log_probs(params, TOKENS, CONFIG)
    other = np.random.default_rng(10).integers(0, 12, (B, T + 1))
    chosen_logp = ref.sequence_log_probs(old_logp, MASK)
    return {
        "tokens": TOKENS, "mask": MASK, "old_logp": old_logp + rng.normal(0, 0.2, (B, T)),
        "ref_logp": old_logp + rng.normal(0, 0.3, (B, T)), "advantages": rng.normal(size=B),
        "returns": rng.normal(size=(B, T)) * MASK,
        "old_values": ref_policy.scalar_head(params, head, TOKENS[:, :-1], CONFIG)
        + rng.normal(0, 0.3, (B, T)),
        "chosen_tokens": TOKENS, "rejected_tokens": other, "chosen_mask": MASK,
        "rejected_mask": EQUAL_MASK,
        "ref_chosen_logp": chosen_logp + rng.normal(0, 0.5, B),
        "ref_rejected_logp": ref.sequence_log_probs(
            ref_policy.token_log_probs(params, other, CONFIG), EQUAL_MASK) + rng.normal(0, 0.5, B),
    }


def _ppo_batch(batch):
    return {**batch, "advantages": np.random.default_rng(11).normal(size=(B, T)) * MASK}


OBJECTIVES = {
    "reinforce": {}, "rloo": {},
    "grpo": {"beta": 0.1, "normalisation": "dr_grpo"},
    "ppo": {"vf_coef": 0.5, "clip_range": 0.1},
    "dpo": {"beta": 0.5}, "reward_model": {},
}


def _reference_loss(objective, batch, coefficients) -> float:
    """The objective on the float64 reference GPT: what the learner's ``loss`` must be."""
    params = init_gpt_params(CONFIG, 0, "float64", random_affine=True)
    head = init_value_head_params(CONFIG.n_embd, 1, "float64")
    c = objective_coefficients(objective, coefficients)
    logp = ref_policy.token_log_probs(params, batch["tokens"], CONFIG)
    mask, advantages = batch["mask"], batch["advantages"]
    if objective in ("reinforce", "rloo"):
        return ref.reinforce_loss(logp, advantages, mask)
    if objective == "grpo":
        return ref.grpo_loss(logp, batch["old_logp"], batch["ref_logp"], advantages, mask,
                             c["clip_eps"], c["beta"], c["normalisation"])[0]
    if objective == "ppo":
        values = ref_policy.scalar_head(params, head, batch["tokens"][:, :-1], CONFIG)
        return ref.ppo_lm_loss(logp, batch["old_logp"], advantages, values, batch["old_values"],
                               batch["returns"], mask, c["clip_eps"], c["clip_range"],
                               c["vf_coef"], c["normalisation"])[0]
    sides = {}
    for side in ("chosen", "rejected"):
        tokens, side_mask = batch[f"{side}_tokens"], batch[f"{side}_mask"]
        if objective == "dpo":
            sides[side] = ref.sequence_log_probs(ref_policy.token_log_probs(params, tokens, CONFIG),
                                                 side_mask)
        else:
            values = ref_policy.scalar_head(params, head, tokens, CONFIG)
            sides[side] = ref_policy.sequence_scores(values, side_mask)
    if objective == "dpo":
        return ref.dpo_loss(sides["chosen"], sides["rejected"], batch["ref_chosen_logp"],
                            batch["ref_rejected_logp"], c["beta"])[0]
    return ref.bradley_terry_loss(sides["chosen"], sides["rejected"])[0]


def _one_update(backend, dtype, objective):
    model, head, _, _ = _models(backend, dtype)
    learner = _rlhf(backend).RLHFLearner(model, head, learning_rate=1e-3)
    batch = _ppo_batch(_batch()) if objective == "ppo" else _batch()
    stats = learner.update(batch, objective, **OBJECTIVES[objective])
    weights = {**backend.export_params(model),
               **{f"head.{k}": v for k, v in backend.export_params(head).items()}}
    return stats, weights, batch


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_one_update_torch_vs_tf_and_reference(backends, dtype, objective):
    results = {name: _one_update(b, dtype, objective) for name, b in backends.items()}
    (torch_stats, torch_weights, batch), (tf_stats, tf_weights, _) = results.values()
    tolerance = "float64" if dtype == "float64" else "float32_model"
    assert sorted(torch_stats) == sorted(tf_stats)
    for key in torch_stats:
        assert_close(tf_stats[key], torch_stats[key], tolerance, name=f"{objective} {key}")
    for key in torch_weights:
        assert_close(tf_weights[key], torch_weights[key], tolerance, name=f"{objective} {key}")
    expected = _reference_loss(objective, batch, OBJECTIVES[objective])
    assert_close(torch_stats["loss"], expected, tolerance, name=f"{objective} loss vs reference")
    initial = init_gpt_params(CONFIG, 0, dtype, random_affine=True)
    moved = max(np.abs(torch_weights[k] - initial[k]).max() for k in initial)
    assert moved > 1e-4  # the step did something
    assert np.isfinite(torch_stats["grad_norm"]) and torch_stats["grad_norm"] > 0


PAIR_KEYS = ("chosen_tokens", "rejected_tokens", "chosen_mask", "rejected_mask",
             "ref_chosen_logp", "ref_rejected_logp")


def test_a_dpo_pair_of_weight_zero_counts_as_dropped_in_both_backends(backends):
    """The caller's ``pair_weights`` reach the loss in both backends (TensorFlow pads the pairs
    to a fixed count and once replaced the caller's weights by its padding mask)."""
    batch = _batch()
    pairs = {k: batch[k] for k in PAIR_KEYS}  # what DPO reads
    weighted = {**pairs, "pair_weights": np.array([1.0, 1.0, 0.0, 1.0])}
    dropped = {k: v[[0, 1, 3]] for k, v in pairs.items()}
    losses = {}
    for name, backend in backends.items():
        for label, given in (("weighted", weighted), ("dropped", dropped)):
            model, head, _, _ = _models(backend, "float64")
            learner = _rlhf(backend).RLHFLearner(model, head, learning_rate=1e-3)
            losses[name, label] = learner.update(given, "dpo", beta=0.5)["loss"]
        assert_close(losses[name, "weighted"], losses[name, "dropped"], "float64", name=name)
    assert_close(losses["tf", "weighted"], losses["torch", "weighted"], "float64", name="tf")
    assert abs(losses["torch", "weighted"] - losses["torch", "dropped"]) < 1e-12
    full = _reference_loss("dpo", batch, OBJECTIVES["dpo"])
    assert abs(full - losses["torch", "dropped"]) > 1e-3  # the dropped pair changes the loss


def test_first_epoch_ratio_is_one(backends):
    """With old_logp from the same weights the clip fraction is 0 and approx_kl 0."""
    for backend in backends.values():
        model, head, params, _ = _models(backend, "float64")
        batch = {**_batch(), "old_logp": ref_policy.token_log_probs(params, TOKENS, CONFIG)}
        stats = _rlhf(backend).RLHFLearner(model, head).update(batch, "grpo")
        assert stats["clip_fraction"] == 0.0
        assert abs(stats["approx_kl"]) < 1e-12


# ---------------------------------------------------------------------------------------------
# Bad input: a ValueError naming the argument, what was expected and what was given
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module_name", ["reference", "torch", "tf"])
def test_bad_input(backends, module_name):
    if module_name == "reference":
        rlhf, convert = REF_OBJECTIVES, np.asarray
    else:
        rlhf = _objectives(backends[module_name])
        convert = lambda a: _tensor(backends[module_name], np.asarray(a, float))  # noqa: E731
    rewards = convert(np.arange(6.0))
    with pytest.raises(ValueError, match=r"group_size: expected >= 2.*got 1"):
        rlhf.group_advantages(rewards, 1)
    with pytest.raises(ValueError, match=r"group_size: expected a divisor .* 6.*got 4"):
        rlhf.rloo_advantages(rewards, 4)
    with pytest.raises(ValueError, match=r"scale: expected one of \['std', 'none'\], got 'max'"):
        rlhf.group_advantages(rewards, 3, "max")
    with pytest.raises(ValueError, match=r"rewards: expected shape \(N,\), got \(2, 3\)"):
        rlhf.group_advantages(convert(np.zeros((2, 3))), 3)
    d = {k: convert(v) for k, v in token_arrays().items() if k != "pairs"}
    mask = convert(MASK)
    with pytest.raises(ValueError, match=r"beta: expected a float >= 0, got -0.1"):
        rlhf.grpo_loss(d["logp"], d["old_logp"], d["ref_logp"], d["advantages"], mask, 0.2, -0.1)
    with pytest.raises(ValueError, match=r"normalisation: expected one of .*got 'mean'"):
        rlhf.aggregate_token_loss(d["per_token"], mask, "mean")
    with pytest.raises(ValueError, match=r"ref_logp: expected shape \(4, 6\) \(as mask\), got \(4, 5\)"):
        rlhf.grpo_loss(d["logp"], d["old_logp"], d["ref_logp"][:, :5], d["advantages"], mask,
                       0.2, 0.1)
    with pytest.raises(ValueError, match=r"advantages: expected shape \(4,\) or \(4, 6\)"):
        rlhf.reinforce_loss(d["logp"], d["advantages"][:3], mask)
    with pytest.raises(ValueError, match=r"mask: row 1 has no completion token"):
        rlhf.kl_shaped_rewards(d["score"], d["logp"], d["ref_logp"],
                               convert(MASK * [[1], [0], [1], [1]]), 0.1)
    with pytest.raises(ValueError, match=r"ref_chosen: expected shape \(4,\)"):
        rlhf.dpo_loss(d["score"], d["score"], d["score"][:2], d["score"], 0.1)


def test_learner_bad_input(backend):
    rlhf = _rlhf(backend)
    model, head, _, _ = _models(backend, "float32")
    learner = rlhf.RLHFLearner(model, None)
    batch = _batch()
    with pytest.raises(ValueError, match=r"objective: expected one of .*got 'a2c'"):
        learner.update(batch, "a2c")
    with pytest.raises(ValueError, match=r"kl_coef: not a coefficient of objective 'grpo'"):
        learner.update(batch, "grpo", kl_coef=0.1)
    with pytest.raises(ValueError, match=r"beta: expected a float >= 0, got -1"):
        learner.update(batch, "dpo", beta=-1)
    with pytest.raises(ValueError, match=r"normalisation: expected one of .*got 'token'"):
        learner.update(batch, "grpo", normalisation="token")
    with pytest.raises(ValueError, match=r"batch: objective 'grpo' needs keys .*missing \['ref_logp'\]"):
        learner.update({k: v for k, v in batch.items() if k != "ref_logp"}, "grpo")
    with pytest.raises(ValueError, match=r"value_head: objective 'ppo' needs a ValueHead, got None"):
        learner.update(batch, "ppo")
    with pytest.raises(ValueError, match=r"tokens: expected at most block_size=16"):
        learner.update({**batch, "tokens": np.zeros((B, 20), np.int64)}, "reinforce")


# ---------------------------------------------------------------------------------------------
# The one helper of each kind in objectives.py, and the learner's framework-neutral half
# ---------------------------------------------------------------------------------------------

EDGE_MASK = np.array([[0, 0, 0, 0, 0, 1],  # the last completion token is the final column
                      [1, 0, 0, 0, 0, 0],  # ... the first column
                      [0, 1, 0, 1, 0, 0],  # a gap: the last 1, not the end of the first run
                      [0, 0.5, 0.5, 0, 0, 0]])  # weights: any value > 0 counts


def test_last_token_index_follows_the_contract(backend):
    from duetrl.core.interfaces.rlhf import last_token_index

    objectives = _objectives(backend)
    expected = last_token_index(EDGE_MASK)
    assert expected.tolist() == [5, 0, 3, 2]
    assert to_numpy(objectives.last_token_index(_tensor(backend, EDGE_MASK))).tolist() == [5, 0, 3, 2]
    empty = EDGE_MASK * np.array([[1], [0], [1], [1]])
    assert to_numpy(objectives.last_token_index(_tensor(backend, empty)))[1] == -1
    with pytest.raises(ValueError, match=r"mask: row 1 has no completion token"):
        last_token_index(empty)


def test_sequence_scores_and_shaped_rewards_at_the_final_column(backend):
    values = np.arange(B * (T + 1), dtype=float).reshape(B, T + 1)
    scores = _rlhf(backend).sequence_scores(_tensor(backend, values), EDGE_MASK)
    assert_close(scores, values[[0, 1, 2, 3], [6, 1, 4, 3]], 0.0, "sequence_scores")
    assert_close(scores, ref_policy.sequence_scores(values, EDGE_MASK), 0.0)
    d = token_arrays()
    args = (d["score"], d["logp"], d["ref_logp"], EDGE_MASK)
    shaped = _objectives(backend).kl_shaped_rewards(*[_tensor(backend, a) for a in args], 0.1)
    assert_close(shaped, ref_advantages.kl_shaped_rewards(*args, 0.1), "float64")


def test_gather_log_probs_is_log_softmax_at_the_tokens(backend):
    from duetrl.core.reference.functional import log_softmax

    rng = np.random.default_rng(13)
    logits, tokens = rng.normal(size=(B, T, 7)), rng.integers(0, 7, (B, T))
    expected = np.take_along_axis(log_softmax(logits), tokens[..., None], axis=-1)[..., 0]
    actual = _objectives(backend).gather_log_probs(_tensor(backend, logits),
                                                    _tensor(backend, tokens))
    assert_close(actual, expected, "float64", "gather_log_probs")


def test_approx_kl_is_k3_of_the_ratio(backend):
    ratio = np.exp(np.random.default_rng(14).normal(0.0, 0.3, (B, T)))
    expected = ref_advantages.approx_kl(ratio)
    assert_close(expected, ref_advantages.kl_k3(np.zeros((B, T)), np.log(ratio)), "float64")
    assert_close(_objectives(backend).approx_kl(_tensor(backend, ratio)), expected, "float64")
    assert_close(ref_advantages.approx_kl(np.ones(3)), np.zeros(3), 0.0)


def test_masked_mean_of_an_all_zero_row_and_all_zero_weights(backend):
    objectives = _objectives(backend)
    zero_row = MASK * np.array([[1], [0], [1], [1]])  # row 1 has no completion token
    d = token_arrays()
    for normalisation in NORMALISATIONS:
        expected = ref.aggregate_token_loss(d["per_token"], zero_row, normalisation)
        actual = objectives.aggregate_token_loss(_tensor(backend, d["per_token"]),
                                                 _tensor(backend, zero_row), normalisation)
        assert_close(actual, expected, "float64", normalisation)
    nothing = _tensor(backend, np.zeros((B, T)))
    assert float(objectives.masked_mean(_tensor(backend, d["per_token"]), nothing)) == 0.0
    lp_w, lp_l, ref_w, ref_l = (_tensor(backend, a) for a in d["pairs"])
    weights = np.array([1.0, 0.0, 1.0, 0.0])  # rows 1 and 3 are padding
    loss, chosen, rejected = objectives.dpo_loss(lp_w, lp_l, ref_w, ref_l, 0.2,
                                                 _tensor(backend, weights))
    expected = ref.dpo_loss(*[p[[0, 2]] for p in d["pairs"]], 0.2)[0]
    assert_close(loss, expected, "float64", "dpo_loss over the pairs weighted 1")
    zero = objectives.dpo_loss(lp_w, lp_l, ref_w, ref_l, 0.2, _tensor(backend, np.zeros(B)))[0]
    assert float(zero) == 0.0  # sum(v w) / max(sum w, 1): 0, never NaN
    margin = _tensor(backend, np.array([1.0, 0.0, -1.0, 2.0]))  # a tie counts wrong
    assert float(objectives.preference_accuracy(margin)) == 0.5
    assert float(objectives.preference_accuracy(margin, _tensor(backend, weights))) == 0.5
    assert float(objectives.preference_accuracy(margin, _tensor(backend, 1 - weights))) == 0.5


class _NoFramework:
    """Stands in for a GPT: the base learner never calls it before its checks pass."""


@pytest.mark.parametrize(
    "objective, batch_keys, head, message",
    [
        ("a2c", ["tokens"], None, r"objective: expected one of \['reinforce'.*got 'a2c'"),
        ("grpo", ["tokens", "mask", "old_logp", "advantages"], None,
         r"batch: objective 'grpo' needs keys .*missing \['ref_logp'\]"),
        ("ppo", ["tokens", "mask", "old_logp", "advantages", "returns", "old_values"], None,
         r"value_head: objective 'ppo' needs a ValueHead, got None"),
        ("reward_model", ["chosen_tokens", "rejected_tokens", "chosen_mask", "rejected_mask"],
         None, r"value_head: objective 'reward_model' needs a ValueHead, got None"),
        ("dpo", ["chosen_tokens"], None, r"batch: objective 'dpo' needs keys .*missing \["),
    ],
)
def test_base_learner_refuses_before_any_tensor(objective, batch_keys, head, message):
    from duetrl.core.learners.rlhf import RLHFLearnerBase

    batch = {key: value for key, value in _batch().items() if key in batch_keys}
    learner = RLHFLearnerBase(_NoFramework(), head)
    with pytest.raises(ValueError, match=message):
        learner.update(batch, objective)


def test_base_learner_checks_its_settings_and_leaves_the_tensors_to_the_backend():
    from duetrl.core.learners.rlhf import RLHFLearnerBase

    with pytest.raises(ValueError, match=r"learning_rate: expected a float >= 0, got -0.1"):
        RLHFLearnerBase(_NoFramework(), None, learning_rate=-0.1)
    with pytest.raises(ValueError, match=r"clip_eps: not a coefficient of objective 'dpo'"):
        RLHFLearnerBase(_NoFramework()).update(_batch(), "dpo", clip_eps=0.2)
    with pytest.raises(NotImplementedError):  # a valid update reaches the first hook
        RLHFLearnerBase(_NoFramework()).update(_batch(), "reinforce")


def test_only_the_traced_backend_pads_preference_pairs(backends):
    assert backends["tf"].RLHFLearner.fixed_pair_rows is True
    assert backends["torch"].RLHFLearner.fixed_pair_rows is False
    for backend in backends.values():
        assert backend.RLHFLearner.objectives is _objectives(backend)
