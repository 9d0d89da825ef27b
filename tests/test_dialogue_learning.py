"""Dialogue RL learns (issue 18 item 1): seeded, a fixed number of updates, both backends.

A tiny chatbot (and its backward model) is pretrained 150 steps by maximum likelihood in torch
once (module fixture); each backend then takes 20 policy-gradient updates in self-play from
those weights. The combined reward r = 0.25 r1 + 0.25 r2 + 0.5 r3 of sampled self-play turns
from the held-out openings, with the same sampling noise before and after (common random
numbers, three noise seeds), must rise by 0.2. Measured in torch: -2.08 -> -1.66; with the
advantage's sign flipped -2.08 -> -4.91; a learner that does not step leaves it where it was.
(At this size the model's samples are often ungrammatical, and RL first learns to avoid
those; the dull-reply rate falls with the benchmark's larger model: benchmarks/dialogue.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.cases.dialogue.train import DialogueRun, DialogueSettings

SETTINGS = dict(dialogues=400, n_layer=1, n_head=2, n_embd=32, mle_steps=150, batch_size=32,
                rl_updates=20, conversations=16, start_turns=2, max_turns=2, start_tokens=8,
                rl_learning_rate=1e-3, eval_conversations=16, eval_turns=2, eval_every=1000)


@pytest.fixture(scope="module")
def pretrained(backends) -> dict:
    """The MLE phase, once, in torch: the chatbot's and the backward model's weights."""
    run = DialogueRun(backends["torch"], DialogueSettings(**SETTINGS))
    for _ in range(SETTINGS["mle_steps"]):
        run.step()
    b = backends["torch"]
    return {"model": b.export_params(run.model), "backward": b.export_params(run.backward)}


@pytest.mark.parametrize("name", ["torch", "tf"])
def test_policy_gradient_raises_the_combined_reward(backends, pretrained, name):
    b = backends[name]
    run = DialogueRun(b, DialogueSettings(**SETTINGS))
    b.import_params(run.model, pretrained["model"])
    b.import_params(run.backward, pretrained["backward"])
    run.updates = SETTINGS["mle_steps"]  # phase 1 done (in torch, by the fixture)
    run._switch()  # the rewards' frozen MLE chatbot, as the first RL step would make it
    before = np.mean([run.sampled_reward(seed=k)["reward"] for k in range(3)])
    while not run.finished():
        run.step()
    after = np.mean([run.sampled_reward(seed=k)["reward"] for k in range(3)])
    assert after > before + 0.2, (before, after)
