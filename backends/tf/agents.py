"""An agent in TensorFlow + Keras 3: networks, the update of each algorithm and the gradient step.

The training loop (collecting with vector environments, logging, checkpoints) is written once,
in ``core/rl``; it calls :meth:`Agent.act` on a batch of observations and :meth:`Agent.update`
on a rollout of host arrays. The float64 oracle of ``update`` is core/reference/algorithms.py.
"""

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from duetrl.backends.tf.losses import ppo_clip_loss, value_loss
from duetrl.backends.tf.optim import Adam
from duetrl.backends.tf.policy import GaussianPolicyNet, PolicyNet, ValueNet, masked_mean
from duetrl.backends.tf.returns import compute_gae, compute_returns, normalize_advantages
from duetrl.backends.tf.runtime import resolve_dtype
from duetrl.core.reference.policy import ALGORITHMS, uses_value_net
from duetrl.core.rl.settings import ReinforceSettings

ROLLOUT_KEYS = ("states", "next_states", "actions", "rewards", "terminations", "truncations",
                "mask", "log_probs")


def flatten(tensor: tf.Tensor) -> tf.Tensor:
    """(T, N, ...) -> (T * N, ...)."""
    return tf.reshape(tensor, (-1,) + tuple(tensor.shape[2:]))


class Agent(keras.layers.Layer):
    """A policy (and a value network unless plain REINFORCE) with its own Adam.

    Args:
        algorithm: ``"reinforce"``, ``"reinforce_baseline"`` or ``"ppo"``.
        state_dim: observation size; action_dim: number of actions or action vector size.
        continuous: Gaussian policy (Box actions) instead of categorical (Discrete).
        settings: the algorithm's settings dataclass (duetrl.core.rl.settings).
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
        policy_class = GaussianPolicyNet if continuous else PolicyNet
        self.policy = policy_class(state_dim, settings.hidden_dim, action_dim, dtype)
        self.value = ValueNet(state_dim, settings.hidden_dim, dtype) if uses_value_net(
            algorithm) else None
        self.build()
        self.optimizer = Adam(self, settings.max_grad_norm)
        self._act_functions = {}  # traced act steps, one per input shape

    def build(self, input_shape: Any = None) -> None:
        # the sizes are known from the constructor, so build() works with no arguments too
        for network in (self.policy, self.value):
            if network is not None and not network.built:
                network.build()
        self.built = True

    def _as_tensor(self, array):
        """Float arrays in the agent's dtype; bools and integers as they are."""
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.floating):
            return tf.constant(array.astype(self.dtype_name, copy=False))
        return tf.constant(array)

    def act(self, states: np.ndarray, noise: np.ndarray) -> dict[str, np.ndarray]:
        """Sample actions for a batch of observations (N, state_dim) with core's ``noise``.

        Returns ``{"actions": (N,) or (N, A), "log_probs": (N,)}`` as NumPy arrays.
        """
        states, noise = self._as_tensor(states), self._as_tensor(noise)
        key = (tuple(states.shape), tuple(noise.shape))
        if key not in self._act_functions:  # a concrete function skips tf.function's dispatch
            self._act_functions[key] = self.act_step.get_concrete_function(states, noise)
        actions, log_probs = self._act_functions[key](states, noise)
        return {"actions": actions.numpy(), "log_probs": log_probs.numpy()}

    @tf.function(jit_compile=True)
    def act_step(
        self, states: tf.Tensor, noise: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        return self.policy.sample(states, noise)

    @tf.function
    def prepare(self, rollout: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Returns and advantages of a rollout (held fixed during the update), flattened."""
        s = self.settings
        states, next_states = rollout["states"], rollout["next_states"]
        rewards, mask = rollout["rewards"], rollout["mask"]
        ends = (rollout["terminations"], rollout["truncations"])
        if self.algorithm == "reinforce":
            returns = compute_returns(rewards, *ends, s.gamma)
            advantages = returns
        else:
            values = tf.reshape(self.value(flatten(states)), rewards.shape)
            next_values = tf.reshape(self.value(flatten(next_states)), rewards.shape)
            if self.algorithm == "reinforce_baseline":
                returns = compute_returns(rewards, *ends, s.gamma, next_values)
                advantages = returns - values
            else:
                advantages, returns = compute_gae(rewards, values, next_values, *ends, s.gamma,
                                                  s.gae_lambda)
        if s.normalize_advantages:
            advantages = normalize_advantages(advantages, mask)
        return {"states": flatten(states), "actions": flatten(rollout["actions"]),
                "advantages": flatten(advantages), "returns": flatten(returns),
                "mask": flatten(mask), "old_log_probs": flatten(rollout["log_probs"])}

    def compute_total_loss(
        self, batch: dict[str, tf.Tensor]
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """The algorithm's loss on a flat batch and its parts (see core/reference/algorithms)."""
        s, mask = self.settings, batch["mask"]
        log_probs, entropy = self.policy.log_prob_entropy(batch["states"], batch["actions"])
        if self.algorithm == "ppo":
            policy_loss = ppo_clip_loss(log_probs, batch["old_log_probs"], batch["advantages"],
                                        s.clip_eps, mask)
        else:  # the listing's loss, with the (normalised) return or advantage as weight
            policy_loss = self.policy.compute_loss(batch["states"], batch["actions"],
                                                   batch["advantages"], mask)
        metrics = {"policy_loss": policy_loss, "entropy": masked_mean(entropy, mask)}
        loss = policy_loss
        if self.value is not None:
            metrics["value_loss"] = value_loss(self.value(batch["states"]), batch["returns"], mask)
            loss = loss + s.vf_coef * metrics["value_loss"] - s.ent_coef * metrics["entropy"]
        return loss, {"loss": loss, **metrics}

    @tf.function
    def train_step(
        self, batch: dict[str, tf.Tensor], learning_rate: float | tf.Tensor
    ) -> dict[str, tf.Tensor]:
        """One gradient step: loss, gradients of every parameter, one Adam update."""
        with tf.GradientTape() as tape:
            loss, metrics = self.compute_total_loss(batch)
        grads = tape.gradient(loss, self.optimizer.parameters)
        grads = [tf.zeros_like(p) if g is None else g
                 for p, g in zip(self.optimizer.parameters, grads)]
        self.optimizer.apply_gradients(grads, learning_rate)
        return metrics

    @tf.function
    def train_minibatch(
        self, batch: dict[str, tf.Tensor], indices: tf.Tensor, learning_rate: float | tf.Tensor
    ) -> dict[str, tf.Tensor]:
        """:meth:`train_step` on the rows ``indices`` (B_mb,) of a flat batch (PPO)."""
        return self.train_step({k: tf.gather(v, indices) for k, v in batch.items()},
                               learning_rate)

    def update(self, rollout: dict[str, Any]) -> dict[str, float]:
        """One update from a rollout of host arrays (see core/reference/algorithms.py).

        Returns the metrics of the last gradient step as Python floats.
        """
        batch = self.prepare({k: self._as_tensor(rollout[k]) for k in ROLLOUT_KEYS})
        learning_rate = self._as_tensor(np.asarray(rollout["learning_rate"], np.float64))
        if self.algorithm != "ppo":
            metrics = self.train_step(batch, learning_rate)
        else:
            for epoch_permutation in rollout["permutations"]:
                for indices in epoch_permutation:
                    metrics = self.train_minibatch(batch, tf.constant(indices), learning_rate)
        return {k: float(v) for k, v in metrics.items()}
