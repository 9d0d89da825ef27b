"""core/lm/ablation.py: each variant takes away exactly its ingredient; runs are seeded.

The variants differ only in TrainConfig fields, which both backends read alike; torch and tf
training in lockstep is tests/test_lm_train.py's (the tutorial shows the ablation's runs agree).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.lm.ablation import LABELS, VARIANTS, run_ablation, variant_config
from duetrl.core.lm.data import TokenData
from duetrl.core.lm.train import LMRun, TrainConfig, learning_rate_at

BASE = TrainConfig(steps=6, batch_size=4, learning_rate=1e-2, min_learning_rate=1e-3,
                   warmup_steps=3, weight_decay=0.1, max_grad_norm=1.0, eval_every=6,
                   eval_batches=2, seed=5)
GPT = GPTConfig(vocab_size=7, block_size=8, n_layer=1, n_head=2, n_embd=16)


@pytest.fixture(scope="module")
def data() -> TokenData:
    ids = np.arange(600) % GPT.vocab_size  # 0 1 2 .. 6 0 1 ..: learnable in a few steps
    return TokenData(ids, block_size=GPT.block_size)


def changed_fields(config: TrainConfig) -> dict:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(TrainConfig)
            if getattr(config, f.name) != getattr(BASE, f.name)}


def test_each_variant_changes_only_its_fields() -> None:
    assert changed_fields(variant_config(BASE, "full")) == {}
    assert variant_config(BASE, "full") is not BASE  # a copy: the caller may change it
    assert changed_fields(variant_config(BASE, "no_warmup")) == {"warmup_steps": 0}
    assert changed_fields(variant_config(BASE, "no_clip")) == {"max_grad_norm": None}
    assert changed_fields(variant_config(BASE, "adam")) == {"weight_decay": 0.0}
    assert changed_fields(variant_config(BASE, "constant_lr")) == {
        "warmup_steps": 0, "min_learning_rate": 1e-2}
    assert set(LABELS) == set(VARIANTS) and VARIANTS[0] == "full"


def test_the_schedules_of_the_variants() -> None:
    rates = {v: [learning_rate_at(s, variant_config(BASE, v)) for s in range(BASE.steps)]
             for v in ("full", "no_warmup", "constant_lr")}
    assert rates["full"][:3] == pytest.approx([1e-2 / 3, 2e-2 / 3, 1e-2])
    assert rates["full"][-1] == pytest.approx(1e-3)
    assert rates["no_warmup"][0] == pytest.approx(1e-2) and rates["no_warmup"][-1] == \
        pytest.approx(1e-3)
    assert rates["constant_lr"] == pytest.approx([1e-2] * BASE.steps)


@pytest.mark.parametrize("variant", ["sgd", "Full", ""])
def test_an_unknown_variant_is_refused_by_name(variant: str) -> None:
    with pytest.raises(ValueError, match="variant: expected one of"):
        variant_config(BASE, variant)


def test_run_ablation_refuses_empty_or_unknown_input(data: TokenData) -> None:
    from duetrl.core.backend import load_backend

    torch_backend = load_backend("torch")
    with pytest.raises(ValueError, match="variants, seeds"):
        run_ablation(torch_backend, GPT, data, BASE, [], [0])
    with pytest.raises(ValueError, match="variants, seeds"):
        run_ablation(torch_backend, GPT, data, BASE, ["full"], [])
    with pytest.raises(ValueError, match="variant: expected"):
        run_ablation(torch_backend, GPT, data, BASE, ["full", "sgd"], [0])


def test_rows_are_seeded_runs_of_each_variant(data: TokenData) -> None:
    from duetrl.core.backend import load_backend

    torch_backend = load_backend("torch")
    rows = run_ablation(torch_backend, GPT, data, BASE, ["full", "no_warmup"], [0, 1])
    assert [(r["variant"], r["seed"]) for r in rows] == [
        ("full", 0), ("full", 1), ("no_warmup", 0), ("no_warmup", 1)]
    assert all(r["backend"] == "torch" and len(r["history"]["step"]) == BASE.steps
               for r in rows)
    # the row of (full, seed 1) is exactly a run with weights and batches of seed 1
    run = LMRun(torch_backend, torch_backend.GPT(GPT, seed=1), data,
                dataclasses.replace(BASE, seed=1))
    while not run.finished():
        run.step()
    assert rows[1]["val_loss"] == run.history["val_loss"][-1]
    assert rows[1]["max_grad_norm_seen"] == max(run.history["grad_norm"])
    assert rows[0]["val_loss"] != rows[1]["val_loss"]  # another seed, another run
    assert rows[0]["val_loss"] != rows[2]["val_loss"]  # another recipe, another run
    # no warm-up: the first update runs at the peak rate
    assert rows[2]["history"]["lr"][0] == pytest.approx(1e-2)
    assert rows[0]["history"]["lr"][0] == pytest.approx(1e-2 / 3)
    # six updates at these rates lower the loss from about log V in every run
    assert all(r["val_loss"] < np.log(GPT.vocab_size) for r in rows)

