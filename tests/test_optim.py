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
