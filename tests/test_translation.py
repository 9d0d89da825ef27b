"""Translation with a BLEU reward (issue 18 item 3, outline 6.3.2): the language pair, sacrebleu's
reward, the SCST advantage and loss against the float64 reference in both backends (with the
mutants a test must catch), the learner in lockstep, bad input, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from duetrl.core.cases.translation.bleu import (
    bleu_by_length,
    check_rewards,
    corpus_bleu,
    sentence_bleu,
)
from duetrl.core.cases.translation.language import (
    Vocabulary,
    make_corpus,
    sentence_pair,
    word_by_word,
)
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.reference import rlhf_policy
from duetrl.core.reference import scst as ref
from duetrl.core.tolerances import assert_close, to_numpy

VOCAB = Vocabulary()


# ---- the language pair ----------------------------------------------------------------------
def test_the_pair_reorders_and_agrees_so_copying_word_by_word_fails():
    rng = np.random.default_rng(3)
    pairs = [sentence_pair(rng) for _ in range(200)]
    for src, tgt in pairs:
        assert tgt[-1] in VOCAB.target and src[0] in ("the", "a", "some")
        verb = next(w for w in src if any(w in v[:2] for v in _verbs()))
        plural_subject = verb in {v[1] for v in _verbs()}
        assert tgt[-1] in ({v[3] for v in _verbs()} if plural_subject else {v[2] for v in _verbs()})
    src, tgt = ["the", "red", "cows", "see", "a", "dog"], ["las", "vacas", "rojas", "un", "perro", "ven"]
    assert " ".join(word_by_word(src)) == "el rojo vacas ven un perro"  # order and agreement wrong
    assert sentence_bleu([" ".join(word_by_word(src))], [" ".join(tgt)])[0] < 0.2
    corpus = make_corpus(50, 100, seed=1)
    copy = corpus_bleu([" ".join(word_by_word(s)) for s, _ in corpus.heldout],
                       [" ".join(t) for _, t in corpus.heldout])
    assert copy < 10  # many words are right, but hardly a 3-gram: order and endings are not


def _verbs():
    from duetrl.core.cases.translation.language import VERBS
    return VERBS


def test_the_corpus_is_seeded_and_holds_out_unseen_sources():
    a, b = make_corpus(300, 50, seed=4), make_corpus(300, 50, seed=4)
    assert a == b and a != make_corpus(300, 50, seed=5)
    assert not {s for s, _ in a.heldout} & {s for s, _ in a.train}
    assert max(len(s) for s, _ in a.train) <= VOCAB.max_source
    assert max(len(t) for _, t in a.train) < VOCAB.max_target


def test_rows_put_sep_in_one_column_and_weigh_the_target_and_eos_only():
    pairs = [(("the", "cat", "sees", "a", "dog"), ("el", "gato", "un", "perro", "ve"))]
    tokens, weights = VOCAB.rows(pairs)
    s = VOCAB.max_source
    assert tokens.shape == (1, VOCAB.block_size) and weights.shape == (1, VOCAB.block_size - 1)
    assert tokens[0, s] == VOCAB.sep and (tokens[0, : s - 5] == VOCAB.pad).all()
    assert [VOCAB.words[t] for t in tokens[0, s + 1 : s + 7]] == ["el", "gato", "un", "perro", "ve", "<eos>"]
    assert np.flatnonzero(weights[0]).tolist() == list(range(s, s + 6))  # 5 words and <eos>
    sentences, mask = VOCAB.completion(tokens[:, s + 1 :])
    assert sentences == [["el", "gato", "un", "perro", "ve"]] and mask[0].sum() == 6


# ---- sacrebleu's reward and metric -------------------------------------------------------------
def test_bleu_comes_from_sacrebleu():
    import sacrebleu

    hyp, refs = ["el gato un perro ve", "la vaca ve"], ["el gato un perro ve", "la vaca un gato ve"]
    assert_close(sentence_bleu(hyp, refs),
                 [sacrebleu.sentence_bleu(h, [r]).score / 100 for h, r in zip(hyp, refs)], "float64")
    assert sentence_bleu(hyp[:1], refs[:1])[0] == pytest.approx(1.0)
    assert corpus_bleu(hyp, refs) == pytest.approx(sacrebleu.corpus_bleu(hyp, [refs]).score)
    by_length = bleu_by_length(hyp, refs, [5, 9])
    assert set(by_length) == {"5-7", "8-10"} and by_length["5-7"] == pytest.approx(100.0)


# ---- the SCST advantage and loss: reference, test vector, mutants --------------------------------
SAMPLE, GREEDY = np.array([0.5, 0.2, 0.9, 0.1]), np.array([0.4, 0.3])


def test_scst_advantage_test_vector():
    assert_close(ref.scst_advantages(SAMPLE, GREEDY), [0.1, -0.2, 0.6, -0.2], "float64")
    assert_close(ref.scst_advantages(SAMPLE, SAMPLE), np.zeros(4), "float64")  # k = 1


def _case(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, m, t = 6, 2, 7
    lengths = rng.integers(1, t + 1, n)
    mask = (np.arange(t)[None] < lengths[:, None]).astype(float)  # ragged, right-padded
    return {"logp": -rng.random((n, t)) * 2, "sample": rng.random(n), "greedy": rng.random(m),
            "mask": mask}


# what a test must catch: each is a plausible bug of an SCST implementation
MUTANTS = {
    "baseline from the sampled sequence": lambda lp, s, g, m: ref.scst_loss(
        lp, s, s.reshape(len(g), -1).mean(1), m),
    "padding counted": lambda lp, s, g, m: ref.scst_loss(lp, s, g, np.ones_like(m)),
    "advantage sign": lambda lp, s, g, m: -ref.scst_loss(lp, s, g, m),
}


def test_the_reference_loss_is_the_hand_formula_and_its_gradient_is_autograds_target():
    c = _case()
    a = c["sample"] - np.repeat(c["greedy"], 3)
    expected = -np.mean([a[i] * c["logp"][i, c["mask"][i] > 0].sum() for i in range(6)])
    assert ref.scst_loss(c["logp"], c["sample"], c["greedy"], c["mask"]) == pytest.approx(expected, abs=1e-12)
    grad, h = np.zeros_like(c["logp"]), 1e-6
    for index in np.ndindex(grad.shape):
        up, down = c["logp"].copy(), c["logp"].copy()
        up[index] += h
        down[index] -= h
        grad[index] = (ref.scst_loss(up, c["sample"], c["greedy"], c["mask"])
                       - ref.scst_loss(down, c["sample"], c["greedy"], c["mask"])) / (2 * h)
    assert_close(ref.scst_loss_gradient(c["logp"], c["sample"], c["greedy"], c["mask"]), grad, 1e-8)  # central differences: ~h^2


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_each_mutant_is_caught_by_the_reference(mutant):
    c = _case()
    right = ref.scst_loss(c["logp"], c["sample"], c["greedy"], c["mask"])
    wrong = MUTANTS[mutant](c["logp"], c["sample"], c["greedy"], c["mask"])
    assert abs(wrong - right) > 1e-3, f"the test case cannot tell {mutant!r} from SCST"


def _tensor(backend, array):
    return backend.as_tensor(np.asarray(array))


def test_backends_match_the_reference_loss_advantage_and_gradient(backends, dtype):
    c = _case(1)
    expected = ref.scst_loss(c["logp"], c["sample"], c["greedy"], c["mask"])
    expected_grad = ref.scst_loss_gradient(c["logp"], c["sample"], c["greedy"], c["mask"])
    tolerance = "float64" if dtype == "float64" else "float32_layer"
    for name, b in backends.items():
        inputs = [c[k].astype(dtype) for k in ("logp", "sample", "greedy", "mask")]
        assert_close(to_numpy(b.scst_advantages(_tensor(b, inputs[1]), _tensor(b, inputs[2]))),
                     ref.scst_advantages(c["sample"], c["greedy"]), tolerance, name=f"{name} A")
        loss, _, grads = b.loss_and_gradients(b.GPT(_tiny_config()), b.scst_loss, *inputs)
        assert_close(loss, expected, tolerance, name=f"{name} loss")
        assert_close(grads[0], expected_grad, tolerance, name=f"{name} dL/dlogp")
        for mutant, fn in MUTANTS.items():  # the backend is none of the mutants
            assert abs(fn(*[c[k] for k in ("logp", "sample", "greedy", "mask")]) - loss) > 1e-3, mutant


def _tiny_config() -> GPTConfig:
    return GPTConfig(vocab_size=VOCAB.size, block_size=VOCAB.block_size, n_layer=1, n_head=2,
                     n_embd=16)


@pytest.fixture(scope="module")
def sampled(backends):
    """A batch of sampled translations (torch decodes; the same tokens feed both learners):
    4 sources x 2 samples, their output mask, rewards and greedy rewards."""
    from duetrl.core.cases.translation.evaluation import decode

    sources = [s for s, _ in make_corpus(4, 1, seed=0).train]
    model = backends["torch"].GPT(_tiny_config(), seed=5)
    out, hyps, out_mask = decode(backends["torch"], model, VOCAB, sources, greedy=False, seed=2,
                                 repeat=2)
    mask = np.zeros((len(hyps), VOCAB.block_size - 1))
    mask[:, VOCAB.max_source:] = out_mask
    assert 0 < out_mask.sum() < out_mask.size  # ragged: some stop early, padding is masked
    return out.tokens, mask, np.random.default_rng(0).random(8), np.array([0.3, 0.5, 0.2, 0.6])


def test_the_learner_loss_is_the_reference_on_a_float64_gpt(backends, sampled):
    tokens, mask, sample, greedy = sampled
    for name, b in backends.items():
        model = b.GPT(_tiny_config(), dtype="float64", seed=3)
        logp = rlhf_policy.token_log_probs(b.export_params(model), tokens, _tiny_config())
        stats = b.SCSTLearner(model, learning_rate=1e-3).update(tokens, mask, sample, greedy)
        assert stats["loss"] == pytest.approx(ref.scst_loss(logp, sample, greedy, mask), abs=1e-10), name
        assert stats["positive"] == pytest.approx(np.mean(ref.scst_advantages(sample, greedy) > 0))


def test_the_learner_steps_in_lockstep_in_both_backends(backends, sampled):
    models = {n: b.GPT(_tiny_config(), seed=5) for n, b in backends.items()}
    learners = {n: b.SCSTLearner(models[n], learning_rate=1e-3) for n, b in backends.items()}
    for _ in range(3):
        stats = {n: learners[n].update(*sampled) for n in backends}
        assert stats["torch"]["loss"] == pytest.approx(stats["tf"]["loss"], abs=1e-4)
    params = {n: b.export_params(models[n]) for n, b in backends.items()}
    for key, value in params["torch"].items():
        assert_close(params["tf"][key], value, "float32_model", name=key)


# ---- bad input: one clear message each ---------------------------------------------------------
def test_bad_sentences_and_references_are_named():
    with pytest.raises(ValueError, match="sentence: expected a source sentence of 1 to 16 words, got an empty one"):
        VOCAB.check_sentence("  ", "source", "sentence")
    with pytest.raises(ValueError, match=r"reference: expected words of the target language, got \['the', 'cat'\].*source-language words"):
        VOCAB.check_sentence("the cat un perro ve", "target", "reference")
    with pytest.raises(ValueError, match=r"sentence: expected words of the source language, got \['chat'\]"):
        VOCAB.check_sentence("the chat sees a dog", "source", "sentence")
    with pytest.raises(ValueError, match="sentence: expected at most 16 words, got 17"):
        VOCAB.check_sentence(["the"] * 17, "source", "sentence")


def test_a_reward_that_returns_nan_is_refused_with_the_pair_it_scored():
    with pytest.raises(ValueError, match=r"reward: expected finite numbers, got nan for hypothesis 'la vaca' against reference 'el gato ve' \(1 of 2"):
        check_rewards([0.5, float("nan")], ["el gato ve", "la vaca"], ["el gato ve", "el gato ve"])
    with pytest.raises(ValueError, match=r"reward: expected shape \(2,\)"):
        check_rewards([0.5], ["a", "b"], ["a", "b"])


def test_scst_inputs_that_do_not_fit_are_named(backends):
    c = _case()
    for b in backends.values():
        with pytest.raises(ValueError, match="greedy_rewards: expected one per source, a divisor of the 6"):
            b.scst_advantages(_tensor(b, c["sample"]), _tensor(b, np.zeros(4)))
        with pytest.raises(ValueError, match="logp: expected shape"):
            b.scst_loss(_tensor(b, c["logp"][:, :3]), _tensor(b, c["sample"]), _tensor(b, c["greedy"]),
                        _tensor(b, c["mask"]))


# ---- the run: resumed across the MLE -> SCST switch, and the CLI ---------------------------------
TINY = ["--train-pairs", "48", "--heldout-pairs", "8", "--n-layer", "1", "--n-head", "2",
        "--n-embd", "16", "--mle-steps", "3", "--batch-size", "8", "--warmup-steps", "1",
        "--sources", "4", "--samples", "2", "--eval-every", "2"]


def test_a_run_resumed_across_the_switch_equals_the_straight_one(backends, tmp_path):
    from duetrl.core.cases.translation.train import TranslationRun, TranslationSettings
    from duetrl.core.run import run

    settings = TranslationSettings(train_pairs=48, heldout_pairs=8, n_layer=1, n_head=2,
                                   n_embd=16, mle_steps=3, batch_size=8, warmup_steps=1,
                                   scst_updates=3, sources=4, samples=2, eval_every=2)
    straight = TranslationRun(backends["torch"], settings)
    summary = run(straight, tmp_path / "straight", quiet=True)
    first = TranslationRun(backends["torch"], settings)
    first.finished = lambda: first.updates >= 2  # stopped before the switch, checkpoint at 2
    run(first, tmp_path / "resumed", quiet=True)
    resumed = TranslationRun(backends["torch"], settings)
    again = run(resumed, tmp_path / "resumed", resume=True, quiet=True)
    for key, value in straight.state().tensors["params"].items():
        np.testing.assert_array_equal(resumed.state().tensors["params"][key], value, key)
    assert again["mle"] == summary["mle"] and again["scst_bleu"] == summary["scst_bleu"]
    assert again["mle"]["bleu"] == summary["mle_bleu"] and resumed.history["reward"][3:] == straight.history["reward"][3:]


def test_cli_train_resume_and_eval(tmp_path, capsys):
    from duetrl.core.cli import main

    out = str(tmp_path / "run")
    assert main(["translate", "train", *TINY, "--scst-updates", "2", "--out", out, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert {"mle_bleu", "scst_bleu", "copy_bleu", "mle", "scst", "scst_samples_per_s"} <= set(summary)
    assert summary["updates"] == 5 and 0 <= summary["scst_bleu"] <= 100
    assert main(["translate", "train", *TINY, "--scst-updates", "4", "--out", out, "--resume", "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["updates"] == 7 and resumed["mle"] == summary["mle"]  # phase 1 kept, not redone
    assert (tmp_path / "run" / "exposure.png").is_file() and (tmp_path / "run" / "bleu.png").is_file()
    checkpoint = str(tmp_path / "run" / "checkpoint.safetensors")
    assert main(["translate", "eval", checkpoint, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bleu"] == resumed["scst_bleu"]
    assert main(["translate", "eval", checkpoint, "--sentence", "the cat sees a dog",
                 "--reference", "el gato un perro ve", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["translations"][0]
    assert row["source"] == "the cat sees a dog" and 0 <= row["sentence_bleu"] <= 100
    # bad input: one line naming the argument, exit status 2
    assert main(["translate", "eval", checkpoint, "--sentence", " "]) == 2
    assert "sentence: expected a source sentence of 1 to 16 words, got an empty one" in capsys.readouterr().err
    assert main(["translate", "eval", checkpoint, "--sentence", "the cat sees a dog",
                 "--reference", "the cat sees a dog"]) == 2
    assert "reference: expected words of the target language" in capsys.readouterr().err
    assert main(["translate", "train", *TINY, "--scst-updates", "2", "--sources", "100", "--out", out]) == 2
    assert "sources: expected at most train_pairs (48), got 100" in capsys.readouterr().err


def test_a_nan_reward_stops_the_update_with_a_clear_message(backends):
    from duetrl.core.cases.translation.train import TranslationRun, TranslationSettings

    settings = TranslationSettings(train_pairs=16, heldout_pairs=4, n_layer=1, n_head=2,
                                   n_embd=16, mle_steps=0, scst_updates=1, sources=4, samples=1)
    trainer = TranslationRun(backends["torch"], settings,
                             reward=lambda hyps, refs: np.full(len(hyps), np.nan))
    with pytest.raises(ValueError, match="reward: expected finite numbers, got nan for hypothesis"):
        trainer.step()
    assert trainer.updates == 0  # nothing was learnt from it


# ---- hand cases from mutation testing of the SCST oracle (MUTATION.md) ---------------------


def test_one_greedy_baseline_serves_k_samples() -> None:
    """k = N / M: one source serves all its samples; zero sources or a k that is not a whole
    number >= 1 is refused (never a ZeroDivisionError)."""
    assert ref.samples_per_source(3, 1) == 3 and ref.samples_per_source(6, 3) == 2
    assert isinstance(ref.samples_per_source(6, 3), int)
    for num_samples, num_sources in ((4, 0), (4, 3), (2, 4)):
        with pytest.raises(ValueError, match=r"greedy_rewards: expected one per source"):
            ref.samples_per_source(num_samples, num_sources)


def test_token_log_probs_of_another_shape_than_the_mask_are_refused() -> None:
    """A (N, 1) column would broadcast against the (N, T) mask: both the loss and its gradient
    name it instead."""
    token_logp, mask = np.zeros((4, 1)), np.ones((4, 3))
    for function in (ref.scst_loss, ref.scst_loss_gradient):
        with pytest.raises(ValueError, match=r"token_logp: expected shape \(4, 3\) \(as mask\)"):
            function(token_logp, np.zeros(4), np.zeros(2), mask)
