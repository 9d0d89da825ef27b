"""RL for language models (outline 2.3, 3.1.4-3.1.5): the learner's framework-neutral half.

One call of ``RLHFLearner.update(batch, objective, **coefficients)``, in either backend:

1. check the objective, its coefficients and the batch (``core/interfaces/rlhf.py``), and that
   ``ppo`` and ``reward_model`` have a value head;
2. turn the arrays into tensors (backend: ``_as_tensor``);
3. run the step (backend: ``_step``, eager autograd in torch, a GradientTape traced by
   ``tf.function`` in TF), which asks :meth:`RLHFLearnerBase.objective_loss` for the loss: an
   adapter below reads the batch keys, runs the forward pass (backend: ``_policy_outputs``,
   ``_token_log_probs``, ``_sequence_scores``) and calls the backend's objectives by name
   (``backends/{torch,tf}/objectives.py``: the same names and signatures in both);
4. return the loss, the gradient norm and the objective's statistics as floats.

Everything here touches tensors only through the backend's objective functions and the hooks,
so it is written once, as Keras 3 keeps one base Trainer and lets each backend override its
``train_step``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from types import ModuleType
from typing import Any

import numpy as np

from duetrl.core.interfaces.rlhf import (
    USES_HEAD,
    check_batch,
    check_non_negative,
    objective_coefficients,
    pad_pairs,
)


class RLHFLearnerBase:
    """The policy (and head), and one gradient step of an objective per :meth:`update`.

    A backend's ``RLHFLearner`` sets :attr:`objectives` and :attr:`compiled_step`, and
    implements the hooks (the methods that raise ``NotImplementedError``).

    Args:
        policy: the backend's ``GPT`` (for ``reward_model``: the reward model's trunk).
        value_head: the backend's ``ValueHead`` for ``ppo`` and ``reward_model``, else None.
        learning_rate: Adam's step size (the loop may change ``self.learning_rate``).
    """

    objectives: ModuleType
    """The backend's objectives module: ``kl_k1``, ``grpo_loss``, ``masked_mean``, ..."""

    fixed_pair_rows: bool = False
    """Pad a DPO batch to a fixed number of pairs (``pad_pairs``), for a step traced per shape."""

    compiled_step: Callable[[str, dict, dict, Any], dict[str, Any]]
    """``_step`` as the backend runs it: (objective, tensors, coefficients, learning rate) ->
    statistics as tensors."""

    def __init__(self, policy: Any, value_head: Any = None, learning_rate: float = 1e-4) -> None:
        check_non_negative("learning_rate", learning_rate)
        self.policy, self.value_head = policy, value_head
        self.learning_rate = learning_rate

    def update(
        self, batch: Mapping[str, np.ndarray], objective: str, **coefficients: Any
    ) -> dict[str, float]:
        """One gradient step of ``objective`` on ``batch`` (contract: core/interfaces/rlhf.py).

        Returns:
            floats: ``loss``, ``grad_norm`` (before clipping) and the objective's statistics
            (``kl``, ``entropy``, ``clip_fraction``, ...).
        """
        coefficients = objective_coefficients(objective, coefficients)
        check_batch(batch, objective)
        if objective in USES_HEAD and self.value_head is None:
            raise ValueError(f"value_head: objective {objective!r} needs a ValueHead, got None")
        if objective == "dpo" and self.fixed_pair_rows:  # one shape whatever the ties dropped
            batch = pad_pairs(batch)
        tensors, coefficients = self._to_tensors(batch), self._to_tensors(coefficients)
        stats = self.compiled_step(objective, tensors, coefficients, self._step_learning_rate())
        return {name: float(value) for name, value in stats.items()}

    def objective_loss(
        self, objective: str, batch: dict[str, Any], coefficients: dict[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """(loss, statistics) of ``objective`` on tensors: what ``_step`` differentiates."""
        return getattr(self, f"_{objective}_loss")(batch, **coefficients)

    def _to_tensors(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Numbers as tensors (floats in the model's dtype, ids int64); strings stay."""
        tensors = {}
        for key, value in values.items():
            if isinstance(value, str):
                tensors[key] = value
                continue
            value = np.asarray(value)
            tensors[key] = self._as_tensor(value, np.issubdtype(value.dtype, np.floating))
        return tensors

    # -----------------------------------------------------------------------------------------
    # What each backend provides: tensors, the forward pass, the step
    # -----------------------------------------------------------------------------------------

    def _as_tensor(self, value: np.ndarray, floating: bool) -> Any:
        """``value`` as a tensor: the model's dtype when ``floating``, else int64."""
        raise NotImplementedError

    def _step_learning_rate(self) -> Any:
        """``self.learning_rate`` as the step takes it (a float, or a tensor for a traced step)."""
        raise NotImplementedError

    def _statistics(self) -> AbstractContextManager:
        """The context statistics are computed in (no gradient recorded, or a named scope)."""
        raise NotImplementedError

    def _policy_outputs(self, tokens: Any, value_head: Any = None) -> tuple[Any, Any, Any]:
        """(log-probs, entropies, values or None) of ``tokens`` (B, T), each (B, T-1)."""
        raise NotImplementedError

    def _token_log_probs(self, tokens: Any) -> Any:
        """log pi of each next token of ``tokens`` (B, T): (B, T-1)."""
        raise NotImplementedError

    def _sequence_scores(self, tokens: Any, mask: Any) -> Any:
        """The head's value at each row's last completion token: (B,)."""
        raise NotImplementedError

    # -----------------------------------------------------------------------------------------
    # The objectives: batch keys in, the backend's objective functions called by name
    # -----------------------------------------------------------------------------------------

    def _token_stats(self, batch: dict[str, Any], logp: Any, entropy: Any) -> dict[str, Any]:
        """entropy (masked token mean) and, given ref_logp, kl = mean_b sum_t m k1 (nats)."""
        o, mask = self.objectives, batch["mask"]
        with self._statistics():
            stats = {"entropy": o.masked_mean(entropy, mask)}
            if "ref_logp" in batch:
                k1, k3 = o.kl_k1(logp, batch["ref_logp"]), o.kl_k3(logp, batch["ref_logp"])
                stats["kl"] = o.masked_mean(o.sequence_log_probs(k1, mask))  # sequence KL
                stats["kl_token_k3"] = o.masked_mean(k3, mask)
        return stats

    def _reinforce_loss(self, batch: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        logp, entropy, _ = self._policy_outputs(batch["tokens"])
        loss = self.objectives.reinforce_loss(logp, batch["advantages"], batch["mask"])
        return loss, self._token_stats(batch, logp, entropy)

    _rloo_loss = _reinforce_loss  # RLOO: the same loss, leave-one-out advantages

    def _grpo_loss(self, batch: dict[str, Any], **coefficients: Any) -> tuple[Any, dict]:
        logp, entropy, _ = self._policy_outputs(batch["tokens"])
        loss, stats = self.objectives.grpo_loss(
            logp, batch["old_logp"], batch["ref_logp"], batch["advantages"], batch["mask"],
            coefficients["clip_eps"], coefficients["beta"], coefficients["normalisation"],
        )
        return loss, {**stats, **self._token_stats(batch, logp, entropy)}

    def _ppo_loss(self, batch: dict[str, Any], **coefficients: Any) -> tuple[Any, dict]:
        logp, entropy, values = self._policy_outputs(batch["tokens"], self.value_head)
        loss, stats = self.objectives.ppo_lm_loss(
            logp, batch["old_logp"], batch["advantages"], values, batch["old_values"],
            batch["returns"], batch["mask"], coefficients["clip_eps"],
            coefficients["clip_range"], coefficients["vf_coef"], coefficients["normalisation"],
        )
        return loss, {**stats, **self._token_stats(batch, logp, entropy)}

    def _dpo_loss(self, batch: dict[str, Any], beta: Any) -> tuple[Any, dict]:
        o, weights = self.objectives, batch.get("pair_weights")  # padding rows weigh 0
        logp_chosen, logp_rejected = (
            o.sequence_log_probs(self._token_log_probs(batch[f"{side}_tokens"]),
                                 batch[f"{side}_mask"])
            for side in ("chosen", "rejected")
        )
        loss, chosen_rewards, rejected_rewards = o.dpo_loss(
            logp_chosen, logp_rejected, batch["ref_chosen_logp"], batch["ref_rejected_logp"],
            beta, weights,
        )
        with self._statistics():
            margin = chosen_rewards - rejected_rewards
            stats = {
                "chosen_reward": o.masked_mean(chosen_rewards, weights),
                "rejected_reward": o.masked_mean(rejected_rewards, weights),
                "margin": o.masked_mean(margin, weights),
                "accuracy": o.preference_accuracy(margin, weights),
            }
        return loss, stats

    def _reward_model_loss(self, batch: dict[str, Any]) -> tuple[Any, dict]:
        o = self.objectives
        reward_chosen, reward_rejected = (
            self._sequence_scores(batch[f"{side}_tokens"], batch[f"{side}_mask"])
            for side in ("chosen", "rejected")
        )
        loss, accuracy = o.bradley_terry_loss(reward_chosen, reward_rejected)
        with self._statistics():
            stats = {
                "accuracy": accuracy,
                "reward_chosen": o.masked_mean(reward_chosen),
                "reward_rejected": o.masked_mean(reward_rejected),
            }
        return loss, stats
