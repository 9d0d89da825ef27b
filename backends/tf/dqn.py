"""DQN (outline 9.2.2): a Q-network, its target copy, the Huber TD loss and one Adam step.

Read :meth:`DQNAgent.update` beside the equation it implements (the float64 oracle is
core/reference/dqn.py; the replay buffer, epsilon schedule and loop are core/rl):

    a*  = argmax_a Q_target(s', a)          or, Double DQN, argmax_a Q(s', a)
    y   = r + gamma^n (1 - term) Q_target(s', a*)
    L   = mean huber(Q(s, a) - y)

``duetrl diff dqn`` shows this file beside its twin in the other backend.
"""

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow import Tensor

from duetrl.backends.tf.optim import Adam
from duetrl.backends.tf.runtime import resolve_dtype
from duetrl.backends.tf.weights import export_params, import_params
from duetrl.core.constants import HUBER_DELTA
from duetrl.core.interfaces.rl import check_policy_config

BATCH_KEYS = ("states", "actions", "rewards", "next_states", "terminations", "discounts")
METRICS = ("loss", "q_mean", "td_error")


def huber_loss(errors: Tensor, delta: float = HUBER_DELTA) -> Tensor:
    """mean of x^2 / 2 where |x| <= delta, else delta (|x| - delta / 2); (B,) -> ()."""
    absolute = tf.abs(errors)  # keras.losses.Huber would cast to floatx (float32)
    return tf.reduce_mean(tf.where(absolute <= delta, 0.5 * errors**2,
                                   delta * (absolute - 0.5 * delta)))


def td_targets(
    q_next: Tensor, q_next_target: Tensor, rewards: Tensor, terminations: Tensor,
    discounts: Tensor, double: bool,
) -> Tensor:
    """y = r + gamma^n (1 - term) Q_target(s', a*); Q(s', .) and Q_target(s', .) are (B, A)."""
    chooser = q_next if double else q_next_target  # Double DQN: the online net picks a*
    next_actions = tf.argmax(chooser, axis=1)
    q_star = tf.gather(q_next_target, next_actions, axis=1, batch_dims=1)  # Q_target(s', a*)
    return rewards + discounts * (1.0 - terminations) * q_star


class QNetwork(keras.Model):
    """Q(s, .) = fc3(relu(fc2(relu(fc1(s))))); (B, state_dim) -> (B, action_dim).

    Args:
        state_dim: observation size; hidden_dim: width of fc1 and fc2; action_dim: actions.
        dtype: parameter dtype (``"float32"`` by default, ``"float64"`` for tests).
    """

    def __init__(
        self, state_dim: int, hidden_dim: int, action_dim: int, dtype: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dtype=resolve_dtype(dtype or "float32"), **kwargs)
        check_policy_config(state_dim, hidden_dim, action_dim)
        self.state_dim, self.hidden_dim, self.action_dim = state_dim, hidden_dim, action_dim
        # initial weights come from core (duetrl.core.reference.dqn.init_q_params)
        self.fc1 = keras.layers.Dense(hidden_dim, activation="relu", dtype=self.dtype_policy)
        self.fc2 = keras.layers.Dense(hidden_dim, activation="relu", dtype=self.dtype_policy)
        self.fc3 = keras.layers.Dense(action_dim, dtype=self.dtype_policy)
        for fc, fan_in in ((self.fc1, state_dim), (self.fc2, hidden_dim), (self.fc3, hidden_dim)):
            fc.build((None, fan_in))  # weights now: the sizes are known
        self.built = True  # every sublayer is built: no build() call left to Keras

    def call(self, x: Tensor) -> Tensor:
        x = self.fc1(x)
        x = self.fc2(x)
        return self.fc3(x)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "state_dim": self.state_dim,
                "hidden_dim": self.hidden_dim, "action_dim": self.action_dim}


class DQNAgent(keras.Model):
    """The online network ``q``, the target network ``q_target`` and Adam on ``q``.

    Args:
        state_dim: observation size; action_dim: number of (discrete) actions.
        hidden_dim: width of the Q-network's hidden layers.
        double: Double DQN targets; max_grad_norm: clip the gradient norm (None: off).
        dtype: ``"float32"`` or ``"float64"``.
    """

    def __init__(
        self, state_dim: int, action_dim: int, hidden_dim: int = 64, double: bool = False,
        max_grad_norm: float | None = None, dtype: str = "float32", **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.double, self.dtype_name = double, dtype
        self.q = QNetwork(state_dim, hidden_dim, action_dim, dtype)
        self.q_target = QNetwork(state_dim, hidden_dim, action_dim, dtype)
        self.built = True  # both networks built their weights: Adam needs them now
        self.optimizer = Adam(self.q, max_grad_norm)

    def as_tensor(self, array: Any) -> Tensor:
        """A tensor: float arrays in the agent's dtype, bools and integers as they are."""
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.floating):
            array = array.astype(self.dtype_name, copy=False)
        return tf.convert_to_tensor(array)

    def batch_tensors(self, arrays: dict[str, np.ndarray]) -> dict[str, Tensor]:
        """The arrays of :data:`BATCH_KEYS` as tensors, terminations in the rewards' dtype."""
        tensors = {k: self.as_tensor(arrays[k]) for k in BATCH_KEYS}
        tensors["terminations"] = tf.cast(tensors["terminations"], tensors["rewards"].dtype)
        return tensors

    def q_values(self, states: np.ndarray) -> np.ndarray:
        """Q(s, .) for a batch of observations (N, state_dim) -> (N, action_dim), NumPy."""
        return self.q_step(self.as_tensor(states)).numpy()

    @tf.function(reduce_retracing=True, autograph=False)  # plain Python: no AutoGraph
    def q_step(self, states: Tensor) -> Tensor:
        """Q(s, .) of :meth:`q_values`, as a tensor."""
        return self.q(states)

    def sync_target(self) -> None:
        """theta_target <- theta."""
        import_params(self.q_target, export_params(self.q))

    def update(self, batch: dict[str, np.ndarray], learning_rate: float) -> dict[str, float]:
        """One gradient step on a replay batch of host arrays; returns the metrics as floats."""
        tensors = self.batch_tensors(batch)
        metrics = self.update_step(tensors, tf.constant(learning_rate, tf.float64))
        return {k: float(v) for k, v in metrics.items()}

    def update_many(self, batches: dict[str, np.ndarray], learning_rate: float) -> dict[str, float]:
        """One gradient step per stacked batch (G, B, ...), in order, in one call; the last
        step's metrics (one host transfer for G steps)."""
        tensors = self.batch_tensors(batches)
        metrics = self.update_loop(tensors, tf.constant(learning_rate, tf.float64))
        return {k: float(v) for k, v in metrics.items()}

    @tf.function(reduce_retracing=True)  # AutoGraph makes the loop a graph while-loop
    def update_loop(self, batches: dict[str, Tensor], learning_rate: float) -> dict[str, Tensor]:
        """:meth:`update_step` on ``batches[k][i]`` for i = 0 .. G-1."""
        metrics = {k: tf.zeros((), dtype=batches["rewards"].dtype) for k in METRICS}
        for i in tf.range(tf.shape(batches["states"])[0]):
            metrics = self.update_step({k: v[i] for k, v in batches.items()}, learning_rate)
        return metrics

    @tf.function(reduce_retracing=True, autograph=False)  # plain Python: no AutoGraph
    def update_step(self, batch: dict[str, Tensor], learning_rate: float) -> dict[str, Tensor]:
        """The update, top to bottom beside the equation (module docstring)."""
        with tf.name_scope("targets"):  # outside the tape: y is a constant, no gradient
            q_next_target = self.q_target(batch["next_states"])             # Q_target(s', .)
            q_next = self.q(batch["next_states"]) if self.double else q_next_target
            y = td_targets(q_next, q_next_target, batch["rewards"], batch["terminations"],
                           batch["discounts"], self.double)
        with tf.GradientTape() as tape:
            q_all = self.q(batch["states"])                                   # Q(s, .)
            q_taken = tf.gather(q_all, batch["actions"], axis=1, batch_dims=1)  # Q(s, a)
            loss = huber_loss(q_taken - y)                                    # mean huber
        grads = tape.gradient(loss, self.optimizer.parameters)
        self.optimizer.apply_gradients(grads, learning_rate)
        return {"loss": loss, "q_mean": tf.reduce_mean(q_taken),
                "td_error": tf.reduce_mean(tf.abs(q_taken - y))}
