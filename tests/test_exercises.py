"""Every tutorial exercise's check accepts a right answer and rejects wrong ones."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

from duetrl.core import exercises as ex

ROOT = Path(__file__).parent.parent


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# Right answers, written independently of the reference (as a student would).
def unscaled_attention(q, k, v):
    return softmax(q @ k.T) @ v


def gpt_count(c):
    d = c.n_embd
    return c.vocab_size * d + c.block_size * d + c.n_layer * (12 * d * d + 13 * d) + 2 * d


def entropy_rate(p):
    values, vectors = np.linalg.eig(p.T)
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    pi = pi / pi.sum()
    return -(pi * (p * np.log(p)).sum(axis=1)).sum()


def clip_loss(ratio, a, eps):
    return -np.minimum(ratio * a, np.clip(ratio, 1 - eps, 1 + eps) * a)


def score(theta, r, a, b):
    return (np.eye(len(theta))[a] - softmax(theta)) * (r[a] - b)


def optimal_baseline(theta, r):
    pi = softmax(theta)
    norms = ((np.eye(len(theta)) - pi) ** 2).sum(axis=1)  # |e_a - pi|^2
    return (pi * norms * r).sum() / (pi * norms).sum()


def returns_to_go(r, gamma):
    out, g = np.zeros(len(r)), 0.0
    for t in reversed(range(len(r))):
        g = r[t] + gamma * g
        out[t] = g
    return out


def reinforce_loss(z, a, g):
    logp = np.log(softmax(z))[np.arange(len(a)), a]
    return -(logp * g).mean()


def reinforce_grad(z, a, g):
    return -(np.eye(z.shape[1])[a] - softmax(z)) * g[:, None] / len(a)


def top_k(z, k):
    kth = np.sort(z, axis=-1)[:, -k][:, None]
    return np.where(z < kth, -np.inf, z)


def top_p(z, p, strict=False):
    out = np.full_like(z, -np.inf)
    for row, logits in enumerate(z):
        order = np.argsort(-logits)
        mass = np.cumsum(softmax(logits)[order])
        keep = np.searchsorted(mass, p) + 1 if not strict else max(np.searchsorted(mass, p), 1)
        out[row, order[:keep]] = logits[order[:keep]]
    return out


def positions(p, n, cache):
    return p + n - 1 if cache else sum(p + i for i in range(n))


CASES = {
    ex.check_unscaled_attention: (
        unscaled_attention,
        [lambda q, k, v: softmax(q @ k.T / np.sqrt(q.shape[-1])) @ v,  # still scaled
         lambda q, k, v: softmax(q @ k.T / q.shape[-1]) @ v,
         lambda q, k, v: softmax(q @ k.T)]),  # forgot V
    ex.check_fully_masked_row: (
        lambda n: np.full(n, 1.0 / n),
        [lambda n: np.zeros(n), lambda n: np.eye(n)[0], lambda n: np.full(n, 1.0)]),
    ex.check_attention_param_count: (
        lambda d, h: 4 * (d * d + d),
        [lambda d, h: 4 * d * d, lambda d, h: 4 * (d * d // h + d), lambda d, h: 3 * (d * d + d)]),
    ex.check_initial_loss: (
        lambda v: np.log(v), [lambda v: np.log2(v), lambda v: 1.0 / v, lambda v: 0.0]),
    ex.check_entropy_rate: (
        entropy_rate,
        [lambda p: -(p * np.log(p)).sum(axis=1).mean(),  # uniform instead of stationary
         lambda p: -(p * np.log(p)).sum()]),
    ex.check_gpt_param_count: (
        gpt_count,
        [lambda c: gpt_count(c) + c.vocab_size * c.n_embd,  # an untied head
         lambda c: gpt_count(c) - 2 * c.n_embd,  # no final LayerNorm
         lambda c: gpt_count(c) - c.block_size * c.n_embd]),
    ex.check_clip_loss: (
        clip_loss,
        [lambda r, a, e: -np.clip(r, 1 - e, 1 + e) * a,  # no min
         lambda r, a, e: np.minimum(r * a, np.clip(r, 1 - e, 1 + e) * a),  # sign
         lambda r, a, e: -np.maximum(r * a, np.clip(r, 1 - e, 1 + e) * a)]),
    ex.check_best_clipped_objective: (
        lambda a, eps: a + eps * abs(a),
        [lambda a, eps: (1 + eps) * a, lambda a, eps: a, lambda a, eps: (1 - eps) * a]),
    ex.check_td_error: (
        lambda r, v, nv, term, g: r + g * (1 - term) * nv - v,
        [lambda r, v, nv, term, g: r + g * nv - v,  # bootstraps through terminations
         lambda r, v, nv, term, g: r + g * (1 - term) * v - nv,
         lambda r, v, nv, term, g: r + (1 - term) * nv - v]),
    ex.check_bellman_solve: (
        lambda p, r, g: np.linalg.solve(np.eye(len(r)) - g * p, r),
        [lambda p, r, g: r / (1 - g + 1e-12), lambda p, r, g: r + g * p @ r,
         lambda p, r, g: np.linalg.solve(np.eye(len(r)) + g * p, r)]),
    ex.check_score_function_estimate: (
        score,
        [lambda th, r, a, b: np.eye(len(th))[a] * (r[a] - b),  # forgot -pi
         lambda th, r, a, b: (np.eye(len(th))[a] - softmax(th)) * r[a] - b,
         lambda th, r, a, b: (np.eye(len(th))[a] - softmax(th)) * (r[a] - b) * softmax(th)[a],
         lambda th, r, a, b: (np.eye(len(th))[a] - softmax(th)) * r[a]]),  # ignores b: unbiased
    ex.check_optimal_baseline: (
        optimal_baseline,
        [lambda th, r: softmax(th) @ r,  # V: good, but not the minimum
         lambda th, r: 0.0, lambda th, r: r.mean()]),
    ex.check_returns_to_go: (
        returns_to_go,
        [lambda r, g: np.cumsum(r * g ** np.arange(len(r))),  # forward
         lambda r, g: np.cumsum(r[::-1])[::-1],  # no discount
         lambda r, g: returns_to_go(r, g) - r]),
    ex.check_reinforce_loss: (
        reinforce_loss,
        [lambda z, a, g: -reinforce_loss(z, a, g), lambda z, a, g: len(a) * reinforce_loss(z, a, g),
         lambda z, a, g: -(np.log(softmax(z))[np.arange(len(a)), a]).mean() * g.mean()]),
    ex.check_reinforce_loss_gradient: (
        reinforce_grad,
        [lambda z, a, g: reinforce_grad(z, a, g) * len(a),
         lambda z, a, g: -reinforce_grad(z, a, g),
         lambda z, a, g: -np.eye(z.shape[1])[a] * g[:, None] / len(a)]),
    ex.check_top_k: (
        top_k,
        [lambda z, k: top_k(z, max(k - 1, 1)), lambda z, k: np.where(z <= np.sort(z)[:, -k][:, None],
                                                                      -np.inf, z), lambda z, k: z]),
    ex.check_top_p: (
        top_p,
        [lambda z, p: top_p(z, p, strict=True),  # drops the token that crosses p
         lambda z, p: top_k(z, 1), lambda z, p: z]),
    ex.check_kv_cache_positions: (
        positions,
        [lambda p, n, c: p + n if c else positions(p, n, c),
         lambda p, n, c: positions(p, n, c) if c else (p + n) * n,
         lambda p, n, c: positions(p, n, not c)]),
}


def test_every_check_has_cases() -> None:
    checks = {check for group in ex.CHECKS.values() for check in group}
    assert checks == set(CASES)


@pytest.mark.parametrize("check", list(CASES), ids=lambda c: c.__name__)
def test_right_answer_passes_and_wrong_answers_fail(check, capsys) -> None:
    right, wrongs = CASES[check]
    assert check(right) is True
    assert "✓" in capsys.readouterr().out
    for wrong in wrongs:
        assert check(wrong) is False
        out = capsys.readouterr().out
        assert "✗" in out and "expected" in out


@pytest.mark.parametrize("check", [c for c in CASES if "seed" in c.__code__.co_varnames],
                         ids=lambda c: c.__name__)
def test_right_answer_passes_on_fresh_inputs(check) -> None:
    for seed in range(5):
        assert check(CASES[check][0], seed=seed) is True


def test_a_crashing_answer_is_a_failure_not_an_exception() -> None:
    def broken(*args):
        raise ZeroDivisionError("oops")
    for group in ex.CHECKS.values():
        for check in group:
            assert check(broken) is False


def test_every_listed_tutorial_exists_and_ends_with_its_checks() -> None:
    for name, checks in ex.CHECKS.items():
        source = (ROOT / "tutorials" / f"{name}.py").read_text()
        assert "## Exercises" in source, name
        tail = source[source.rindex("## Exercises"):]
        for number in range(1, len(checks) + 1):
            assert f"check_exercise_{number}(" in tail, (name, number)
        ast.parse(source)


def test_exercises_import_no_framework() -> None:
    import subprocess

    code = ("import sys; import duetrl.core.exercises; "
            "print(any(m in sys.modules for m in ('torch', 'tensorflow', 'keras')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
