"""core/lm/scaling.py: the Markov source's exact entropies against closed forms and brute force,
its sampler, the related source, the parameter counts and the power-law fit."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.lm.scaling import (
    MarkovSource,
    de_bruijn_successors,
    fit_power_law,
    gpt_parameters,
    non_embedding_parameters,
    random_source,
    related_source,
)

A, B = 0.3, 0.1  # the 2-state chain: P(0 -> 1) = A, P(1 -> 0) = B
TWO_STATE = np.array([[1 - A, A], [B, 1 - B]])


def binary_entropy(p: float) -> float:
    return -p * math.log(p) - (1 - p) * math.log(1 - p)


def brute_force(source: MarkovSource, length: int) -> dict[tuple[int, ...], float]:
    """p(x_1..x_length) of every sequence, by enumeration (stationary start)."""
    k, v = source.order, source.vocab_size
    mu, p = source.stationary, source.transitions
    table = {}
    for seq in itertools.product(range(v), repeat=length):
        context = sum(s * v ** (k - 1 - i) for i, s in enumerate(seq[:k]))
        prob = mu[context]
        for t in range(k, length):
            prob *= p[context, seq[t]]
            context = (context * v) % source.num_contexts + seq[t]
        table[seq] = prob
    return table


def entropy_of(table: dict) -> float:
    return -sum(p * math.log(p) for p in table.values() if p > 0)


def marginal(table: dict, keep: list[int]) -> dict:
    out: dict = {}
    for seq, p in table.items():
        key = tuple(seq[i] for i in keep)
        out[key] = out.get(key, 0.0) + p
    return out


@pytest.fixture(scope="module")
def order2() -> MarkovSource:
    return random_source(vocab_size=3, order=2, support=2, concentration=1.0, seed=3)


def test_two_state_chain_closed_form() -> None:
    source = MarkovSource(TWO_STATE)
    np.testing.assert_allclose(source.stationary, [B / (A + B), A / (A + B)], atol=1e-12)
    expected = (B * binary_entropy(A) + A * binary_entropy(B)) / (A + B)  # nats, mu-weighted
    assert source.entropy_rate == pytest.approx(expected, abs=1e-12)
    assert source.entropy_rate == pytest.approx(0.3965283056, abs=1e-9)  # nats; not bits
    uniform_weighting = 0.5 * (binary_entropy(A) + binary_entropy(B))
    assert abs(source.entropy_rate - uniform_weighting) > 0.05


def test_row_stochastic_not_column_stochastic() -> None:
    with pytest.raises(ValueError, match="rows summing to 1"):
        MarkovSource(TWO_STATE.T)  # column-stochastic: rows sum to 0.8 and 1.2
    # the entropy of the columns, mu-weighted, is another number
    source, mu = MarkovSource(TWO_STATE), np.array([B / (A + B), A / (A + B)])
    columns = mu @ -np.sum(TWO_STATE.T * np.log(TWO_STATE.T), axis=1)
    assert abs(source.entropy_rate - columns) > 0.05
    # mu is the left eigenvector (mu P = mu), not the right one (P 1 = 1, uniform)
    assert abs(source.stationary[0] - 0.5) > 0.2


def test_stationary_distribution_is_invariant(order2: MarkovSource) -> None:
    order2.stationary[:] = 0.0  # a copy: the source's own mu is not changed
    mu = order2.stationary
    assert mu.shape == (9,) and mu.min() >= 0 and mu.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(mu @ order2.context_transitions(), mu, atol=1e-12)
    # the context transition moves (a, b) to (b, j) with probability P((a, b), j)
    t = order2.context_transitions()
    assert t[1 * 3 + 2, 2 * 3 + 0] == order2.transitions[5, 0]
    assert t[5, 0 * 3 + 2] == 0.0  # (1, 2) cannot become (0, 2)


def test_entropies_match_brute_force(order2: MarkovSource) -> None:
    table = brute_force(order2, 5)
    blocks = [0.0] + [entropy_of(marginal(table, list(range(m)))) for m in range(1, 6)]
    for m in range(6):
        assert order2.block_entropy(m) == pytest.approx(blocks[m], abs=1e-10)
    for m in range(4):  # h(m) = H_{m+1} - H_m, and the rate from m = k on
        assert order2.conditional_entropy(m) == pytest.approx(blocks[m + 1] - blocks[m], abs=1e-10)
    assert order2.entropy_rate == pytest.approx(blocks[5] - blocks[4], abs=1e-10)
    assert order2.conditional_entropy(1) > order2.entropy_rate + 0.05  # one symbol is too few
    # the window floor averages h(1), ..., h(T): T = 3 sees 1, 2, 3 symbols of context
    expected = np.mean([blocks[2] - blocks[1], blocks[3] - blocks[2], blocks[4] - blocks[3]])
    assert order2.window_floor(3) == pytest.approx(expected, abs=1e-10)
    assert order2.window_floor(1) == pytest.approx(blocks[2] - blocks[1], abs=1e-10)


def test_masked_entropy_matches_brute_force(order2: MarkovSource) -> None:
    table = brute_force(order2, 5)  # 2k + 1 = 5: the masked token in the middle
    rest = marginal(table, [0, 1, 3, 4])
    expected = -sum(p * math.log(p / rest[s[:2] + s[3:]]) for s, p in table.items() if p > 0)
    assert order2.masked_entropy() == pytest.approx(expected, abs=1e-10)
    assert order2.masked_entropy() < order2.entropy_rate
    # order 1, by the posterior p(b | a, c) = P_ab P_bc / sum_b' P_ab' P_b'c
    source = MarkovSource(np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3], [0.3, 0.3, 0.4]]))
    mu, p = source.stationary, source.transitions
    h = 0.0
    for a, b, c in itertools.product(range(3), repeat=3):
        joint = mu[a] * p[a, b] * p[b, c]
        h -= joint * math.log(p[a, b] * p[b, c] / (p[a] @ p[:, c]))
    assert source.masked_entropy() == pytest.approx(h, abs=1e-12)


def test_sampler_follows_the_chain() -> None:
    source = MarkovSource(TWO_STATE)
    x = source.sample(100_000, seed=4)
    assert x.dtype == np.int64 and set(np.unique(x)) == {0, 1}
    np.testing.assert_array_equal(x, source.sample(100_000, seed=4))
    assert not np.array_equal(x[:100], source.sample(100, seed=5))
    for i in range(2):
        after = x[1:][x[:-1] == i]
        assert np.mean(after) == pytest.approx(TWO_STATE[i, 1], abs=0.01)
    assert source.cross_entropy(x) == pytest.approx(source.entropy_rate, abs=0.01)
    assert np.mean(x) == pytest.approx(source.stationary[1], abs=0.02)


def test_sampler_and_loss_of_a_sparse_order2_source() -> None:
    source = random_source(vocab_size=5, order=2, support=2, seed=1)
    x = source.sample(50_000, seed=2)
    loss = source.cross_entropy(x)  # finite: no forbidden transition was drawn
    assert loss == pytest.approx(source.entropy_rate, abs=0.02)
    assert source.text(10, seed=2) == "".join("abcde"[s] for s in x[:10])


def test_contexts_are_oldest_first() -> None:
    source = random_source(vocab_size=3, order=2, support=3, seed=0)
    np.testing.assert_array_equal(source.contexts(np.array([1, 2, 0, 1])), [1 * 3 + 2, 2 * 3])
    tokens = np.array([1, 2, 0])
    assert source.cross_entropy(tokens) == pytest.approx(-math.log(source.transitions[5, 0]))


def test_random_source_is_sparse_irreducible_and_seeded() -> None:
    source = random_source(vocab_size=6, order=2, support=2, seed=7)
    assert source.transitions.shape == (36, 6)
    assert np.all((source.transitions > 0).sum(axis=1) == 2)
    successors = de_bruijn_successors(6, 2)
    assert np.all(source.transitions[np.arange(36), successors] > 0)
    np.testing.assert_array_equal(source.transitions, random_source(6, 2, 2, seed=7).transitions)
    wide = random_source(vocab_size=6, order=2, support=6, seed=7)
    assert wide.entropy_rate > source.entropy_rate


@pytest.mark.parametrize("vocab_size, order", [(2, 3), (3, 2), (4, 1), (5, 2)])
def test_de_bruijn_successors_make_one_cycle(vocab_size: int, order: int) -> None:
    successors = de_bruijn_successors(vocab_size, order)
    n, context, seen = vocab_size**order, 0, []
    for _ in range(n):
        seen.append(context)
        context = (context * vocab_size) % n + successors[context]
    assert context == 0 and sorted(seen) == list(range(n))


def test_related_source_redraws_a_share_of_rows() -> None:
    source = random_source(vocab_size=4, order=2, support=2, seed=0)
    changed = lambda other: int(np.sum(np.any(other.transitions != source.transitions, 1)))  # noqa: E731
    assert changed(related_source(source, 0.0, support=2, seed=1)) == 0
    assert changed(related_source(source, 0.25, support=2, seed=1)) == 4
    assert changed(related_source(source, 1.0, support=2, seed=1)) == 16


def test_parameter_counts() -> None:
    config = GPTConfig(vocab_size=16, block_size=8, n_layer=2, n_head=2, n_embd=32)
    non_embedding = 2 * (12 * 32**2 + 13 * 32) + 2 * 32  # 12 L d^2 + 13 L d + 2 d
    assert non_embedding_parameters(config) == non_embedding == 25472
    assert gpt_parameters(config) == non_embedding + 16 * 32 + 8 * 32
    wide = GPTConfig(vocab_size=5, block_size=4, n_layer=1, n_head=1, n_embd=6, mlp_ratio=2)
    assert non_embedding_parameters(wide) == (4 + 4) * 36 + (9 + 2) * 6 + 12


def test_fit_recovers_known_parameters() -> None:
    sizes = np.geomspace(100, 1e5, 6)
    losses = 0.8 + 5.0 * sizes**-0.45
    fit = fit_power_law(sizes, losses)
    assert fit.floor_fitted and fit.rss < 1e-16
    assert (fit.floor, fit.coefficient, fit.exponent) == pytest.approx((0.8, 5.0, 0.45), rel=1e-6)
    np.testing.assert_allclose(fit.predict(sizes), losses, atol=1e-9)
    given = fit_power_law(sizes, losses, floor=0.8)
    assert not given.floor_fitted and given.floor == 0.8
    assert (given.coefficient, given.exponent) == pytest.approx((5.0, 0.45), rel=1e-6)
    wrong_floor = fit_power_law(sizes, losses, floor=0.5)
    assert wrong_floor.rss > 1e-6


def test_fit_with_noise_stays_near() -> None:
    rng = np.random.default_rng(0)
    sizes = np.geomspace(50, 2e5, 8)
    losses = 1.2 + 3.0 * sizes**-0.3 + rng.normal(0, 1e-3, size=8)
    fit = fit_power_law(sizes, losses)
    assert fit.floor == pytest.approx(1.2, abs=0.05)
    assert fit.exponent == pytest.approx(0.3, abs=0.05)


@pytest.mark.parametrize("sizes, losses, floor, match", [
    ([1, 2, 3], [1, 2], None, "same length"),
    ([1, 2], [1.0, 0.9], None, "at least 3"),
    ([1], [1.0], 0.5, "at least 2"),
    ([1, 0, 3], [1, 1, 1], None, "positive sizes"),
    ([1, 2, 3], [1, np.nan, 1], None, "finite"),
    ([2, 2, 3], [1, 0.9, 0.8], None, "distinct"),
    ([1, 2, 3], [1, 0.9, 0.8], np.inf, "floor"),
])
def test_fit_refuses_bad_input(sizes, losses, floor, match) -> None:
    with pytest.raises(ValueError, match=match):
        fit_power_law(np.array(sizes, float), np.array(losses, float), floor=floor)
    with pytest.raises(ValueError, match="exponent_bounds"):
        fit_power_law(np.array([1.0, 2, 3]), np.array([1.0, 0.9, 0.8]), exponent_bounds=(1, 0.5))


@pytest.mark.parametrize("table, order, match", [
    (np.array([[0.5, 0.5]]), 1, "rows"),
    (np.full((4, 2), 0.5), 1, "rows"),
    (np.full((4, 2), 0.5), 0, "order"),
    (np.array([[1.2, -0.2], [0.5, 0.5]]), 1, "non-negative"),
    (np.array([[np.nan, 0.5], [0.5, 0.5]]), 1, "finite"),
    (np.eye(2), 1, "reducible"),
    (np.array([[1.0, 0.0], [0.5, 0.5]]), 1, "reducible"),
])
def test_source_refuses_bad_tables(table, order, match) -> None:
    with pytest.raises(ValueError, match=match):
        MarkovSource(table, order)


def test_other_bad_input(order2: MarkovSource) -> None:
    with pytest.raises(ValueError, match="length"):
        order2.sample(1)
    with pytest.raises(ValueError, match="length"):
        order2.block_entropy(-1)
    with pytest.raises(ValueError, match="block_size"):
        order2.window_floor(0)
    with pytest.raises(ValueError, match="tokens"):
        order2.contexts(np.array([0, 1, 3]))
    with pytest.raises(ValueError, match="support"):
        random_source(vocab_size=4, order=1, support=5)
    with pytest.raises(ValueError, match="vocab_size"):
        random_source(vocab_size=1)
    with pytest.raises(ValueError, match="fraction"):
        related_source(order2, 1.5)
    with pytest.raises(ValueError, match="at most 1024 contexts"):
        MarkovSource(np.full((2048, 2), 0.5), order=11)
    with pytest.raises(ValueError, match="order"):
        random_source(vocab_size=2, order=11)


# ---- the edges of every range: the last value accepted, the first refused -------------------


def test_table_checks_at_their_edges() -> None:
    assert MarkovSource(np.array([[0, 1], [1, 0]])).transitions.dtype == np.float64  # ints read
    assert MarkovSource(np.full((1024, 2), 0.5), order=10).num_contexts == 1024  # the most
    for table, order, match in [
        (np.ones((1, 1)), 1, "V >= 2"),  # one symbol: nothing to predict
        (np.full((2, 2, 2), 0.5), 1, "table"),  # three axes
        (TWO_STATE, True, "order"),  # a bool is no order
        (TWO_STATE, 1.0, "order"),
        (np.array([[0.7 + 5e-9, 0.3], [B, 1 - B]]), 1, "rows summing to 1"),  # atol is 1e-9
        (np.array([[0.5, 0.5], [0.7, 0.6]]), 1, "row 1 sums to 1.29"),  # the worst row: 1.3
        (np.array([[0.5, 0.5], [0.2, 0.3]]), 1, "row 1 sums to 0.5"),  # the worst row: 0.5
    ]:
        with pytest.raises(ValueError, match=match):
            MarkovSource(table, order)


def test_draw_checks_at_their_edges() -> None:
    assert random_source(vocab_size=26, order=1, support=2).vocab_size == 26  # the most
    assert random_source(vocab_size=2, order=10, support=2).num_contexts == 1024  # the most
    one = random_source(vocab_size=3, order=1, support=1)  # only the de Bruijn successor
    assert np.all((one.transitions == 1.0).sum(axis=1) == 1) and one.entropy_rate == 0.0
    assert random_source(vocab_size=3, order=1, concentration=0.5).order == 1
    for kwargs, match in [
        ({"vocab_size": 1, "support": 1}, "vocab_size: expected 2..26"),
        ({"vocab_size": 27, "order": 1, "support": 2}, "vocab_size: expected 2..26"),
        ({"order": 0}, "order: expected >= 1"),
        ({"support": 0}, "support: expected 1..vocab_size"),
        ({"concentration": 0.0}, "concentration: expected > 0"),
        ({"concentration": -1.0}, "concentration: expected > 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            random_source(**kwargs)


def test_length_and_token_checks_at_their_edges(order2: MarkovSource) -> None:
    with pytest.raises(ValueError, match="tokens: expected more than 2 symbols"):
        order2.contexts(np.array([0, 1]))  # k symbols: no position has a whole context
    with pytest.raises(ValueError, match="tokens: expected more than 2 symbols in"):
        order2.contexts(np.array([0, 1, -1]))
    contexts = order2.contexts(np.array([1.0, 2.0, 0.0, 1.0]))  # float ids are read as ints
    assert contexts.dtype == np.int64 and contexts.tolist() == [1 * 3 + 2, 2 * 3 + 0]
    for bad in (True, 1.0):
        with pytest.raises(ValueError, match="length"):
            order2.block_entropy(bad)
        with pytest.raises(ValueError, match="block_size"):
            order2.window_floor(bad)


def test_defaults_are_the_documented_ones() -> None:
    def same(a: MarkovSource, b: MarkovSource) -> bool:
        return np.array_equal(a.transitions, b.transitions) and a.order == b.order

    assert same(random_source(), random_source(16, 2, 3, 1.0, 0))
    source = random_source(vocab_size=4, order=2, support=2, seed=5)
    assert same(related_source(source, 0.5), related_source(source, 0.5, 3, 1.0, 0))
    assert np.array_equal(source.sample(50), source.sample(50, 0))
    assert source.text(20) == source.text(20, 0)


def test_the_first_symbols_are_drawn_from_mu(order2: MarkovSource) -> None:
    """The first k symbols are a context drawn from mu (written oldest first), whatever the
    seed: over 3000 seeds, the share of each context is mu's (3 sigma ~ 0.03)."""
    two_state = MarkovSource(TWO_STATE)  # mu = (B, A) / (A + B) = (0.25, 0.75)
    ones = np.mean([two_state.sample(1, seed=s)[0] for s in range(3000)])
    assert ones == pytest.approx(0.75, abs=0.03)
    starts = [order2.sample(2, seed=s) for s in range(3000)]
    shares = np.bincount([3 * a + b for a, b in starts], minlength=9) / 3000
    np.testing.assert_allclose(shares, order2.stationary, atol=0.03)


def test_cross_entropy_of_an_impossible_transition_and_of_float_ids() -> None:
    import warnings

    source = random_source(vocab_size=3, order=1, support=1)  # one successor per symbol
    successor = int(np.argmax(source.transitions[0]))
    other = (successor + 1) % 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # log 0 = -inf is the answer, not a warning
        assert source.cross_entropy(np.array([0, other])) == np.inf
    assert source.cross_entropy(np.array([0.0, float(successor)])) == 0.0  # ids read as ints


def test_text_and_masked_window_limits() -> None:
    assert random_source(vocab_size=26, order=1, support=2).text(5, seed=1).isalpha()
    with pytest.raises(ValueError, match="vocab_size: text needs at most 26 symbols, got 27"):
        MarkovSource(np.full((27, 27), 1 / 27)).text(5)
    with pytest.raises(ValueError, match="V\\^\\(2k\\+1\\) = 4782969 windows"):
        random_source(vocab_size=9, order=3, support=2).masked_entropy()  # 9^7 > 2^22
    widest = random_source(vocab_size=4, order=5, support=2)  # 4^11 = 2^22 windows: allowed
    assert -1e-12 <= widest.masked_entropy() <= widest.entropy_rate + 1e-12


def test_fit_of_large_models_and_of_exact_numbers() -> None:
    # 30 sizes up to 1e12 parameters: the sum of their logs (~760) would overflow exp; their
    # geometric mean (~3e10) is the scale the fit works in
    sizes = np.geomspace(1e9, 1e12, 30)
    fit = fit_power_law(sizes, 1.5 + 40.0 * sizes**-0.2)
    assert (fit.floor, fit.coefficient, fit.exponent) == pytest.approx((1.5, 40.0, 0.2), rel=1e-6)
    # any numbers are read as float64: exact fractions too (L = 1 + 8 / N, alpha = 1)
    exact = fit_power_law([Fraction(n) for n in (1, 2, 4, 8)],
                          [1 + Fraction(8, n) for n in (1, 2, 4, 8)])
    assert (exact.floor, exact.coefficient, exact.exponent) == pytest.approx((1, 8, 1), rel=1e-6)


@pytest.mark.parametrize("sizes, bounds, match", [
    ([1.0, np.nan, 3.0], (1e-3, 3.0), "finite"),
    ([1.0, np.inf, 3.0], (1e-3, 3.0), "finite"),
    ([1.0, 2.0, 3.0], (0.0, 1.0), "exponent_bounds"),  # alpha = 0 is no power law
    ([1.0, 2.0, 3.0], (0.5, 0.5), "exponent_bounds"),  # an empty bracket
])
def test_fit_refuses_bad_sizes_and_bounds(sizes, bounds, match) -> None:
    with pytest.raises(ValueError, match=match):
        fit_power_law(np.array(sizes), np.array([1.0, 0.9, 0.8]), exponent_bounds=bounds)


@pytest.mark.parametrize("exponent", [0.1 * 1.0004, 0.999])
def test_fit_finds_an_exponent_between_the_first_or_last_two_grid_points(exponent) -> None:
    """The golden section's bracket at the grid's ends: an exponent just inside a bound (not a
    grid point) is found exactly, not rounded to the nearest of the 200 grid points (1.2% apart
    here)."""
    sizes = np.geomspace(10, 1e4, 6)
    fit = fit_power_law(sizes, 0.5 + 2.0 * sizes**-exponent, exponent_bounds=(0.1, 1.0))
    assert fit.exponent == pytest.approx(exponent, rel=1e-6)


def test_fit_default_exponent_bounds() -> None:
    import inspect

    bounds = inspect.signature(fit_power_law).parameters["exponent_bounds"].default
    assert bounds == (1e-3, 3.0)
