"""duetrl's weights in RLlib and back (outline 7.2.3): one name table, one transpose.

duetrl's canonical parameters name a layer ``policy.fc1.kernel`` and store a kernel as
``(in, out)`` (``x @ W + b``); RLlib's default PPO torch module names it
``encoder.actor_encoder.net.mlp.0.weight`` and stores ``(out, in)``. :data:`CANONICAL_TO_RLLIB`
is the table; every kernel is transposed once, here. Re-exported by
:mod:`duetrl.core.scale.rllib`, the bridge's front door.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

DEFAULT_MODULE_ID = "default_policy"
"""The id RLlib gives the one RLModule of a single-agent algorithm."""

CANONICAL_TO_RLLIB: dict[str, str] = {
    "policy.fc1.kernel": "encoder.actor_encoder.net.mlp.0.weight",
    "policy.fc1.bias": "encoder.actor_encoder.net.mlp.0.bias",
    "policy.fc2.kernel": "pi.net.mlp.0.weight",
    "policy.fc2.bias": "pi.net.mlp.0.bias",
    "policy.log_std": "pi.log_std",  # Gaussian policies only (RLlib's free_log_std=True)
    "value.fc1.kernel": "encoder.critic_encoder.net.mlp.0.weight",
    "value.fc1.bias": "encoder.critic_encoder.net.mlp.0.bias",
    "value.fc2.kernel": "vf.net.mlp.0.weight",
    "value.fc2.bias": "vf.net.mlp.0.bias",
}
"""duetrl's canonical name -> the key in the state dict of RLlib's ``DefaultPPOTorchRLModule``
built by :func:`ppo_config` (separate actor and critic encoders of one hidden layer each, no
hidden layers in the heads). Kernels are transposed: canonical ``(in, out)``, torch ``(out, in)``.
"""


def _is_kernel(name: str) -> bool:
    return name.endswith(".kernel")


def canonical_to_rllib_state(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename and transpose canonical parameters into RLlib state-dict entries (NumPy).

    :raises ValueError: naming a parameter with no RLlib counterpart.
    """
    unknown = sorted(set(params) - set(CANONICAL_TO_RLLIB))
    if unknown:
        raise ValueError(f"params: no RLlib counterpart for {unknown}; expected names among "
                         f"{sorted(CANONICAL_TO_RLLIB)}")
    return {CANONICAL_TO_RLLIB[name]: np.ascontiguousarray(np.asarray(value).T if _is_kernel(
        name) else value) for name, value in params.items()}


def load_canonical_into_rllib(module: Any, params: Mapping[str, np.ndarray]) -> Any:
    """Copy duetrl's canonical parameters into an RLlib PPO torch module, in place.

    Every parameter of ``params`` must exist in the module with the same shape (after the
    kernel transpose); the module's other entries (RLlib's constants, or a value network
    when ``params`` holds only a policy) are left as they are.

    :param module: RLlib's ``DefaultPPOTorchRLModule`` (:func:`build_rllib_module`,
        ``algo.get_module()``).
    :param params: canonical parameters (``trainer.params()``, a checkpoint's ``params``);
        at least the policy's.
    :returns: ``module``.
    :raises ValueError: naming the layer whose shape differs, with both shapes.
    """
    from ray.rllib.utils.torch_utils import convert_to_torch_tensor

    missing = sorted(n for n in CANONICAL_TO_RLLIB if n.startswith("policy.fc")
                     and n not in params)
    if missing:
        raise ValueError(f"params: the policy needs {missing}; got {sorted(params)}")
    target = module.state_dict()
    state = canonical_to_rllib_state(params)
    inverse = {v: k for k, v in CANONICAL_TO_RLLIB.items()}
    for key, value in state.items():
        if key not in target:
            raise ValueError(f"params: {inverse[key]!r} has no place in this RLlib module "
                             f"(no {key!r}; a Gaussian log_std needs a Box action space)")
        expected = tuple(target[key].shape)
        if value.shape != expected:
            canonical_shape = expected[::-1] if _is_kernel(inverse[key]) else expected
            raise ValueError(
                f"params: layer {inverse[key]!r} has shape {tuple(np.shape(params[inverse[key]]))}"
                f", the RLlib module expects {canonical_shape} (its {key!r} is {expected}); "
                f"build the module with the same hidden_dim and environment")
        state[key] = convert_to_torch_tensor(value.astype(np.float32)).to(target[key].dtype)
    module.load_state_dict(state, strict=False)
    return module


def rllib_to_canonical(module: Any) -> dict[str, np.ndarray]:
    """The canonical parameters of an RLlib PPO torch module built by this file (NumPy copies).

    An env runner's inference-only module holds the policy alone, so only ``policy.*`` come
    back from it; the learner's module (:func:`learner_params`) holds the value network too.
    """
    from duetrl.core.tolerances import to_numpy

    state = module.state_dict()
    params = {}
    for name, key in CANONICAL_TO_RLLIB.items():
        if key in state:
            value = to_numpy(state[key])
            params[name] = np.array(value.T if _is_kernel(name) else value, order="C")
    return params


def set_rllib_weights(algo: Any, params: Mapping[str, np.ndarray]) -> None:
    """Load canonical ``params`` into an RLlib algorithm's learner and into its env runners.

    The learner holds the module that trains; each env runner holds an inference-only copy
    (the policy alone) that acts. Both must change, or sampling would go on with the old
    policy. (RLlib's own ``sync_weights`` skips a runner whose weights already carry the
    learner's sequence number, so the runners are loaded here directly.)
    """
    policy = {k: v for k, v in params.items() if k.startswith("policy.")}
    results = algo.learner_group.foreach_learner(
        lambda learner: load_canonical_into_rllib(learner.module[DEFAULT_MODULE_ID], params))
    for result in results:
        result.get()  # re-raises an error a (remote) learner met
    algo.env_runner_group.foreach_env_runner(
        lambda runner: load_canonical_into_rllib(runner.module, policy), local_env_runner=True)


def learner_params(algo: Any) -> dict[str, np.ndarray]:
    """The canonical parameters (policy and value network) of an RLlib algorithm's learner."""
    results = algo.learner_group.foreach_learner(
        lambda learner: rllib_to_canonical(learner.module[DEFAULT_MODULE_ID]))
    return next(iter(results)).get()  # every learner holds the same weights
