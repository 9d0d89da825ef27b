"""Supervised fine-tuning on demonstrations and the RLHF pipeline (core/rlhf/sft.py,
core/rlhf/pipeline.py, core/reference/rlhf_sft.py; outline 3.1.1).

1. Demonstrations: every shipped task's demonstration earns the full true reward; a task
   without demonstrations is refused by name.
2. The mask: the float64 reference by hand, and the RL batch's mask is the same one.
3. The masked SFT loss: both backends' ``LMTrainer`` (eval and the first training step of
   :class:`SFTRun`) equal the float64 reference and each other; the mutant "prompt tokens not
   masked" (the unmasked loss) is told apart by far more than the tolerance.
4. Learning (seeded, fixed steps, torch): SFT raises the pretrained reference's true reward
   and success on sort-digits; the pipeline's table on a tiny run (each stage measured, RL
   moves away from the SFT model, the learned reward logged beside the true one).
5. Checkpoints and bad input: the SFT checkpoint loads as a reference; a missing, pretrained
   or other-task file is refused naming the flag; bad settings name the field.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from duetrl.core.checkpoint import CheckpointError
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.lm.train import TrainConfig
from duetrl.core.reference import rlhf_sft as ref
from duetrl.core.rlhf.mdp import SequenceMDP
from duetrl.core.rlhf.pi_ref import load_reference
from duetrl.core.rlhf.pipeline import STAGES, PipelineSettings, format_table, run_pipeline
from duetrl.core.rlhf.preferences import encode_completions
from duetrl.core.rlhf.sft import (
    DEMONSTRATORS,
    DemonstrationData,
    SFTRun,
    SFTSettings,
    demonstrator,
    load_sft,
    make_demonstrations,
)
from duetrl.core.rlhf.tasks import get_task
from duetrl.core.tolerances import TOLERANCES, assert_close

TINY = PipelineSettings(pretrain_steps=150, sft_steps=150, demonstrations=256,
                        reward_pairs=256, policy_pairs=64, reward_steps=100, rl_updates=12,
                        eval_prompts=64)


@pytest.fixture(scope="module")
def pipeline(backends, tmp_path_factory) -> dict:
    """TINY's pipeline in torch, run once (~15 s): the table, the histories, the files."""
    return run_pipeline(backends["torch"], TINY, tmp_path_factory.mktemp("pipeline"))


# ---- 1. demonstrations ------------------------------------------------------------------------


@pytest.mark.parametrize("task", sorted(DEMONSTRATORS))
def test_demonstrations_earn_the_full_true_reward(task: str) -> None:
    prompts, completions = make_demonstrations(task, 64, np.random.default_rng(0))
    t = get_task(task)
    assert np.all(t.rewards(prompts, completions) == 1.0)
    assert np.all(t.success(prompts, completions))
    assert all(c.endswith(t.stop) and len(c) <= t.max_completion for c in completions)


def test_demonstrations_follow_the_prompt() -> None:
    rng = np.random.default_rng(0)
    assert demonstrator("sort-digits")("31415926:", rng) == "11234569\n"
    assert demonstrator("arithmetic")("07+45=", rng) == "52\n"
    assert demonstrator("format")("len=3:", rng)[3:] == "\n"
    # sort-digits' reward ignores the prompt; its demonstration does not: two prompts, two answers
    assert demonstrator("sort-digits")("99999990:", rng) == "09999999\n"


def test_a_task_without_demonstrations_is_named() -> None:
    custom = replace(get_task("sort-digits"), name="custom-task")
    with pytest.raises(ValueError, match=r"'custom-task' has no demonstrations.*sort-digits"):
        demonstrator(custom)
    with pytest.raises(ValueError, match="task: expected one of"):
        demonstrator("poetry")
    with pytest.raises(ValueError, match="n: expected a positive int"):
        make_demonstrations("sort-digits", 0, np.random.default_rng(0))


# ---- 2. the mask ------------------------------------------------------------------------------


def test_completion_weights_by_hand_and_equal_to_the_rl_mask() -> None:
    got = ref.completion_weights(3, np.array([1, 2]), 6)  # columns 0..4; prompt = 3 tokens
    assert got.tolist() == [[0, 0, 1, 0, 0], [0, 0, 1, 1, 0]]
    mdp = SequenceMDP.for_task("arithmetic")
    tokens, mask = encode_completions(mdp, ["07+45=", "99+99="], ["52\n", "198\n"])
    lengths = np.array([3, 4])  # digits and the stop
    assert np.array_equal(mask, ref.completion_weights(6, lengths, tokens.shape[1]))
    # the bounds: a prompt of one token (column 0 predicts the completion), the longest prompt
    assert ref.completion_weights(1, np.array([1]), 3).tolist() == [[1, 0]]
    assert ref.completion_weights(5, np.array([1]), 6).tolist() == [[0, 0, 0, 0, 1]]
    for bad, match in (((0, [1], 6), "prompt_length"), ((6, [1], 6), "prompt_length"),
                       ((3, [0], 6), "lengths"), ((3, [4], 6), "lengths"),
                       ((3, [1, 0], 6), "lengths"), ((3, [1, 4], 6), "lengths")):  # one row bad
        with pytest.raises(ValueError, match=match):
            ref.completion_weights(bad[0], np.array(bad[1]), bad[2])


# ---- 3. the masked loss in both backends --------------------------------------------------


def _batch(task: str = "sort-digits", n: int = 8):
    prompts, completions = make_demonstrations(task, 40, np.random.default_rng(1))
    data = DemonstrationData(task, prompts, completions)
    x, y, w = data.batch("train", n, np.random.default_rng(2))
    tokens = np.concatenate([x, y[:, -1:]], axis=1)  # (n, T)
    config = GPTConfig(vocab_size=data.mdp.vocab_size, block_size=data.mdp.sequence_length,
                       n_layer=1, n_head=2, n_embd=16)
    return data, x, y, w, tokens, config


def test_masked_loss_matches_the_reference_in_both_backends(backends) -> None:
    data, x, y, w, tokens, config = _batch()
    params = init_gpt_params(config, seed=3)
    expected = ref.sft_loss(params, tokens, w, config)
    unmasked = ref.unmasked_loss(params, tokens, config)
    all_ones = np.ones((tokens.shape[0], tokens.shape[1] - 1))  # what "unmasked" means
    assert unmasked == pytest.approx(ref.sft_loss(params, tokens, all_ones, config), abs=1e-12)
    # the mutant "prompt tokens not masked" is far from SFT's loss: the test can tell them apart
    assert abs(unmasked - expected) > 100 * TOLERANCES["float32_model"]
    assert np.all(w[:, : data.mdp.prompt_length - 1] == 0) and np.all(w.sum(axis=1) == 9)
    assert len({tuple(row) for row in x}) > 4  # the batch draws from all the demonstrations
    assert [len(data.splits[k][0]) for k in ("train", "val")] == [36, 4]  # 10% held out
    losses = {}
    for name, backend in backends.items():
        model = backend.GPT(config)
        backend.import_params(model, params)
        trainer = backend.LMTrainer(model)
        losses[name] = trainer.eval_loss(x, y, w)
        assert_close(losses[name], expected, TOLERANCES["float32_model"], f"{name} SFT loss")
    assert_close(losses["torch"], losses["tf"], TOLERANCES["float32_model"], "torch vs tf")


def test_sft_run_trains_on_the_masked_loss_in_lockstep(backends, monkeypatch) -> None:
    """SFTRun's first step reports the reference's masked loss at the initial weights (not
    the unmasked one), and three steps keep both backends together."""
    monkeypatch.setattr("duetrl.backends.tf.training.XLA_TRAIN_STEP", False)
    data, _, _, _, _, config = _batch()
    params = init_gpt_params(config, seed=3)
    train_config = TrainConfig(steps=3, batch_size=8, learning_rate=1e-3, warmup_steps=1,
                               eval_every=3, eval_batches=1, seed=5)
    from duetrl.core.lm.data import train_rng

    x, y, w = data.batch("train", 8, train_rng(5, 0))  # the first step's batch
    tokens = np.concatenate([x, y[:, -1:]], axis=1)
    expected = ref.sft_loss(params, tokens, w, config)
    runs = {}
    for name, backend in backends.items():
        model = backend.GPT(config)
        backend.import_params(model, params)
        runs[name] = SFTRun(backend, model, data, train_config)
        first = runs[name].step()["train_loss"]
        assert_close(first, expected, TOLERANCES["float32_model"], f"{name} first SFT loss")
        runs[name].step(), runs[name].step()
    for key in ("train_loss", "val_loss"):
        assert_close(np.array(runs["torch"].history[key]), np.array(runs["tf"].history[key]),
                     TOLERANCES["float32_model"], f"torch vs tf {key}")


# ---- 4. learning: SFT and the pipeline (torch, seeded) ----------------------------------


def test_sft_raises_the_true_reward_of_the_reference(pipeline) -> None:
    rows = {r["stage"]: r for r in pipeline["rows"]}
    assert rows["pretrained"]["true_reward"] < 0.65 and rows["pretrained"]["success"] < 0.05
    assert rows["sft"]["true_reward"] > rows["pretrained"]["true_reward"] + 0.2
    assert rows["sft"]["success"] > 0.3


def test_pipeline_table_measures_every_stage(pipeline) -> None:
    rows = pipeline["rows"]
    assert [r["stage"] for r in rows] == list(STAGES)
    for r in rows:
        assert {"true_reward", "success", "learned_reward", "stopped", "kl", "seconds"} <= set(r)
        assert 0.0 <= r["true_reward"] <= 1.0 and 0.0 <= r["success"] <= 1.0
    by = {r["stage"]: r for r in rows}
    assert by["pretrained"]["kl"] == 0.0 and by["sft"]["kl"] == 0.0
    assert by["rl_learned"]["kl"] > 0.0 and by["rl_true"]["kl"] > 0.0  # RL left pi_SFT
    # RL starts from the SFT model: its first batches score what SFT's samples score
    learned = pipeline["histories"]["rl_learned"]
    assert len(learned["true_reward"]) == TINY.rl_updates
    assert abs(learned["true_reward"][0] - by["sft"]["true_reward"]) < 0.1
    # ... and measures its KL against the SFT model: 0 at the first batch, before any step
    for stage in ("rl_learned", "rl_true"):
        assert abs(pipeline["histories"][stage]["kl"][0]) < 1e-6
    assert "true_reward" not in pipeline["histories"]["rl_true"]  # r is the true one there
    assert pipeline["reward_model"]["held_out_accuracy"] > 0.55
    assert "rl_learned" in format_table(pipeline)


# ---- 5. checkpoints and bad input -----------------------------------------------------------


def test_sft_checkpoint_loads_as_a_reference_and_is_checked(pipeline, tmp_path) -> None:
    files = pipeline["checkpoints"]
    config, params = load_sft(files["sft"], "sort-digits")
    assert set(params) == set(load_reference(files["reference"], "sort-digits")[1])
    with pytest.raises(CheckpointError, match="sft_checkpoint: .* is no SFT checkpoint"):
        load_sft(files["reference"], "sort-digits")
    with pytest.raises(CheckpointError, match="--sft-checkpoint: no file"):
        load_sft(tmp_path / "none.safetensors", "sort-digits", flag="--sft-checkpoint")
    with pytest.raises(CheckpointError, match="sft_checkpoint: reference: .*tokeniser"):
        load_sft(files["sft"], "arithmetic")
    # sort-prompt has sort-digits' vocabulary: only the task named in the file tells them apart
    with pytest.raises(CheckpointError, match="no SFT checkpoint of task 'sort-prompt'"):
        load_sft(files["sft"], "sort-prompt")
    with pytest.raises(CheckpointError, match="sft_checkpoint: .*expected 'duetrl.gpt'"):
        load_sft(files["reward_model"], "sort-digits")


@pytest.mark.parametrize("cls, kwargs, match", [
    (SFTSettings, {"steps": 0}, "steps: expected a positive int"),
    (SFTSettings, {"demonstrations": 1}, "demonstrations: expected >= 2"),
    (SFTSettings, {"learning_rate": 0.0}, "learning_rate: expected > 0"),
    (PipelineSettings, {"task": "poetry"}, "task: expected one of"),
    (PipelineSettings, {"algo": "dpo"}, "algo: expected a reward-maximising"),
    (PipelineSettings, {"algo": "a2c"}, "algo: expected one of"),
    (PipelineSettings, {"rl_updates": 0}, "rl_updates: expected a positive int"),
    (PipelineSettings, {"policy_pairs": -1}, "policy_pairs: expected an int >= 0"),
    (PipelineSettings, {"beta": -1.0}, "beta: expected a finite float >= 0"),
])
def test_bad_settings_name_the_field(cls, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)
