"""The exact optimum of the KL-regularised objective on ``sort-digits`` (outline 3.1.5).

The objective RL for language models maximises is

    J(pi) = E_{y ~ pi}[r(y)] - beta KL(pi || pi_ref),

and its maximiser is (complete the square in log pi; Z normalises)

    pi*(y) = pi_ref(y) exp(r(y) / beta) / Z,     Z = E_{y ~ pi_ref}[exp(r(y) / beta)],

with  E_pi*[r] = d log Z / d(1/beta)  and  KL(pi* || pi_ref) = E_pi*[r] / beta - log Z,
so J(pi*) = beta log Z.

On ``sort-digits`` the answer y = (x_0, ..., x_{L-1}) has L digits and the reward is a sum
over adjacent pairs, r(y) = (1 / (L-1)) sum_i s(x_i, x_{i+1}) with s(a, b) = [b >= a]. With
a uniform reference pi_ref(y) = 10^-L, pi* factorises over the pairs:

    pi*(y) = 10^-L prod_{i=0}^{L-2} M[x_i, x_{i+1}] / Z,    M[a, b] = exp(s(a, b) / (beta (L-1)))

a Markov chain whose 10x10 *transfer matrix* is M. Everything follows from matrix powers:

    Z         = 10^-L 1^T M^{L-1} 1
    E[s_i]    = 1^T M^i (M o S) M^{L-2-i} 1 / 1^T M^{L-1} 1      (o: elementwise, S[a,b] = s(a,b))
    E[r]      = (1 / (L-1)) sum_i E[s_i]
    pi*(x_0 = a) = (M^{L-1} 1)[a] / 1^T M^{L-1} 1
    pi*(x_{i+1} = b | x_i = a) = M[a, b] (M^{L-2-i} 1)[b] / (M^{L-1-i} 1)[a]

To stay finite for any beta > 0, M is computed as e^{theta} M~ with theta = 1 / (beta (L-1))
and M~ = exp(theta (S - 1)) in (0, 1]; log Z collects the (L-1) theta.
Limits: beta -> infinity gives pi* = pi_ref (E[r] = 0.55, KL = 0); beta -> 0 gives the uniform
distribution over the C(L+9, L) non-decreasing answers (E[r] = 1, KL = log(10^L / C(L+9, L))).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

NUM_DIGITS = 10


def pair_matrix(num_symbols: int = NUM_DIGITS) -> np.ndarray:
    """S[a, b] = [b >= a], the pair reward of ``sort-digits`` (``(V, V)`` float64)."""
    a = np.arange(num_symbols)
    return (a[None, :] >= a[:, None]).astype(np.float64)


@dataclass(frozen=True)
class Optimum:
    """The exact optimum pi* of E[r] - beta KL(pi || uniform) on sort-digits.

    beta: the KL coefficient.
    length: L, digits in the answer.
    mean_reward: E_pi*[r].
    kl: KL(pi* || pi_ref) of whole answers, in nats.
    log_z: log Z = log E_ref[exp(r / beta)].
    initial: ``(V,)`` pi*(x_0).
    transitions: ``(L-1, V, V)`` pi*(x_{i+1} = b | x_i = a) at step i (the chain is not
        stationary: a digit near the end has fewer pairs left to earn).
    """

    beta: float
    length: int
    mean_reward: float
    kl: float
    log_z: float
    initial: np.ndarray
    transitions: np.ndarray

    @property
    def objective(self) -> float:
        """J(pi*) = E[r] - beta KL = beta log Z."""
        return self.mean_reward - self.beta * self.kl

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, L)`` answers drawn from pi* (ancestral sampling along the chain)."""
        out = np.empty((n, self.length), dtype=np.int64)
        out[:, 0] = _draw(self.initial[None, :].repeat(n, 0), rng)
        for i in range(self.length - 1):
            out[:, i + 1] = _draw(self.transitions[i][out[:, i]], rng)
        return out


def _draw(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of ``probs`` ``(n, V)``, by inverting the cumulative sum."""
    u = rng.uniform(size=(len(probs), 1))
    return np.minimum((np.cumsum(probs, axis=1) < u).sum(axis=1), probs.shape[1] - 1)


def sort_digits_optimum(
    beta: float, length: int = 8, num_symbols: int = NUM_DIGITS
) -> Optimum:
    """E_pi*[r], KL(pi* || pi_ref) and the chain of pi*, exactly, from the transfer matrix.

    :param beta: KL coefficient, > 0.
    :param length: L >= 2 digits per answer (sort-digits: 8).
    :param num_symbols: V, size of the alphabet the uniform reference spreads over (10).
    :raises ValueError: for beta <= 0 or length < 2.
    """
    if not beta > 0 or not math.isfinite(beta):
        raise ValueError(
            f"beta: expected a positive finite float, got {beta!r} (use "
            f"optimum_limits() for beta -> 0 or beta -> infinity)"
        )
    if int(length) < 2:
        raise ValueError(f"length: expected at least 2 digits (one pair), got {length!r}")
    pairs = length - 1
    theta = 1.0 / (beta * pairs)  # each sorted pair adds theta to log pi*
    S = pair_matrix(num_symbols)
    M = np.exp(theta * (S - 1.0))  # M = e^{theta} M~, entries in (0, 1]
    ones = np.ones(num_symbols)
    # backward messages: back[k] = M~^k 1, k = 0..L-1
    back = [ones]
    for _ in range(pairs):
        back.append(M @ back[-1])
    # forward messages: fwd[k] = 1^T M~^k
    fwd = [ones]
    for _ in range(pairs):
        fwd.append(fwd[-1] @ M)
    total = float(ones @ back[pairs])  # 1^T M~^{L-1} 1
    # E[s_i] = 1^T M^i (M o S) M^{L-2-i} 1 / 1^T M^{L-1} 1  (the e^theta factors cancel)
    pair_means = [float(fwd[i] @ (M * S) @ back[pairs - 1 - i]) / total for i in range(pairs)]
    mean_reward = float(np.mean(pair_means))
    log_z = pairs * theta + math.log(total) - length * math.log(num_symbols)
    kl = mean_reward / beta - log_z
    initial = back[pairs] / total
    transitions = np.stack(
        [M * back[pairs - 1 - i][None, :] / back[pairs - i][:, None] for i in range(pairs)]
    )
    return Optimum(beta, length, mean_reward, max(kl, 0.0), log_z, initial, transitions)


def optimum_limits(length: int = 8, num_symbols: int = NUM_DIGITS) -> dict[str, dict[str, float]]:
    """E[r] and KL at the two ends of beta.

    beta -> infinity: pi* = pi_ref, E[r] = P(b >= a) = (V + 1) / (2 V) (0.55), KL = 0.
    beta -> 0: pi* is uniform over the C(L + V - 1, L) non-decreasing answers, E[r] = 1 and
    KL = log(V^L / C(L + V - 1, L)).
    """
    sorted_count = math.comb(length + num_symbols - 1, length)
    return {
        "beta_to_infinity": {"mean_reward": (num_symbols + 1) / (2 * num_symbols), "kl": 0.0},
        "beta_to_zero": {
            "mean_reward": 1.0,
            "kl": length * math.log(num_symbols) - math.log(sorted_count),
        },
    }


def brute_force_optimum(
    beta: float,
    length: int = 4,
    num_symbols: int = NUM_DIGITS,
    reward: Callable[[tuple[int, ...]], float] | None = None,
) -> dict[str, float]:
    """E_pi*[r] and KL(pi* || pi_ref) by enumerating all V^L answers (the test's oracle).

    pi*(y) = pi_ref(y) exp(r(y)/beta) / Z with pi_ref uniform; no Markov structure used.
    :param reward: r(y) for a tuple of digits (default: the fraction of sorted pairs).
    """
    if reward is None:
        reward = lambda y: sum(b >= a for a, b in zip(y, y[1:])) / (len(y) - 1)  # noqa: E731
    rewards = np.array(
        [reward(y) for y in itertools.product(range(num_symbols), repeat=length)]
    )
    logits = rewards / beta
    shift = logits.max()
    weights = np.exp(logits - shift)  # pi* up to the constant
    pi = weights / weights.sum()
    log_z = shift + math.log(weights.mean())  # log E_ref[exp(r / beta)]
    mean_reward = float(pi @ rewards)
    log_ratio = logits - log_z  # log pi*(y) / pi_ref(y)
    return {"mean_reward": mean_reward, "kl": float(pi @ log_ratio), "log_z": log_z}
