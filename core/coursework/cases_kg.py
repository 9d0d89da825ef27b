"""The graded cases of the ``kg`` assignment (outline 6.3.3; MINERVA), against the float64
oracle ``core/reference/kg.py``: the walk's action mask and the masked log-softmax.

Each hidden case is built to kill typical one-character bugs and carries the outputs each
gives as a diagnosis (``Case.diagnoses``), so a wrong answer is told what it matches: the stay
closed, the answer edge left open in training, padding left open, the answer edge closed
wherever the walker stands (not only at the query's entity), every edge of the query relation
closed, any edge to the answer closed, the answer edge closed at test time too; a softmax over
all K places, masked places left at -1e9 - log Z, probabilities, the wrong axis.
"""

from __future__ import annotations

import numpy as np

from duetrl.core.constants import MASK_FILL_VALUE
from duetrl.core.coursework.case import ATOL_FLOAT32, ATOL_FLOAT64, Case
from duetrl.core.coursework.case import arg as _arg
from duetrl.core.interfaces.kg import NO_OP, PAD_RELATION
from duetrl.core.reference import kg as ref
from duetrl.core.reference.functional import log_softmax

MASK_ARGS = (
    "candidate_relations",
    "candidate_entities",
    "current_entities",
    "query_entities",
    "query_relations",
    "answers",
)
RELATIONS = range(3, 12)
"""Graph relation ids (0..2 are <pad>, NO_OP and START)."""

STAY_CLOSED = "the stay (NO_OP, the current entity) closed: it is always admissible"
ANSWER_OPEN = "the answer edge left open in training: the agent would read the answer off it"
PADDING_OPEN = "padding left open (relation <pad> = 0 is no action)"
EVERYWHERE = (
    "the answer edge closed wherever the walker stands: only at the query's entity "
    "is (r_q, answer) the query itself"
)
WHOLE_RELATION = (
    "every edge of the query relation closed at the query's entity, not only the one to the answer"
)
ANY_RELATION = "every edge to the answer closed at the query's entity, whatever its relation"
AT_TEST_TOO = "the answer edge closed at test time too (training is False: nothing is masked)"


def _mask_mistakes(a: dict[str, np.ndarray], training: bool) -> list[tuple[np.ndarray, str]]:
    """The masks the typical bugs give, with what they are."""
    rel, ent = a["candidate_relations"], a["candidate_entities"]
    at_query = (a["current_entities"] == a["query_entities"])[:, None]
    same_relation = rel == a["query_relations"][:, None]
    to_answer = ent == a["answers"][:, None]
    open_places = rel != PAD_RELATION
    answer_edge = at_query & same_relation & to_answer
    right = ref.action_mask(rel, ent, *(a[k] for k in MASK_ARGS[2:]), training) > 0
    mistakes = [
        (right & (rel != NO_OP), STAY_CLOSED),
        (right | (rel == PAD_RELATION), PADDING_OPEN),
    ]
    if training:
        mistakes += [
            (open_places, ANSWER_OPEN),
            (open_places & ~(same_relation & to_answer), EVERYWHERE),
            (open_places & ~(at_query & same_relation), WHOLE_RELATION),
            (open_places & ~(at_query & to_answer), ANY_RELATION),
        ]
    else:
        mistakes.append((open_places & ~answer_edge, AT_TEST_TOO))
    return [({"0": m.astype(np.float64)}, what) for m, what in mistakes]


def _walkers(rng, batch: int, places: int, entities: int) -> dict[str, np.ndarray]:
    """B walkers' grid rows: the stay, edges, padding (targets = the walker's entity, as in
    ``core/cases/kg/walk.py``); each kind of walker a bug needs to show is present."""
    current = rng.integers(0, entities, batch)
    rel = np.full((batch, places), PAD_RELATION)
    ent = np.repeat(current[:, None], places, axis=1)
    rel[:, 0] = NO_OP
    degree = rng.integers(1, places, batch)
    degree[0] = places - 1  # a full row
    for b in range(batch):
        rel[b, 1 : 1 + degree[b]] = rng.choice(list(RELATIONS), degree[b])
        ent[b, 1 : 1 + degree[b]] = rng.integers(0, entities, degree[b])
    query_relations = rng.choice(list(RELATIONS), batch)
    answers = rng.integers(0, entities, batch)
    query_entities = rng.integers(0, entities, batch)
    half = batch // 2
    query_entities[:half] = current[:half]  # these stand at the query's entity
    for b in range(batch):
        if degree[b] >= 3:  # the answer edge, another edge of r_q, another edge to the answer
            rel[b, 1], ent[b, 1] = query_relations[b], answers[b]
            rel[b, 2], ent[b, 2] = query_relations[b], (answers[b] + 1) % entities
            rel[b, 3], ent[b, 3] = RELATIONS[0] + (query_relations[b] - 2) % 9, answers[b]
    return {
        "candidate_relations": rel,
        "candidate_entities": ent,
        "current_entities": current,
        "query_entities": query_entities,
        "query_relations": query_relations,
        "answers": answers,
    }


def _told_apart(expected: np.ndarray, diagnoses: list[tuple[dict, str]]) -> list[tuple[dict, str]]:
    """The diagnoses whose mask differs from the answer and from every one kept before (on a
    small grid two bugs may give the same mask; the first is kept)."""
    kept: list[tuple[dict, str]] = []
    for mistake, what in diagnoses:
        if not any(np.array_equal(mistake["0"], m["0"]) for m, _ in kept) and not np.array_equal(
            mistake["0"], expected
        ):
            kept.append((mistake, what))
    return kept


def mask_case(
    name: str,
    points: float,
    visibility: str,
    arrays: dict[str, np.ndarray],
    training: bool,
    hint: str,
) -> Case:
    expected = ref.action_mask(*(arrays[k] for k in MASK_ARGS), training)
    return Case(
        name,
        points,
        visibility,
        {
            "kind": "call",
            "function": "action_mask",
            "args": [*(_arg(k) for k in MASK_ARGS), training],
        },
        {k: np.asarray(v, np.int64) for k, v in arrays.items()},
        {"0": expected},
        None,
        0.0,
        hint,
        diagnoses=_told_apart(expected, _mask_mistakes(arrays, training)),
    )


def _tiny_walkers() -> dict[str, np.ndarray]:
    """The tutorial's four people, one walker on each, asked (ada, grandparent, ?) = cleo:
    rows ada [stay, (parent, ben), (sibling, dan), (grandparent, cleo)], ben [stay, (parent,
    cleo), (child, ada), pad], cleo [stay, (child, ben), (grandchild, ada), pad], dan [stay,
    (sibling, ada), pad, pad]."""
    return {
        "candidate_relations": np.array([[1, 3, 6, 7], [1, 3, 4, 0], [1, 4, 8, 0], [1, 6, 0, 0]]),
        "candidate_entities": np.array([[0, 1, 3, 2], [1, 2, 0, 1], [2, 1, 0, 2], [3, 0, 3, 3]]),
        "current_entities": np.arange(4),
        "query_entities": np.zeros(4, np.int64),
        "query_relations": np.full(4, 7),
        "answers": np.full(4, 2),
    }


# ---- the masked log-softmax ------------------------------------------------------------------


def _softmax_mistakes(scores: np.ndarray, mask: np.ndarray, dtype: str) -> list[tuple[dict, str]]:
    filled = np.where(mask > 0, scores, MASK_FILL_VALUE)
    right = ref.masked_log_softmax(scores, mask)
    # -1e9 - log Z rounds to a multiple of 64 in float32: computed in the case's dtype
    low = filled.astype(dtype)
    top = low.max(axis=-1, keepdims=True)
    left_at_fill = low - (top + np.log(np.exp(low - top).sum(-1, keepdims=True)))
    return [
        (
            {"0": log_softmax(scores) * mask},
            "a softmax over all K places: the closed places took probability",
        ),
        (
            {"0": left_at_fill.astype(np.float64)},
            "the closed places left at -1e9 - log Z: multiply by the mask after the log-softmax",
        ),
        ({"0": np.exp(right) * mask}, "probabilities, not log-probabilities"),
        (
            {"0": log_softmax(filled.T).T * mask},
            "a log-softmax over the walkers (axis 0), not over the places (the last axis)",
        ),
    ]


def softmax_case(
    name: str, points: float, visibility: str, rng, hint: str, dtype: str = "float64"
) -> Case:
    """Scores (B, K) with B != K, a mask with the stay open and some places closed."""
    b, k = int(rng.integers(3, 6)), int(rng.integers(6, 9))
    scores = (rng.normal(size=(b, k)) * 3).astype(dtype).astype(np.float64)
    mask = (rng.random((b, k)) < 0.6).astype(np.float64)
    mask[:, 0] = 1.0
    mask[0, 1:] = 0.0  # only the stay: log pi = 0 there
    mask[-1, 1] = 0.0  # a closed place in a row with several open ones
    return Case(
        name,
        points,
        visibility,
        {"kind": "call", "function": "masked_log_softmax", "args": [_arg("scores"), _arg("mask")]},
        {"scores": scores.astype(dtype), "mask": mask.astype(dtype)},
        {"0": ref.masked_log_softmax(scores, mask)},
        dtype,
        ATOL_FLOAT64 if dtype == "float64" else ATOL_FLOAT32,
        hint,
        diagnoses=_softmax_mistakes(scores, mask, dtype),
    )


def kg_cases(seed: int, public_only: bool = False) -> list[Case]:
    """Public: the tutorial's four people, one softmax. Hidden: the cases that tell the bugs
    apart."""
    rng0 = np.random.default_rng(0)
    cases = [
        mask_case(
            "action_mask: four people, (ada, grandparent, ?) in training (public)",
            1,
            "visible",
            _tiny_walkers(),
            True,
            "expected [[1,1,1,0],[1,1,1,0],[1,1,1,0],[1,1,0,0]]",
        ),
        softmax_case(
            "masked_log_softmax: scores and a mask (public seed)",
            1,
            "visible",
            rng0,
            "closed scores -> MASK_FILL_VALUE, log_softmax over the last axis, times the mask",
        ),
    ]
    if public_only:
        return cases
    rng = np.random.default_rng(seed)
    return cases + [
        mask_case(
            "action_mask: walkers at and away from the query's entity, training",
            3,
            "hidden",
            _walkers(rng, 10, 7, 9),
            True,
            "close padding, and the edge (r_q, answer) only where current == query entity",
        ),
        mask_case(
            "action_mask: the same kind of walkers at test time",
            2,
            "hidden",
            _walkers(rng, 8, 6, 7),
            False,
            "at test time only padding is closed",
        ),
        softmax_case(
            "masked_log_softmax: rows with one and with several open places",
            2,
            "hidden",
            rng,
            "normalise over the open places of each row only",
        ),
        softmax_case(
            "masked_log_softmax: float32 in, float32 out",
            1,
            "hidden",
            rng,
            "keep the scores' dtype",
            dtype="float32",
        ),
    ]
