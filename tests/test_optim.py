"""Adam / AdamW (backends/*/optim.py): each backend's step (torch's ``torch._foreach_*`` calls,
TensorFlow's fused kernel ``ResourceApplyAdam``) moves the parameters and moments as the
float64 reference's formula-by-formula step does (core/reference/optim.py), at the tolerance
table's float64 and float32-layer tolerances, over steps that exercise every input: weight
decay on matrices only, clipping, a missing gradient (a zero one), a learning rate given as a
tensor, and in torch a transposed (non-contiguous) gradient. (It passed with torch's fused
kernel ``torch._fused_adam_`` too: benchmarks/cartpole_results.md.)"""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.initializers import cast_params
from duetrl.core.interfaces.rl_settings import make_settings
from duetrl.core.reference.optim import adam_step
from duetrl.core.reference.policy import init_agent_params
from duetrl.core.tolerances import assert_close

STATE, ACTIONS, HIDDEN = 4, 3, 8
LEARNING_RATES = (1e-2, 3e-2, 2e-2)  # the third is handed over as a float64 tensor


def framework_gradients(backend, optimizer, grads: dict, dtype: str) -> list:
    """The canonical (in, out) gradients in the optimiser's order and framework layout; a
    torch Linear weight, (out, in), gets the transposed view of a (in, out) tensor."""
    out = []
    for name, parameter in zip(optimizer.names, optimizer.parameters):
        if grads.get(name) is None:
            out.append(None)
            continue
        g = backend.as_tensor(grads[name].astype(dtype))
        out.append(g if tuple(g.shape) == tuple(parameter.shape) else g.T)
    return out


@pytest.mark.parametrize("weight_decay", [0.0, 0.1], ids=["adam", "adamw"])
def test_adam_step_equals_the_reference_step(backend, dtype, weight_decay):
    rng = np.random.default_rng(3)
    settings = make_settings("ppo", hidden_dim=HIDDEN)
    agent = backend.Agent("ppo", STATE, ACTIONS, False, settings, dtype)
    params = init_agent_params("ppo", STATE, HIDDEN, ACTIONS, False, 0)
    backend.import_params(agent, cast_params(params, dtype))
    optimizer = backend.Adam(agent, max_grad_norm=0.5, weight_decay=weight_decay)
    expected = {k: v.astype(dtype).astype(np.float64) for k, v in params.items()}
    state: dict = {}
    missing = optimizer.names[1]  # a parameter the second step's loss does not reach
    for step, lr in enumerate(LEARNING_RATES):
        grads = {k: rng.normal(size=v.shape) * (3.0 if step == 0 else 0.1)  # clipped, then not
                 for k, v in params.items()}
        grads = {k: g.astype(dtype).astype(np.float64) for k, g in grads.items()}
        if step == 1:
            grads[missing] = np.zeros_like(grads[missing])  # None is a zero gradient
        expected, state = adam_step(expected, grads, state, lr, 0.5, weight_decay)
        handed = {k: (None if step == 1 and k == missing else g) for k, g in grads.items()}
        rate = backend.as_tensor(np.array(lr)) if step == 2 else lr
        optimizer.apply_gradients(framework_gradients(backend, optimizer, handed, dtype), rate)
    tol = "float64" if dtype == "float64" else "float32_layer"
    got = backend.export_params(agent)
    arrays = optimizer.state_arrays()
    assert optimizer.step_count == 3
    for name in params:
        assert_close(got[name], expected[name], tol, name)
        assert_close(arrays[f"m.{name}"], state["m"][name], tol, f"m.{name}")
        assert_close(arrays[f"v.{name}"], state["v"][name], tol, f"v.{name}")


def foreach_adam_step(parameters, m, v, grads, step: int, lr: float, max_norm: float) -> None:
    """The former torch step, one ``torch._foreach_*`` call per formula over the separate
    parameters (torch.optim.Adam's way): the oracle of the flat buffer's "bit for bit"."""
    import torch

    from duetrl.core.constants import ADAM_BETA1, ADAM_BETA2, ADAM_EPS, GRAD_NORM_EPS

    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    grads = torch._foreach_mul(grads, torch.clamp(max_norm / (norm + GRAD_NORM_EPS), max=1.0))
    bias1 = 1.0 - ADAM_BETA1 ** torch.tensor(float(step), dtype=torch.float64)
    bias2 = 1.0 - ADAM_BETA2 ** torch.tensor(float(step), dtype=torch.float64)
    torch._foreach_mul_(m, ADAM_BETA1)
    torch._foreach_add_(m, grads, alpha=1.0 - ADAM_BETA1)
    torch._foreach_mul_(v, ADAM_BETA2)
    torch._foreach_addcmul_(v, grads, grads, value=1.0 - ADAM_BETA2)
    m_hat = torch._foreach_div(m, bias1)
    denominators = torch._foreach_sqrt(torch._foreach_div(v, bias2))
    torch._foreach_add_(denominators, ADAM_EPS)
    torch._foreach_mul_(m_hat, -lr)
    torch._foreach_addcdiv_(parameters, m_hat, denominators)


def test_torch_flat_buffer_step_is_the_per_parameter_step_bit_for_bit(backends):
    """torch's Adam runs each formula once on one buffer the parameters view; per element it is
    the same arithmetic as a step over each parameter, so the two agree exactly (float32,
    clipped and unclipped steps, five steps)."""
    import torch

    backend = backends["torch"]
    agent = backend.Agent("ppo", STATE, ACTIONS, False, make_settings("ppo", hidden_dim=HIDDEN))
    optimizer = backend.Adam(agent, max_grad_norm=0.5)
    shadow = [p.detach().clone() for p in optimizer.parameters]
    m, v = [torch.zeros_like(p) for p in shadow], [torch.zeros_like(p) for p in shadow]
    generator = torch.Generator().manual_seed(0)
    for step, scale in enumerate((3.0, 0.01, 1.0, 0.02, 5.0), start=1):
        grads = [torch.randn(p.shape, generator=generator) * scale for p in shadow]
        optimizer.apply_gradients([g.clone() for g in grads], 2e-2)
        foreach_adam_step(shadow, m, v, grads, step, 2e-2, 0.5)
        for name, ours, theirs in zip(optimizer.names, optimizer.parameters, shadow):
            assert torch.equal(ours.detach(), theirs), (step, name)
    for ours, theirs in zip(optimizer.m + optimizer.v, m + v):
        assert torch.equal(ours, theirs)


def test_torch_adam_still_steps_its_parameters_after_another_adam_takes_them(backends):
    """A second Adam over the same model rebinds its parameters to its own buffer; the first
    one notices at its next step and takes them back, so neither steps a stale copy."""
    backend = backends["torch"]
    agent = backend.Agent("ppo", STATE, ACTIONS, False, make_settings("ppo", hidden_dim=HIDDEN))
    first = backend.Adam(agent)
    second = backend.Adam(agent)
    for optimizer in (first, second, first):
        before = backend.export_params(agent)
        grads = [backend.as_tensor(np.ones(tuple(p.shape), np.float32))
                 for p in optimizer.parameters]
        optimizer.apply_gradients(grads, 1e-2)
        after = backend.export_params(agent)
        for name in before:  # Adam's first step moves every weight by about lr
            np.testing.assert_allclose(before[name] - after[name], 1e-2, rtol=1e-3)


def test_torch_adam_refuses_parameters_of_two_dtypes(backends):
    import torch

    backend = backends["torch"]
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="parameters: expected one dtype and device"):
        backend.Adam(model)


@pytest.mark.parametrize("max_norm", [None, 0.0, 0.5, 100.0], ids=["none", "zero", "clips", "passes"])
def test_clip_by_global_norm_equals_the_reference(backend, dtype, max_norm):
    """Each backend's public clip (torch's Adam inlines its two halves, global_norm and
    clip_scale, on the flat buffer; TF's Adam calls it) against the float64 reference."""
    from duetrl.core.reference.optim import clip_by_global_norm

    rng = np.random.default_rng(5)
    grads = {"a": rng.normal(size=(3, 4)), "b": rng.normal(size=(4,))}
    expected, expected_norm = clip_by_global_norm(grads, max_norm)
    got, norm = backend.clip_by_global_norm(
        [backend.as_tensor(g.astype(dtype)) for g in grads.values()], max_norm)
    tol = "float64" if dtype == "float64" else "float32_layer"
    assert_close(backend.to_numpy(norm), expected_norm, tol, "norm")
    for name, g in zip(grads, got):
        assert_close(backend.to_numpy(g), expected[name], tol, name)
