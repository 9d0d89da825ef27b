"""An LM that scores actions (outline 3.2.3; Carta et al. 2023, "GLAM") in float64 NumPy: the
oracle of each backend's ``lm_agent.py``.

For a state s with prompt p = prompt(s) (the goal, the observation, "action :") and admissible
commands a_1..a_K, each command a_k = (a_k,1 .. a_k,L_k) in words:

    score_k = sum_{i=1}^{L_k} log p_LM(a_k,i | p, a_k,<i)          (the command's log-likelihood)
    pi(a_k | s) = exp(score_k) / sum_j exp(score_j)                 (softmax over the admissible)
    V(s) = LN_f(h_L)[last token of p] w + b                         (a scalar head on the prompt)

The sum, not the mean over the command's tokens. The sum is log p_LM(a_k | p): the policy is
the LM's own distribution over whole commands, renormalised to the admissible ones, which is
GLAM's choice and the only one under which a pretrained LM's knowledge ("the key opens the
door") carries over unchanged. Its consequence: each extra word multiplies a command's weight
by a probability < 1, so a longer command starts less likely than a shorter one (a random LM
over V words gives each word about 1/V: "go north" is about V times likelier than "take the
key" before training). RL then moves the token probabilities, and nothing stops it from making
the words of a long command likely. The mean (a per-word geometric mean) removes that bias but
is no distribution over commands: two commands sharing a likely prefix would gain from it, and
the pretrained LM's preference would be distorted by the lengths. So commands of different
lengths compete on their total log-likelihood here, in both backends.

PPO over environment steps (one row per state s in the batch, action index a_s):

    rho_s = exp(log pi(a_s | s) - log pi_old(a_s | s))
    L_clip = -mean_s min(rho_s A_s, clip(rho_s, 1 - eps, 1 + eps) A_s)
    L_V = mean_s 0.5 (V(s) - R_s)^2
    H = mean_s -sum_k pi(a_k | s) log pi(a_k | s)                   (over the admissible only)
    L = L_clip + c_V L_V - c_H H

Each command is scored on its own here, prompt + command as one unpadded sequence, so the
backends' batched, padded layout (``core/agents/batch.py``) is checked against a computation
that has no padding and no mask to get wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.reference.functional import log_softmax
from duetrl.core.reference.rlhf_policy import scalar_head, token_log_probs


def command_scores(
    params: Mapping[str, np.ndarray],
    config: GPTConfig,
    prompt: np.ndarray,
    commands: Sequence[np.ndarray],
) -> np.ndarray:
    """score_k = sum_i log p_LM(a_k,i | p, a_k,<i): ``(P,)`` prompt ids, K commands -> ``(K,)``."""
    prompt = np.asarray(prompt, np.int64)
    scores = []
    for command in commands:
        tokens = np.concatenate([prompt, np.asarray(command, np.int64)])[None]  # (1, P + L)
        logp = token_log_probs(params, tokens, config)[0]  # (P + L - 1,): token t+1 at t
        scores.append(logp[len(prompt) - 1:].sum())  # the command's tokens only
    return np.array(scores, dtype=np.float64)


def action_log_probs(scores: np.ndarray) -> np.ndarray:
    """log pi(a_k | s) = score_k - log sum_j exp(score_j): ``(K,)`` -> ``(K,)``."""
    return log_softmax(np.asarray(scores, np.float64))


def action_entropy(log_pi: np.ndarray) -> float:
    """H = -sum_k pi_k log pi_k over the admissible commands."""
    log_pi = np.asarray(log_pi, np.float64)
    return float(-(np.exp(log_pi) * log_pi).sum())


def state_value(
    params: Mapping[str, np.ndarray],
    head_params: Mapping[str, np.ndarray],
    config: GPTConfig,
    prompt: np.ndarray,
) -> float:
    """V(s): the scalar head on the GPT's last hidden state of the prompt."""
    values = scalar_head(params, head_params, np.asarray(prompt, np.int64)[None], config)
    return float(values[0, -1])


def ppo_agent_loss(
    log_pi: Sequence[np.ndarray],
    actions: np.ndarray,
    old_logp: np.ndarray,
    advantages: np.ndarray,
    values: np.ndarray,
    returns: np.ndarray,
    clip_eps: float,
    vf_coef: float,
    ent_coef: float,
) -> tuple[float, dict[str, float]]:
    """L = L_clip + c_V L_V - c_H H over S states (the module's docstring).

    :param log_pi: S arrays ``(K_s,)``, log pi(. | s) over each state's admissible commands.
    :param actions: ``(S,)`` the index taken in each state.
    :returns: ``(loss, {"policy_loss", "value_loss", "entropy", "clip_fraction",
        "approx_kl"})``.
    """
    actions = np.asarray(actions, np.int64)
    logp = np.array([lp[a] for lp, a in zip(log_pi, actions)])  # log pi(a_s | s)
    advantages = np.asarray(advantages, np.float64)
    ratio = np.exp(logp - np.asarray(old_logp, np.float64))  # rho_s
    clipped_ratio = np.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    policy_loss = float(-np.mean(np.minimum(ratio * advantages, clipped_ratio * advantages)))
    error = np.asarray(values, np.float64) - np.asarray(returns, np.float64)
    value_loss = float(np.mean(0.5 * error**2))
    entropy = float(np.mean([action_entropy(lp) for lp in log_pi]))
    clipped = ((ratio < 1 - clip_eps) & (advantages < 0)) | ((ratio > 1 + clip_eps) &
                                                             (advantages > 0))
    stats = {
        "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
        "clip_fraction": float(np.mean(clipped)),
        "approx_kl": float(np.mean((ratio - 1.0) - np.log(ratio))),
    }
    return policy_loss + vf_coef * value_loss - ent_coef * entropy, stats


__all__ = ["action_entropy", "action_log_probs", "command_scores", "ppo_agent_loss",
           "state_value"]
