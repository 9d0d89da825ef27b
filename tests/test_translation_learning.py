"""SCST learns, in both backends (issue 18 item 3): seeded, the figure after a fixed number of
updates.

A small model is trained by maximum likelihood in torch once (module fixture); each backend
then takes the same self-critical updates from those weights on one fixed batch of training
sources (the sampling noise comes from core, so both draw the same translations while their
weights agree). SCST maximises the expected reward of the policy's own translations: after 10 updates
E_y~pi[BLEU(y, ref)] on those sources (fixed evaluation noise) and the greedy held-out corpus
BLEU must both rise by margins a broken learner does not reach (the advantage's sign flipped:
E[r] falls; zero advantages: nothing moves; both checked here in torch). Measured: E[r] x 100
27.1 -> 28.5 (flipped 25.5), held-out BLEU 44.7 -> 46.5 (flipped 44.8, zero 44.7).
"""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.cases.translation.bleu import corpus_bleu
from duetrl.core.cases.translation.evaluation import decode
from duetrl.core.cases.translation.train import TranslationRun, TranslationSettings

SETTINGS = TranslationSettings(train_pairs=1000, heldout_pairs=64, n_layer=1, n_head=2,
                               n_embd=32, mle_steps=1000, batch_size=32, learning_rate=3e-3,
                               warmup_steps=20, scst_updates=0, eval_every=1000, seed=0)
SOURCES, SAMPLES, UPDATES, LEARNING_RATE = 32, 16, 10, 1e-4  # 512 samples an update


@pytest.fixture(scope="module")
def mle(backends):
    """The maximum-likelihood phase, once, in torch: its canonical weights and figures."""
    run = TranslationRun(backends["torch"], SETTINGS)
    while not run.finished():
        run.step()
    return backends["torch"].export_params(run.model), run.heldout()


def scst(backend, params, advantage_sign: float = 1.0) -> tuple[float, float, TranslationRun]:
    """UPDATES self-critical updates on one fixed batch of training sources; (the expected
    reward E_y~pi[r(y)] x 100 of their sampled translations before, after, the run).
    ``advantage_sign`` -1 or 0 makes the broken learners."""
    run = TranslationRun(backend, SETTINGS)
    backend.import_params(run.model, params)
    learner, vocab = backend.SCSTLearner(run.model, LEARNING_RATE), run.vocab
    pairs = run.corpus.train[:SOURCES]
    sources, references = [s for s, _ in pairs], [" ".join(t) for _, t in pairs]

    def greedy_bleu() -> tuple[float, list[str]]:
        hypotheses = decode(backend, run.model, vocab, sources)[1]
        return corpus_bleu(hypotheses, references), hypotheses

    def expected_reward() -> float:  # E_y~pi[r(y)] x 100, estimated with fixed noise
        sampled = decode(backend, run.model, vocab, sources, greedy=False, seed=999,
                         repeat=SAMPLES)[1]
        return 100 * float(run.scores(sampled, list(np.repeat(references, SAMPLES))).mean())

    before, _ = greedy_bleu()
    expected_before = expected_reward()
    for u in range(UPDATES):
        _, greedy = greedy_bleu()
        out, sampled, output_mask = decode(backend, run.model, vocab, sources, greedy=False,
                                           seed=u, repeat=SAMPLES)
        greedy_rewards = run.scores(greedy, references)
        sample_rewards = run.scores(sampled, list(np.repeat(references, SAMPLES)))
        baseline = np.repeat(greedy_rewards, SAMPLES)  # A = sign (r - b): the mutants
        sample_rewards = baseline + advantage_sign * (sample_rewards - baseline)
        mask = np.zeros((len(sampled), vocab.block_size - 1))
        mask[:, vocab.max_source:] = output_mask
        learner.update(out.tokens, mask, sample_rewards, greedy_rewards)
    return expected_before, expected_reward(), run


@pytest.mark.parametrize("name", ["torch", "tf"])
def test_scst_raises_its_objective_and_heldout_bleu(backends, mle, name):
    params, mle_heldout = mle
    before, after, run = scst(backends[name], params)
    assert after > before + 0.7, f"{name}: E[r] x 100 on the trained sources {before:.2f} -> {after:.2f}"
    heldout = run.heldout()["bleu"]
    assert heldout > mle_heldout["bleu"] + 0.5, f"{name}: held-out BLEU {mle_heldout['bleu']:.2f} -> {heldout:.2f}"


def test_broken_learners_do_not_pass(backends, mle):
    params, mle_heldout = mle
    for sign in (-1.0, 0.0):  # the advantage's sign flipped; no advantage at all
        before, after, run = scst(backends["torch"], params, sign)
        assert not after > before + 0.7, f"advantage x {sign}: E[r] {before:.2f} -> {after:.2f}"
        assert not run.heldout()["bleu"] > mle_heldout["bleu"] + 0.5, f"advantage x {sign}"
