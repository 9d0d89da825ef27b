"""The recommender learns from logged data (issue 19 part 1, outline 6.2.3), seeded, on the
headline metric: the held-out users' top-K reward (K = 4) of the learned slate, on the simulator.

A short configuration: 1000 logged sessions, a supervised warm-up of 60 updates shared by both
methods (``RecommenderRun.branch``), then 100 updates of each; seed 0, one thread. Measured in
torch (seeds 0-3): warm-up 0.34 / 0.51 / 0.31 / 0.49, REINFORCE without correction 0.31 / 0.46
/ 0.34 / 0.52 (it learns the logging policy's popularity bias, pi ~ beta p), top-K corrected
0.47 / 0.61 / 0.46 / 0.60. The same in TensorFlow from the same weights and batches."""

from __future__ import annotations

import pytest

from duetrl.core.cases.recommender.train import RecommenderRun, RecommenderSettings

SHORT = dict(sessions=1000, pretrain_steps=60, updates=100, eval_users=300, eval_every=1000)


@pytest.mark.parametrize("name", ["torch", "tf"])
def test_top_k_correction_beats_uncorrected_reinforce_on_the_slate(backends, name):
    warm = RecommenderRun(backends[name], RecommenderSettings(method="supervised", **SHORT))
    while warm.updates < SHORT["pretrain_steps"]:
        warm.step()
    warm_up = warm.figures()["top_k_reward"]
    runs = {}
    for method in ("reinforce", "top_k"):
        runs[method] = warm.branch(method)
        while not runs[method].finished():
            runs[method].step()
    got, uncorrected = (runs[m].figures()["top_k_reward"] for m in ("top_k", "reinforce"))
    assert got > uncorrected + 0.08, (got, uncorrected)
    assert got > warm_up + 0.05, (got, warm_up)
    # uncorrected REINFORCE drifts towards what the logging policy shows: popular items
    popularity = warm.catalogue.popularity
    tokens = warm.heldout_tokens[:200]
    pi = {m: r.probabilities(tokens)[0][:, -1] for m, r in runs.items()}
    assert (pi["reinforce"] @ popularity).mean() > (pi["top_k"] @ popularity).mean() + 0.2
