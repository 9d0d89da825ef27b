"""The checks behind the two ch03_1 tutorials on RL for language models.

``ch03_1_rl_for_language_models``: a random answer's reward, the k3 KL estimator (torch or tf),
RLOO's advantages, and log Z of the exact optimum. ``ch03_1_reward_model_and_overoptimisation``:
the Bradley-Terry margin of a preference probability, the Bradley-Terry loss (torch or tf) and
the reward model's calibration. Every check compares with the float64 oracle
(:mod:`duetrl.core.reference.rlhf_advantages`, :mod:`duetrl.core.reference.rlhf`) or with a
brute-force count or enumeration it makes itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from duetrl.core.exercises import FRAMEWORK_TOLERANCE, compare
from duetrl.core.reference import rlhf as rlhf_oracle
from duetrl.core.reference import rlhf_advantages as oracle
from duetrl.core.rlhf.optimum import brute_force_optimum

# ---- ch03_1_rl_for_language_models ------------------------------------------------------------


def check_random_answer_reward(answer: Callable[[int], float]) -> bool:
    """Exercise 1: P(b >= a) for two digits drawn uniformly from an alphabet of V symbols.

    The reference counts the pairs one by one.
    """

    def count(symbols: int) -> float:
        return sum(b >= a for a in range(symbols) for b in range(symbols)) / symbols**2

    return compare(
        1,
        lambda v: float(answer(v)),
        count,
        [(1,), (2,), (3,), (10,), (26,)],
        "the expected pair reward of a random answer",
    )


def check_kl_k3(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 2: k3 = e^l - 1 - l per token, l = ref_logp - logp; a torch or tf answer.

    Log-ratios from -4 to 4 and a token where both are equal (k3 = 0 there, and never < 0).
    """
    rng = np.random.default_rng(seed)
    cases = []
    for shape in ((5,), (3, 7), (2, 4, 6)):
        logp = np.log(rng.uniform(0.01, 1.0, size=shape))
        ref = logp + rng.uniform(-4.0, 4.0, size=shape)
        ref.flat[0] = logp.flat[0]  # the same probability: no divergence at that token
        cases.append((logp, ref))
    return compare(2, answer, oracle.kl_k3, cases, "k3", FRAMEWORK_TOLERANCE, FRAMEWORK_TOLERANCE)


def check_rloo_advantages(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 3: A_i = r_i - mean of the other k - 1 rewards of the group, prompt-major."""
    rng = np.random.default_rng(seed)
    cases = [
        (np.array([1.0, 0.0, 0.0, 1.0]), 4),
        (np.array([1.0, 0, 0, 1, 1, 0, 0, 0]), 8),
        (np.array([0.3, 0.3, 0.3]), 3),
        (np.array([0.2, 0.9]), 2),
    ]
    cases += [(rng.random(p * k), k) for p, k in ((3, 4), (2, 6))]
    return compare(3, answer, oracle.rloo_advantages, cases, "the RLOO advantages")


def check_log_partition(answer: Callable[[float, int], float]) -> bool:
    """Exercise 4: log Z = log E_ref[exp(r(y) / beta)] of sort-digits with a uniform reference
    over 10 digits, answers of ``length`` digits. The reference enumerates all 10^length
    answers (``brute_force_optimum``); no Markov structure is used."""
    cases = [(beta, length) for beta, length in ((0.1, 2), (0.1, 4), (1.0, 3), (0.03, 4))]
    return compare(
        4,
        lambda beta, length: float(answer(beta, length)),
        lambda beta, length: brute_force_optimum(beta, length)["log_z"],
        cases,
        "log Z",
        atol=1e-8,
        rtol=1e-10,
    )


RL_FOR_LANGUAGE_MODELS = (
    check_random_answer_reward,
    check_kl_k3,
    check_rloo_advantages,
    check_log_partition,
)
"""Tutorial ch03_1_rl_for_language_models: ``check_exercise_1`` ... ``check_exercise_4``."""

# ---- ch03_1_reward_model_and_overoptimisation -------------------------------------------------


def check_preference_margin(answer: Callable[[float], float]) -> bool:
    """Exercise 1: the score difference m with P(y_w preferred) = sigmoid(m) = p.

    Checked through the oracle's loss: a pair of margin m costs -log sigmoid(m), which must be
    -log p.
    """

    def loss_of_margin(p: float) -> float:
        return rlhf_oracle.bradley_terry_loss(np.array([float(answer(p))]), np.zeros(1))[0]

    return compare(
        1,
        loss_of_margin,
        lambda p: -np.log(p),
        [(0.5,), (0.75,), (0.9,), (0.2,), (0.999,)],
        "-log sigmoid(your margin)",
        atol=1e-9,
        rtol=1e-9,
    )


def check_bradley_terry_loss(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 2: L = -1/B sum_b log sigmoid(r_w - r_l), a scalar; a torch or tf answer.

    One batch has a pair ranked wrong by 120: sigmoid(-120) underflows float32 to 0, and
    log(0) = -inf, unless the loss is computed as a softplus.
    """
    rng = np.random.default_rng(seed)
    cases = [(rng.normal(size=b), rng.normal(size=b)) for b in (1, 4, 16)]
    cases.append((np.array([0.5, -60.0, 3.0]), np.array([0.0, 60.0, -1.0])))  # margin -120
    return compare(
        2,
        lambda w, rej: answer(w, rej),
        lambda w, rej: rlhf_oracle.bradley_terry_loss(w, rej)[0],
        cases,
        "the Bradley-Terry loss",
        FRAMEWORK_TOLERANCE,
        FRAMEWORK_TOLERANCE,
    )


def check_calibration(answer: Callable, seed: int | None = None) -> bool:
    """Exercise 3: r_learned = mu_true + sigma_true (r_phi - mu_phi) / sigma_phi, where
    (mu_phi, sigma_phi) are the mean and std of the raw scores on fresh reference samples and
    (mu_true, sigma_true) those of the true rewards of the same samples; the answer takes
    ``(raw, raw_reference, true_reference)`` and returns the calibrated ``raw``.

    The reference is ``RewardModel.scores``' map with ``calibrate``'s statistics (std without
    Bessel's correction, NumPy's default).
    """
    rng = np.random.default_rng(seed)
    cases = [
        (rng.normal(size=6), rng.normal(2.0, 3.0, size=n), rng.random(n)) for n in (10, 200, 2048)
    ]

    def reference(raw, raw_ref, true_ref):
        mu_phi, sigma_phi, mu_true, sigma_true = (
            raw_ref.mean(),
            raw_ref.std(),
            true_ref.mean(),
            true_ref.std(),
        )
        return mu_true + sigma_true * (raw - mu_phi) / sigma_phi

    return compare(3, answer, reference, cases, "the calibrated rewards")


REWARD_MODEL = (check_preference_margin, check_bradley_terry_loss, check_calibration)
"""Tutorial ch03_1_reward_model_and_overoptimisation: ``check_exercise_1`` ... ``_3``."""
