"""Knowledge-graph reasoning (outline 6.3.3): filtered ranks with ties by hand, beam search
against the exhaustive sum over walks, the random-walk baseline, rules and their confidence,
the trainer's resume, the CLI and its bad input."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from duetrl.core.cases.kg.evaluate import beam_search, filtered_ranks, ranking_metrics
from duetrl.core.cases.kg.graph import RELATIONS, tiny_graph
from duetrl.core.cases.kg.path_ranking import random_walk_scores
from duetrl.core.cases.kg.rules import path_shares, rule_confidence, rule_text
from duetrl.core.cases.kg.train import KGRun, KGSettings
from duetrl.core.cases.kg.walk import action_grid
from duetrl.core.cli import main
from duetrl.core.interfaces.kg import START, WalkerConfig
from duetrl.core.reference import kg as ref
from duetrl.core.run import run
from duetrl.core.run.loop import read_log

TINY_GRAPH = tiny_graph()
TINY = TINY_GRAPH.facts
A, B, C, D = 0, 1, 2, 3  # ada, ben, cleo, dan
R = {name: i for i, name in enumerate(RELATIONS)}


# ---- ranks, hits@k, MRR -----------------------------------------------------------------------
def test_filtered_rank_removes_the_other_answers_and_puts_ties_at_their_mean_place():
    scores = np.array(
        [
            [0.9, 0.5, 0.5, 0.5, 0.7, -np.inf],
            [0.9, 0.5, 0.5, 0.5, 0.7, -np.inf],
            [0.1, 0.2, 0.3, 0.4, -np.inf, -np.inf],
        ]
    )
    queries = np.array([[0, 7, 2], [0, 7, 4], [1, 8, 5]])
    known = {(0, 7): {2, 4}, (1, 8): {5}}
    ranks = filtered_ranks(scores, queries, known)
    # query 0: entity 4 (another answer, 0.7) removed; 0 is above; 1, 3 tie with 2: 2 + 2/2 = 3
    # query 1: entity 2 removed; 0 is above: rank 2
    # query 2: unreached, tied with entity 4 (-inf): 4 above, 1 tie: 5 + 1/2
    assert ranks.tolist() == [3.0, 2.0, 5.5]
    metrics = ranking_metrics(ranks)
    assert metrics == pytest.approx(
        {"hits@1": 0.0, "hits@3": 2 / 3, "hits@10": 1.0, "mrr": (1 / 3 + 1 / 2 + 1 / 5.5) / 3}
    )
    assert ranking_metrics(np.array([1.0, 1.5]))["hits@1"] == 0.5  # a tie for first is no hit
    with pytest.raises(ValueError, match="scores: expected one row per query"):
        filtered_ranks(scores[:2], queries, known)
    with pytest.raises(ValueError, match="ranks: expected at least one query"):
        ranking_metrics(np.array([]))


def test_beam_search_wide_enough_sums_every_walk(backend):
    config = WalkerConfig(4, len(TINY_GRAPH.relations), 3, 2, 4, 5)
    walker = backend.KGWalker(config, dtype="float64", seed=2)
    params = backend.export_params(walker)
    grid = action_grid(4, TINY)
    query = np.array([[A, R["grandparent"], C], [D, R["cousin"], B]])
    hops = 2
    beams = beam_search(backend, walker, grid, query, hops, width=grid.width**hops)
    for i, (head, relation, _) in enumerate(query):
        mass = np.zeros(4)
        for places in itertools.product(range(grid.width), repeat=hops):  # every walk
            here, previous, hidden, logp = head, START, np.zeros((1, 4)), 0.0
            for k in places:
                rel, ent = grid.candidates(np.array([here]))
                mask = ref.action_mask(rel, ent, [here], [head], [relation], [0], False)
                if mask[0, k] == 0:
                    break
                log_pi, hidden = ref.walker_step(
                    params, hidden, [previous], [here], [relation], rel, ent, mask
                )
                logp, here, previous = logp + log_pi[0, k], ent[0, k], rel[0, k]
            else:
                mass[here] += np.exp(logp)
        assert mass.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(np.exp(beams.scores[i]), mass, atol=1e-10)
    narrow = beam_search(backend, walker, grid, query, hops, width=2)
    assert np.isfinite(narrow.scores).sum(axis=1).max() <= 2  # at most 2 walks kept
    with pytest.raises(ValueError, match="width: expected an int >= 1, got 0"):
        beam_search(backend, walker, grid, query, hops, width=0)


def test_random_walk_scores_are_the_share_of_walks_ending_on_each_entity():
    grid = action_grid(4, TINY)
    scores = random_walk_scores(grid, np.array([[D, 0, 0]] * 2), 1, 4000, np.random.default_rng(0))
    assert scores.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert scores[0] == pytest.approx([0.5, 0, 0, 0.5], abs=0.03)  # D: stay, or go to A
    assert scores[0, B] == scores[0, C] == 0.0


# ---- rules --------------------------------------------------------------------------------------
def test_rules_read_and_their_confidence_on_the_graph():
    p, g, s = R["parent"], R["grandparent"], R["sibling"]
    assert rule_text(TINY_GRAPH.relations, g, (p, p)) == "grandparent = parent . parent"
    assert rule_text(TINY_GRAPH.relations, g, ()) == "grandparent = (stay)"
    assert rule_confidence(TINY_GRAPH, g, (p, p)) == 1.0  # A -> B -> C, and C is A's
    assert rule_confidence(TINY_GRAPH, g, (p,)) == 0.0  # A -> B, B -> C: neither a grandparent
    assert rule_confidence(TINY_GRAPH, g, (s, p)) == 0.0  # D -> A -> B: B is not D's (here)
    assert np.isnan(rule_confidence(TINY_GRAPH, g, (R["cousin"],)))  # links nothing


def test_path_shares_average_the_walks_probability_over_queries():
    from duetrl.core.cases.kg.evaluate import Beams

    p, n = R["parent"], 1  # NO_OP = 1: stays are left out of a path
    beams = Beams(
        np.zeros((2, 4)),
        np.array([[[p, p], [p, n]], [[n, p], [p, p]]]),
        np.log(np.array([[0.6, 0.4], [0.3, 0.5]])),
    )
    shares = path_shares(beams, np.array([[A, 7, C], [B, 7, D]]))
    assert shares == {7: pytest.approx({(p, p): (0.6 + 0.5) / 2, (p,): (0.4 + 0.3) / 2})}


# ---- the trainer, the run loop and the CLI ----------------------------------------------------
TINY_RUN = dict(
    families=3,
    updates=4,
    batch_queries=8,
    rollouts=2,
    relation_dim=4,
    entity_dim=4,
    history_dim=6,
    mlp_dim=6,
    beam_width=4,
    random_walks=8,
    eval_every=2,
)


def test_settings_refuse_bad_values():
    with pytest.raises(ValueError, match="rollouts: expected an int >= 1, got 0"):
        KGSettings(rollouts=0)
    with pytest.raises(ValueError, match=r"baseline_rate: expected a number in \(0, 1\]"):
        KGSettings(baseline_rate=0.0)


def test_resumed_run_equals_the_uninterrupted_one(backends, tmp_path):
    backend = backends["torch"]  # the trainer is framework-neutral; tf's step: test_kg_learning
    whole = run(KGRun(backend, KGSettings(**TINY_RUN)), tmp_path / "whole", quiet=True)
    run(KGRun(backend, KGSettings(**{**TINY_RUN, "updates": 2})), tmp_path / "cut", quiet=True)
    resumed = run(KGRun(backend, KGSettings(**TINY_RUN)), tmp_path / "cut", resume=True, quiet=True)
    assert resumed["updates"] == whole["updates"] == 4
    rows = [read_log(tmp_path / name / "log.csv") for name in ("whole", "cut")]
    for key in ("loss", "reward", "baseline", "heldout_mrr"):
        assert [r[key] for r in rows[0]] == [r[key] for r in rows[1]], key
    assert resumed["mrr"] == whole["mrr"] and resumed["rules"] == whole["rules"]
    assert 0 <= whole["hits_at_1"] <= whole["hits_at_3"] <= whole["hits_at_10"] <= 1
    with pytest.raises(Exception, match="other settings.*rollouts"):
        run(
            KGRun(backend, KGSettings(**{**TINY_RUN, "rollouts": 3})),
            tmp_path / "cut",
            resume=True,
            quiet=True,
        )


def test_cli_train_json_eval_and_ask(tmp_path, capsys):
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY_RUN.items()]
    out = tmp_path / "kg"
    assert main(["kg", "train", "--out", str(out), "--json", "--quiet", *flags]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"hits_at_1", "mrr", "random_walk_hits_at_1", "rules", "recovered_facts"} <= set(summary)
    assert (out / "kg.png").is_file() and (out / "checkpoint.safetensors").is_file()
    checkpoint = str(out / "checkpoint.safetensors")
    assert main(["kg", "eval", checkpoint]) == 0
    assert "random walks" in capsys.readouterr().out
    assert main(["kg", "ask", checkpoint, "ada_0", "grandchild", "--json"]) == 0
    answers = json.loads(capsys.readouterr().out)["answers"]
    assert answers and all(a["fact"] in ("in the graph", "held out", "no") for a in answers)
    assert main(["kg", "ask", checkpoint, "nobody", "grandchild"]) == 2
    assert "entity: expected one of the graph's" in capsys.readouterr().err
    assert main(["kg", "ask", checkpoint, "ada_0", "uncle"]) == 2
    assert "relation: expected a query relation" in capsys.readouterr().err


def test_benchmark_script_runs_on_a_tiny_graph():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent.parent / "benchmarks" / "kg.py"
    spec = importlib.util.spec_from_file_location("bench_kg", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(["--backends", "torch", "--updates", "2", "--families", "3", "--json"])
    assert results["torch"]["wall_s"] > 0 and 0 <= results["torch"]["hits_at_1"] <= 1
    assert set(results["torch"]["top_rules"]) <= {
        "grandparent",
        "grandchild",
        "aunt_or_uncle",
        "niece_or_nephew",
        "cousin",
    }
