"""The graded cases of the ``recommender`` assignment (outline 6.2.2-6.2.3: the top-K
off-policy correction of Chen et al. 2019), against the float64 oracle
``core/reference/recommender.py``.

Each hidden case is built to kill a typical one-character bug and carries the outputs each
gives as a diagnosis (``Case.diagnoses``): the exponent K instead of K - 1, the factor K
forgotten, lambda computed from beta instead of pi, the slate probability alpha_K instead of its
derivative, the importance weight uncapped, floored instead of capped, inverted (beta / pi), the
cap applied to lambda w instead of w, the weight f left in the gradient's graph (no
stop-gradient), the mask ignored, a sum instead of the mean over the events.
"""

from __future__ import annotations

import numpy as np

from duetrl.core.coursework.case import ATOL_FLOAT32, ATOL_FLOAT64, Case
from duetrl.core.coursework.case import arg as _arg
from duetrl.core.reference import recommender as ref
from duetrl.core.reference.functional import log_softmax

EXPONENT_K = "K (1 - pi)^K: the exponent is K - 1 (the derivative of 1 - (1 - pi)^K)"
NO_K = "(1 - pi)^(K - 1): the factor K is missing"
BETA_IN_LAMBDA = "lambda computed from beta: the top-K multiplier reads the policy's pi"
ALPHA = "1 - (1 - pi)^K: the slate probability alpha_K itself, not its derivative lambda_K"
UNCAPPED = "pi / beta uncapped: min(pi / beta, c) keeps a rarely logged item from taking over"
FLOORED = "max(pi / beta, c): the cap is an upper bound (min), not a floor"
INVERTED = "beta / pi: the importance weight is pi / beta (target over behaviour)"


def _multiplier_mistakes(pi: np.ndarray, beta: np.ndarray, k: int) -> list[tuple]:
    return [
        (k * (1 - pi) ** k, EXPONENT_K),
        ((1 - pi) ** (k - 1), NO_K),
        (k * (1 - beta) ** (k - 1), BETA_IN_LAMBDA),
        (1 - (1 - pi) ** k, ALPHA),
    ]


def _weight_mistakes(pi: np.ndarray, beta: np.ndarray, cap: float) -> list[tuple]:
    return [
        (pi / beta, UNCAPPED),
        (np.maximum(pi / beta, cap), FLOORED),
        (np.minimum(beta / pi, cap), INVERTED),
    ]


def _probabilities(rng, shape) -> tuple[np.ndarray, np.ndarray]:
    """pi and beta in (0, 1), pi / beta on both sides of the caps the cases use."""
    pi = rng.uniform(0.01, 0.9, shape)
    beta = rng.uniform(0.005, 0.6, shape)
    return pi, beta


def _told_apart(expected: dict, diagnoses: list[tuple], atol: float) -> list[tuple]:
    """The diagnoses whose outputs differ from the right ones and from every one kept before
    (with K = 1, "the factor K missing" is the right answer: no diagnosis then)."""
    from duetrl.core.coursework.compare import compare_arrays

    kept: list[tuple] = []
    for outputs, what in diagnoses:
        seen = [expected] + [o for o, _ in kept]
        if all(
            any(not compare_arrays(v, other[k], atol) for k, v in outputs.items()) for other in seen
        ):
            kept.append((outputs, what))
    return kept


def multiplier_case(
    name: str,
    points: float,
    visibility: str,
    pi: np.ndarray,
    k: int,
    hint: str,
    dtype: str = "float64",
) -> Case:
    pi = pi.astype(dtype).astype(np.float64)
    beta = np.clip(pi[::-1] * 0.7 + 0.1, 0.01, 0.99).reshape(pi.shape)  # for the diagnosis only
    diagnoses = [
        ({"0": v}, what) for v, what in _multiplier_mistakes(pi, beta, k) if what != BETA_IN_LAMBDA
    ]
    return Case(
        name,
        points,
        visibility,
        {"kind": "call", "function": "top_k_multiplier", "args": [_arg("pi"), k]},
        {"pi": pi.astype(dtype)},
        {"0": ref.top_k_multiplier(pi, k)},
        dtype,
        ATOL_FLOAT64 if dtype == "float64" else ATOL_FLOAT32,
        hint,
        diagnoses=diagnoses,
    )


def weights_case(
    name: str,
    points: float,
    visibility: str,
    pi: np.ndarray,
    beta: np.ndarray,
    cap: float,
    hint: str,
) -> Case:
    return Case(
        name,
        points,
        visibility,
        {"kind": "call", "function": "importance_weights", "args": [_arg("pi"), _arg("beta"), cap]},
        {"pi": pi, "beta": beta},
        {"0": ref.importance_weights(pi, beta, cap)},
        "float64",
        ATOL_FLOAT64,
        hint,
        diagnoses=[({"0": v}, what) for v, what in _weight_mistakes(pi, beta, cap)],
    )


def event_weights_case(
    name: str,
    points: float,
    visibility: str,
    pi: np.ndarray,
    beta: np.ndarray,
    method: str,
    cap: float,
    k: int,
    hint: str,
) -> Case:
    lam, w = ref.top_k_multiplier(pi, k), ref.importance_weights(pi, beta, cap)
    diagnoses = []
    if method == "top_k":
        diagnoses = [({"0": wrong * w}, what) for wrong, what in _multiplier_mistakes(pi, beta, k)]
        diagnoses += [({"0": lam * wrong}, what) for wrong, what in _weight_mistakes(pi, beta, cap)]
        diagnoses += [
            (
                {"0": np.minimum(lam * pi / beta, cap)},
                "min(lambda pi / beta, c): the cap bounds the importance weight w, "
                "then lambda multiplies it",
            ),
            ({"0": w}, "the top-K multiplier missing: that is the off_policy weight"),
        ]
    elif method == "off_policy":
        diagnoses = [({"0": lam * w}, "lambda_K applied: off_policy is w = min(pi / beta, c)")]
        diagnoses += [({"0": v}, what) for v, what in _weight_mistakes(pi, beta, cap)]
    else:
        diagnoses = [({"0": w}, "an importance weight: plain reinforce has f = 1")]
    return Case(
        name,
        points,
        visibility,
        {
            "kind": "call",
            "function": "event_weights",
            "args": [_arg("pi"), _arg("beta"), method, cap, k],
        },
        {"pi": pi, "beta": beta},
        {"0": ref.event_weights(pi, beta, method, cap, k)},
        "float64",
        ATOL_FLOAT64,
        hint,
        diagnoses=diagnoses,
    )


def _events(rng, b: int, e: int, n: int, masked: bool) -> dict[str, np.ndarray]:
    mask = (rng.random((b, e)) < 0.7).astype(np.float64) if masked else np.ones((b, e))
    mask[0, 0] = 1.0
    return {
        "logits": rng.normal(size=(b, e, n)) * 1.5,
        "actions": rng.integers(0, n, (b, e)),
        "rewards": rng.random((b, e)),
        "beta": rng.uniform(0.02, 0.5, (b, e)),
        "mask": mask,
    }


def _loss_no_stop_gradient(ev: dict, cap: float, k: int) -> tuple[float, np.ndarray]:
    """L with f a function of pi (no stop-gradient): its value and d/dlogits (differences)."""

    def loss(z: np.ndarray) -> float:
        logp = np.take_along_axis(log_softmax(z), ev["actions"][..., None], -1)[..., 0]
        f = ref.event_weights(np.exp(logp), ev["beta"], "top_k", cap, k)
        return float(-(ev["mask"] * f * ev["rewards"] * logp).sum() / ev["mask"].sum())

    z, grad = ev["logits"], np.zeros_like(ev["logits"])
    for idx in np.ndindex(z.shape):
        step = np.zeros_like(z)
        step[idx] = 1e-6
        grad[idx] = (loss(z + step) - loss(z - step)) / 2e-6
    return loss(z), grad


def loss_case(
    name: str,
    points: float,
    visibility: str,
    ev: dict,
    cap: float,
    k: int,
    hint: str,
    gradient: bool = False,
) -> Case:
    args = (ev["logits"], ev["actions"], ev["rewards"], ev["beta"], ev["mask"], "top_k", cap, k)
    expected = {"0": np.asarray(ref.corrected_loss(*args))}
    logp = np.take_along_axis(log_softmax(ev["logits"]), ev["actions"][..., None], -1)[..., 0]
    f = ref.event_weights(np.exp(logp), ev["beta"], "top_k", cap, k)
    terms = f * ev["rewards"] * logp
    wrong = [
        (-(terms * ev["mask"]).sum(), "a sum over the events: divide by M = sum of the mask"),
        (-terms.mean(), "the mask ignored: masked events count in the sum and in M"),
        ((terms * ev["mask"]).sum() / ev["mask"].sum(), "the sign: L is minus the mean"),
    ]
    if ev["mask"].all():  # nothing masked: ignoring the mask gives the right answer
        wrong = [(v, what) for v, what in wrong if "mask ignored" not in what]
    diagnoses = [({"0": np.asarray(v)}, what) for v, what in wrong]
    if gradient:
        expected["grad"] = ref.corrected_loss_grad(*args)
        value, grad = _loss_no_stop_gradient(ev, cap, k)
        diagnoses = [
            (
                {"0": np.asarray(value), "grad": grad},
                "the weight f left in the graph: lambda_K and w are constants of the "
                "gradient (detach / tf.stop_gradient), only log pi is differentiated",
            )
        ]
    return Case(
        name,
        points,
        visibility,
        {
            "kind": "grad" if gradient else "call",
            "function": "corrected_loss",
            "args": [_arg(x) for x in ("logits", "actions", "rewards", "beta", "mask")]
            + ["top_k", cap, k],
        },
        dict(ev),
        expected,
        "float64",
        ATOL_FLOAT64 if not gradient else 1e-6,
        hint,
        diagnoses=diagnoses,
    )


def recommender_cases(seed: int, public_only: bool = False) -> list[Case]:
    """Public: one small case of each function. Hidden: the cases that kill the typical bugs."""
    rng0 = np.random.default_rng(0)
    pi, beta = np.array([0.2, 0.5, 0.01, 0.3]), np.array([0.1, 0.05, 0.5, 0.03])
    cases = [
        multiplier_case(
            "top_k_multiplier: K = 2 (public)",
            1,
            "visible",
            np.array([0.0, 0.25, 0.5, 1.0]),
            2,
            "expected [2, 1.5, 1, 0]",
        ),
        weights_case(
            "importance_weights: c = 3 (public)",
            1,
            "visible",
            pi,
            beta,
            3.0,
            "expected [2, 3, 0.02, 3]",
        ),
        event_weights_case(
            "event_weights: top_k, K = 2, c = 3 (public)",
            1,
            "visible",
            pi,
            beta,
            "top_k",
            3.0,
            2,
            "expected [3.2, 3, 0.0396, 4.2]",
        ),
        loss_case(
            "corrected_loss: a small batch (public seed)",
            1,
            "visible",
            _events(rng0, 2, 3, 4, masked=False),
            10.0,
            2,
            "L = -1/M sum_n m_n f_n R_n log pi(a_n | s_n)",
        ),
    ]
    if public_only:
        return _checked(cases)
    rng = np.random.default_rng(seed)
    p, b = _probabilities(rng, (3, 5))
    k = int(rng.integers(3, 6))
    return _checked(
        cases
        + [
            multiplier_case(
                "top_k_multiplier: a batch of probabilities, K = 3..5",
                2,
                "hidden",
                p,
                k,
                "K (1 - pi)^(K - 1), elementwise",
            ),
            multiplier_case(
                "top_k_multiplier: K = 1 is plain REINFORCE",
                1,
                "hidden",
                p,
                1,
                "with K = 1, lambda = 1 for every pi",
            ),
            multiplier_case(
                "top_k_multiplier: float32 in, float32 out",
                1,
                "hidden",
                p,
                2,
                "keep pi's dtype",
                dtype="float32",
            ),
            weights_case(
                "importance_weights: some weights above the cap",
                2,
                "hidden",
                p,
                b,
                float(np.median(p / b)),
                "min(pi / beta, c)",
            ),
            event_weights_case(
                "event_weights: top_k",
                2,
                "hidden",
                p,
                b,
                "top_k",
                5.0,
                k,
                "f = lambda_K(pi) min(pi / beta, c)",
            ),
            event_weights_case(
                "event_weights: off_policy",
                1,
                "hidden",
                p,
                b,
                "off_policy",
                5.0,
                k,
                "f = min(pi / beta, c)",
            ),
            event_weights_case(
                "event_weights: reinforce",
                1,
                "hidden",
                p,
                b,
                "reinforce",
                5.0,
                k,
                "f = 1: no correction",
            ),
            loss_case(
                "corrected_loss: masked events",
                2,
                "hidden",
                _events(rng, 3, 4, 6, masked=True),
                3.0,
                k,
                "masked mean over the events of f R log pi, negated",
            ),
            loss_case(
                "corrected_loss: its gradient with respect to the logits",
                2,
                "hidden",
                _events(rng, 2, 3, 5, masked=True),
                4.0,
                2,
                "dL/dz = -m f R (onehot(a) - pi) / M: f is a constant (stop-gradient)",
                gradient=True,
            ),
        ]
    )


def _checked(cases: list[Case]) -> list[Case]:
    """Every case with only the diagnoses that tell its bugs apart (``_told_apart``)."""
    for case in cases:
        case.diagnoses = _told_apart(case.expected, case.diagnoses, case.atol)
    return cases
