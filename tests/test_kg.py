"""Knowledge-graph reasoning by walking the graph (issue 19 part 2, outline 6.3.3): the family
graph and its held-out facts, the action grid and mask on a 4-entity graph listed by hand, the
masked log-softmax, the REINFORCE loss with its entropy bonus (hand-computed numbers), the
float64 oracle against both backends, and the two backends in lockstep."""

from __future__ import annotations

import math

import numpy as np
import pytest

from duetrl.core.cases.kg.graph import INVERSE, RELATIONS, make_family_graph, tiny_graph
from duetrl.core.cases.kg.walk import action_grid, gumbel_choice
from duetrl.core.interfaces.kg import NO_OP, PAD_RELATION, WalkerConfig, init_walker_params
from duetrl.core.reference import kg as ref
from duetrl.core.tolerances import assert_close, to_numpy

R = {name: i for i, name in enumerate(RELATIONS)}
A, B, C, D = 0, 1, 2, 3  # ada, ben, cleo, dan
# B is A's parent, C is B's parent (so A's grandparent), D is A's sibling; with the inverses
TINY = tiny_graph().facts


# ---- the family graph -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def graph():
    return make_family_graph(families=4, seed=3)


def _pairs(rows: np.ndarray, relation: str) -> set[tuple[int, int]]:
    return {(int(h), int(t)) for h, r, t in rows if r == R[relation]}


def test_derived_relations_follow_their_rules_and_every_fact_has_its_inverse(graph):
    everything = np.concatenate([graph.facts, graph.heldout])
    parent, sibling = _pairs(everything, "parent"), _pairs(everything, "sibling")
    compose = lambda x, y: {(a, c) for a, b in x for b2, c in y if b == b2}  # noqa: E731
    assert _pairs(everything, "grandparent") == compose(parent, parent)
    assert _pairs(everything, "aunt_or_uncle") == compose(parent, sibling)
    child = {(b, a) for a, b in parent}
    assert _pairs(everything, "cousin") == compose(compose(parent, sibling), child)
    assert all(a != b for a, b in sibling)  # nobody is their own sibling
    for rows in (graph.facts, graph.heldout):  # closed under inverses, so nothing leaks back
        facts = {tuple(int(x) for x in row) for row in rows}
        assert {(t, R[INVERSE[RELATIONS[r]]], h) for h, r, t in facts} == facts
    held = {tuple(row) for row in graph.heldout.tolist()}
    assert held and not held & {tuple(row) for row in graph.facts.tolist()}
    assert set(graph.heldout[:, 1]) <= set(graph.query_relations)  # only derived facts held out
    assert 0.1 < len(held) / len(graph.queries("train")) < 0.5


def test_graph_is_seeded_and_refuses_bad_input(graph):
    again = make_family_graph(families=4, seed=3)
    assert np.array_equal(graph.facts, again.facts) and np.array_equal(graph.heldout, again.heldout)
    assert not np.array_equal(graph.heldout, make_family_graph(families=4, seed=4).heldout)
    assert graph.entity_id(graph.entities[5]) == 5
    with pytest.raises(ValueError, match="entity: expected one of the graph's .* got 'nobody'"):
        graph.entity_id("nobody")
    with pytest.raises(ValueError, match="relation: expected a query relation.*got 'parent'"):
        graph.relation_id("parent")  # a base relation is given, never asked
    with pytest.raises(ValueError, match="generations: expected an int >= 3, got 2"):
        make_family_graph(generations=2)
    with pytest.raises(ValueError, match="heldout_fraction"):
        make_family_graph(heldout_fraction=1.0)


# ---- the action grid and the mask, listed by hand -------------------------------------------
def test_action_grid_lists_the_stay_then_each_edge_then_padding():
    grid = action_grid(4, TINY)
    p, c, s, g, gc = R["parent"], R["child"], R["sibling"], R["grandparent"], R["grandchild"]
    assert grid.width == 4  # 1 + A's three edges
    assert grid.relations.tolist() == [
        [NO_OP, p, s, g],
        [NO_OP, p, c, PAD_RELATION],
        [NO_OP, c, gc, PAD_RELATION],
        [NO_OP, s, PAD_RELATION, PAD_RELATION],
    ]
    assert grid.targets.tolist() == [[A, B, D, C], [B, C, A, B], [C, B, A, C], [D, A, D, D]]


def test_action_mask_closes_padding_and_the_answer_edge_only_at_the_query_entity():
    grid = action_grid(4, TINY)
    query = np.array([A, R["grandparent"], C])
    current = np.array([A, B, A, D])
    rel, ent = grid.candidates(current)
    q = np.repeat(query[None], 4, axis=0)
    train = ref.action_mask(rel, ent, current, q[:, 0], q[:, 1], q[:, 2], True)
    assert train.tolist() == [[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 0, 0]]
    test = ref.action_mask(rel, ent, current, q[:, 0], q[:, 1], q[:, 2], False)
    assert test.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]]
    # another answer of the same query relation: only the edge to *this* answer is closed
    other = ref.action_mask(rel[:1], ent[:1], current[:1], q[:1, 0], q[:1, 1], [D], True)
    assert other.tolist() == [[1, 1, 1, 1]]


def test_backends_compute_the_same_mask(backends):
    rng = np.random.default_rng(0)
    rel, ent = rng.integers(0, 6, (40, 7)), rng.integers(0, 5, (40, 7))
    rel[:, 0] = NO_OP
    cur, qe, ans = (rng.integers(0, 5, 40) for _ in range(3))
    qr = rng.integers(3, 6, 40)  # a query relation is a graph relation, never NO_OP
    qe[:20] = cur[:20]  # half the walkers stand at the query's entity
    for training in (True, False):
        expected = ref.action_mask(rel, ent, cur, qe, qr, ans, training)
        assert expected.min() == 0 and expected[:, 0].min() == 1  # some closed; the stay open
        for name, b in backends.items():
            got = b.action_mask(*(b.as_tensor(x) for x in (rel, ent, cur, qe, qr, ans)), training)
            assert to_numpy(got).dtype == bool, name
            assert np.array_equal(to_numpy(got), expected > 0), (name, training)


# ---- the masked log-softmax, the entropy and the loss, by hand ------------------------------
STEP0 = np.array([[1.0, 2.0, 0.0, 5.0]]), np.array([[1.0, 1.0, 1.0, 0.0]])


def test_masked_log_softmax_renormalises_over_the_open_places():
    log_pi = ref.masked_log_softmax(*STEP0)
    norm = 2.0 + math.log(1.0 + math.exp(-1.0) + math.exp(-2.0))  # log(e^1 + e^2 + e^0)
    assert_close(log_pi, [[1.0 - norm, 2.0 - norm, 0.0 - norm, 0.0]], "float64")
    assert norm == pytest.approx(2.40760596, abs=1e-8)  # the closed score 5 counts for nothing
    p = np.exp([1.0 - norm, 2.0 - norm, -norm])
    assert_close(ref.walk_entropy(log_pi, STEP0[1]), [-(p * np.log(p)).sum()], "float64")


def test_walk_loss_by_hand_and_its_gradient():
    # one walk, two hops: A -(parent)-> B -(parent)-> C = the answer; reward 1, baseline 0.25
    step1 = ref.masked_log_softmax(np.array([[0.0, 0.0, 0.0, 9.0]]), np.array([[1, 1, 1, 0.0]]))
    log_pi = np.stack([ref.masked_log_softmax(*STEP0), step1], axis=1)  # (1, 2, 4)
    masks = np.array([[[1, 1, 1, 0], [1, 1, 1, 0]]], float)
    actions, advantage, beta = np.array([[1, 1]]), np.array([0.75]), 0.1
    loss, stats = ref.walk_loss(log_pi, masks, actions, advantage, beta)
    policy = -0.75 * (-0.40760596 + -math.log(3.0)) / 2  # -1/(N T) sum_t A log pi(a_t)
    entropy = (0.83239558 + math.log(3.0)) / 2  # H at A, H at B (uniform over 3)
    assert stats["policy_loss"] == pytest.approx(policy, abs=1e-8)
    assert stats["entropy"] == pytest.approx(entropy, abs=1e-8)
    assert loss == pytest.approx(policy - beta * entropy, abs=1e-8)
    grad = ref.walk_loss_gradient(log_pi, masks, actions, advantage, beta)
    numeric = np.zeros_like(log_pi)
    for index in np.ndindex(log_pi.shape):  # central differences, log pi as free inputs
        e = np.zeros_like(log_pi)
        e[index] = 1e-6
        numeric[index] = (
            ref.walk_loss(log_pi + e, masks, actions, advantage, beta)[0]
            - ref.walk_loss(log_pi - e, masks, actions, advantage, beta)[0]
        ) / 2e-6
    assert_close(grad, numeric, 1e-8)


def test_gru_cell_with_zero_weights_halves_the_state():
    params = {
        k: np.zeros_like(v)
        for k, v in init_walker_params(WalkerConfig(4, 12, 2, 2, 3, 3), 0, "float64").items()
    }
    h = np.array([[1.0, -2.0, 4.0]])
    assert_close(ref.gru_cell(params, np.ones((1, 4)), h), h / 2, "float64")  # z = 1/2, n = 0
    params["history.input_gates.bias"][6:] = 100.0  # n -> tanh(100) = 1
    assert_close(ref.gru_cell(params, np.ones((1, 4)), h), (1 + h) / 2, "float64")


def test_gumbel_choice_never_picks_a_closed_place():
    rng = np.random.default_rng(1)
    log_pi, mask = np.zeros((500, 4)), np.tile([1.0, 0.0, 1.0, 0.0], (500, 1))
    picks = gumbel_choice(log_pi, mask, rng.random((500, 4)))
    assert set(picks) == {0, 2} and 0.4 < np.mean(picks == 0) < 0.6


# ---- both backends against the oracle, and in lockstep --------------------------------------
CONFIG = WalkerConfig(
    num_entities=4,
    num_relations=len(RELATIONS),
    relation_dim=3,
    entity_dim=2,
    history_dim=5,
    mlp_dim=6,
)


def _walk_batch(rng):
    """Six walks of three hops on the 4-entity graph, with random (valid) actions."""
    grid = action_grid(4, TINY)
    queries = np.array(
        [
            (A, R["grandparent"], C),
            (C, R["grandchild"], A),
            (D, R["sibling"], A),
            (B, R["child"], A),
            (A, R["grandparent"], C),
            (A, R["parent"], B),
        ]
    )
    n, hops = len(queries), 3
    ent, rel = [queries[:, 0]], [np.full(n, 2)]
    acts, crel, cent, masks = [], [], [], []
    for _ in range(hops):
        r, e = grid.candidates(ent[-1])
        m = ref.action_mask(r, e, ent[-1], queries[:, 0], queries[:, 1], queries[:, 2], True)
        pick = gumbel_choice(np.zeros_like(m), m, rng.random(m.shape))
        acts.append(pick), crel.append(r), cent.append(e), masks.append(m)
        ent.append(e[np.arange(n), pick]), rel.append(r[np.arange(n), pick])
    walks = {
        "query_relations": queries[:, 1],
        "relations": np.stack(rel, 1),
        "entities": np.stack(ent, 1),
        "actions": np.stack(acts, 1),
        "candidate_relations": np.stack(crel, 1),
        "candidate_entities": np.stack(cent, 1),
        "masks": np.stack(masks, 1),
    }
    rewards = (walks["entities"][:, -1] == queries[:, 2]).astype(float)
    return walks, rewards


def _reference_log_probs(params, walks):
    return ref.walk_log_probs(
        params,
        walks["query_relations"],
        walks["relations"][:, :-1],
        walks["entities"][:, :-1],
        walks["candidate_relations"],
        walks["candidate_entities"],
        walks["masks"],
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_walker_matches_the_reference(backends, dtype):
    walks, _ = _walk_batch(np.random.default_rng(2))
    tolerance = "float64" if dtype == "float64" else "float32_layer"
    for name, b in backends.items():
        walker = b.KGWalker(CONFIG, dtype=dtype, seed=4)
        params = {k: v.astype(np.float64) for k, v in b.export_params(walker).items()}
        assert set(params) == set(init_walker_params(CONFIG))  # canonical names
        expected = _reference_log_probs(params, walks)
        ids = [
            b.as_tensor(np.asarray(walks[k], np.int64))
            for k in (
                "query_relations",
                "relations",
                "entities",
                "candidate_relations",
                "candidate_entities",
            )
        ]
        got = b.walk_log_probs(
            walker,
            ids[0],
            ids[1][:, :-1],
            ids[2][:, :-1],
            ids[3],
            ids[4],
            b.as_tensor(walks["masks"], dtype),
        )
        assert_close(to_numpy(got), expected, tolerance, name=f"{name} log pi")
        # the inference step (mask computed inside) gives the first step's log pi
        log_pi, mask, _ = b.inference_step(
            walker,
            np.zeros((6, 5)),
            walks["relations"][:, 0],
            walks["entities"][:, 0],
            walks["query_relations"],
            walks["candidate_relations"][:, 0],
            walks["candidate_entities"][:, 0],
            walks["entities"][:, 0],
            np.array([C, A, A, A, C, B]),
            True,
        )
        assert_close(mask, walks["masks"][:, 0], "exact", name=f"{name} mask")
        assert_close(log_pi, expected[:, 0], tolerance, name=f"{name} step 0")


def test_walk_loss_and_its_gradient_match_the_reference(backends):
    rng = np.random.default_rng(5)
    walks, rewards = _walk_batch(rng)
    log_pi = _reference_log_probs(init_walker_params(CONFIG, 1, "float64"), walks)
    advantages = rewards - 0.3
    expected, stats = ref.walk_loss(log_pi, walks["masks"], walks["actions"], advantages, 0.05)
    gradient = ref.walk_loss_gradient(log_pi, walks["masks"], walks["actions"], advantages, 0.05)
    for name, b in backends.items():

        def loss_fn(lp, b=b):
            return b.walk_loss(
                lp,
                b.as_tensor(walks["masks"]),
                b.as_tensor(walks["actions"]),
                b.as_tensor(advantages),
                0.05,
            )[0]

        loss, _, grads = b.loss_and_gradients(b.ValueNet(1, 1, "float64"), loss_fn, log_pi)
        assert_close(loss, expected, "float64", name=f"{name} loss")
        assert_close(grads[0], gradient, "float64", name=f"{name} gradient")
        _, got = b.walk_loss(
            b.as_tensor(log_pi),
            b.as_tensor(walks["masks"]),
            b.as_tensor(walks["actions"]),
            b.as_tensor(advantages),
            0.05,
        )
        assert to_numpy(got["entropy"]) == pytest.approx(stats["entropy"], abs=1e-10)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_learners_in_lockstep_for_three_updates(backends, dtype):
    learners = {
        name: b.KGLearner(
            b.KGWalker(CONFIG, dtype=dtype, seed=6), learning_rate=0.05, entropy_coef=0.02
        )
        for name, b in backends.items()
    }
    tolerance = "float64" if dtype == "float64" else "float32_model"
    rng = np.random.default_rng(7)
    for update in range(3):
        walks, rewards = _walk_batch(rng)
        params = backends["torch"].export_params(learners["torch"].walker)
        log_pi = _reference_log_probs({k: v.astype(np.float64) for k, v in params.items()}, walks)
        expected, _ = ref.walk_loss(log_pi, walks["masks"], walks["actions"], rewards - 0.5, 0.02)
        stats = {name: learner.update(walks, rewards - 0.5) for name, learner in learners.items()}
        for name in learners:
            assert stats[name]["loss"] == pytest.approx(
                expected, abs=1e-10 if dtype == "float64" else 1e-5
            ), (name, update)
        after = {
            name: backends[name].export_params(learner.walker) for name, learner in learners.items()
        }
        for key, value in after["torch"].items():
            assert_close(after["tf"][key], value, tolerance, name=f"{key} after {update + 1}")
    assert not np.allclose(
        after["torch"]["policy_out.kernel"],
        init_walker_params(CONFIG, 6, dtype)["policy_out.kernel"],
    )


# ---- hand cases from mutation testing of the float64 oracle (MUTATION.md) ------------------


def test_moving_average_baseline_by_hand() -> None:
    """b <- (1 - lambda) b + lambda mean(R): b = 0.2, R = 1, 0, 1, 1, lambda = 0.1 gives
    0.9 x 0.2 + 0.1 x 0.75 = 0.255; lambda = 1 forgets b, lambda = 0 keeps it."""
    rewards = np.array([1.0, 0.0, 1.0, 1.0])
    assert ref.moving_average_baseline(0.2, rewards, 0.1) == pytest.approx(0.255, abs=1e-15)
    assert ref.moving_average_baseline(0.2, rewards, 1.0) == 0.75
    assert ref.moving_average_baseline(0.2, rewards, 0.0) == 0.2
