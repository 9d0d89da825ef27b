"""An agent in PyTorch: networks, the update of each algorithm and the gradient step.

The training loop (collecting with vector environments, logging, checkpoints) is written once,
in ``core/rl``; it calls :meth:`Agent.act` on a batch of observations and :meth:`Agent.update`
on a rollout of host arrays. The float64 oracle of ``update`` is core/reference/algorithms.py.
"""

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from duetrl.backends.torch.losses import ppo_clip_loss, value_loss
from duetrl.backends.torch.optim import Adam
from duetrl.backends.torch.policy import GaussianPolicyNet, PolicyNet, ValueNet, masked_mean
from duetrl.backends.torch.returns import compute_gae, compute_returns, normalize_advantages
from duetrl.backends.torch.runtime import resolve_dtype
from duetrl.core.reference.policy import ALGORITHMS, uses_value_net
from duetrl.core.rl.settings import ReinforceSettings

ROLLOUT_KEYS = ("states", "next_states", "actions", "rewards", "terminations", "truncations",
                "mask", "log_probs")


def flatten(tensor: torch.Tensor) -> torch.Tensor:
    """(T, N, ...) -> (T * N, ...)."""
    return tensor.reshape((-1,) + tuple(tensor.shape[2:]))


class Agent(nn.Module):
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
        super().__init__()
        if algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm: expected one of {list(ALGORITHMS)}, got {algorithm!r}")
        self.algorithm, self.settings, self.dtype_name = algorithm, settings, dtype
        policy_class = GaussianPolicyNet if continuous else PolicyNet
        self.policy = policy_class(state_dim, settings.hidden_dim, action_dim, dtype)
        self.value = ValueNet(state_dim, settings.hidden_dim, dtype) if uses_value_net(
            algorithm) else None
        self.optimizer = Adam(self, settings.max_grad_norm)

    def _as_tensor(self, array):
        """Float arrays in the agent's dtype; bools and integers as they are."""
        array = np.asarray(array)
        if np.issubdtype(array.dtype, np.floating):
            return torch.as_tensor(array, dtype=resolve_dtype(self.dtype_name))
        return torch.as_tensor(array)

    def act(self, states: np.ndarray, noise: np.ndarray) -> dict[str, np.ndarray]:
        """Sample actions for a batch of observations (N, state_dim) with core's ``noise``.

        Returns ``{"actions": (N,) or (N, A), "log_probs": (N,)}`` as NumPy arrays.
        """
        states, noise = self._as_tensor(states), self._as_tensor(noise)
        actions, log_probs = self.act_step(states, noise)
        return {"actions": actions.numpy(), "log_probs": log_probs.numpy()}

    @torch.inference_mode()
    def act_step(
        self, states: torch.Tensor, noise: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.policy.sample(states, noise)

    @torch.no_grad()
    def prepare(self, rollout: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Returns and advantages of a rollout (held fixed during the update), flattened."""
        s = self.settings
        states, next_states = rollout["states"], rollout["next_states"]
        rewards, mask = rollout["rewards"], rollout["mask"]
        ends = (rollout["terminations"], rollout["truncations"])
        if self.algorithm == "reinforce":
            returns = compute_returns(rewards, *ends, s.gamma)
            advantages = returns
        else:
            values = self.value(flatten(states)).reshape(rewards.shape)
            next_values = self.value(flatten(next_states)).reshape(rewards.shape)
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
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
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

    def train_step(
        self, batch: dict[str, torch.Tensor], learning_rate: float
    ) -> dict[str, torch.Tensor]:
        """One gradient step: loss, gradients of every parameter, one Adam update."""
        loss, metrics = self.compute_total_loss(batch)
        grads = torch.autograd.grad(loss, self.optimizer.parameters, allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g
                 for p, g in zip(self.optimizer.parameters, grads)]
        self.optimizer.apply_gradients(grads, learning_rate)
        return {k: v.detach() for k, v in metrics.items()}

    def train_minibatch(
        self, batch: dict[str, torch.Tensor], indices: torch.Tensor, learning_rate: float
    ) -> dict[str, torch.Tensor]:
        """:meth:`train_step` on the rows ``indices`` (B_mb,) of a flat batch (PPO)."""
        return self.train_step({k: v[indices] for k, v in batch.items()}, learning_rate)

    def update(self, rollout: dict[str, Any]) -> dict[str, float]:
        """One update from a rollout of host arrays (see core/reference/algorithms.py).

        Returns the metrics of the last gradient step as Python floats.
        """
        batch = self.prepare({k: self._as_tensor(rollout[k]) for k in ROLLOUT_KEYS})
        learning_rate = float(rollout["learning_rate"])
        if self.algorithm != "ppo":
            metrics = self.train_step(batch, learning_rate)
        else:
            for epoch_permutation in rollout["permutations"]:
                for indices in epoch_permutation:
                    metrics = self.train_minibatch(batch, torch.as_tensor(indices), learning_rate)
        return {k: float(v) for k, v in metrics.items()}
