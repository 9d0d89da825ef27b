"""The recommender's float64 reference and simulator (issue 19 part 1, outline 6.2.1-6.2.3):
the K = 2 fixed point of the top-K corrected objective derived by hand on three items, the
capped importance weight, lambda_K, IPS / SNIPS on logs whose expectation is exact, the
simulator's logs, and bad input (an item outside the catalogue, a zero behaviour probability)."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.cases.recommender.catalogue import ITEM_OFFSET, make_catalogue
from duetrl.core.cases.recommender.logged import behaviour_probs, log_sessions
from duetrl.core.cases.recommender.simulator import Simulator
from duetrl.core.reference import recommender as ref


def _expected_batch(logits: np.ndarray, rewards: np.ndarray, k: int, cap: float = 1e9):
    """One state, beta uniform, one logged event per item: the batch mean is E_beta exactly."""
    n = len(rewards)
    z = np.tile(logits, (1, n, 1))  # (1, n, n): the same state n times
    actions = np.arange(n)[None]
    beta = np.full((1, n), 1.0 / n)
    return ref.corrected_loss_grad(
        z, actions, rewards[None], beta, np.ones((1, n)), "top_k", cap, k
    ).sum(axis=1)[0]  # d/dz of the state's logits


# ---- the K = 2 fixed point, by hand -----------------------------------------------------------
def test_k2_interior_fixed_point_derived_by_hand():
    # dJ_2/dz_j = pi_j (2 (1 - pi_j) R_j - c) = 0 for every j  =>  1 - pi_j = c / (2 R_j);
    # summing over the 3 items, 2 = c/2 sum_j 1/R_j: pi_j = 1 - 2 / (R_j sum_i 1/R_i)
    rewards = np.array([1.0, 0.8, 0.5])
    pi = 1.0 - 2.0 / (rewards * (1.0 / rewards).sum())
    np.testing.assert_allclose(pi, [9 / 17, 7 / 17, 1 / 17], atol=1e-12)
    z = np.log(pi)
    np.testing.assert_allclose(ref.top_k_objective_grad(z, rewards, 2), 0.0, atol=1e-14)
    # the corrected loss's gradient is -dJ_2/dz: zero at the same point
    np.testing.assert_allclose(_expected_batch(z[None, None], rewards, 2), 0.0, atol=1e-14)
    # ... and not elsewhere: K = 1 there (plain off-policy REINFORCE) still pushes item 1 up
    g1 = _expected_batch(z[None, None], rewards, 1)
    assert g1[0] < -1e-3 and g1[2] > 1e-3  # loss gradient: descent raises z_1, lowers z_3
    for nearby in (z + [0.1, 0, 0], z + [0, 0, 0.1], z + [0, -0.2, 0]):
        assert np.abs(ref.top_k_objective_grad(nearby, rewards, 2)).max() > 1e-4
    # it is a maximum: J_2 is lower at every nearby point
    j = ref.top_k_objective(z, rewards, 2)
    for nearby in (z + [0.1, 0, 0], z + [0, 0, 0.1], z + [0, -0.2, 0], z + [0, 0.1, -0.1]):
        assert ref.top_k_objective(nearby, rewards, 2) < j


def test_k2_spreads_over_two_items_where_k1_takes_one():
    # R_3 < R_1 R_2 / (R_1 + R_2): item 3 drops out; 2 pi_2 R_1 = 2 pi_1 R_2 gives pi_1 = R_1/(R_1+R_2)
    rewards = np.array([1.0, 0.8, 0.3])
    z = np.array([np.log(5 / 9), np.log(4 / 9), -40.0])
    np.testing.assert_allclose(ref.top_k_objective_grad(z, rewards, 2), 0.0, atol=1e-14)
    # the K = 1 optimum (all on item 1) is not a fixed point of J_2: item 2 is pushed up
    greedy = np.array([20.0, 0.0, 0.0])
    assert ref.top_k_objective_grad(greedy, rewards, 1)[1] < 1e-6
    assert ref.top_k_objective_grad(greedy, rewards, 2)[1] > 1e-9
    assert ref.top_k_objective(z, rewards, 2) > ref.top_k_objective(greedy, rewards, 2)


def test_corrected_gradient_is_the_gradient_of_alpha_weighted_reward():
    rng = np.random.default_rng(0)
    z, rewards = rng.normal(size=5), rng.random(5)
    for k in (1, 2, 4):
        numeric = np.array(
            [
                (ref.top_k_objective(z + e, rewards, k) - ref.top_k_objective(z - e, rewards, k))
                / 2e-6
                for e in 1e-6 * np.eye(5)
            ]
        )
        np.testing.assert_allclose(ref.top_k_objective_grad(z, rewards, k), numeric, atol=1e-8)
        np.testing.assert_allclose(-_expected_batch(z[None, None], rewards, k), numeric, atol=1e-8)


# ---- the pieces -------------------------------------------------------------------------------
def test_top_k_multiplier_values():
    pi = np.array([0.0, 0.25, 0.5, 1.0])
    np.testing.assert_allclose(ref.top_k_multiplier(pi, 1), 1.0)  # K = 1: plain REINFORCE
    np.testing.assert_allclose(ref.top_k_multiplier(pi, 2), [2.0, 1.5, 1.0, 0.0])
    np.testing.assert_allclose(ref.top_k_multiplier(pi, 3), [3.0, 3 * 0.5625, 0.75, 0.0])
    np.testing.assert_allclose(ref.slate_inclusion(pi, 2), [0.0, 0.4375, 0.75, 1.0])


def test_importance_weights_are_capped_at_c_and_not_floored():
    pi, beta = np.array([0.2, 0.5, 0.01, 0.3]), np.array([0.1, 0.05, 0.5, 0.03])
    np.testing.assert_allclose(ref.importance_weights(pi, beta, 10.0), [2.0, 10.0, 0.02, 10.0])
    np.testing.assert_allclose(ref.importance_weights(pi, beta, 3.0), [2.0, 3.0, 0.02, 3.0])
    np.testing.assert_allclose(ref.event_weights(pi, beta, "reinforce", 3.0, 2), 1.0)
    np.testing.assert_allclose(
        ref.event_weights(pi, beta, "off_policy", 3.0, 2), [2.0, 3.0, 0.02, 3.0]
    )
    np.testing.assert_allclose(
        ref.event_weights(pi, beta, "top_k", 3.0, 2), [2.0 * 1.6, 3.0, 0.02 * 1.98, 3.0 * 1.4]
    )


def test_loss_matches_a_hand_computation_and_its_gradient():
    logits = np.array([[[0.0, np.log(3.0)], [np.log(2.0), 0.0]]])  # pi(1)=3/4; pi(0)=2/3
    actions, rewards = np.array([[1, 0]]), np.array([[1.0, 2.0]])
    beta, mask = np.array([[0.5, 0.25]]), np.array([[1.0, 1.0]])
    w = np.array([1.5, 8 / 3])  # pi / beta, under the cap
    lam = np.array([2 * 0.25, 2 * (1 / 3)])
    logp = np.log([0.75, 2 / 3])
    expected = -(w * lam * rewards[0] * logp).sum() / 2
    assert (
        abs(ref.corrected_loss(logits, actions, rewards, beta, mask, "top_k", 10.0, 2) - expected)
        < 1e-12
    )
    cap = -(np.minimum(w, 1.8) * lam * rewards[0] * logp).sum() / 2
    assert (
        abs(ref.corrected_loss(logits, actions, rewards, beta, mask, "top_k", 1.8, 2) - cap) < 1e-12
    )
    # a masked event counts neither in the sum nor in M
    half = ref.corrected_loss(
        logits, actions, rewards, beta, np.array([[1.0, 0.0]]), "off_policy", 10.0, 2
    )
    assert abs(half + 1.5 * np.log(0.75)) < 1e-12
    # the gradient against central differences (f held constant, as the backends' stop-gradient)
    grad = ref.corrected_loss_grad(logits, actions, rewards, beta, mask, "reinforce", 10.0, 2)
    numeric = np.zeros_like(logits)
    for idx in np.ndindex(logits.shape):
        e = np.zeros_like(logits)
        e[idx] = 1e-6
        numeric[idx] = (
            ref.corrected_loss(logits + e, actions, rewards, beta, mask, "reinforce")
            - ref.corrected_loss(logits - e, actions, rewards, beta, mask, "reinforce")
        ) / 2e-6
    np.testing.assert_allclose(grad, numeric, atol=1e-8)


def test_behaviour_and_next_item_losses():
    logits = np.log(np.array([[[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]]))
    items, mask = np.array([[1, 2]]), np.array([[1.0, 1.0]])
    expected = -(np.log(0.3) + np.log(0.8)) / 2
    assert abs(ref.behaviour_loss(logits, items, mask) - expected) < 1e-12
    assert abs(ref.next_item_loss(logits, items, mask) - expected) < 1e-12
    assert abs(ref.next_item_loss(logits, items, np.array([[0.0, 1.0]])) + np.log(0.8)) < 1e-12


def test_ips_and_snips_on_logs_with_an_exact_expectation():
    pi, beta, r = np.array([0.1, 0.6, 0.3]), np.array([0.5, 0.25, 0.25]), np.array([1.0, 0.2, 0.5])
    logged = np.array([0, 0, 1, 2])  # each item as often as beta shows it
    w = pi[logged] / beta[logged]
    assert abs(ref.ips(w, r[logged]) - (pi * r).sum()) < 1e-12
    assert abs(ref.snips(w, r[logged]) - (pi * r).sum()) < 1e-12  # mean w = 1 here
    part = np.array([0, 1])  # a log that misses item 2: mean w != 1, the two differ
    w2 = pi[part] / beta[part]
    assert abs(ref.ips(w2, r[part]) - (0.2 + 0.48) / 2) < 1e-12
    assert abs(ref.snips(w2, r[part]) - (0.2 + 0.48) / 2.6) < 1e-12


# ---- bad input --------------------------------------------------------------------------------
def test_bad_input_is_named():
    z, mask = np.zeros((1, 2, 3)), np.ones((1, 2))
    with pytest.raises(ValueError, match=r"actions: expected item ids in \[0, 3\).*got 3"):
        ref.corrected_loss(z, np.array([[0, 3]]), np.ones((1, 2)), np.full((1, 2), 0.5), mask)
    with pytest.raises(ValueError, match=r"actions: expected item ids.*got -1"):
        ref.behaviour_loss(z, np.array([[-1, 0]]), mask)
    with pytest.raises(ValueError, match=r"beta: expected behaviour probabilities in \(0, 1\]"):
        ref.corrected_loss(
            z, np.array([[0, 1]]), np.ones((1, 2)), np.array([[0.5, 0.0]]), mask, "off_policy"
        )
    with pytest.raises(ValueError, match="k: expected an int >= 1"):
        ref.corrected_loss(
            z, np.array([[0, 1]]), np.ones((1, 2)), np.full((1, 2), 0.5), mask, "top_k", 10.0, 0
        )
    with pytest.raises(ValueError, match="cap: expected a float > 0"):
        ref.event_weights(np.ones(2), np.full(2, 0.5), "off_policy", 0.0, 1)
    with pytest.raises(ValueError, match="method: expected one of"):
        ref.event_weights(np.ones(2), np.ones(2), "ips", 1.0, 1)
    with pytest.raises(ValueError, match=r"rewards: expected shape \(1, 2\)"):
        ref.corrected_loss(z, np.array([[0, 1]]), np.ones(2), np.full((1, 2), 0.5), mask)


# ---- the simulator and its logs ---------------------------------------------------------------
def test_catalogue_titles_and_token_layout():
    c = make_catalogue(seed=0)
    assert c.size == 48 and len(set(map(c.title, range(c.size)))) > 40
    assert all(c.title(i).split()[1] in {"jazz", "saxophone", "swing"} for i in range(8))
    history = np.array([[3, 10, 47]])
    plain, titled = c.encode(history, False), c.encode(history, True)
    assert plain.tolist() == [[0, 4, 11, 48]] and titled.shape == (1, 1 + 3 * 4)
    positions = c.state_positions(1, 3, True)
    assert (titled[0, positions] - ITEM_OFFSET).tolist() == [3, 10, 47]  # states at item tokens
    assert titled.max() < c.vocab_size and c.block_size(3, True) == titled.shape[1]
    assert make_catalogue(seed=1).quality[0] != c.quality[0]


def test_logs_follow_the_behaviour_policy_and_users_their_tastes():
    sim = Simulator(make_catalogue(seed=0))
    data = log_sessions(sim, 600, history=6, first=2, seed=3)
    again = log_sessions(sim, 600, history=6, first=2, seed=3)
    assert np.array_equal(data.actions, again.actions) and np.array_equal(
        data.rewards, again.rewards
    )
    assert data.actions.shape == (600, 5) and data.history.shape == (600, 6)
    assert all(len(set(s)) == 7 for s in data.sessions)  # no item twice in a session
    np.testing.assert_array_equal(data.next_items[:, 0], data.sessions[:, 2])  # h_{t+1} at t=2
    beta = behaviour_probs(sim, data.sessions[:, 1])  # the state of event 0: after 2 items
    np.testing.assert_allclose(beta.sum(axis=1), 1.0)
    assert beta.min() > 0  # every item can be shown: pi / beta is defined
    np.testing.assert_allclose(data.propensities[:, 0], beta[np.arange(600), data.actions[:, 0]])
    # popular items are shown more, and the rewards are the users' click probabilities
    counts = np.bincount(data.actions.ravel(), minlength=48)
    assert np.corrcoef(counts, sim.catalogue.popularity)[0, 1] > 0.6
    p = np.take_along_axis(sim.click_probs(data.users), data.actions, axis=1)
    assert abs(data.rewards.mean() - p.mean()) < 0.02
    # a user's own picks come from her favourite topic far more than chance
    favourite = np.argmax(data.users, axis=1)
    share = (sim.catalogue.topic[data.sessions] == favourite[:, None]).mean()
    assert share > 0.4  # chance: 1/6


# ---- the tutorial's checked exercises ---------------------------------------------------------
def test_exercise_checks_pass_right_answers_and_fail_wrong_ones(capsys):
    from duetrl.core.cases.recommender.exercises import CHECKS

    multiplier, weight, snips = CHECKS
    right = {
        multiplier: lambda pi, k: k * (1 - pi) ** (k - 1),
        weight: lambda pi, beta, c, k: k * (1 - pi) ** (k - 1) * np.minimum(pi / beta, c),
        snips: lambda w, r: (w * r).sum() / w.sum(),
    }
    wrong = {
        multiplier: [lambda pi, k: k * (1 - pi) ** k, lambda pi, k: (1 - pi) ** (k - 1)],
        weight: [
            lambda pi, beta, c, k: k * (1 - pi) ** (k - 1) * pi / beta,  # no cap
            lambda pi, beta, c, k: k * (1 - beta) ** (k - 1) * np.minimum(pi / beta, c),
            lambda pi, beta, c, k: np.minimum(k * (1 - pi) ** (k - 1) * pi / beta, c),
        ],
        snips: [lambda w, r: (w * r).mean(), lambda w, r: (w * r).sum() / len(w)],
    }
    for check in CHECKS:
        for seed in (None, 1, 2):
            assert check(right[check], seed=seed) is True
        for answer in wrong[check]:
            assert check(answer) is False
        assert check(lambda *args: 1 / 0) is False  # a crash is a ✗, not an exception
    assert "✗" in capsys.readouterr().out


# ---- hand cases from mutation testing of the float64 oracle (MUTATION.md) ------------------


def test_the_corrected_loss_defaults_to_top_2_with_the_cap_10() -> None:
    """One event, pi(a) = 0.75 of two items, beta = 0.05, R = 1: w = min(15, 10) = 10, lambda_2 =
    2 (1 - 0.75) = 0.5, f = 5: L = -5 log 0.75 and dL/dz = -5 (onehot(a) - pi) = [-1.25, 1.25]."""
    logits = np.log(np.array([[[0.75, 0.25]]]))
    events = (np.array([[0]]), np.array([[1.0]]), np.array([[0.05]]), np.array([[1.0]]))
    assert ref.corrected_loss(logits, *events) == pytest.approx(-5 * np.log(0.75), abs=1e-14)
    np.testing.assert_allclose(ref.corrected_loss_grad(logits, *events), [[[-1.25, 1.25]]],
                               rtol=1e-14)


def test_events_of_another_shape_than_the_mask_are_named() -> None:
    logits, mask = np.zeros((1, 1, 2)), np.ones((1, 1))
    good = {"actions": np.array([[0]]), "rewards": np.ones((1, 1)), "beta": np.full((1, 1), 0.5)}
    for name in good:
        bad = {**good, name: np.concatenate([good[name]] * 2, axis=1)}  # (1, 2)
        for function in (ref.corrected_loss, ref.corrected_loss_grad):
            with pytest.raises(ValueError, match=rf"{name}: expected shape \(1, 1\) \(as mask\)"):
                function(logits, bad["actions"], bad["rewards"], bad["beta"], mask)
    with pytest.raises(ValueError, match=r"actions: expected shape \(1, 1\) \(as mask\)"):
        ref.behaviour_loss(logits, np.array([[0, 1]]), mask)
    with pytest.raises(ValueError, match=r"targets: expected shape \(1, 1\) \(as mask\)"):
        ref.next_item_loss(logits, np.array([[0, 1]]), mask)


def test_ips_and_snips_by_hand_at_their_bounds() -> None:
    """One event is an estimate (IPS 2 x 0.5 = 1, SNIPS 0.5 x 1 / 0.5 = 1); no event, rewards
    of another shape, or weights summing to 0 (SNIPS divides by the sum) are named."""
    assert ref.ips([2.0], [0.5]) == 1.0 and ref.snips([0.5], [1.0]) == 1.0
    for estimate in (ref.ips, ref.snips):
        for weights, rewards in (([], []), ([1.0, 1.0], [1.0])):
            with pytest.raises(ValueError, match=r"rewards: expected the shape of weights"):
                estimate(weights, rewards)
    with pytest.raises(ValueError, match=r"weights: expected a positive sum"):
        ref.snips([0.0, 0.0], [1.0, 1.0])
