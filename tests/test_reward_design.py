"""Reward design on sort-prompt (core/rlhf/reward_design.py): the five rewards by hand, the
sample profile, the table, and RL that learns the prompt-aware task.

1. Each design's reward on hand-written completions (what it reads and what it ignores).
2. :func:`sample_profile` and :func:`describe` on hand-written samples.
3. Learning: from a sort-prompt reference pretrained in torch (300 steps), RLOO raises the
   true reward from the reference's ~0.16 to >= 0.25 in 80 updates (seeded; ~3 s in torch);
   the same design runs in tf in lockstep for 2 updates (same completions, same rewards).
4. The warnings of core/rlhf/diagnostics.py on the first defaults' collapse (update by
   update), on a healthy run, at their thresholds, and from a log.csv.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from duetrl.core.rlhf.diagnostics import log_warnings, run_warnings
from duetrl.core.rlhf.pi_ref import PretrainSettings, load_reference, pretrain_reference
from duetrl.core.rlhf.reward_design import (
    DESIGNS,
    DesignRun,
    check_prompt_aware,
    credit_ignoring_stop,
    describe,
    design_table,
    design_task,
    format_table,
    get_design,
    pairs_reward,
    positional_credit,
    run_design,
    sample_profile,
    sparse_reward,
)
from duetrl.core.rlhf.tasks import SORT_PROMPT

PROMPT = "31415926:"  # sorted: "11234569"


def test_pairs_reward_ignores_the_prompt() -> None:
    for prompt in (PROMPT, "00000000:", "98765432:"):
        assert pairs_reward([prompt] * 3, ["44444444\n", "11234569\n", "98765432\n"]
                            ).tolist() == [1.0, 1.0, 0.0]


def test_sparse_reward_pays_only_the_exact_answer_with_the_stop() -> None:
    completions = ["11234569\n", "11234569", "11234568\n", "1123456\n", "11234569:"]
    assert sparse_reward([PROMPT] * 5, completions).tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_credit_ignoring_stop_is_the_credit_without_the_halving() -> None:
    completions = ["11234569\n", "112345699", "11234569", "11200000\n", "1\n", "00000000"]
    ignoring = credit_ignoring_stop([PROMPT] * 6, completions)
    assert ignoring.tolist() == [1.0, 1.0, 1.0, 3 / 8, 1 / 8, 0.0]
    true = SORT_PROMPT.rewards([PROMPT] * 6, completions)
    assert true.tolist() == [1.0, 0.5, 0.5, 3 / 8, 1 / 8, 0.0]  # halved without the stop


def test_each_design_keeps_the_true_success_and_prompts() -> None:
    completions = ["11234569\n", "44444444\n"]
    for name in DESIGNS:
        if name == "learned":
            with pytest.raises(ValueError, match=r"reward_fn: design 'learned' needs one"):
                design_task(name)
            task = design_task(name, reward_fn=lambda p, c: np.full(len(c), 0.25))
            assert task.rewards([PROMPT] * 2, completions).tolist() == [0.25, 0.25]
        else:
            task = design_task(name)
        assert task.name == f"sort-prompt[{name}]"
        assert task.success([PROMPT] * 2, completions).tolist() == [True, False]
        assert task.corpus(5, seed=3) == SORT_PROMPT.corpus(5, seed=3)
    assert design_task("prompt+stop").rewards([PROMPT], ["11234569"]).tolist() == [0.5]
    with pytest.raises(ValueError, match=r"design: expected one of \['pairs', .* got 'dense'"):
        get_design("dense")


def test_sample_profile_by_hand() -> None:
    prompts = [PROMPT, PROMPT, "00000001:", "12345678:"]
    completions = ["11234569\n", "44444444\n", "44444444", "87654321\n"]
    profile = sample_profile(prompts, completions)
    assert profile == {"stopped": 0.75, "sorted": 0.75, "prompt_digits": 0.5, "exact": 0.25,
                       "distinct": 0.75, "mode": "44444444"}
    text = describe(profile)
    assert text == "75% sorted, 75% stop, 50% the prompt's digits, 25% exact"
    constant = sample_profile([PROMPT] * 8, ["33333333"] * 8)
    assert constant["distinct"] == 1 / 8 and constant["stopped"] == 0.0
    assert describe(constant).endswith("0% exact, mostly '33333333'")
    with pytest.raises(ValueError, match=r"completions: expected one per prompt"):
        sample_profile([PROMPT], [])


def test_design_table_averages_the_last_tenth() -> None:
    history = {"update": list(range(1, 21)), "reward": [0.1] * 18 + [0.5, 0.7],
               "true_reward": [0.2] * 19 + [0.4], "success": [0.0] * 19 + [1.0],
               "stopped": [1.0] * 20, "kl": [0.0] * 18 + [1.0, 3.0]}
    run = DesignRun("pairs", "torch", history, [PROMPT], ["44444444\n"])
    (row,) = design_table([run])
    assert row["initial_reward"] == 0.1 and row["reward"] == pytest.approx(0.6)
    assert row["true_reward"] == pytest.approx(0.3) and row["success"] == 0.5
    assert row["kl"] == 2.0 and row["initial_true_reward"] == 0.2
    assert row["example"] == "31415926: -> '44444444\\n'"
    assert "pairs" in format_table([row]) and "0.10->0.60" in format_table([row])


def test_positional_credit_on_ids_is_the_task_reward() -> None:
    rng = np.random.default_rng(0)
    prompts = SORT_PROMPT.prompts(64, rng)
    answers = rng.integers(0, 10, size=(64, 8))
    answers[:8] = [[int(ch) for ch in p[:8]] for p in prompts[:8]]  # some unsorted prompts
    answers[8:16] = [[int(ch) for ch in sorted(p[:8])] for p in prompts[8:16]]  # right ones
    stopped = rng.random(64) < 0.5
    completions = ["".join(map(str, a)) + ("\n" if s else "") for a, s in zip(answers, stopped)]
    targets = np.array([[int(ch) for ch in sorted(p[:8])] for p in prompts])
    expected = SORT_PROMPT.rewards(prompts, completions)
    assert np.array_equal(positional_credit(answers, targets, stopped), expected)
    assert set(expected[8:16]) <= {0.5, 1.0}
    with pytest.raises(ValueError, match=r"answers, targets: expected two \(B, L\) arrays"):
        positional_credit(answers[:, :7], targets, stopped)


def test_the_loophole_check_passes_the_prompt_aware_reward_only(capsys) -> None:
    assert check_prompt_aware(2, SORT_PROMPT.reward_fn)
    assert "✓ exercise 2: the loophole is closed" in capsys.readouterr().out
    assert not check_prompt_aware(2, pairs_reward)
    assert "< 0.5 for a constant sorted answer" in capsys.readouterr().out
    assert not check_prompt_aware(2, lambda p, c: 1 / 0)
    assert "raised ZeroDivisionError" in capsys.readouterr().out
    assert not check_prompt_aware(2, lambda p, c: 2 * SORT_PROMPT.reward_fn(p, c))
    assert "1 for each sorted prompt" in capsys.readouterr().out
    assert not check_prompt_aware(2, lambda p, c: np.ones(len(c)))


def _edited(changes: dict[int, float]):
    """sort-prompt's own reward with some of the check's 8 rewards replaced. Unchanged they
    are [1, 1, 1, 0.125, 0, 0, 0, 0.75]: the three sorted prompts with the stop; constant
    sorted answers (one position of '44444444' is right after '31415926:'); the digits
    reversed (no position right); '90000009' after '90000009:' (6 of 8 right, stopped)."""

    def reward_fn(prompts, completions):
        rewards = np.array(SORT_PROMPT.reward_fn(prompts, completions), dtype=np.float64)
        for index, value in changes.items():
            rewards[index] = value
        return rewards

    return reward_fn


@pytest.mark.parametrize("changes, passes, says", [
    ({}, True, "the loophole is closed"),
    ({2: 0.9}, False, "1 for each sorted prompt"),  # the third sorted prompt counts too
    ({3: 0.6}, False, "< 0.5 for a constant sorted answer"),
    ({5: 0.6}, False, "< 0.5 for a constant sorted answer"),  # the last constant answer too
    ({3: 0.5}, False, "< 0.5 for a constant sorted answer"),  # 0.5 is not below 0.5
    ({6: 0.6}, True, "the loophole is closed"),  # the wrong order may pay, less than sorted
    ({6: 1.0}, False, "less for the prompt's digits in the wrong order"),  # as much: no
    ({7: 1.0}, False, "less for the prompt's digits in the wrong order"),
    ({0: 0.5, 6: 0.7}, False, "less for the prompt's digits in the wrong order"),  # vs its 0.5
    ({1: 0.5, 7: 0.7}, False, "less for the prompt's digits in the wrong order"),  # vs its 0.5
    ({3: -0.5}, False, "every reward in [0, 1]"),
    ({3: 1.5}, False, "every reward in [0, 1]"),  # with "< 0.5": both problems named
])
def test_the_loophole_check_at_each_of_its_edges(capsys, changes, passes, says) -> None:
    assert check_prompt_aware(3, _edited(changes)) is passes
    out = capsys.readouterr().out
    assert out.startswith("✓" if passes else "✗") and says in out, out


def test_the_loophole_check_names_what_it_could_not_read(capsys) -> None:
    assert check_prompt_aware(4, lambda p, c: 1 / 0) is False
    assert "raised ZeroDivisionError" in capsys.readouterr().out
    for broken in (_edited({4: np.nan}), lambda p, c: SORT_PROMPT.reward_fn(p, c)[:7]):
        assert check_prompt_aware(4, broken) is False
        assert "expected 8 finite rewards" in capsys.readouterr().out
    # whatever numbers the function returns are read as float64: exact fractions too
    fractions = lambda p, c: [Fraction(int(8 * r), 8) for r in SORT_PROMPT.reward_fn(p, c)]  # noqa: E731
    assert check_prompt_aware(4, fractions) is True


def test_profile_edges_and_the_table_by_hand() -> None:
    # '1234567x' is sorted as text but not 8 digits; 4 answers, one distinct: 0.25 is "mostly"
    profile = sample_profile([PROMPT] * 4, ["1234567x\n"] * 4)
    assert profile["sorted"] == 0.0 and profile["distinct"] == 0.25
    assert profile["prompt_digits"] == 0.0  # not the digits of 31415926 in any order
    assert describe(profile).endswith("mostly '1234567x'")
    with pytest.raises(ValueError, match=r"completions: expected one per prompt"):
        sample_profile([PROMPT, PROMPT], ["11234569\n"])
    # 15 updates: the last tenth is ceil(1.5) = 2 of them; 5 updates: ceil(0.5) = 1
    history = {k: [u / 10 for u in range(15)] for k in ("reward", "true_reward", "success",
                                                         "stopped", "kl")}
    run = DesignRun("pairs", "torch", {"update": list(range(1, 16)), **history}, [PROMPT],
                    ["44444444\n"])
    (row,) = design_table([run])
    assert row["reward"] == pytest.approx(1.35) and row["kl"] == pytest.approx(1.35)
    assert row["initial_reward"] == 0.0 and row["initial_true_reward"] == 0.0
    assert design_table([run], last_fraction=0.0)[0]["reward"] == pytest.approx(1.4)  # >= 1
    short = DesignRun("pairs", "tf", {k: v[:5] for k, v in run.history.items()}, [PROMPT],
                      ["44444444\n"])
    assert design_table([short])[0]["true_reward"] == pytest.approx(0.4)  # the last one


def test_run_design_is_an_rlhf_run_on_the_designs_task(backends) -> None:
    """The history is RLHFRun's on design_task(design), with no missing-stop penalty, and the
    true reward the mean of sort-prompt's own reward of each update's batch (2 updates from a
    freshly initialised tiny GPT as the reference, torch)."""
    from duetrl.core.interfaces.gpt_params import init_gpt_params
    from duetrl.core.rlhf.mdp import SequenceMDP
    from duetrl.core.rlhf.pi_ref import ModelSize
    from duetrl.core.rlhf.train import RLHFRun, RLHFSettings

    config = ModelSize().config(SequenceMDP.for_task("sort-prompt", "pretrained"))
    reference, backend = (config, init_gpt_params(config, 0)), backends["torch"]
    settings = {"algo": "rloo", "prompts": 2, "group_size": 4, "learning_rate": 5e-2, "seed": 1}
    run = run_design(backend, "no-stop", reference, 2, **settings)  # a prompt-aware reward
    twin = RLHFRun(backend, RLHFSettings(task=design_task("no-stop"), updates=2,
                                         missing_stop_penalty=0.0, **settings), reference)
    for update in range(2):
        metrics, data = twin.update(update)
        for key in ("update", "reward", "success", "stopped", "kl"):
            assert run.history[key][update] == metrics[key], key
        true = SORT_PROMPT.rewards(data.prompts, data.completions).mean()
        assert run.history["true_reward"][update] == true
    assert run.completions == list(data.completions) and run.prompts == list(data.prompts)
    assert (run.design, run.backend) == ("no-stop", "torch")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, backends):
    """A sort-prompt reference pretrained in torch (300 steps); it loads in both backends."""
    path = tmp_path_factory.mktemp("sort_prompt") / "reference.safetensors"
    pretrain_reference(backends["torch"], "sort-prompt", path, PretrainSettings(), progress=False)
    return load_reference(path, "sort-prompt")


LEARNING = {"algo": "rloo", "beta": 0.01, "learning_rate": 5e-3, "prompts": 8, "seed": 0}


def test_rloo_learns_to_sort_the_prompt(backends, reference) -> None:
    run = run_design(backends["torch"], "prompt+stop", reference, 80, **LEARNING)
    true = np.asarray(run.history["true_reward"])
    assert np.array_equal(true, run.history["reward"])  # this design pays the true reward
    first, last = true[:5].mean(), true[-10:].mean()
    assert first < 0.21, f"the reference should score about 0.16, got {first:.3f}"
    assert last >= 0.25 and last - first >= 0.08, f"true reward {first:.3f} -> {last:.3f}"


def test_a_design_runs_in_lockstep_in_both_backends(backends, reference) -> None:
    runs = [run_design(backends[name], "no-stop", reference, 2, **LEARNING)
            for name in ("torch", "tf")]
    assert runs[0].completions == runs[1].completions  # same weights, same noise
    assert runs[0].history["reward"] == runs[1].history["reward"]
    assert runs[0].history["true_reward"] == runs[1].history["true_reward"]
    assert np.allclose(runs[0].history["kl"], runs[1].history["kl"], atol=1e-4)


# ---- warnings that name the cause (core/rlhf/diagnostics.py) ------------------------------

OLD_DEFAULTS_RUN = {  # the first 6 updates of grpo on sort-digits with the first defaults
    "reward": [0.562, 0.540, 0.567, 0.545, 0.045, 0.348],
    "kl": [-0.001, -0.001, 0.04, 4.69, 21.61, 12.11],
    "stopped": [1.0, 0.98, 0.97, 0.03, 0.22, 0.02],
}


def test_the_old_defaults_collapse_is_named_update_by_update() -> None:
    lines = run_warnings(OLD_DEFAULTS_RUN)
    assert len(lines) == 3
    assert lines[0].startswith("update 4: only 3% of completions emit the stop token (100% at")
    assert "--missing-stop-penalty" in lines[0]
    assert lines[1].startswith("update 5: KL jumped from 4.69 to 21.61 nats")
    assert "--learning-rate" in lines[1]
    assert lines[2].startswith("update 5: the reward collapsed from 0.562 to 0.045")


def test_a_healthy_run_and_the_thresholds_themselves_give_no_warning() -> None:
    healthy = {"reward": [0.55, 0.6, 0.8, 0.99], "kl": [0.0, 1.0, 6.0, 11.0],
               "stopped": [1.0, 0.95, 0.5, 1.0]}  # +5.0 nats, 50% stop: at the thresholds
    assert run_warnings(healthy) == []
    assert run_warnings({**healthy, "reward": [0.6, 0.3, 0.3, 0.3]}) == []  # exactly half
    assert run_warnings({"reward": [0.5, 0.2], "kl": [0.0, 0.1]}) == [
        "update 2: the reward collapsed from 0.500 to 0.200: see the samples (duetrl rlhf "
        "sample); a smaller --learning-rate or a larger --beta keeps the policy near the "
        "reference"]
    # a reference that rarely stopped to begin with lost nothing
    assert run_warnings({**healthy, "stopped": [0.8, 0.1, 0.1, 0.1]}) == []
    assert run_warnings({"reward": [0.0, 0.0], "kl": [0.0, 0.0]}) == []  # sparse: no start
    assert len(run_warnings(OLD_DEFAULTS_RUN, kl_jump=20.0, collapse=0.05, stop_floor=0.01)) == 0


def test_warnings_read_a_log_and_name_bad_histories(tmp_path) -> None:
    path = tmp_path / "log.csv"
    columns = ["update", *OLD_DEFAULTS_RUN]
    rows = [",".join(columns)] + [
        ",".join(str(v) for v in (u + 1, *(OLD_DEFAULTS_RUN[k][u] for k in OLD_DEFAULTS_RUN)))
        for u in range(6)]
    path.write_text("\n".join(rows) + "\n")
    assert log_warnings(path) == run_warnings(OLD_DEFAULTS_RUN)
    with pytest.raises(ValueError, match=r"history: expected a 'kl' column, got \['reward'\]"):
        run_warnings({"reward": [0.5]})
    with pytest.raises(ValueError, match=r"history: expected columns of one length, got "
                                         r"reward 2, kl 2, stopped 1"):
        run_warnings({"reward": [0.5, 0.5], "kl": [0.0, 0.0], "stopped": [1.0]})
