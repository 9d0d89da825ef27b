"""benchmarks/rlhf.py still runs (tiny settings; speed itself is never asserted in tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"


def test_rlhf_benchmark_runs_on_tiny_settings(capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_rlhf", BENCHMARKS / "rlhf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = module.main(
        ["--objectives", "rloo,dpo", "--updates", "3", "--min-timed", "1", "--warmup", "1",
         "--prompts", "2", "--group-size", "2", "--pretrain-steps", "5", "--smooth", "1",
         "--target", "0.0"]
    )
    assert set(results["objectives"]) == {"rloo", "dpo"}
    for result in results["objectives"].values():
        for name in ("torch", "tf"):
            assert result[name]["samples_per_s"] > 0 and result[name]["updates_per_s"] > 0
            assert result[name]["time_to_target_s"] is not None  # target 0: the first update
        assert result["tf_vs_torch"]["updates_per_s"] > 0
    assert "tf/torch" in capsys.readouterr().out


# -- the fast paths give the numbers of the plain ones -------------------------------------------


def test_inference_passes_match_the_differentiable_ones(backends) -> None:
    import numpy as np

    from duetrl.core.interfaces.gpt_config import GPTConfig
    from duetrl.core.interfaces.gpt_params import init_gpt_params

    config = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8)
    params = init_gpt_params(config, seed=0)
    tokens = np.random.default_rng(0).integers(0, 11, size=(3, 8))
    for backend in backends.values():
        model = backend.GPT(config)
        backend.import_params(model, params)
        head = backend.ValueHead(config.n_embd, seed=0)
        expected = backend.to_numpy(backend.token_log_probs(model, tokens))
        for _ in range(2):  # tf: the second call reuses the traced graph
            np.testing.assert_allclose(backend.inference_log_probs(model, tokens), expected,
                                       atol=1e-6)
        values = backend.to_numpy(head(backend.hidden_states(model, tokens[:, :-1])))
        np.testing.assert_allclose(backend.inference_values(model, head, tokens), values,
                                   atol=1e-6)


def test_pad_pairs_pads_to_a_fixed_count_with_zero_weights() -> None:
    import numpy as np
    import pytest

    from duetrl.core.interfaces.rlhf import pad_pairs

    batch = {"chosen_tokens": np.arange(6).reshape(3, 2), "ref_chosen_logp": np.ones(3)}
    padded = pad_pairs(batch)
    assert padded["chosen_tokens"].shape == (8, 2) and padded["ref_chosen_logp"].shape == (8,)
    np.testing.assert_array_equal(padded["chosen_tokens"][:3], batch["chosen_tokens"])
    np.testing.assert_array_equal(padded["pair_weights"], [1, 1, 1, 0, 0, 0, 0, 0])
    weighted = pad_pairs({**batch, "pair_weights": np.array([0.5, 2.0, 0.25])})
    np.testing.assert_array_equal(weighted["pair_weights"], [0.5, 2, 0.25, 0, 0, 0, 0, 0])
    assert pad_pairs({"x": np.zeros((9, 2))})["x"].shape == (16, 2)  # next power of two
    with pytest.raises(ValueError, match="one number of rows"):
        pad_pairs({"a": np.zeros(2), "b": np.zeros(3)})


def test_dpo_weighted_loss_ignores_padding(backends) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    sides = [rng.normal(size=5).astype(np.float32) for _ in range(4)]
    weights = np.array([1, 1, 1, 0, 0], np.float32)
    for backend in backends.values():
        plain = backend.dpo_loss(*(backend.as_tensor(s[:3]) for s in sides), 0.1)[0]
        padded = backend.dpo_loss(
            *(backend.as_tensor(s) for s in sides), 0.1, backend.as_tensor(weights)
        )[0]
        assert abs(float(plain) - float(padded)) < 1e-6
