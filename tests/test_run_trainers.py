"""The run loop's contract (core/run/loop.py), checked once on every real trainer of duetrl.

tests/test_run_loop.py proves the loop on a toy whose every number is known; here the same
promises are held against the trainers people run: a run logs one row per update and writes
the base summary keys; ``--resume`` after a crash continues the counters and logs each update
once; a NaN loss stops with ``Diverged`` and keeps the last good checkpoint; Ctrl-C saves a
checkpoint that resumes.

Exactness. What a checkpoint holds comes back exactly (the counters, the parameters and the
optimiser state), and the log never holds an update twice. What it does not hold is not
replayed: an RL trainer's Gymnasium environments keep internal state that is not in the
checkpoint, so a resumed RL run re-seeds them from (seed, update) and is a valid continuation
of the interrupted run, not a bit-for-bit replay of the uninterrupted one. The tests below
assert equality only for what is exact.
"""

from __future__ import annotations

import json
import math
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from duetrl.core.checkpoint import load_checkpoint
from duetrl.core.run import BASE_KEYS, Diverged, run
from duetrl.core.run.loop import CHECKPOINT, SUMMARY, read_log

# TRAINER_FACTORIES: every trainer the run loop runs, in each backend. APPEND-ONLY, and kept at
# the top of this file: the language-model, RLHF and reward-model trainers are added here by
# their owners (each with its helper below its own section of this file).
#
# A factory takes ``(tmp_path, **overrides)`` and returns a fresh trainer (duetrl.core.run.Trainer)
# with a tiny budget: at least 6 updates, a second or two in all. It must understand:
#     nan_at=N   from update N on, the trainer's update yields a NaN loss (patch its agent or
#                model so that the trainer's own finiteness check sees it), so step() raises
#                FloatingPointError at update N
# and may ignore ``tmp_path`` (it is there for trainers that need files: data, a reference).
TRAINER_FACTORIES = [
    pytest.param(lambda tmp_path, **kw: _policy_gradient("reinforce", "torch", **kw),
                 id="reinforce-torch"),
    pytest.param(lambda tmp_path, **kw: _policy_gradient("reinforce", "tf", **kw),
                 id="reinforce-tf"),
    pytest.param(lambda tmp_path, **kw: _policy_gradient("ppo", "torch", **kw), id="ppo-torch"),
    pytest.param(lambda tmp_path, **kw: _policy_gradient("ppo", "tf", **kw), id="ppo-tf"),
    pytest.param(lambda tmp_path, **kw: _dqn("torch", **kw), id="dqn-torch"),
    pytest.param(lambda tmp_path, **kw: _dqn("tf", **kw), id="dqn-tf"),
    # lm, rlhf, reward model (core/lm, core/rlhf): tf traces each new trainer's step with
    # tf.function (3-6 s each), so their tf twins are marked slow
    pytest.param(lambda tmp_path, **kw: _lm("torch", **kw), id="lm-torch"),
    pytest.param(lambda tmp_path, **kw: _lm("tf", **kw), id="lm-tf", marks=pytest.mark.slow),
    pytest.param(lambda tmp_path, **kw: _rlhf("rloo", "torch", **kw), id="rlhf-rloo-torch"),
    pytest.param(lambda tmp_path, **kw: _rlhf("rloo", "tf", **kw), id="rlhf-rloo-tf",
                 marks=pytest.mark.slow),
    pytest.param(lambda tmp_path, **kw: _rlhf("ppo", "torch", **kw), id="rlhf-ppo-torch"),
    pytest.param(lambda tmp_path, **kw: _rlhf("ppo", "tf", **kw), id="rlhf-ppo-tf",
                 marks=pytest.mark.slow),
    pytest.param(lambda tmp_path, **kw: _reward_model("torch", **kw), id="reward-model-torch"),
    pytest.param(lambda tmp_path, **kw: _reward_model("tf", **kw), id="reward-model-tf",
                 marks=pytest.mark.slow),
    # the Decision Transformer (core/agents/decision_transformer.py) and its BC twin
    pytest.param(lambda tmp_path, **kw: _dt("torch", **kw), id="dt-torch"),
    pytest.param(lambda tmp_path, **kw: _dt("tf", **kw), id="dt-tf", marks=pytest.mark.slow),
    # the LM agent (core/agents/train.py): PPO on an LM policy in duetrl/KeyDoor-v0
    pytest.param(lambda tmp_path, **kw: _lm_agent("torch", **kw), id="lm-agent-torch"),
    pytest.param(lambda tmp_path, **kw: _lm_agent("tf", **kw), id="lm-agent-tf",
                 marks=pytest.mark.slow),
    # translation (core/cases/translation): SCST updates (tests/test_translation.py resumes
    # across the switch from its MLE phase)
    pytest.param(lambda tmp_path, **kw: _translate("torch", **kw), id="translate-torch"),
    pytest.param(lambda tmp_path, **kw: _translate("tf", **kw), id="translate-tf",
                 marks=pytest.mark.slow),
    # dialogue (core/cases/dialogue): policy-gradient updates in self-play (MLE phase skipped,
    # as translation's; tests/test_dialogue.py resumes across the switch)
    pytest.param(lambda tmp_path, **kw: _dialogue("torch", **kw), id="dialogue-torch"),
    pytest.param(lambda tmp_path, **kw: _dialogue("tf", **kw), id="dialogue-tf",
                 marks=pytest.mark.slow),
    # the recommender (core/cases/recommender): 2 supervised warm-up updates, then 4 top-K
    # corrected ones (tests/test_recommender_run.py resumes across the branch)
    pytest.param(lambda tmp_path, **kw: _recommender("torch", **kw), id="recommender-torch"),
    pytest.param(lambda tmp_path, **kw: _recommender("tf", **kw), id="recommender-tf",
                 marks=pytest.mark.slow),
    # knowledge-graph walks (core/cases/kg): REINFORCE updates of the MINERVA walker
    pytest.param(lambda tmp_path, **kw: _kg("torch", **kw), id="kg-torch"),
    pytest.param(lambda tmp_path, **kw: _kg("tf", **kw), id="kg-tf", marks=pytest.mark.slow),
]

Factory = Callable[..., Any]


@pytest.fixture
def make(tmp_path, request, monkeypatch) -> Callable[..., Any]:
    """``make(factory, **overrides)``: a fresh trainer, closed (when it can be) after the test.

    A tf trainer's LM steps are traced without XLA here: the contract is the loop's, and an XLA
    compile costs seconds per model and test (XLA's numbers are checked in test_lm_train.py)."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.id.endswith("-tf"):
        monkeypatch.setattr("duetrl.backends.tf.training.XLA_TRAIN_STEP", False)

    def build(factory: Factory, **overrides: Any) -> Any:
        trainer = factory(tmp_path, **overrides)
        if hasattr(trainer, "close"):
            request.addfinalizer(trainer.close)
        return trainer

    return build


def _logged_updates(run_dir: Path) -> list[int]:
    return [int(float(row["update"])) for row in read_log(run_dir / "log.csv")]


def _x_values(run_dir: Path, x_key: str) -> list[float]:
    return [float(row[x_key]) for row in read_log(run_dir / "log.csv")]


def _checkpointed(factory: Factory, make: Callable[..., Any], run_dir: Path) -> Any:
    """A fresh trainer with the checkpoint in ``run_dir`` loaded: what a resume starts from."""
    trainer = make(factory)
    path = run_dir / CHECKPOINT
    trainer.load_state(load_checkpoint(path, trainer.kind), str(path))
    return trainer


def _interrupt_at(trainer: Any, update: int, how: Callable[[], None]) -> None:
    """Call ``how`` once the trainer's ``update``-th step has run (a Ctrl-C) or before it runs
    (a crash), by wrapping its ``step``."""
    real = trainer.step

    def step() -> dict:
        if trainer.updates == update - 1 and how is _crash:
            how()
        row = real()
        if trainer.updates == update and how is not _crash:
            how()
        return row

    trainer.step = step


def _crash() -> None:
    raise RuntimeError("the machine went down")


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)  # as a user's Ctrl-C during this update


# ---- the contract --------------------------------------------------------------------------
@pytest.mark.parametrize("factory", TRAINER_FACTORIES)
def test_a_run_logs_one_row_per_update_and_writes_the_base_summary(factory, make, tmp_path):
    trainer = make(factory)
    out = tmp_path / "run"
    summary = run(trainer, out, quiet=True)
    assert list(summary)[: len(BASE_KEYS)] == list(BASE_KEYS)
    assert summary["updates"] == trainer.updates >= 6 and summary["interrupted"] is False
    assert trainer.finished()
    assert summary["backend"] == trainer.backend_name and summary["seed"] == trainer.seed
    assert list(json.loads((out / SUMMARY).read_text())) == list(summary)
    assert _logged_updates(out) == list(range(1, trainer.updates + 1))
    x = _x_values(out, trainer.x_key)
    assert all(a < b for a, b in zip(x, x[1:])), f"{trainer.x_key} must grow: {x}"
    assert (out / CHECKPOINT).is_file()
    assert _checkpointed(factory, make, out).updates == trainer.updates


@pytest.mark.parametrize("factory", TRAINER_FACTORIES)
def test_resume_after_a_crash_continues_the_counters_and_logs_each_update_once(
        factory, make, tmp_path):
    out = tmp_path / "run"
    first = make(factory)
    _interrupt_at(first, 4, _crash)  # updates 1-3 logged, the checkpoint holds update 2
    with pytest.raises(RuntimeError, match="went down"):
        run(first, out, quiet=True, checkpoint_every=2)
    logged = read_log(out / "log.csv")
    assert _logged_updates(out) == [1, 2, 3]

    saved = load_checkpoint(out / CHECKPOINT, first.kind)
    loaded = _checkpointed(factory, make, out)
    assert loaded.updates == 2  # exact: the counters come back as saved
    again = loaded.state()
    for group, tensors in saved.tensors.items():  # exact: parameters and optimiser state
        assert set(again.tensors[group]) == set(tensors), group
        for name, value in tensors.items():
            np.testing.assert_array_equal(again.tensors[group][name], value, f"{group}.{name}")

    resumed = loaded  # a trainer that has loaded the checkpoint may load it again
    summary = run(resumed, out, resume=True, quiet=True, checkpoint_every=2)
    assert summary["interrupted"] is False and resumed.finished()
    assert _logged_updates(out) == list(range(1, resumed.updates + 1))  # update 3 once
    assert read_log(out / "log.csv")[:2] == logged[:2]  # the rows the checkpoint covers stay
    x = _x_values(out, resumed.x_key)
    assert all(a < b for a, b in zip(x, x[1:])), f"{resumed.x_key} must go on growing: {x}"
    # not asserted: that rows 3.. equal an uninterrupted run's (a continuation, not a replay)


@pytest.mark.parametrize("factory", TRAINER_FACTORIES)
def test_nan_loss_stops_with_diverged_and_keeps_the_last_good_checkpoint(factory, make,
                                                                         tmp_path):
    out = tmp_path / "run"
    poisoned = make(factory, nan_at=4)
    with pytest.raises(Diverged, match=r"nan.*update 2\) is kept"):
        run(poisoned, out, quiet=True, checkpoint_every=2)
    kept = load_checkpoint(out / CHECKPOINT, poisoned.kind)
    assert all(np.all(np.isfinite(v)) for group in kept.tensors.values() for v in group.values())
    resumed = _checkpointed(factory, make, out)
    assert resumed.updates == 2
    run(resumed, out, resume=True, quiet=True)
    assert resumed.finished() and _logged_updates(out) == list(range(1, resumed.updates + 1))


@pytest.mark.parametrize("factory", TRAINER_FACTORIES)
def test_ctrl_c_finishes_the_update_and_saves_a_checkpoint_that_resumes(factory, make,
                                                                        tmp_path):
    out = tmp_path / "run"
    first = make(factory)
    _interrupt_at(first, 2, _ctrl_c)
    summary = run(first, out, quiet=True, checkpoint_every=100)
    assert summary["interrupted"] is True and summary["updates"] == 2
    resumed = _checkpointed(factory, make, out)
    assert resumed.updates == 2  # saved on the way out
    summary = run(resumed, out, resume=True, quiet=True)
    assert summary["interrupted"] is False and resumed.finished()
    assert _logged_updates(out) == list(range(1, resumed.updates + 1))


# ---- the RL trainers (core/rl) -------------------------------------------------------------
def _nan_from(trainer: Any, method: str, nan_at: int | None) -> Any:
    """Make ``trainer.agent.<method>`` report a NaN loss from update ``nan_at`` on."""
    if nan_at is None:
        return trainer
    real = getattr(trainer.agent, method)

    def poisoned(*args: Any, **kwargs: Any) -> dict:
        metrics = real(*args, **kwargs)
        if trainer.updates + 1 >= nan_at:  # called during update number trainer.updates + 1
            metrics = {**metrics, "loss": float("nan")}
        return metrics

    setattr(trainer.agent, method, poisoned)
    return trainer


def _policy_gradient(algorithm: str, backend: str, nan_at: int | None = None, **settings: Any):
    from duetrl.core.interfaces.rl_settings import make_settings
    from duetrl.core.rl.train import PolicyGradientTrainer

    small = {"num_envs": 2, "hidden_dim": 8}
    if algorithm == "ppo":
        small.update(num_steps=8, update_epochs=2)
    # Identity episodes last 16 steps: REINFORCE takes 2 x 16 env steps an update, PPO 2 x 8
    per_update = 16 if algorithm == "ppo" else 32
    trainer = PolicyGradientTrainer(algorithm, "duetrl/Identity-v0", backend,
                                    make_settings(algorithm, **{**small, **settings}), seed=0,
                                    total_steps=8 * per_update)
    return _nan_from(trainer, "update", nan_at)


DQN_SMALL = {"num_envs": 2, "hidden_dim": 8, "batch_size": 16, "buffer_size": 512,
             "learning_starts": 16, "train_freq": 8, "gradient_steps": 2,
             "target_update_interval": 2, "eval_episodes": 2, "eval_interval": 64}
"""About 16 env steps an update, learning from the first update on."""


def _dqn(backend: str, nan_at: int | None = None, target: float | None = None, **settings: Any):
    from duetrl.core.rl.dqn import DQNTrainer
    from duetrl.core.rl.dqn_settings import make_dqn_settings

    trainer = DQNTrainer("duetrl/Identity-v0", backend,
                         make_dqn_settings(**{**DQN_SMALL, **settings}), seed=0,
                         total_steps=128, target=target)
    return _nan_from(trainer, "update_many", nan_at)


TRAIN_KEYS = ("algorithm", "env", "backend", "seed", "solved", "target", "env_steps",
              "episodes", "updates", "wall_s", "final_mean_return", "interrupted", "checkpoint",
              "log", "plot")
"""What ``duetrl train ALGO --json`` has always printed (core/scale/sweep.py and the report
read these); ``duetrl train dqn --json`` adds greedy_return and gradient_steps."""


@pytest.mark.parametrize("algorithm", ["reinforce", "ppo", "dqn"])
def test_rl_summaries_keep_the_keys_sweeps_and_reports_read(algorithm, tmp_path):
    from duetrl.core.interfaces.rl_settings import make_settings
    from duetrl.core.rl.dqn_settings import make_dqn_settings
    from duetrl.core.rl.session import train, train_dqn

    if algorithm == "dqn":
        summary = train_dqn("duetrl/Identity-v0", "torch", make_dqn_settings(**DQN_SMALL),
                            total_steps=64, out=str(tmp_path), quiet=True)
        assert {"greedy_return", "gradient_steps"} <= set(summary)
    else:
        summary = train(algorithm, "duetrl/Identity-v0", "torch",
                        make_settings(algorithm, num_envs=2, hidden_dim=8), total_steps=64,
                        out=str(tmp_path), quiet=True)
    assert set(TRAIN_KEYS) <= set(summary), sorted(set(TRAIN_KEYS) - set(summary))
    assert summary["algorithm"] == algorithm and summary["env"] == "duetrl/Identity-v0"
    assert summary["target"] is None  # Identity-v0 registers no reward threshold
    assert Path(summary["plot"]).name == "curve.png" and Path(summary["plot"]).is_file()


def test_policy_gradient_stops_once_solved(tmp_path, make):
    # 8 envs x one 16-step episode an update: the 100-episode window is full after 13 updates
    trainer = make(lambda _, **kw: _policy_gradient("reinforce", "torch", num_envs=8))
    trainer.target, trainer.total_steps = 0.0, 10**6  # any mean return >= 0 is "solved"
    summary = run(trainer, tmp_path, quiet=True)
    assert summary["solved"] is True and summary["updates"] == 13
    assert summary["env_steps"] == 13 * 8 * 16 and summary["interrupted"] is False


def test_dqn_stops_once_the_greedy_policy_reaches_the_target(tmp_path, make):
    trainer = make(lambda _, **kw: _dqn("torch", target=0.0))  # greedy return >= 0: solved
    trainer.total_steps = 10**6
    summary = run(trainer, tmp_path, quiet=True)
    assert summary["solved"] is True and math.isfinite(summary["greedy_return"])
    assert DQN_SMALL["eval_interval"] <= summary["env_steps"] < 2 * DQN_SMALL["eval_interval"]
    rows = read_log(tmp_path / "log.csv")
    assert float(rows[-1]["greedy_return"]) == summary["greedy_return"]  # logged as it is


# ---- the language-model, RLHF and reward-model trainers (core/lm, core/rlhf) ---------------
def _nan_loss_from(trainer: Any, owner: Any, method: str, nan_at: int | None,
                   as_tuple: bool = False) -> Any:
    """Make ``owner.<method>`` (the backend's step) report a NaN loss from update ``nan_at``."""
    if nan_at is None:
        return trainer
    real = getattr(owner, method)

    def poisoned(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        if trainer.updates + 1 >= nan_at:  # called during update number trainer.updates + 1
            out = (float("nan"), *out[1:]) if as_tuple else {**out, "loss": float("nan")}
        return out

    setattr(owner, method, poisoned)
    return trainer


def _lm(backend_name: str, nan_at: int | None = None, steps: int = 8) -> Any:
    from duetrl.core.backend import load_backend
    from duetrl.core.interfaces.gpt_config import GPTConfig
    from duetrl.core.lm.data import TokenData
    from duetrl.core.lm.train import LMRun, TrainConfig

    backend = load_backend(backend_name)
    config = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)
    data = TokenData(np.random.default_rng(1).integers(0, 11, 2000), 8)
    settings = TrainConfig(steps=steps, batch_size=4, warmup_steps=2, eval_every=3,
                           eval_batches=1)
    trainer = LMRun(backend, backend.GPT(config, seed=0), data, settings, plot_name="loss.png")
    return _nan_loss_from(trainer, trainer.trainer, "train_step", nan_at, as_tuple=True)


def _rlhf(algo: str, backend_name: str, nan_at: int | None = None, updates: int = 6) -> Any:
    from duetrl.core.backend import load_backend
    from duetrl.core.rlhf.train import RLHFRun, RLHFSettings

    settings = RLHFSettings(algo=algo, reference="uniform", beta=0.1, updates=updates, prompts=2,
                            group_size=2, n_layer=1, n_embd=16, epochs=2 if algo == "ppo" else 1)
    trainer = RLHFRun(load_backend(backend_name), settings)
    return _nan_loss_from(trainer, trainer.learner, "update", nan_at)


def _reward_model(backend_name: str, nan_at: int | None = None, steps: int = 6) -> Any:
    from duetrl.core.backend import load_backend
    from duetrl.core.rlhf.reward_training import RewardModelSettings, RewardModelTrainer

    settings = RewardModelSettings(pairs=16, held_out=16, steps=steps, batch_size=8)
    trainer = RewardModelTrainer(load_backend(backend_name), settings)
    return _nan_loss_from(trainer, trainer.learner, "update", nan_at)


EXACT_FACTORIES = [p for p in TRAINER_FACTORIES
                   if p.id.startswith(("lm-", "rlhf-", "reward-model-"))]
"""Trainers whose update is a function of the checkpoint and (seed, update) only."""

TIMING_COLUMNS = ("wall_s",)
"""Log columns that measure time: the only ones a replay may change."""


def _params(trainer: Any) -> dict[str, np.ndarray]:
    return {f"{group}.{name}": value for group, tensors in trainer.state().tensors.items()
            for name, value in tensors.items()}


def _rows(run_dir: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS}
            for row in read_log(run_dir / "log.csv")]


@pytest.mark.parametrize("factory", EXACT_FACTORIES)
def test_an_interrupted_and_resumed_run_equals_the_uninterrupted_one(factory, make, tmp_path):
    straight = make(factory)
    run(straight, tmp_path / "straight", quiet=True)
    first = make(factory)  # killed before update 4: the checkpoint holds update 2, 3 was logged
    _interrupt_at(first, 4, _crash)
    out = tmp_path / "interrupted"
    with pytest.raises(RuntimeError, match="went down"):
        run(first, out, quiet=True, checkpoint_every=2)
    resumed = make(factory)
    run(resumed, out, resume=True, quiet=True)
    assert resumed.updates == straight.updates
    expected, got = _params(straight), _params(resumed)
    assert set(got) == set(expected)
    for name, value in expected.items():  # weights, optimiser state, reference: bit for bit
        np.testing.assert_array_equal(got[name], value, name)
    assert _rows(out) == _rows(tmp_path / "straight")


# ---- lockstep: every trainer, torch beside tf, through the one compare driver --------------
def _backend_pairs() -> list[Any]:
    """(torch factory, tf factory) of each trainer in TRAINER_FACTORIES, by their ids."""
    by_id = {p.id: p.values[0] for p in TRAINER_FACTORIES}
    families = sorted({p.id.rsplit("-", 1)[0] for p in TRAINER_FACTORIES})
    return [pytest.param(by_id[f"{f}-torch"], by_id[f"{f}-tf"], id=f, marks=pytest.mark.slow)
            for f in families]


@pytest.mark.parametrize(("torch_factory", "tf_factory"), _backend_pairs())
def test_both_backends_start_in_lockstep_through_the_compare_driver(torch_factory, tf_factory,
                                                                     make):
    from duetrl.core.run import compare
    from duetrl.core.tolerances import TOLERANCES

    trainers = {"torch": make(torch_factory), "tf": make(tf_factory)}
    # Relaxed from float32_model (1e-4) for the weights, on purpose: Adam's first step is
    # lr * g / (|g| + eps) per weight, so a weight whose gradient is near eps (1e-8) moves by a
    # share of lr that float32 rounding of g changes; with the reward model's lr 3e-3 that is
    # up to ~1.5e-4 after update 1. The loss of update 1, from the same start, is not relaxed.
    tolerance = 2 * TOLERANCES["float32_model"]
    result = compare(trainers, lambda t: t.state().tensors["params"], tolerance, quiet=True)
    first = result["rows"][0]
    assert first["update"] == 1 and first["max_param_diff"] <= tolerance, first
    loss = "train_loss" if "train_loss_torch" in first else "loss"  # the LM logs train_loss
    assert math.isclose(first[f"{loss}_torch"], first[f"{loss}_tf"],
                        abs_tol=TOLERANCES["float32_model"])
    assert result["updates_within_tolerance"] >= 1
    for name in trainers:  # each ran its whole budget, its own figures in the result
        assert result["backends"][name]["updates"] == trainers[name].updates >= 6


# ---- the Decision Transformer (core/agents) --------------------------------------------------
def _dt(backend_name: str, nan_at: int | None = None, steps: int = 6) -> Any:
    from duetrl.core.agents.decision_transformer import DTRun, DTSettings
    from duetrl.core.backend import load_backend

    settings = DTSettings(episodes=30, steps=steps, n_layer=1, n_embd=16, batch_size=8,
                          warmup_steps=2, eval_episodes=2)
    trainer = DTRun(load_backend(backend_name), settings)
    return _nan_loss_from(trainer, trainer.trainer, "train_step", nan_at, as_tuple=True)


# ---- the LM agent (core/agents/train.py) -----------------------------------------------------
def _lm_agent(backend_name: str, nan_at: int | None = None, updates: int = 6) -> Any:
    from duetrl.core.agents.settings import AgentSettings
    from duetrl.core.agents.train import LMAgentRun
    from duetrl.core.backend import load_backend

    settings = AgentSettings(env="duetrl/KeyDoor-v0", policy="lm-scratch", num_envs=2,
                             updates=updates, epochs=2, n_layer=1, n_embd=16, block_size=64,
                             eval_episodes=1)
    trainer = LMAgentRun(load_backend(backend_name), settings)
    return _nan_loss_from(trainer, trainer.learner, "update", nan_at)


# ---- translation with a BLEU reward (core/cases/translation) -----------------------------------
def _translate(backend_name: str, nan_at: int | None = None) -> Any:
    from duetrl.core.backend import load_backend
    from duetrl.core.cases.translation.train import TranslationRun, TranslationSettings

    # one batch size (4 sources, 1 sample each, 4 held-out): tf traces one decoder
    settings = TranslationSettings(train_pairs=32, heldout_pairs=4, n_layer=1, n_head=2,
                                   n_embd=16, mle_steps=0, scst_updates=6, sources=4, samples=1,
                                   scst_learning_rate=1e-3, eval_every=100)
    trainer = TranslationRun(load_backend(backend_name), settings)
    return _nan_loss_from(trainer, trainer.learner, "update", nan_at)


# ---- dialogue generation with RL (core/cases/dialogue) ------------------------------------------
def _dialogue(backend_name: str, nan_at: int | None = None) -> Any:
    from duetrl.core.backend import load_backend
    from duetrl.core.cases.dialogue.train import DialogueRun, DialogueSettings

    # one batch size (4 conversations, 2 turns each, 4 held-out): tf traces one decoder
    settings = DialogueSettings(dialogues=30, n_layer=1, n_head=2, n_embd=16, mle_steps=0,
                                rl_updates=6, conversations=4, start_turns=2, max_turns=2,
                                eval_conversations=4, eval_turns=2, eval_every=100)
    trainer = DialogueRun(load_backend(backend_name), settings)
    return _nan_loss_from(trainer, trainer.learner, "update", nan_at)


# ---- the top-K off-policy corrected recommender (core/cases/recommender) -----------------------
def _recommender(backend_name: str, nan_at: int | None = None) -> Any:
    from duetrl.core.backend import load_backend
    from duetrl.core.cases.recommender.train import RecommenderRun, RecommenderSettings

    settings = RecommenderSettings(sessions=200, eval_users=20, pretrain_steps=2, updates=4,
                                   eval_every=100, n_embd=16, n_layer=1, batch_size=16, history=4)
    trainer = RecommenderRun(load_backend(backend_name), settings)
    _nan_loss_from(trainer, trainer.pretrainer, "update", nan_at)  # the warm-up's learner
    return _nan_loss_from(trainer, trainer.learner, "update", nan_at)


# ---- knowledge-graph reasoning by walking it (core/cases/kg) -----------------------------------
def _kg(backend_name: str, nan_at: int | None = None) -> Any:
    from duetrl.core.backend import load_backend
    from duetrl.core.cases.kg.train import KGRun, KGSettings

    settings = KGSettings(families=3, updates=6, batch_queries=8, rollouts=2, relation_dim=4,
                          entity_dim=4, history_dim=6, mlp_dim=6, beam_width=4, random_walks=8,
                          eval_every=100)
    trainer = KGRun(load_backend(backend_name), settings)
    return _nan_loss_from(trainer, trainer.learner, "update", nan_at)
