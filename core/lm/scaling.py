"""Choosing a model by measurement (outline 9.1.1): a corpus whose best possible loss is known,
a scaling-law fit, and the parameter counts the fit is made against. Float64 NumPy only.

A stationary order-k Markov source over V symbols emits x_t with probability
P(x_t | c_t), c_t = (x_{t-k}, ..., x_{t-1}) its context. Its entropy rate

    H = -sum_c mu_c sum_j P_cj log P_cj                  (nats per token)

(mu the stationary distribution of the contexts) is the lowest expected next-token loss any
model can reach, whatever its size: the floor of a scaling law. The loss of models of N
(non-embedding) parameters trained on the same tokens is then fitted by

    L(N) = E + a N^(-alpha)                              (least squares)

and the fitted E compared with the exact H.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property
from math import prod

import numpy as np

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import param_shapes

MAX_CONTEXTS = 1 << 10  # V^k: the dense (V^k, V^k) context chain and its solve stay small
MAX_MASKED_WINDOW = 1 << 22  # V^(2k+1) joint probabilities for the masked-token entropy


def _entropy(p: np.ndarray, axis: int | None = None) -> np.ndarray:
    """-sum p log p in nats, with 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    safe = np.where(p > 0, p, 1.0)
    return -np.sum(p * np.log(safe), axis=axis)


@dataclass(frozen=True)
class MarkovSource:
    """A stationary order-``order`` Markov source over ``vocab_size`` symbols.

    ``transitions`` is ``(V^k, V)`` and row-stochastic: row c (the context written in base V,
    oldest symbol first: c = sum_i x_{t-k+i} V^(k-1-i)) is P(x_t | c). The context chain must
    be irreducible (every context reachable from every other), so that mu is unique.

    :raises ValueError: for a table of the wrong shape, negative or non-finite entries, rows
        not summing to 1, or a reducible chain.
    """

    transitions: np.ndarray
    order: int = 1

    def __post_init__(self) -> None:
        p = np.asarray(self.transitions, dtype=np.float64)
        if isinstance(self.order, bool) or not isinstance(self.order, int | np.integer) \
                or self.order < 1:
            raise ValueError(f"order: expected a positive int, got {self.order!r}")
        if p.ndim != 2 or p.shape[1] < 2:
            raise ValueError(f"transitions: expected a (V^order, V) table with V >= 2, got "
                             f"shape {p.shape}")
        vocab = p.shape[1]
        if p.shape[0] != vocab**self.order:
            raise ValueError(f"transitions: expected {vocab}^{self.order} = "
                             f"{vocab**self.order} rows (one per context), got {p.shape[0]}")
        if p.shape[0] > MAX_CONTEXTS:
            raise ValueError(f"transitions: at most {MAX_CONTEXTS} contexts, got {p.shape[0]}")
        if not np.all(np.isfinite(p)) or np.any(p < 0):
            raise ValueError("transitions: expected finite, non-negative probabilities")
        sums = p.sum(axis=1)
        if not np.allclose(sums, 1.0, rtol=0.0, atol=1e-9):
            bad = int(np.argmax(np.abs(sums - 1.0)))
            raise ValueError(f"transitions: expected rows summing to 1 (row c is P(. | c)), "
                             f"row {bad} sums to {float(sums[bad])!r}")
        object.__setattr__(self, "transitions", p)
        if not _irreducible(self.context_transitions()):
            raise ValueError("transitions: the context chain is reducible (some context cannot "
                             "reach another), so its stationary distribution is not unique")

    @property
    def vocab_size(self) -> int:
        return int(self.transitions.shape[1])

    @property
    def num_contexts(self) -> int:
        return int(self.transitions.shape[0])

    def context_transitions(self) -> np.ndarray:
        """T ``(V^k, V^k)``: T[c, c'] = P(j | c) where c' = (c without its oldest symbol, j)."""
        v, n = self.vocab_size, self.num_contexts
        t = np.zeros((n, n))
        shifted = (np.arange(n) * v) % n  # (V^k,): c with its oldest symbol dropped, times V
        for j in range(v):
            t[np.arange(n), shifted + j] += self.transitions[:, j]
        return t

    @property
    def stationary(self) -> np.ndarray:
        """mu ``(V^k,)`` over contexts: mu T = mu, sum mu = 1 (a least-squares solve)."""
        return self._stationary.copy()

    @cached_property
    def _stationary(self) -> np.ndarray:
        n = self.num_contexts
        system = np.vstack([self.context_transitions().T - np.eye(n), np.ones((1, n))])
        rhs = np.zeros(n + 1)
        rhs[-1] = 1.0
        mu = np.linalg.lstsq(system, rhs, rcond=None)[0]
        mu = np.clip(mu, 0.0, None)
        return mu / mu.sum()

    @cached_property
    def entropy_rate(self) -> float:
        """H = -sum_c mu_c sum_j P_cj log P_cj, in nats per token."""
        return float(self._stationary @ _entropy(self.transitions, axis=1))

    def block_entropy(self, length: int) -> float:
        """H(X_1, ..., X_m) of m consecutive stationary symbols, in nats: for m <= k from the
        marginal of mu, for m > k it is H(X_1..X_k) + (m - k) H."""
        if isinstance(length, bool) or not isinstance(length, int | np.integer) or length < 0:
            raise ValueError(f"length: expected an int >= 0, got {length!r}")
        k, v = self.order, self.vocab_size
        if length == 0:
            return 0.0
        if length > k:
            return self.block_entropy(k) + (length - k) * self.entropy_rate
        mu = self._stationary.reshape((v,) * k)  # axes: oldest ... newest symbol
        marginal = mu.sum(axis=tuple(range(k - length))) if length < k else mu
        return float(_entropy(marginal))

    def conditional_entropy(self, context_length: int) -> float:
        """h(m) = H(X_t | the m symbols before it) = H_{m+1} - H_m: the best loss of a model
        that sees m tokens of context; h(m) = H for m >= k."""
        return self.block_entropy(context_length + 1) - self.block_entropy(context_length)

    def window_floor(self, block_size: int) -> float:
        """The best mean loss over a window of T = ``block_size`` predictions, where position
        t (0-based) predicts x_{t+1} from x_0..x_t: (1/T) sum_{m=1}^{T} h(m) (t + 1 symbols of
        context), slightly above H because the first k - 1 positions see too little."""
        if isinstance(block_size, bool) or not isinstance(block_size, int | np.integer) \
                or block_size < 1:
            raise ValueError(f"block_size: expected a positive int, got {block_size!r}")
        return float(np.mean([self.conditional_entropy(m) for m in range(1, block_size + 1)]))

    def masked_entropy(self) -> float:
        """H(X_t | X_{t-k..t-1}, X_{t+1..t+k}): the best loss of predicting one masked token from
        k symbols on each side (its Markov blanket), what an encoder can reach on a single
        masked token. Exact, by enumerating the V^(2k+1) windows:
        H(X_{t-k..t+k}) - H(X_{t-k..t+k} without X_t)."""
        k, v = self.order, self.vocab_size
        if v ** (2 * k + 1) > MAX_MASKED_WINDOW:
            raise ValueError(f"order, vocab_size: V^(2k+1) = {v ** (2 * k + 1)} windows, more "
                             f"than {MAX_MASKED_WINDOW} to enumerate")
        joint = self._stationary.reshape((v,) * k)  # p(x_0 .. x_{k-1})
        table = self.transitions.reshape((v,) * (k + 1))  # P(x_k | x_0 .. x_{k-1})
        for s in range(k, 2 * k + 1):  # multiply in P(x_s | x_{s-k} .. x_{s-1})
            joint = joint[..., None] * table.reshape((1,) * (s - k) + (v,) * (k + 1))
        return float(_entropy(joint) - _entropy(joint.sum(axis=k)))

    def sample(self, length: int, seed: int = 0) -> np.ndarray:
        """``length`` symbols (int64), the first k drawn from mu, the rest from P."""
        if isinstance(length, bool) or not isinstance(length, int | np.integer) \
                or length < self.order:
            raise ValueError(f"length: expected an int >= order = {self.order}, got {length!r}")
        k, v, n = self.order, self.vocab_size, self.num_contexts
        rng = np.random.default_rng(seed)
        start = int(rng.choice(n, p=self.stationary))
        out = np.empty(length, dtype=np.int64)
        out[:k] = [(start // v ** (k - 1 - i)) % v for i in range(k)]
        cumulative = np.cumsum(self.transitions, axis=1).tolist()  # lists: bisect is fast
        uniforms = rng.uniform(size=length).tolist()
        context = start
        for t in range(k, length):
            x = min(bisect_right(cumulative[context], uniforms[t]), v - 1)
            out[t] = x
            context = (context * v) % n + x
        return out

    def contexts(self, tokens: np.ndarray) -> np.ndarray:
        """The context index c_t of every position t >= k of ``tokens`` ``(N,)``: ``(N - k,)``."""
        x = np.asarray(tokens, dtype=np.int64).reshape(-1)
        k, v = self.order, self.vocab_size
        if len(x) <= k or x.min() < 0 or x.max() >= v:
            raise ValueError(f"tokens: expected more than {k} symbols in [0, {v}), got "
                             f"{len(x)} in [{x.min() if len(x) else None}, "
                             f"{x.max() if len(x) else None}]")
        return sum(x[i : len(x) - k + i] * v ** (k - 1 - i) for i in range(k))

    def cross_entropy(self, tokens: np.ndarray) -> float:
        """The source's own loss on ``tokens``: -mean_{t >= k} log P(x_t | c_t), in nats. On
        its own samples it tends to H as the text grows."""
        x = np.asarray(tokens, dtype=np.int64).reshape(-1)
        p = self.transitions[self.contexts(x), x[self.order :]]
        with np.errstate(divide="ignore"):
            return float(-np.mean(np.log(p)))

    def text(self, length: int, seed: int = 0) -> str:
        """:meth:`sample` written with the letters a, b, c, ... (at most 26 symbols)."""
        if self.vocab_size > 26:
            raise ValueError(f"vocab_size: text needs at most 26 symbols, got {self.vocab_size}")
        return "".join(chr(ord("a") + int(s)) for s in self.sample(length, seed))


def _irreducible(t: np.ndarray) -> bool:
    """Every state reaches every other through edges with T > 0 (forward and backward search
    from state 0)."""
    edges = t > 0
    for graph in (edges, edges.T):
        seen = np.zeros(len(t), dtype=bool)
        seen[0], frontier = True, np.array([0])
        while frontier.size:
            new = graph[frontier].any(axis=0) & ~seen
            seen |= new
            frontier = np.flatnonzero(new)
        if not seen.all():
            return False
    return True


def de_bruijn_successors(vocab_size: int, order: int) -> np.ndarray:
    """``(V^k,)``: for each context, the symbol that follows it in the de Bruijn sequence
    B(V, k) (every context exactly once, cyclically), so that the edges context -> context +
    successor form one cycle through all contexts. A table that allows these symbols has an
    irreducible context chain, whatever else it allows."""
    sequence, a = [], [0] * (vocab_size * order)

    def visit(t: int, p: int) -> None:  # the FKM algorithm: Lyndon words of length | k
        if t > order:
            if order % p == 0:
                sequence.extend(a[1 : p + 1])
            return
        a[t] = a[t - p]
        visit(t + 1, p)
        for j in range(a[t - p] + 1, vocab_size):
            a[t] = j
            visit(t + 1, t)

    visit(1, 1)
    n = vocab_size**order
    cyclic = sequence + sequence[:order]
    successors = np.empty(n, dtype=np.int64)
    for i in range(n):
        context = sum(cyclic[i + j] * vocab_size ** (order - 1 - j) for j in range(order))
        successors[context] = cyclic[i + order]
    return successors


def _draw_rows(rng: np.random.Generator, rows: np.ndarray, successors: np.ndarray,
               vocab_size: int, support: int, concentration: float) -> np.ndarray:
    """Rows for the contexts ``rows``: ``support`` nonzero entries each, the de Bruijn
    successor among them, weights Dirichlet(concentration)."""
    table = np.zeros((len(rows), vocab_size))
    for r, context in enumerate(rows):
        others = np.delete(np.arange(vocab_size), successors[context])
        allowed = np.append(rng.choice(others, size=support - 1, replace=False),
                            successors[context])
        table[r, allowed] = rng.dirichlet(np.full(support, concentration))
    return table


def _check_draw(vocab_size: int, order: int, support: int, concentration: float) -> None:
    if not 2 <= vocab_size <= 26:
        raise ValueError(f"vocab_size: expected 2..26, got {vocab_size!r}")
    if not 1 <= order or vocab_size**order > MAX_CONTEXTS:
        raise ValueError(f"order: expected >= 1 with vocab_size^order <= {MAX_CONTEXTS}, got "
                         f"{order!r}")
    if not 1 <= support <= vocab_size:
        raise ValueError(f"support: expected 1..vocab_size={vocab_size}, got {support!r}")
    if not concentration > 0:
        raise ValueError(f"concentration: expected > 0, got {concentration!r}")


def random_source(vocab_size: int = 16, order: int = 2, support: int = 3,
                  concentration: float = 1.0, seed: int = 0) -> MarkovSource:
    """A random sparse order-k source: each context allows ``support`` of the V symbols (one
    of them its de Bruijn successor, which makes the chain irreducible), with
    Dirichlet(``concentration``) weights. Smaller support or concentration: lower H."""
    _check_draw(vocab_size, order, support, concentration)
    rng = np.random.default_rng(seed)
    contexts = np.arange(vocab_size**order)
    successors = de_bruijn_successors(vocab_size, order)
    return MarkovSource(_draw_rows(rng, contexts, successors, vocab_size, support,
                                   concentration), order)


def related_source(source: MarkovSource, fraction: float, support: int = 3,
                   concentration: float = 1.0, seed: int = 0) -> MarkovSource:
    """``source`` with round(fraction * V^k) of its rows (contexts chosen at random) drawn
    again like :func:`random_source`'s: fraction 0 is the same source, 1 an unrelated one."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction: expected a share of the rows in [0, 1], got {fraction!r}")
    _check_draw(source.vocab_size, source.order, support, concentration)
    rng = np.random.default_rng(seed)
    rows = rng.choice(source.num_contexts, size=int(round(fraction * source.num_contexts)),
                      replace=False)
    table = source.transitions.copy()
    successors = de_bruijn_successors(source.vocab_size, source.order)
    table[rows] = _draw_rows(rng, rows, successors, source.vocab_size, support, concentration)
    return MarkovSource(table, source.order)


# ---- parameter counts --------------------------------------------------------------------


def gpt_parameters(config: GPTConfig) -> int:
    """All parameters of ``GPT(config)``, the tied head counted once."""
    return sum(prod(s) for s in param_shapes(config).values())


def non_embedding_parameters(config: GPTConfig) -> int:
    """N of the scaling laws (Kaplan et al. 2020): the parameters without the token and
    position embeddings. With r = mlp_ratio, per block 4 d^2 + 4 d (attention), 2 r d^2 + r d
    + d (MLP) and 4 d (two LayerNorms), plus 2 d for the final LayerNorm:

        N = n_layer ((4 + 2 r) d^2 + (9 + r) d) + 2 d   ( = 12 n_layer d^2 + ... for r = 4)
    """
    return sum(prod(s) for name, s in param_shapes(config).items()
               if not name.startswith(("wte.", "wpe.")))


# ---- the power law -----------------------------------------------------------------------


@dataclass(frozen=True)
class PowerLawFit:
    """L(N) = floor + coefficient * N^(-exponent); ``rss`` the residual sum of squares;
    ``floor_fitted`` False when the floor was given, not fitted."""

    floor: float
    coefficient: float
    exponent: float
    rss: float
    floor_fitted: bool

    def predict(self, sizes: np.ndarray | float) -> np.ndarray:
        """L(N) at ``sizes``."""
        n = np.asarray(sizes, dtype=np.float64)
        return self.floor + self.coefficient * n ** (-self.exponent)


def _profile(x: np.ndarray, y: np.ndarray, exponent: float,
             floor: float | None) -> tuple[float, float, float]:
    """For a fixed exponent the model is linear: ``(floor, coefficient, rss)`` by least squares
    of y on [1, x^-exponent] (or of y - floor on x^-exponent when the floor is given)."""
    z = x ** (-exponent)
    if floor is None:
        design = np.stack([np.ones_like(z), z], axis=1)
        (e, a), *_ = np.linalg.lstsq(design, y, rcond=None)
    else:
        e, a = floor, float(z @ (y - floor) / (z @ z))
    residual = y - e - a * z
    return float(e), float(a), float(residual @ residual)


def fit_power_law(sizes: np.ndarray, losses: np.ndarray, floor: float | None = None,
                  exponent_bounds: tuple[float, float] = (1e-3, 3.0)) -> PowerLawFit:
    """Least-squares fit of L(N) = E + a N^(-alpha) to ``losses`` at ``sizes``.

    The exponent is found by a log-spaced grid over ``exponent_bounds`` refined by a
    golden-section search; for each exponent E and a are the linear least-squares solution.
    Sizes are scaled by their geometric mean inside (a stays for the unscaled N).

    :param floor: the irreducible loss E if known (e.g. the entropy rate H); None: fitted.
    :raises ValueError: sizes and losses of different lengths, too few points (3 with the floor
        fitted, 2 with it given), sizes not positive or repeated, non-finite values, bad bounds.
    """
    n = np.asarray(sizes, dtype=np.float64).reshape(-1)
    y = np.asarray(losses, dtype=np.float64).reshape(-1)
    if n.shape != y.shape:
        raise ValueError(f"sizes, losses: expected the same length, got {n.size} and {y.size}")
    needed = 3 if floor is None else 2
    if n.size < needed:
        raise ValueError(f"sizes: expected at least {needed} points to fit "
                         f"{'E, a, alpha' if floor is None else 'a, alpha'}, got {n.size}")
    if not (np.all(np.isfinite(n)) and np.all(np.isfinite(y))) or np.any(n <= 0):
        raise ValueError("sizes, losses: expected finite values and positive sizes")
    if len(np.unique(n)) < needed:
        raise ValueError(f"sizes: expected at least {needed} distinct sizes, got {np.unique(n)}")
    if floor is not None and not np.isfinite(floor):
        raise ValueError(f"floor: expected a finite loss or None, got {floor!r}")
    low, high = exponent_bounds
    if not 0 < low < high:
        raise ValueError(f"exponent_bounds: expected 0 < low < high, got {exponent_bounds!r}")
    scale = float(np.exp(np.mean(np.log(n))))
    x = n / scale

    def rss(alpha: float) -> float:
        return _profile(x, y, alpha, floor)[2]

    grid = np.geomspace(low, high, 200)
    values = np.array([rss(a) for a in grid])
    best = int(np.argmin(values))
    left, right = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    for _ in range(100):  # golden section on [left, right]
        c, d = right - ratio * (right - left), left + ratio * (right - left)
        if rss(c) < rss(d):
            right = d
        else:
            left = c
    alpha = 0.5 * (left + right)
    if values[best] < rss(alpha):  # a boundary grid point can beat the bracket's middle
        alpha = float(grid[best])
    e, a, residual = _profile(x, y, alpha, floor)
    return PowerLawFit(floor=e, coefficient=a * scale**alpha, exponent=float(alpha),
                       rss=residual, floor_fitted=floor is None)


__all__ = [
    "MarkovSource",
    "de_bruijn_successors",
    "PowerLawFit",
    "fit_power_law",
    "gpt_parameters",
    "non_embedding_parameters",
    "random_source",
    "related_source",
]
