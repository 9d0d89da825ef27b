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
from duetrl.core.exercise_sets import bandits, bellman, rlhf, scale

# torch before tensorflow, as everywhere in duetrl (conftest set TF_ENABLE_ONEDNN_OPTS=0)
load_backends(["torch", "tf"])
import keras  # noqa: E402, I001
import tensorflow as tf  # noqa: E402
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
    return (
        torch.as_tensor(r).float()
        + torch.as_tensor(d).float() * not_done * q_target.gather(1, best)[:, 0]
    )


def dqn_targets_tf(r, d, term, q_online, q_target, double):
    q_target = tf.constant(q_target, tf.float32)
    best = tf.argmax(tf.constant(q_online, tf.float32) if double else q_target, axis=1)
    return tf.constant(r, tf.float32) + tf.constant(d, tf.float32) * (
        1 - tf.cast(term, tf.float32)
    ) * tf.gather(q_target, best, batch_dims=1)


def rloo(r, k):
    g = r.reshape(-1, k)
    return np.concatenate([[x - (row.sum() - x) / (k - 1) for x in row] for row in g])


def log_z(beta, length):
    m = np.exp((np.arange(10)[None, :] >= np.arange(10)[:, None]) / ((length - 1) * beta))
    return np.log(np.ones(10) @ np.linalg.matrix_power(m, length - 1) @ np.ones(10) / 10**length)


def calibrate(raw, raw_ref, true_ref):
    return true_ref.mean() + true_ref.std() * (raw - raw_ref.mean()) / raw_ref.std()


def dense_torch(w, b, x, transpose=True):
    layer = torch.nn.Linear(*w.shape)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(w.T if transpose else w.reshape(w.shape[::-1])))
        layer.bias.copy_(torch.as_tensor(b))
    return layer(torch.as_tensor(x, dtype=torch.float32))


def dense_keras(w, b, x):
    layer = keras.layers.Dense(w.shape[1])
    layer.build((None, w.shape[0]))
    layer.set_weights([w, b])
    return layer(x.astype("float32"))


def last_mean(r, window=100):
    return [np.mean(r[max(0, i - window + 1) : i + 1]) for i in range(len(r))]


CASES = {
    bandits.check_eps_greedy_probabilities: (
        [eps_greedy],
        [
            lambda q, eps: (1 - eps) * (q == q.max(axis=1, keepdims=True)),  # no exploration mass
            lambda q, eps: eps / (q.shape[1] - 1) + (1 - eps) * (q == q.max(axis=1, keepdims=True)),
            lambda q, eps: eps / q.shape[1] + (1 - eps) * (q == q.min(axis=1, keepdims=True)),
            lambda q, eps: 0.1 / q.shape[1] + 0.9 * (q == q.max(axis=1, keepdims=True)),
        ],
    ),  # eps
    bandits.check_lai_robbins_constant: (
        [lai_robbins],
        [
            lambda m: lai_robbins(m) * np.log(2),  # KL in bits
            lambda m: float(
                np.sum((m.max() - m[m < m.max()]) / bernoulli_kl(m.max(), m[m < m.max()]))
            ),
            lambda m: float(np.sum(1 / bernoulli_kl(m[m < m.max()], m.max()))),
        ],
    ),  # no Delta_a
    bandits.check_softmax_policy: (
        [
            lambda q, tau: torch.softmax(torch.as_tensor(q, dtype=torch.float32) / tau, -1),
            lambda q, tau: tf.nn.softmax(tf.constant(q, tf.float32) / tau, -1),
            lambda q, tau: np_softmax(q / tau),
        ],
        [
            lambda q, tau: (
                torch.exp(torch.as_tensor(q, dtype=torch.float32) / tau)
                / torch.exp(torch.as_tensor(q, dtype=torch.float32) / tau).sum(-1, keepdim=True)
            ),
            lambda q, tau: tf.nn.softmax(tf.constant(q, tf.float32) * tau, -1),  # tau multiplies
            lambda q, tau: tf.nn.softmax(tf.constant(q, tf.float32) / tau, 0),  # wrong axis
            lambda q, tau: np_softmax(q),
        ],
    ),  # tau ignored
    bellman.check_bellman_optimality_backup: (
        [backup],
        [
            lambda p, r, v, g: np.mean(r + g * np.einsum("sat,t->sa", p, v), axis=1),  # mean over a
            lambda p, r, v, g: np.max(r + np.einsum("sat,t->sa", p, v), axis=1),  # gamma ignored
            lambda p, r, v, g: np.max(r + g * np.einsum("sat,t->sa", p, v), axis=0),  # wrong axis
            lambda p, r, v, g: np.max(r + g * np.einsum("sat,s->sa", p, v), axis=1),
        ],
    ),  # V(s)
    bellman.check_expected_sarsa_backup: (
        [sarsa_backup],
        [
            lambda p, r, q, g, eps: sarsa_backup(p, r, q, g, 1 - eps),  # weights swapped
            lambda p, r, q, g, eps: sarsa_backup(p, r, q, g, 0.0),  # Q-learning's backup
            lambda p, r, q, g, eps: (
                r + g * np.einsum("sat,t->sa", p, (1 - eps) * q.max(1) + eps * q.mean(0).mean())
            ),
        ],
    ),
    bellman.check_dqn_targets: (
        [dqn_targets_torch, dqn_targets_tf, dqn_targets],
        [
            lambda r, d, term, qo, qt, double: r + d * qt.max(axis=1),  # through terminations
            lambda r, d, term, qo, qt, double: dqn_targets(r, d, term, qo, qt, False),  # no double
            lambda r, d, term, qo, qt, double: dqn_targets(r, d, term, qo, qt, True),  # always
            lambda r, d, term, qo, qt, double: (
                r + d * (1 - term) * np.max(qo if double else qt, axis=1)
            ),  # rates a* with the online network
            lambda r, d, term, qo, qt, double: r + 0.9 * (1 - term) * qt.max(axis=1),
        ],
    ),  # gamma^n
    rlhf.check_random_answer_reward: (
        [lambda v: (v + 1) / (2 * v)],
        [lambda v: (v - 1) / (2 * v), lambda v: 0.5, lambda v: 0.55],
    ),  # b > a; ties; V = 10 only
    rlhf.check_kl_k3: (
        [
            lambda lp, ref: torch.expm1(torch.as_tensor(ref - lp)) - torch.as_tensor(ref - lp),
            lambda lp, ref: (
                tf.exp(tf.constant(ref - lp, tf.float32)) - 1 - tf.constant(ref - lp, tf.float32)
            ),
            lambda lp, ref: np.exp(ref - lp) - 1 - (ref - lp),
        ],
        [
            lambda lp, ref: torch.as_tensor(lp - ref),  # k1
            lambda lp, ref: 0.5 * tf.constant(ref - lp, tf.float32) ** 2,  # k2
            lambda lp, ref: np.exp(lp - ref) - 1 - (lp - ref),  # l with the wrong sign
            lambda lp, ref: (np.exp(ref - lp) - 1 - (ref - lp)).sum(),
        ],
    ),  # summed, not per token
    rlhf.check_rloo_advantages: (
        [rloo],
        [
            lambda r, k: (r.reshape(-1, k) - r.reshape(-1, k).mean(1, keepdims=True)).reshape(-1),
            lambda r, k: r - r.mean(),  # one group for all prompts
            lambda r, k: rloo(r, k) * (k - 1) / k,
        ],
    ),
    rlhf.check_log_partition: (
        [log_z],
        [
            lambda b, n: log_z(b, n) + n * np.log(10),  # Z not divided by 10^L
            lambda b, n: log_z(b, n + 1),
            lambda b, n: np.log(
                np.exp((np.arange(10)[None, :] >= np.arange(10)[:, None]) / b).sum() / 100
            ),
        ],
    ),  # one pair, whatever the length
    rlhf.check_preference_margin: (
        [lambda p: np.log(p) - np.log1p(-p)],
        [lambda p: p - 0.5, lambda p: np.log(p), lambda p: -np.log(p / (1 - p))],
    ),
    rlhf.check_bradley_terry_loss: (
        [
            lambda w, r: torch.nn.functional.softplus(torch.as_tensor(r - w)).mean(),
            lambda w, r: -tf.reduce_mean(tf.math.log_sigmoid(tf.constant(w - r, tf.float32))),
            lambda w, r: np.logaddexp(0, r - w).mean(),
        ],
        [
            lambda w, r: (
                -torch.log(torch.sigmoid(torch.as_tensor(w - r, dtype=torch.float32))).mean()
            ),  # underflows at -120
            lambda w, r: tf.reduce_mean(tf.math.softplus(tf.constant(w - r, tf.float32))),  # sign
            lambda w, r: np.logaddexp(0, r - w).sum(),  # a sum, not a mean
            lambda w, r: np.logaddexp(0, r - w),
        ],
    ),  # per pair
    rlhf.check_calibration: (
        [calibrate],
        [
            lambda raw, rr, tr: (
                tr.mean()
                + tr.std(ddof=1)
                * (raw - rr.mean())
                / rr.std(ddof=1)
                * (rr.std(ddof=1) / rr.std()) ** 2
            ),  # Bessel on one side only
            lambda raw, rr, tr: tr.mean() + (raw - rr.mean()) / rr.std(),  # sigma_true forgotten
            lambda raw, rr, tr: (raw - rr.mean()) / rr.std(),  # standardised only
            lambda raw, rr, tr: tr.mean() + tr.std() * (raw - rr.mean()) / tr.std(),
        ],
    ),
    scale.check_value_loss_coefficient: (
        [lambda c: 0.5 * c],
        [lambda c: c, lambda c: 2 * c, lambda c: 0.25],
    ),  # 0.25: right for c_V = 0.5 only
    scale.check_dense_from_canonical: (
        [dense_torch, dense_keras, lambda w, b, x: x @ w + b],
        [
            lambda w, b, x: dense_torch(w, b, x, transpose=False),
            lambda w, b, x: x @ w,  # the bias forgotten
            lambda w, b, x: (
                x @ w.T[: w.shape[0], : w.shape[1]] + b if w.shape[0] == w.shape[1] else x @ w + b
            ),
        ],
    ),  # transposed where the shapes allow it
    scale.check_last_100_mean: (
        [last_mean],
        [
            lambda r: last_mean(r, 99),
            lambda r: last_mean(r, 101),
            lambda r: list(np.cumsum(r) / np.arange(1, len(r) + 1)),  # every episode
            lambda r: [np.mean(r[max(0, i - 100) : i]) if i else 0.0 for i in range(len(r))],
        ],
    ),
}


def test_every_check_has_cases() -> None:
    checks = (
        set(bandits.CHECKS)
        | set(bellman.CHECKS)
        | set(rlhf.RL_FOR_LANGUAGE_MODELS)
        | set(rlhf.REWARD_MODEL)
        | set(scale.CHECKS)
    )
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
