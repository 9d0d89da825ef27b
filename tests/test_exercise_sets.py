"""The checks of ``duetrl.core.exercise_sets`` accept a right answer and reject wrong ones.

A right answer is written independently of the reference, as a student would, and where the
exercise invites PyTorch or TensorFlow the right answer is checked in both frameworks: the
checker reads a tensor back and compares at the float32 tolerance. Each wrong answer is a
mistake a student makes (a one-character slip, an ignored argument, a float32 overflow).
"""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.backend import load_backends
from duetrl.core.exercise_sets import bandits, bellman

load_backends(["torch", "tf"])  # torch before tensorflow, as everywhere in duetrl (conftest
import tensorflow as tf  # noqa: E402  has set TF_ENABLE_ONEDNN_OPTS=0 before this)
import torch  # noqa: E402


def np_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def bernoulli_kl(p, q):
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def lai_robbins(means):
    best = means.max()
    worse = means[means < best]
    return float(np.sum((best - worse) / bernoulli_kl(worse, best)))


def eps_greedy(q, eps):
    k = q.shape[1]
    return eps / k + (1 - eps) * (q == q.max(axis=1, keepdims=True))


def backup(p, r, v, gamma):
    return np.max(r + gamma * np.einsum("sat,t->sa", p, v), axis=1)


def sarsa_backup(p, r, q, gamma, eps):
    v = (1 - eps) * q.max(axis=1) + eps * q.mean(axis=1)
    return r + gamma * np.einsum("sat,t->sa", p, v)


def dqn_targets(r, d, term, q_online, q_target, double):
    best = np.argmax(q_online if double else q_target, axis=1)
    return r + d * (1 - term) * q_target[np.arange(len(r)), best]


def dqn_targets_torch(r, d, term, q_online, q_target, double):
    q_online, q_target = torch.as_tensor(q_online).float(), torch.as_tensor(q_target).float()
    best = (q_online if double else q_target).argmax(1, keepdim=True)
    not_done = 1 - torch.as_tensor(term).float()
    return torch.as_tensor(r).float() + torch.as_tensor(d).float() * not_done * q_target.gather(
        1, best)[:, 0]


def dqn_targets_tf(r, d, term, q_online, q_target, double):
    q_target = tf.constant(q_target, tf.float32)
    best = tf.argmax(tf.constant(q_online, tf.float32) if double else q_target, axis=1)
    return (tf.constant(r, tf.float32) + tf.constant(d, tf.float32)
            * (1 - tf.cast(term, tf.float32)) * tf.gather(q_target, best, batch_dims=1))


CASES = {
    bandits.check_eps_greedy_probabilities: (
        [eps_greedy],
        [lambda q, eps: (1 - eps) * (q == q.max(axis=1, keepdims=True)),  # no exploration mass
         lambda q, eps: eps / (q.shape[1] - 1) + (1 - eps) * (q == q.max(axis=1, keepdims=True)),
         lambda q, eps: eps / q.shape[1] + (1 - eps) * (q == q.min(axis=1, keepdims=True)),
         lambda q, eps: 0.1 / q.shape[1] + 0.9 * (q == q.max(axis=1, keepdims=True))]),  # eps
    bandits.check_lai_robbins_constant: (
        [lai_robbins],
        [lambda m: lai_robbins(m) * np.log(2),  # KL in bits
         lambda m: float(np.sum((m.max() - m[m < m.max()]) / bernoulli_kl(m.max(), m[m < m.max()]))),
         lambda m: float(np.sum(1 / bernoulli_kl(m[m < m.max()], m.max())))]),  # no Delta_a
    bandits.check_softmax_policy: (
        [lambda q, tau: torch.softmax(torch.as_tensor(q, dtype=torch.float32) / tau, -1),
         lambda q, tau: tf.nn.softmax(tf.constant(q, tf.float32) / tau, -1),
         lambda q, tau: np_softmax(q / tau)],
        [lambda q, tau: torch.exp(torch.as_tensor(q, dtype=torch.float32) / tau)
         / torch.exp(torch.as_tensor(q, dtype=torch.float32) / tau).sum(-1, keepdim=True),
         lambda q, tau: tf.nn.softmax(tf.constant(q, tf.float32) * tau, -1),  # tau multiplies
         lambda q, tau: tf.nn.softmax(tf.constant(q, tf.float32) / tau, 0),  # wrong axis
         lambda q, tau: np_softmax(q)]),  # tau ignored
    bellman.check_bellman_optimality_backup: (
        [backup],
        [lambda p, r, v, g: np.mean(r + g * np.einsum("sat,t->sa", p, v), axis=1),  # mean over a
         lambda p, r, v, g: np.max(r + np.einsum("sat,t->sa", p, v), axis=1),  # gamma ignored
         lambda p, r, v, g: np.max(r + g * np.einsum("sat,t->sa", p, v), axis=0),  # wrong axis
         lambda p, r, v, g: np.max(r + g * np.einsum("sat,s->sa", p, v), axis=1)]),  # V(s)
    bellman.check_expected_sarsa_backup: (
        [sarsa_backup],
        [lambda p, r, q, g, eps: sarsa_backup(p, r, q, g, 1 - eps),  # weights swapped
         lambda p, r, q, g, eps: sarsa_backup(p, r, q, g, 0.0),  # Q-learning's backup
         lambda p, r, q, g, eps: r + g * np.einsum("sat,t->sa", p, (1 - eps) * q.max(1)
                                                   + eps * q.mean(0).mean())]),
    bellman.check_dqn_targets: (
        [dqn_targets_torch, dqn_targets_tf, dqn_targets],
        [lambda r, d, term, qo, qt, double: r + d * qt.max(axis=1),  # through terminations
         lambda r, d, term, qo, qt, double: dqn_targets(r, d, term, qo, qt, False),  # no double
         lambda r, d, term, qo, qt, double: dqn_targets(r, d, term, qo, qt, True),  # always
         lambda r, d, term, qo, qt, double: r + d * (1 - term) * np.max(
             qo if double else qt, axis=1),  # rates a* with the online network
         lambda r, d, term, qo, qt, double: r + 0.9 * (1 - term) * qt.max(axis=1)]),  # gamma^n
}


def test_every_check_has_cases() -> None:
    checks = set(bandits.CHECKS) | set(bellman.CHECKS)
    assert checks <= set(CASES)


@pytest.mark.parametrize("check", list(CASES), ids=lambda c: c.__name__)
def test_right_answers_pass_and_wrong_answers_fail(check, capsys) -> None:
    rights, wrongs = CASES[check]
    for right in rights:
        assert check(right) is True
        assert "✓" in capsys.readouterr().out
    for wrong in wrongs:
        assert check(wrong) is False, wrong
        out = capsys.readouterr().out
        assert "✗" in out and "expected" in out


@pytest.mark.parametrize("check", list(CASES), ids=lambda c: c.__name__)
def test_right_answer_passes_on_fresh_inputs(check) -> None:
    if "seed" not in check.__code__.co_varnames:
        pytest.skip("the check's inputs are fixed")
    for seed in range(3):
        assert check(CASES[check][0][0], seed=seed) is True


@pytest.mark.parametrize("check", list(CASES), ids=lambda c: c.__name__)
def test_a_crashing_answer_is_a_failure_not_an_exception(check) -> None:
    def broken(*args):
        raise ZeroDivisionError("oops")
    assert check(broken) is False
