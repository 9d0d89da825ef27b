"""Dialogue generation with RL (issue 18 item 1, outline 6.1): the corpus and its dull replies,
the three rewards against the float64 reference (hand-computed vectors, the mutants a test must
catch, both backends on a GPT), the learner in lockstep, the curriculum, the figures, bad
input, and the CLI."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest

from duetrl.core.cases.dialogue import corpus as C
from duetrl.core.cases.dialogue.evaluate import dialogue_figures, dialogue_length, distinct
from duetrl.core.cases.dialogue.rewards import check_rewards, reward_rows
from duetrl.core.cases.dialogue.train import (
    DialogueRun,
    DialogueSettings,
    alive,
    curriculum,
    last_tokens,
    returns_to_go,
)
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.reference import dialogue as ref
from duetrl.core.reference import rlhf as ref_rlhf
from duetrl.core.tolerances import assert_close, to_numpy

VOCAB = C.Vocabulary()
W = C._words


def _config() -> GPTConfig:
    return GPTConfig(vocab_size=VOCAB.size, block_size=VOCAB.block_size, n_layer=1, n_head=2,
                     n_embd=16)


# ---- the corpus -------------------------------------------------------------------------------
def test_dull_replies_are_the_most_frequent_reply_to_a_question():
    pairs = C.examples(C.make_dialogues(800, seed=0))
    questions = {q for topic in C.TOPICS.values() for q in topic}
    after_question = [a for _, q, a in pairs if " ".join(q) in questions]
    dull = np.mean([C.is_dull(a) for a in after_question])
    assert 0.35 < dull < 0.45  # the flaw: 40% of questions get a generic reply
    first = Counter(a[0] for a in after_question)
    assert first.most_common(1)[0][0] == "i"  # so greedy decoding starts a dull reply
    assert first["i"] / len(after_question) > 1.2 * max(v for w, v in first.items() if w != "i") / len(after_question)
    assert C.make_dialogues(5, 3) == C.make_dialogues(5, 3) != C.make_dialogues(5, 4)
    assert all(not C.is_dull(p) and C.is_question(q) for p, q in C.openings(C.make_dialogues(50, 1)))


def test_rows_put_turns_in_slots_and_weigh_the_reply_only():
    tokens, weights = VOCAB.rows([((), W("do you cook at home"), W("yes every evening"))])
    words = [VOCAB.words[t] for t in tokens[0]]
    assert words[: C.SLOT] == ["<pad>"] * C.MAX_WORDS + ["<sep>"]  # empty p: only its <sep>
    assert words[C.SLOT: C.CONTEXT] == ["<pad>"] * 2 + "do you cook at home".split() + ["<sep>"]
    assert words[C.CONTEXT: C.CONTEXT + 4] == ["yes", "every", "evening", "<sep>"]
    assert weights[0].sum() == 4 and weights[0, C.CONTEXT - 1] == 1 and weights[0, C.CONTEXT + 3] == 0
    replies, mask = VOCAB.replies(tokens[:, C.CONTEXT:])
    assert replies == [W("yes every evening")] and mask[0].tolist() == [1, 1, 1, 1, 0, 0, 0, 0]


# ---- the rewards: hand-computed vectors, and the mutants they kill --------------------------
def test_ease_of_answering_averages_per_reply_normalised_log_likelihoods():
    # after one turn, two dull replies: 2 tokens (mean -2 per token) and 4 tokens (mean -1)
    logp = np.array([[[-1.0, -3.0, -7.0, -7.0], [-1.0, -1.0, -1.0, -1.0]]])
    mask = np.array([[[1, 1, 0, 0], [1, 1, 1, 1]]], float)
    expected = -0.5 * (-2.0 + -1.0)  # 1.5
    assert_close(ref.ease_of_answering(logp, mask), [expected], "float64")
    mutants = {"pooled tokens": 8.0 / 6, "no length normalisation": 4.0, "padding counted": 2.0,
               "sum over S": 3.0, "sign": -1.5}
    for name, value in mutants.items():
        assert not math.isclose(expected, value), name
    assert_close(ref.ease_of_answering(np.tile(logp, (3, 1, 1)), np.tile(mask, (3, 1, 1))),
                 [expected] * 3, "float64")


def test_information_flow_is_minus_log_cosine_with_a_floor():
    h_p = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [2.0, 0.0]])
    h_a = np.array([[1.0, 1.0], [3.0, 3.0], [-1.0, 0.1], [0.0, 5.0]])
    expected = [-math.log(1 / math.sqrt(2)), 0.0, -math.log(ref.COS_FLOOR), -math.log(ref.COS_FLOOR)]
    assert_close(ref.information_flow(h_p, h_a), expected, "float64")  # scale-free, floored
    assert_close(ref.information_flow(h_p[:1], h_a[:1], floor=0.8), [-math.log(0.8)], "float64")


def test_semantic_coherence_adds_two_length_normalised_log_likelihoods():
    fwd, fmask = np.array([[-1.0, -2.0, -9.0]]), np.array([[1.0, 1.0, 0.0]])
    bwd, bmask = np.array([[-3.0, -3.0, -3.0]]), np.array([[1.0, 1.0, 1.0]])
    assert_close(ref.semantic_coherence(fwd, fmask, bwd, bmask), [-1.5 - 3.0], "float64")
    assert_close(ref.combined_reward([1.0], [2.0], [-4.0]), [0.25 + 0.5 - 2.0], "float64")
    with pytest.raises(ValueError, match="forward_logp: expected every sequence to have at least one token"):
        ref.semantic_coherence(fwd, 0 * fmask, bwd, bmask)


@pytest.fixture(scope="module")
def scored_turns():
    turns = [(W("what do you like to eat"), W("fresh fish and rice"), W("what about you")),
             (W("sunny and warm"), W("what about you"), W("i don't know")),
             ((), W("how is the weather today"), W("cold with some rain"))]
    return turns, reward_rows(VOCAB, turns)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_turn_rewards_match_the_reference_on_a_gpt(backends, scored_turns, dtype):
    _, rows = scored_turns

    for name, b in backends.items():
        chatbot, backward = b.GPT(_config(), dtype=dtype, seed=1), b.GPT(_config(), dtype=dtype, seed=2)
        expected = ref.turn_rewards(b.export_params(chatbot), b.export_params(backward), _config(), rows)
        got = b.turn_rewards(chatbot, backward, rows)
        tolerance = "float64" if dtype == "float64" else "float32_model"
        for key in ("r1", "r2", "r3", "reward"):
            assert_close(got[key], expected[key], tolerance, name=f"{name} {key}")
        # the tensor functions alone, on the reference's inputs
        h = np.random.default_rng(0).normal(size=(2, 3, 5))
        assert_close(to_numpy(b.information_flow(b.as_tensor(h[0]), b.as_tensor(h[1]))),
                     ref.information_flow(h[0], h[1]), "float64", name=f"{name} r2")


def test_the_dull_rows_score_each_dull_reply_after_the_reply(scored_turns):
    turns, rows = scored_turns
    assert rows["dull_tokens"].shape == (3 * len(C.DULL_REPLIES), VOCAB.block_size)
    row = [VOCAB.words[t] for t in rows["dull_tokens"][len(C.DULL_REPLIES)]]  # turn 2, first s
    assert row[C.SLOT: C.CONTEXT] == ["<pad>"] * 4 + ["i", "don't", "know", "<sep>"]  # a as q
    assert row[C.CONTEXT: C.CONTEXT + 4] == ["i", "don't", "know", "<sep>"]
    prev = [VOCAB.words[t] for t in rows["previous_tokens"][1]]
    assert prev[-4:] == ["sunny", "and", "warm", "<sep>"]  # h_{p_i}: the same agent's turn


# ---- the learner, the curriculum, the returns -----------------------------------------------
@pytest.fixture(scope="module")
def sampled():
    rng = np.random.default_rng(4)
    tokens = rng.integers(2, VOCAB.size, (6, VOCAB.block_size))
    mask = np.zeros((6, VOCAB.block_size - 1))
    mask[:, C.CONTEXT - 1:] = last_tokens(np.tile([1, 1, 1, 1, 1, 0, 0, 0.0], (6, 1)), 3)
    return tokens, mask, np.array([0.5, -0.2, 0.1, -0.4, 0.3, -0.3])


def test_the_learner_loss_is_reinforce_on_a_float64_gpt(backends, sampled):
    from duetrl.core.reference.dialogue import token_log_probs

    for name, b in backends.items():
        model = b.GPT(_config(), dtype="float64", seed=3)
        logp = token_log_probs(b.export_params(model), sampled[0], _config())
        expected = ref_rlhf.reinforce_loss(logp, sampled[2], sampled[1])
        stats = b.DialogueLearner(model, learning_rate=0.0).update(*sampled)
        assert stats["loss"] == pytest.approx(expected, abs=1e-10), name


def test_the_learner_steps_in_lockstep_in_both_backends(backends, sampled):

    models = {n: b.GPT(_config(), seed=5) for n, b in backends.items()}
    learners = {n: b.DialogueLearner(models[n], 1e-3) for n, b in backends.items()}
    for _ in range(3):
        stats = {n: learners[n].update(*sampled) for n in backends}
        assert stats["torch"]["loss"] == pytest.approx(stats["tf"]["loss"], abs=1e-4)
    params = {n: b.export_params(models[n]) for n, b in backends.items()}
    for key, value in params["torch"].items():
        assert_close(params["tf"][key], value, "float32_model", name=key)


def test_curriculum_returns_and_the_end_of_a_simulation():
    s = DialogueSettings(start_turns=2, max_turns=4, turns_every=10, start_tokens=2, tokens_every=5)
    assert [curriculum(u, s) for u in (0, 9, 10, 25, 99)] == [(2, 2), (2, 3), (3, 4), (4, 7), (4, 8)]
    mask = np.array([[1, 1, 1, 1, 0, 0.0], [1, 1, 0, 0, 0, 0.0]])
    assert last_tokens(mask, 2).tolist() == [[0, 0, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]]
    assert_close(returns_to_go(np.array([[1.0], [2.0], [4.0]]), 0.5), [[3.0], [4.0], [4.0]], "float64")
    q, a, dull = W("do you cook at home"), W("only on weekends"), W("i don't know")
    conversations = [[q, a, W("what about you"), a, q], [q, a, dull, a, q], [q, a, a, q, a]]
    assert alive(conversations).tolist() == [[1, 1, 0], [1, 0, 0], [1, 0, 0]]
    assert [dialogue_length(c) for c in conversations] == [1, 0, 0]  # a repeated, dull, a again


def test_the_figures_count_dull_replies_lengths_and_distinct_ngrams():
    q, a, dull = W("do you cook at home"), W("only on weekends"), W("i don't know")
    f = dialogue_figures([[q, a, W("what about you"), dull], [q, a, a, a]])
    assert f["dull_rate"] == 0.25 and f["dialogue_length"] == 0.5
    assert distinct([W("a b a"), W("a b")], 1) == 2 / 5 and distinct([W("a b a"), W("a b")], 2) == 2 / 3


# ---- bad input: one clear message each -------------------------------------------------------
def test_bad_turns_rewards_and_settings_are_named(backends):
    with pytest.raises(ValueError, match="turn: expected a turn of 1 to 7 words, got an empty one"):
        VOCAB.check_turn("   ")
    with pytest.raises(ValueError, match=r"turn: expected words of the corpus vocabulary .* got \['pizza'\]"):
        VOCAB.check_turn("do you like pizza")
    with pytest.raises(ValueError, match="turn: expected at most 7 words, got 8"):
        VOCAB.check_turn(["i"] * 8)
    with pytest.raises(ValueError, match=r"reward: expected finite rewards, got nan for turn 1 \(1 of 2"):
        check_rewards([0.5, float("nan")], 2)
    with pytest.raises(ValueError, match=r"reward: expected one reward per turn, shape \(2,\)"):
        check_rewards([0.5], 2)
    with pytest.raises(ValueError, match="max_turns: expected >= start_turns"):
        DialogueSettings(start_turns=3, max_turns=2)
    with pytest.raises(ValueError, match="turns: expected at least one"):
        reward_rows(VOCAB, [])
    tiny = DialogueSettings(dialogues=30, n_layer=1, n_head=2, n_embd=16, mle_steps=0, rl_updates=1,
                            conversations=2, eval_conversations=2)
    run = DialogueRun(backends["torch"], tiny, reward=lambda turns: np.full(len(turns), np.nan))
    with pytest.raises(ValueError, match="reward: expected finite rewards, got nan for turn 0"):
        run.step()


# ---- the CLI ----------------------------------------------------------------------------------
TINY = ["--dialogues", "40", "--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--mle-steps", "4",
        "--batch-size", "8", "--conversations", "2", "--eval-conversations", "2", "--eval-turns", "3",
        "--eval-every", "100", "--threads", "1", "--quiet"]


def test_cli_train_resume_eval_and_chat(tmp_path, capsys, backends):
    from duetrl.core.cli import main

    out = tmp_path / "run"
    assert main(["dialogue", "train", "--backend", "torch", "--out", str(out), "--rl-updates", "0",
                 "--json", *TINY]) == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("mle_dull_rate", "rl_dull_rate", "mle_dialogue_length", "rl_distinct_2", "checkpoint"):
        assert key in summary
    assert summary["updates"] == 4 and summary["rl"] is None and (out / "dialogue.png").exists()
    assert main(["dialogue", "train", "--backend", "torch", "--out", str(out), "--rl-updates", "3",
                 "--resume", "--json", *TINY]) == 0  # across the switch: MLE, then RL
    resumed = json.loads(capsys.readouterr().out)
    assert resumed["updates"] == 7 and resumed["mle"] == summary["mle"] and resumed["rl"]
    checkpoint = str(out / "checkpoint.safetensors")
    assert main(["dialogue", "eval", checkpoint, "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) >= {"dull_rate", "samples", "updates"}
    assert main(["dialogue", "chat", checkpoint, "--turn", "do you cook at home", "--turns", "2",
                 "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["replies"]) == 2
    assert main(["dialogue", "chat", checkpoint, "--turn", "do you like pizza"]) == 2
    assert "turn: expected words of the corpus vocabulary" in capsys.readouterr().err


# ---- hand cases from mutation testing of the float64 oracle (MUTATION.md) ------------------


def test_every_scored_sequence_needs_one_token_in_its_mask() -> None:
    """One token is enough (r3 = -1 + -2 by hand); one empty row among full ones, or sequences
    of no tokens at all, would divide 0 by 0 and are named."""
    logp = np.array([[-1.0, -5.0], [-2.0, -2.0]])
    one = np.array([[1, 0], [1, 1]])
    assert ref.semantic_coherence(logp, one, logp, one).tolist() == [-2.0, -4.0]
    with pytest.raises(ValueError, match=r"forward_logp: expected every sequence to have at "
                                         r"least one token in its mask"):
        ref.semantic_coherence(logp, np.array([[1, 1], [0, 0]]), logp, one)
    empty = np.zeros((2, 0))
    with pytest.raises(ValueError, match=r"backward_logp: expected every sequence to have at "
                                         r"least one token"):
        ref.semantic_coherence(logp, one, empty, empty)


def test_information_flow_names_encodings_of_another_shape() -> None:
    with pytest.raises(ValueError, match=r"h_next: expected the shape of h_previous \(2, 3\) "
                                         r"\(B, D\), got \(2, 4\)"):
        ref.information_flow(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"h_next: expected the shape of h_previous \(3,\)"):
        ref.information_flow(np.ones(3), np.ones(3))  # one turn is (1, D), not (D,)
