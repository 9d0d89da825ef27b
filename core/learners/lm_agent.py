"""An LM that scores actions (outline 3.2.3, GLAM): the PPO learner's framework-neutral half.

One call of ``LMAgentLearner.update(batch)``, in either backend:

1. check the batch (:func:`check_agent_batch`): the grid of rows of ``core/agents/batch.py``
   and, per state, the action taken, its old log-prob, its advantage and return;
2. turn the arrays into tensors (backend: ``_as_tensor``);
3. run the step (backend: ``_step``: eager autograd in torch, a GradientTape traced by
   ``tf.function`` in TF); its loss is :meth:`LMAgentLearnerBase.loss`: the forward pass
   (the backend's ``agent_outputs``) and PPO's loss (its ``agent_loss``),

       L = -mean_s min(rho_s A_s, clip(rho_s, 1 - eps, 1 + eps) A_s)
           + c_V mean_s 0.5 (V(s) - R_s)^2 - c_H mean_s H(pi(. | s));

4. return the loss, the gradient norm and the statistics as floats.

The float64 oracle is ``core/reference/lm_agent.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from duetrl.core.interfaces.rlhf import check_non_negative

BATCH_KEYS = ("tokens", "mask", "admissible", "prompt_last", "actions", "old_logp",
              "advantages", "returns")
"""What :meth:`LMAgentLearnerBase.update` needs (``core/agents/batch.layout`` gives the first
four; the rollout the rest, one entry per state)."""


def check_agent_batch(batch: Mapping[str, Any]) -> None:
    """ValueError naming the first key of ``batch`` that does not fit the layout."""
    missing = [key for key in BATCH_KEYS if key not in batch]
    if missing:
        raise ValueError(f"batch: expected the keys {list(BATCH_KEYS)}, missing {missing}")
    tokens, admissible = np.asarray(batch["tokens"]), np.asarray(batch["admissible"])
    if admissible.ndim != 2 or admissible.shape[0] == 0 or admissible.shape[1] == 0:
        raise ValueError(f"admissible: expected shape (states, commands) with both >= 1, got "
                         f"{admissible.shape}")
    s, k = admissible.shape
    if tokens.ndim != 2 or tokens.shape[0] != s * k or tokens.shape[1] < 2:
        raise ValueError(f"tokens: expected shape ({s * k}, T >= 2) (states x commands rows), "
                         f"got {tokens.shape}")
    if np.asarray(batch["mask"]).shape != (s * k, tokens.shape[1] - 1):
        raise ValueError(f"mask: expected shape {(s * k, tokens.shape[1] - 1)}, got "
                         f"{np.asarray(batch['mask']).shape}")
    for key in ("prompt_last", "actions", "old_logp", "advantages", "returns"):
        if np.asarray(batch[key]).shape != (s,):
            raise ValueError(f"{key}: expected shape ({s},) (one per state), got "
                             f"{np.asarray(batch[key]).shape}")
    actions = np.asarray(batch["actions"])
    if not np.issubdtype(actions.dtype, np.integer) or np.any(actions < 0) or np.any(
            actions >= k):
        raise ValueError(f"actions: expected int indices in [0, {k}), got {actions}")
    taken = admissible[np.arange(s), actions]
    if np.any(taken == 0):
        bad = int(np.flatnonzero(taken == 0)[0])
        raise ValueError(f"actions: state {bad} took action {int(actions[bad])}, which is not "
                         f"admissible there (it has {int(admissible[bad].sum())} commands)")
    if np.any(admissible.sum(axis=1) == 0):
        raise ValueError("admissible: expected at least one command per state, got a state "
                         "with none")


class LMAgentLearnerBase:
    """The LM policy, its value head and one PPO step per :meth:`update`.

    A backend's ``LMAgentLearner`` sets :attr:`compiled_step` and implements
    the hooks (the methods that raise ``NotImplementedError``).

    Args:
        policy: the backend's ``GPT``.
        value_head: the backend's ``ValueHead`` (V(s) on the prompt's last hidden state).
        learning_rate: Adam's step size.
        clip_eps: PPO's ratio clip eps.
        vf_coef: c_V, the value loss' weight.
        ent_coef: c_H, the entropy bonus' weight.
    """

    compiled_step: Callable[[dict, dict, Any], dict[str, Any]]
    """``_step`` as the backend runs it: (tensors, coefficients, learning rate) -> statistics."""

    def __init__(self, policy: Any, value_head: Any, learning_rate: float = 1e-3,
                 clip_eps: float = 0.2, vf_coef: float = 0.5, ent_coef: float = 0.01) -> None:
        for name, value in (("learning_rate", learning_rate), ("clip_eps", clip_eps),
                            ("vf_coef", vf_coef), ("ent_coef", ent_coef)):
            check_non_negative(name, value)
        self.policy, self.value_head = policy, value_head
        self.learning_rate = learning_rate
        self.coefficients = {"clip_eps": clip_eps, "vf_coef": vf_coef, "ent_coef": ent_coef}

    def update(self, batch: Mapping[str, np.ndarray]) -> dict[str, float]:
        """One gradient step of PPO on ``batch`` (:data:`BATCH_KEYS`).

        Returns:
            floats: ``loss``, ``grad_norm`` (before clipping), ``policy_loss``,
            ``value_loss``, ``entropy``, ``clip_fraction``, ``approx_kl``.
        """
        check_agent_batch(batch)
        tensors = {key: self._as_tensor(np.asarray(batch[key]), key in FLOAT_KEYS)
                   for key in BATCH_KEYS}
        coefficients = {k: self._as_tensor(np.asarray(v), True)
                        for k, v in self.coefficients.items()}
        stats = self.compiled_step(tensors, coefficients, self._step_learning_rate())
        return {name: float(value) for name, value in stats.items()}

    def loss(self, batch: dict[str, Any], coefficients: dict[str, Any]) -> tuple[Any, dict]:
        """(loss, statistics) on tensors: what ``_step`` differentiates."""
        log_pi, values = self._agent_outputs(
            batch["tokens"], batch["mask"], batch["admissible"], batch["prompt_last"])
        return self._agent_loss(
            log_pi, values, batch["admissible"], batch["actions"], batch["old_logp"],
            batch["advantages"], batch["returns"], coefficients["clip_eps"],
            coefficients["vf_coef"], coefficients["ent_coef"])

    # -----------------------------------------------------------------------------------------
    # What each backend provides: tensors, the forward pass, the loss, the step
    # -----------------------------------------------------------------------------------------

    def _agent_outputs(self, tokens: Any, mask: Any, admissible: Any,
                       prompt_last: Any) -> tuple[Any, Any]:
        """(log pi (S, K), V(s) (S,)): the backend's ``agent_outputs`` on the policy, head."""
        raise NotImplementedError

    def _agent_loss(self, *args: Any) -> tuple[Any, dict[str, Any]]:
        """(loss, statistics): the backend's ``agent_loss``."""
        raise NotImplementedError

    def _as_tensor(self, value: np.ndarray, floating: bool) -> Any:
        """``value`` as a tensor: the model's dtype when ``floating``, else int64."""
        raise NotImplementedError

    def _step_learning_rate(self) -> Any:
        """``self.learning_rate`` as the step takes it (a float, or a tensor for a traced step)."""
        raise NotImplementedError


FLOAT_KEYS = ("mask", "admissible", "old_logp", "advantages", "returns")
"""Batch keys in the model's float dtype (the others are int64 ids and indices)."""

__all__ = ["BATCH_KEYS", "FLOAT_KEYS", "LMAgentLearnerBase", "check_agent_batch"]
