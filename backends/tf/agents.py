"""An agent: its networks, its Adam and how it acts. Each algorithm's update has its own file:

    reinforce.py            REINFORCE (listing 5.2): returns, loss, gradient step
    reinforce_baseline.py   REINFORCE with a learned baseline V(s)
    ppo.py                  PPO: GAE, the clipped objective, minibatch epochs

The training loop (collecting with vector environments, logging, checkpoints) is written once,
in ``core/rl``; it calls :meth:`Agent.act` on a batch of observations and :meth:`Agent.update`
on a rollout of host arrays, which runs ``update(agent, rollout)`` of the algorithm's file.
The float64 oracle of every update is core/reference/algorithms.py.
"""

import importlib
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow import Tensor

from duetrl.backends.tf.optim import Adam
from duetrl.backends.tf.policy import GaussianPolicyNet, PolicyNet, ValueNet
from duetrl.backends.tf.runtime import resolve_dtype
from duetrl.core.interfaces.rl import ALGORITHMS, uses_value_net
from duetrl.core.interfaces.rl_settings import ReinforceSettings

ROLLOUT_KEYS = ("states", "next_states", "actions", "rewards", "terminations", "truncations",
                "mask", "log_probs")


class Agent(keras.layers.Layer):
    """A policy (and a value network unless plain REINFORCE) with its own Adam.

    Args:
        algorithm: ``"reinforce"``, ``"reinforce_baseline"`` or ``"ppo"``.
        state_dim: observation size; action_dim: number of actions or action vector size.
        continuous: Gaussian policy (Box actions) instead of categorical (Discrete).
        settings: the algorithm's settings dataclass (duetrl.core.interfaces.rl_settings).
        dtype: ``"float32"`` or ``"float64"``.
    """

    def __init__(
        self, algorithm: str, state_dim: int, action_dim: int, continuous: bool,
        settings: ReinforceSettings, dtype: str = "float32",
    ) -> None:
        super().__init__(dtype=resolve_dtype(dtype))
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm: expected one of {list(ALGORITHMS)}, got {algorithm!r}")
        self.algorithm, self.settings, self.dtype_name = algorithm, settings, dtype
        self.algorithm_module = importlib.import_module(f"{__package__}.{algorithm}")  # its file
        policy_class = GaussianPolicyNet if continuous else PolicyNet
        self.policy = policy_class(state_dim, settings.hidden_dim, action_dim, dtype)
        self.value = ValueNet(state_dim, settings.hidden_dim, dtype) if uses_value_net(
            algorithm) else None
        self.build()  # Keras creates weights in build(); the optimizer needs them now
        self.optimizer = Adam(self, settings.max_grad_norm)
        self._act_functions = {}  # traced act steps, one per input shape

    def build(self, input_shape: Any = None) -> None:
        # the sizes are known from the constructor, so build() works with no arguments too
        for network in (self.policy, self.value):
            if network is not None and not network.built:
                network.build()
        self.built = True

    def as_tensor(self, array: Any) -> Tensor:
        """A tensor: float arrays in the agent's dtype, bools and integers as they are."""
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.floating):
            array = array.astype(self.dtype_name, copy=False)
        return tf.constant(array)

    def to_tensors(self, rollout: dict[str, Any]) -> tuple[dict[str, Tensor], float | Tensor]:
        """``(the rollout's ROLLOUT_KEYS as tensors, its learning rate)``."""
        tensors = {k: self.as_tensor(rollout[k]) for k in ROLLOUT_KEYS}
        return tensors, self.as_tensor(float(rollout["learning_rate"]))  # a tensor: no retrace

    def act(self, states: np.ndarray, noise: np.ndarray) -> dict[str, np.ndarray]:
        """Sample actions for a batch of observations (N, state_dim) with core's ``noise``.

        Returns ``{"actions": (N,) or (N, A), "log_probs": (N,)}`` as NumPy arrays.
        """
        states, noise = self.as_tensor(states), self.as_tensor(noise)
        key = (tuple(states.shape), tuple(noise.shape))
        if key not in self._act_functions:  # a concrete function skips tf.function's dispatch
            self._act_functions[key] = self.act_step.get_concrete_function(states, noise)
        actions, log_probs = self._act_functions[key](states, noise)
        return {"actions": actions.numpy(), "log_probs": log_probs.numpy()}

    @tf.function(autograph=False)  # a plain graph: XLA's ~0.3 s compile buys nothing here
    def act_step(self, states: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
        """``(actions, log pi(actions|s))`` of :meth:`act`, as tensors."""
        return self.policy.sample(states, noise)

    def update(self, rollout: dict[str, Any]) -> dict[str, float]:
        """One update from a rollout of host arrays: ``update`` of the algorithm's file.

        Returns the metrics of the last gradient step as Python floats.
        """
        return self.algorithm_module.update(self, rollout)
