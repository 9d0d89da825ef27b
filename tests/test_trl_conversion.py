"""benchmarks/rlhf_trl.py builds TRL's side from duetrl's weights: the Hugging Face GPT-2 it makes
must compute duetrl's logits, and its tokenizer must give duetrl's ids (skipped without
transformers; no TRL needed, nothing downloaded)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from duetrl.core.interfaces.gpt_params import gpt2_to_canonical, init_gpt_params
from duetrl.core.rlhf.mdp import SequenceMDP
from duetrl.core.rlhf.pi_ref import ModelSize
from duetrl.core.tolerances import assert_close

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def rlhf_trl():
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    spec = importlib.util.spec_from_file_location("bench_rlhf_trl", BENCHMARKS / "rlhf_trl.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_rlhf_trl"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mdp():
    return SequenceMDP.for_task("sort-digits", "pretrained")


def test_the_gpt2_model_computes_duetrls_logits(backends, rlhf_trl, mdp):
    import torch

    config = ModelSize(n_layer=2, n_head=2, n_embd=16).config(mdp)
    # random biases and LayerNorms, so a swapped or untransposed weight shows
    params = init_gpt_params(config, seed=3, random_affine=True)
    hf = rlhf_trl.to_gpt2(config, params, mdp.stop_id)
    idx = np.random.default_rng(0).integers(0, config.vocab_size, size=(3, config.block_size))
    with torch.no_grad():
        hf_logits = hf(torch.as_tensor(idx)).logits.numpy()
    assert hf_logits.shape == (3, config.block_size, config.vocab_size)
    for name, backend in backends.items():
        model = backend.GPT(config)
        backend.import_params(model, params)
        assert_close(hf_logits, backend.to_numpy(model(idx)), "float32_model",
                     f"Hugging Face GPT-2 vs duetrl {name}")
    # and back: the existing GPT-2 importer recovers every parameter exactly
    _, back = gpt2_to_canonical(hf.state_dict(), n_head=config.n_head)
    assert back.keys() == params.keys()
    for key, value in params.items():
        np.testing.assert_array_equal(back[key], value, err_msg=key)
    assert hf.generation_config.eos_token_id == mdp.stop_id
    assert hf.generation_config.pad_token_id == mdp.stop_id


def test_the_tokenizer_gives_duetrls_ids(rlhf_trl, mdp):
    tokenizer = rlhf_trl.digit_tokenizer(mdp)
    text = "31415926:00112345\n"
    assert tokenizer(text, add_special_tokens=False)["input_ids"] == (
        mdp.tokenizer.encode(text).tolist())
    assert tokenizer.eos_token_id == tokenizer.pad_token_id == mdp.stop_id
    assert tokenizer.decode(mdp.tokenizer.encode("0123:")) == "0123:"
    assert len(tokenizer) == mdp.vocab_size
