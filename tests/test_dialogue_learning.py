"""Dialogue RL learns (issue 18 item 1): seeded, a fixed number of updates, both backends.

The headline (Li et al. 2016, outline 6.1.3): policy gradient in self-play lowers the share of
dull replies ("i don't know") the maximum-likelihood chatbot gives. A 1-block chatbot (d 48)
and its backward model are trained 400 steps by maximum likelihood in torch once (module
fixture; the default settings otherwise); greedy self-play from the held-out openings is then
dull on 0.44 of its turns. Each backend takes 10 policy-gradient updates from those weights;
the dull-reply rate must fall by at least 0.25, and the ease of answering r1 and information
flow r2 of sampled turns (same sampling noise before and after: common random numbers) must
rise. Measured, torch and tf alike (to 1e-8): dull 0.44 -> 0.05 (0.00 after 20 updates);
r1 0.59 -> 0.75, r2 0.58 -> 0.69, while the coherence r3 (scored by the frozen MLE chatbot and
the backward model) falls -1.39 -> -1.72, so the combined r = 0.25 r1 + 0.25 r2 + 0.5 r3 of
2-turn samples falls too (-0.41 -> -0.50): the policy leaves the MLE model's replies, which
r3 scores; the training objective is the return of whole conversations that end at their
first dull turn, not this per-turn mean. Not asserted, said.
Smaller chatbots do not show it: with d 32 (or 250 MLE steps, or batches of 32) the MLE model
is dull on 0.8-0.98 of its turns and 10-20 updates leave it at 0.15-1.0.
"""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.cases.dialogue.train import DialogueRun, DialogueSettings

SETTINGS = dict(n_layer=1, rl_updates=10, eval_every=1000)


@pytest.fixture(scope="module")
def pretrained(backends) -> dict:
    """The MLE phase, once, in torch: both models' weights and the MLE chatbot's figures."""
    settings = DialogueSettings(**SETTINGS)
    run = DialogueRun(backends["torch"], settings)
    while run.updates < settings.mle_steps:
        run.step()
    b = backends["torch"]
    return {"model": b.export_params(run.model), "backward": b.export_params(run.backward),
            "dull_rate": run.heldout()["dull_rate"]}


@pytest.mark.parametrize("name", ["torch", "tf"])
def test_policy_gradient_lowers_the_dull_reply_rate(backends, pretrained, name):
    b = backends[name]
    settings = DialogueSettings(**SETTINGS)
    run = DialogueRun(b, settings)
    b.import_params(run.model, pretrained["model"])
    b.import_params(run.backward, pretrained["backward"])
    run.updates = settings.mle_steps  # phase 1 done (in torch, by the fixture)
    before = run.heldout()["dull_rate"]
    assert before == pytest.approx(pretrained["dull_rate"], abs=0.05), (name, before)
    assert 0.3 < before < 0.7, before  # the MLE chatbot is dull often, not always
    run._switch()  # the rewards' frozen MLE chatbot, as the first RL step would make it
    reward_before = [run.sampled_reward(seed=k) for k in range(2)]
    while not run.finished():
        run.step()
    after = run.heldout()["dull_rate"]
    reward_after = [run.sampled_reward(seed=k) for k in range(2)]
    assert after < before - 0.25, (name, before, after)
    for key in ("r1", "r2"):  # ease of answering and information flow rise
        was, now = (np.mean([r[key] for r in rs]) for rs in (reward_before, reward_after))
        assert now > was + 0.05, (name, key, was, now)
