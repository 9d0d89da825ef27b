"""The checks behind the exercises that end each tutorial.

Every check takes the student's answer (a function, or a number), compares it on fresh inputs
with the float64 reference in :mod:`duetrl.core.reference` (or with an analytic fact the check
computes itself), prints ``✓`` or ``✗`` with what was expected, and returns True or False. It
never raises on a wrong answer: an exception in the student's code is reported as a ``✗``.

An answer may be written in NumPy, PyTorch or TensorFlow, the student's choice: :func:`compare`
reads a torch or tf tensor back with :func:`duetrl.core.tolerances.to_numpy` (duck-typed), so
one check serves all three. A framework computes in float32, so a check that invites a framework
answer compares to :data:`FRAMEWORK_TOLERANCE` (DESIGN.md's float32 layer tolerance) instead of
the float64 one.

The checks live here rather than in the tutorials so the test suite can call each one with a
right and a wrong answer (``tests/test_exercises.py``); a tutorial gets its own with
:func:`exercise_checks`. NumPy only: nothing here imports a framework.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from duetrl.core.coursework.compare import compare_calls
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import param_shapes
from duetrl.core.lm.corpora import MarkovChain
from duetrl.core.reference.attention import (
    init_multi_head_attention_params,
    scaled_dot_product_attention,
)
from duetrl.core.reference.attention import softmax as reference_softmax
from duetrl.core.reference.gpt import cross_entropy
from duetrl.core.reference.policy import categorical_log_prob
from duetrl.core.reference.returns import discounted_returns, gae
from duetrl.core.reference.rlhf import clipped_surrogate
from duetrl.core.sampling import filter_logits, generate
from duetrl.core.tolerances import TOLERANCES, to_numpy

FRAMEWORK_TOLERANCE = TOLERANCES["float32_layer"]
"""atol = rtol of a check whose answer may be a float32 torch or tf tensor (1e-5)."""

# --------------------------------------------------------------------------------------------
# Shared helpers


def report(number: int, ok: bool, message: str) -> bool:
    """Print ``✓ exercise N: message`` or ``✗ exercise N: message`` and return ``ok``."""
    print(f"{'✓' if ok else '✗'} exercise {number}: {message}")
    return bool(ok)


def compare(number: int, student: Callable[..., Any], reference: Callable[..., Any],
            cases: list[tuple], what: str, atol: float = 1e-9, rtol: float = 1e-9) -> bool:
    """Call ``student(*case)`` and ``reference(*case)`` on every case; report the first mismatch.

    The comparison is the grader's (:func:`duetrl.core.coursework.compare.compare_calls`):
    shape first, then NaN and inf (the reference's infinities at the same places with the same
    sign), then the finite entries to ``atol + rtol * |expected|``. An exception or a wrong
    shape is a failure, not a crash. A torch or tf tensor is read back as NumPy first.
    """
    verdict = compare_calls(lambda *case: to_numpy(student(*case)), reference, cases, what,
                            atol, rtol)
    return report(number, verdict.passed, verdict.message)


def _rng(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------------------------
# ch02_1 attention: from the equation to two frameworks


def check_unscaled_attention(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 1: softmax(Q K^T) V, without the 1/sqrt(d_k); NumPy, torch or tf (float32
    tolerance).

    Reference: scaling Q by sqrt(d_k) cancels the division, so the answer must equal
    ``scaled_dot_product_attention(sqrt(d_k) Q, K, V)``.
    """
    rng = _rng(seed)
    cases = [(rng.normal(size=(q, d)), rng.normal(size=(k, d)), rng.normal(size=(k, 3)))
             for q, k, d in ((3, 5, 4), (2, 7, 16), (4, 4, 64))]
    return compare(1, answer,
                   lambda q, k, v: scaled_dot_product_attention(q * np.sqrt(q.shape[-1]), k, v),
                   cases, "softmax(Q K^T) V", FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)


def check_fully_masked_row(answer: Callable) -> bool:
    """Exercise 2: the weights of a query whose every key is masked, for ``k_len`` keys."""
    def reference(k_len: int) -> np.ndarray:
        rng = _rng(k_len)
        q, k, v = rng.normal(size=(1, 4)), rng.normal(size=(k_len, 4)), rng.normal(size=(k_len, 2))
        return scaled_dot_product_attention(q, k, v, np.zeros((1, k_len)), True)[1][0]
    return compare(2, answer, reference, [(1,), (3,), (8,)], "a fully masked row's weights")


def check_attention_param_count(answer: Callable) -> bool:
    """Exercise 3: the number of parameters of ``MultiHeadAttention(d_model, heads)``."""
    return compare(
        3, answer,
        lambda d, h: sum(p.size for p in init_multi_head_attention_params(d).values()),
        [(8, 2), (12, 3), (16, 4), (16, 1)], "the parameter count", atol=0.0, rtol=0.0)


# --------------------------------------------------------------------------------------------
# ch02_1 a small GPT and its pretraining


def check_initial_loss(answer: Callable) -> bool:
    """Exercise 1: the cross-entropy when all logits are equal, as a function of V; NumPy,
    torch or tf (float32 tolerance)."""
    def reference(vocab_size: int) -> float:
        targets = _rng(vocab_size).integers(0, vocab_size, size=(2, 5))
        return cross_entropy(np.zeros((2, 5, vocab_size)), targets)
    return compare(1, answer, reference, [(2,), (6,), (20,), (95,)], "the loss of equal logits",
                   FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)


def check_entropy_rate(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 2: H = -sum_i pi_i sum_j P_ij log P_ij of a transition matrix ``P``."""
    seeds = _rng(seed).integers(0, 2**31, size=3)
    cases = [(MarkovChain.random(n, concentration=0.5, seed=int(s)).transitions,)
             for n, s in zip((3, 5, 8), seeds)]
    return compare(2, answer, lambda p: MarkovChain(p).entropy_rate, cases, "the entropy rate")


def check_gpt_param_count(answer: Callable) -> bool:
    """Exercise 3: the number of parameters of ``GPT(config)`` (output head tied to wte)."""
    configs = [GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=32),
               GPTConfig(vocab_size=7, block_size=9, n_layer=1, n_head=1, n_embd=8),
               GPTConfig(vocab_size=50, block_size=32, n_layer=3, n_head=4, n_embd=16)]
    return compare(3, answer,
                   lambda c: sum(int(np.prod(s)) for s in param_shapes(c).values()),
                   [(c,) for c in configs], "the parameter count", atol=0.0, rtol=0.0)


# --------------------------------------------------------------------------------------------
# ch03_1 PPO


def _reference_clip_loss(ratio: np.ndarray, advantage: np.ndarray, eps: float) -> np.ndarray:
    ratio, advantage = np.asarray(ratio, float), np.asarray(advantage, float)
    return clipped_surrogate(np.log(ratio)[None], np.zeros((1, ratio.size)),
                             advantage[None], eps)[0][0]


def check_clip_loss(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 1: -min(rho A, clip(rho, 1 - eps, 1 + eps) A), element by element; NumPy,
    torch or tf (float32 tolerance)."""
    rng = _rng(seed)
    cases = [(rng.uniform(0.3, 2.0, size=12), rng.normal(size=12), eps) for eps in (0.1, 0.2, 0.3)]
    return compare(1, answer, _reference_clip_loss, cases, "the clipped loss",
                   FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)


def check_best_clipped_objective(answer: Callable) -> bool:
    """Exercise 2: sup over rho > 0 of min(rho A, clip(rho, 1 - eps, 1 + eps) A).

    The check sweeps rho over a fine grid (with 1 - eps and 1 + eps on it) through the
    reference loss and takes the largest objective.
    """
    def reference(advantage: float, eps: float) -> float:
        ratios = np.union1d(np.linspace(1e-3, 3.0, 3001), [1 - eps, 1 + eps])
        return float(-_reference_clip_loss(ratios, np.full(ratios.size, advantage), eps).min())
    cases = [(a, eps) for a in (1.5, -0.7) for eps in (0.05, 0.1, 0.2, 0.3)]
    return compare(2, answer, reference, cases, "the best objective a ratio can reach")


def check_td_error(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 3: GAE with lambda = 0, delta_t = r_t + gamma (1 - term_t) V(s_{t+1}) - V(s_t)."""
    rng = _rng(seed)
    cases = []
    for gamma in (0.0, 0.9, 1.0):
        shape = (6, 3)
        term, trunc = rng.random(shape) < 0.3, rng.random(shape) < 0.2
        cases.append((rng.normal(size=shape), rng.normal(size=shape), rng.normal(size=shape),
                      term & ~trunc, gamma))
    return compare(3, answer,
                   lambda r, v, nv, term, g: gae(r, v, nv, term, np.zeros_like(term), g, 0.0)[0],
                   cases, "the TD error (GAE, lambda = 0)")


# --------------------------------------------------------------------------------------------
# ch04_2 MDPs, the Bellman equation and the policy gradient theorem


def check_bellman_solve(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 1: V with V = R_pi + gamma P_pi V, from ``(P_pi, R_pi, gamma)``.

    Analytic check: the Bellman residual |V - R_pi - gamma P_pi V| is zero.
    """
    rng = _rng(seed)
    for n, gamma in ((2, 0.0), (4, 0.5), (7, 0.99)):
        p = rng.random((n, n + 1))
        p_pi = (p / p.sum(axis=1, keepdims=True))[:, :n]  # the last column: termination
        r_pi = rng.normal(size=n)
        try:
            v = np.asarray(answer(p_pi, r_pi, gamma), dtype=np.float64)
            residual = np.abs(v - r_pi - gamma * p_pi @ v).max()
        except Exception as error:
            return report(1, False, f"raised {type(error).__name__}: {error}")
        if not residual < 1e-9:
            return report(1, False, f"{n} states, gamma = {gamma}: expected a V whose Bellman "
                                    f"residual is 0, got a residual of {residual:.2e}")
    return report(1, True, "V = R_pi + gamma P_pi V holds on 3 fresh MDPs")


def _bandit(seed: int | None, arms: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = _rng(seed)
    return rng.normal(size=arms), rng.normal(1.0, 1.0, size=arms)  # theta, rewards


def exact_bandit_gradient(theta: np.ndarray, rewards: np.ndarray) -> np.ndarray:
    """grad of J(theta) = sum_a softmax(theta)_a r_a, by central finite differences."""
    grad = np.zeros_like(theta)
    for i in range(len(theta)):
        step = np.zeros_like(theta)
        step[i] = 1e-6
        grad[i] = (reference_softmax(theta + step) @ rewards
                   - reference_softmax(theta - step) @ rewards) / 2e-6
    return grad


def estimator_moments(estimate: Callable, theta: np.ndarray, rewards: np.ndarray,
                      baseline: float) -> tuple[np.ndarray, float]:
    """Exact mean and total variance E|g - E g|^2 of ``estimate(theta, rewards, a, b)``, a ~ pi."""
    pi = reference_softmax(theta)
    g = np.array([estimate(theta, rewards, a, baseline) for a in range(len(theta))], float)
    mean = pi @ g
    return mean, float(pi @ ((g - mean) ** 2).sum(axis=1))


def check_score_function_estimate(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 2: g = grad log pi(a) (r_a - b) is unbiased for every baseline b; the gradient
    may come from torch's or tf's autograd (in float64: the variance is checked to 1e-9).

    One-step softmax bandit; the check averages the answer over every action, weighted by pi,
    and compares with the finite-difference gradient of J(theta) = sum_a pi_a r_a.
    """
    theta, rewards = _bandit(seed)
    exact = exact_bandit_gradient(theta, rewards)
    student = answer
    answer = lambda *args: to_numpy(student(*args))  # noqa: E731  (a torch or tf gradient too)
    for baseline in (0.0, float(reference_softmax(theta) @ rewards), 3.0):
        try:
            mean, variance = estimator_moments(answer, theta, rewards, baseline)
        except Exception as error:
            return report(2, False, f"raised {type(error).__name__}: {error}")
        if mean.shape != exact.shape or not np.allclose(mean, exact, atol=1e-6):
            return report(2, False, f"baseline b = {baseline:.3f}: expected E[g] = grad J = "
                                    f"{np.round(exact, 5)}, got {np.round(mean, 5)}")
        # the baseline must be used: the variance of (e_a - pi)(r_a - b) changes with b
        expected = _score_variance(theta, rewards, baseline)
        if not abs(variance - expected) < 1e-9 * max(1.0, expected):
            return report(2, False, f"baseline b = {baseline:.3f}: unbiased, but expected a "
                                    f"variance E|g - grad J|^2 = {expected:.5f}, got "
                                    f"{variance:.5f} (is b subtracted from r_a?)")
    return report(2, True, "E[g] = grad J for baselines 0, V and 3 (no bias), and each b "
                           "gives the variance it should")


def _score_variance(theta: np.ndarray, rewards: np.ndarray, baseline: float) -> float:
    """E|g - grad J|^2 of g = (e_a - pi)(r_a - b), a ~ pi, computed exactly over the arms."""
    pi = reference_softmax(theta)
    grad_log_pi = np.eye(len(theta)) - pi  # row a: d log pi(a) / d theta
    g = grad_log_pi * (rewards - baseline)[:, None]
    return float(pi @ ((g - pi @ g) ** 2).sum(axis=1))


def check_optimal_baseline(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 3: the constant b that minimises the estimator's variance.

    The variance of (e_a - pi)(r_a - b) is a parabola in b; the check measures it at three
    baselines and takes the parabola's minimum.
    """
    for s in _rng(seed).integers(0, 2**31, size=3):
        theta, rewards = _bandit(int(s), arms=3 + int(s) % 3)

        v0, v1, v2 = (_score_variance(theta, rewards, b) for b in (0.0, 1.0, 2.0))
        curvature = (v2 - 2 * v1 + v0) / 2  # v(b) = curvature b^2 + slope b + v0
        slope = v1 - v0 - curvature
        best = -slope / (2 * curvature)  # the vertex of the parabola
        try:
            got = float(answer(theta, rewards))
        except Exception as error:
            return report(3, False, f"raised {type(error).__name__}: {error}")
        if not abs(got - best) < 1e-6 * max(1.0, abs(best)):
            return report(3, False, f"expected b* = {best:.6f} (variance "
                                    f"{_score_variance(theta, rewards, best):.5f}), got "
                                    f"{got:.6f} (variance "
                                    f"{_score_variance(theta, rewards, got):.5f})")
    return report(3, True, "your baseline minimises the variance on 3 fresh bandits")


# --------------------------------------------------------------------------------------------
# ch05_2 REINFORCE in TensorFlow and PyTorch


def check_returns_to_go(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 1: G_t = sum_{k >= t} gamma^(k-t) r_k of one episode that terminates."""
    rng = _rng(seed)

    def reference(rewards: np.ndarray, gamma: float) -> np.ndarray:
        term = np.zeros((len(rewards), 1), bool)
        term[-1] = True
        return discounted_returns(rewards[:, None], term, np.zeros_like(term), gamma)[:, 0]
    cases = [(rng.normal(size=n), g) for n, g in ((1, 0.9), (5, 0.0), (8, 0.9), (12, 1.0))]
    return compare(1, answer, reference, cases, "the returns")


def reinforce_reference_loss(logits: np.ndarray, actions: np.ndarray,
                             returns: np.ndarray) -> float:
    """-1/T sum_t log pi(a_t|s_t) G_t, from the reference log-probability."""
    return float(-(categorical_log_prob(logits, actions) * returns).mean())


def _policy_cases(rng: np.random.Generator) -> list[tuple]:
    return [(rng.normal(size=(t, a)), rng.integers(0, a, size=t), rng.normal(size=t))
            for t, a in ((1, 2), (5, 2), (9, 4))]


def check_reinforce_loss(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 2: the REINFORCE loss from logits ``(T, A)``, actions ``(T,)``, returns ``(T,)``;
    NumPy, torch or tf (float32 tolerance)."""
    return compare(2, answer, reinforce_reference_loss, _policy_cases(_rng(seed)),
                   "the REINFORCE loss", FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)


def check_reinforce_loss_gradient(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 3: dL/dlogits ``(T, A)``, checked by central finite differences of the loss."""
    def numeric(logits, actions, returns):
        grad = np.zeros_like(logits)
        for index in np.ndindex(logits.shape):
            step = np.zeros_like(logits)
            step[index] = 1e-6
            grad[index] = (reinforce_reference_loss(logits + step, actions, returns)
                           - reinforce_reference_loss(logits - step, actions, returns)) / 2e-6
        return grad
    return compare(3, answer, numeric, _policy_cases(_rng(seed)), "dL/dlogits", atol=1e-7)


# --------------------------------------------------------------------------------------------
# ch09_1 fine-tuning and fast inference


def check_top_k(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 1: logits ``(B, V)`` with all but the k largest of each row set to -inf; NumPy,
    torch or tf (float32 tolerance; the -inf must be where the reference has them)."""
    rng = _rng(seed)
    cases = [(rng.normal(size=(3, 10)), k) for k in (1, 3, 9, 10)]
    return compare(1, answer, lambda z, k: filter_logits(z, top_k=k), cases, "top-k filtering",
                   FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)


def check_top_p(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 2: keep the smallest set of most likely tokens whose probability reaches p."""
    rng = _rng(seed)
    cases = [(2.0 * rng.normal(size=(4, 8)), p) for p in (0.05, 0.5, 0.9, 0.999)]
    return compare(2, answer, lambda z, p: filter_logits(z, top_p=p), cases, "top-p filtering")


def _positions_run(prompt_len: int, new_tokens: int, use_cache: bool) -> int:
    """Positions the model computes while ``core.sampling.generate`` decodes."""
    count = [0]

    def next_logits(tokens: np.ndarray, start: int) -> np.ndarray:
        # with a cache only the new tokens are computed; without one, the whole prefix again
        count[0] += tokens.shape[1] if use_cache else start + tokens.shape[1]
        return np.zeros((tokens.shape[0], 5))
    config = GPTConfig(vocab_size=5, block_size=prompt_len + new_tokens, n_layer=1, n_head=1,
                       n_embd=4)
    generate(next_logits, np.zeros(prompt_len, np.int64), new_tokens, config, greedy=True)
    return count[0]


def check_kv_cache_positions(answer: Callable) -> bool:
    """Exercise 3: positions computed to generate n tokens after a prompt of P, with/without cache.

    The check counts them by running the real decoding loop with a model that counts.
    """
    cases = [(p, n, c) for p, n in ((1, 1), (6, 8), (10, 30)) for c in (True, False)]
    return compare(3, answer, _positions_run, cases, "the number of positions computed",
                   atol=0.0, rtol=0.0)


# --------------------------------------------------------------------------------------------

CHECKS: dict[str, tuple[Callable[..., bool], ...]] = {
    "ch02_1_attention_from_equation_to_two_frameworks": (
        check_unscaled_attention, check_fully_masked_row, check_attention_param_count),
    "ch02_1_transformer_pretraining": (
        check_initial_loss, check_entropy_rate, check_gpt_param_count),
    "ch03_1_ppo": (check_clip_loss, check_best_clipped_objective, check_td_error),
    "ch04_2_mdp_bellman_policy_gradient": (
        check_bellman_solve, check_score_function_estimate, check_optimal_baseline),
    "ch05_2_reinforce_torch_vs_tf": (
        check_returns_to_go, check_reinforce_loss, check_reinforce_loss_gradient),
    "ch09_1_finetuning_fast_inference": (check_top_k, check_top_p, check_kv_cache_positions),
}


def exercise_checks(tutorial: str) -> tuple[Callable[..., bool], ...]:
    """``check_exercise_1, check_exercise_2, ...`` of one tutorial (its file name's stem)."""
    return CHECKS[tutorial]
