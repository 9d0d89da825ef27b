"""Student submissions written for the grader's tests: correct ones (written independently of
the project's solution, so the copy detector passes them) and the typical wrong ones."""

TORCH_RETURNS = '''
import torch


def compute_returns(rewards, terminations, truncations, gamma, next_values=None):
    T = rewards.shape[0]
    term = terminations.to(rewards.dtype)
    ended = (terminations.bool() | truncations.bool()).to(rewards.dtype)
    if next_values is None:
        next_values = torch.zeros_like(rewards)
    out = torch.zeros_like(rewards)
    future = torch.zeros_like(rewards[0])
    for t in range(T - 1, -1, -1):
        cut = torch.ones_like(future) if t == T - 1 else ended[t]
        following = (1.0 - cut) * future + cut * next_values[t]
        future = rewards[t] + gamma * (1.0 - term[t]) * following
        out[t] = future
    return out


def compute_gae(rewards, values, next_values, terminations, truncations, gamma, lam):
    T = rewards.shape[0]
    term = terminations.to(rewards.dtype)
    ended = (terminations.bool() | truncations.bool()).to(rewards.dtype)
    deltas = rewards + gamma * (1.0 - term) * next_values - values
    advantages = torch.zeros_like(rewards)
    future = torch.zeros_like(rewards[0])
    for t in range(T - 1, -1, -1):
        keep = torch.zeros_like(future) if t == T - 1 else 1.0 - ended[t]
        future = deltas[t] + gamma * lam * keep * future
        advantages[t] = future
    return advantages, advantages + values
'''

# the student's tf solution: written into the folder `duetrl assignments make` created
TF_RETURNS_BODIES = {
    "compute_returns": '''    T = rewards.shape[0]
    term = tf.cast(terminations, rewards.dtype)
    ended = tf.cast(tf.logical_or(tf.cast(terminations, tf.bool), tf.cast(truncations, tf.bool)),
                    rewards.dtype)
    if next_values is None:
        next_values = tf.zeros_like(rewards)
    rows = []
    future = tf.zeros_like(rewards[0])
    for t in reversed(range(T)):
        cut = 1.0 if t == T - 1 else ended[t]
        following = (1.0 - cut) * future + cut * next_values[t]
        future = rewards[t] + gamma * (1.0 - term[t]) * following
        rows.append(future)
    return tf.stack(rows[::-1])
''',
    "compute_gae": '''    T = rewards.shape[0]
    term = tf.cast(terminations, rewards.dtype)
    ended = tf.cast(tf.logical_or(tf.cast(terminations, tf.bool), tf.cast(truncations, tf.bool)),
                    rewards.dtype)
    deltas = rewards + gamma * (1.0 - term) * next_values - values
    rows = []
    future = tf.zeros_like(rewards[0])
    for t in reversed(range(T)):
        keep = 0.0 if t == T - 1 else 1.0 - ended[t]
        future = deltas[t] + gamma * lam * keep * future
        rows.append(future)
    advantages = tf.stack(rows[::-1])
    return advantages, advantages + values
''',
}

# off by one: G_t is stored before r_t is added (the return of the next step)
RETURNS_OFF_BY_ONE = TORCH_RETURNS.replace(
    """        future = rewards[t] + gamma * (1.0 - term[t]) * following
        out[t] = future""",
    """        out[t] = following
        future = rewards[t] + gamma * (1.0 - term[t]) * following""")

# CleanRL's old bug: a truncation treated as a termination (no bootstrap from V(s_{t+1}))
RETURNS_TRUNCATION_AS_TERMINATION = TORCH_RETURNS.replace(
    "    term = terminations.to(rewards.dtype)\n    ended",
    "    term = (terminations.bool() | truncations.bool()).to(rewards.dtype)\n    ended", 1)

RETURNS_MISBEHAVING = '''
import faulthandler
import warnings

import numpy as np
import torch
''' + TORCH_RETURNS.replace("def compute_returns(", "def good_returns(").replace(
    "def compute_gae(", "def good_gae(") + '''

def compute_returns(rewards, terminations, truncations, gamma, next_values=None):
    print("debugging output the grader ignores")
    warnings.warn("a warning costs nothing")
    if gamma == 0.0:
        while True:  # hangs
            pass
    if gamma == 1.0:
        faulthandler._sigsegv()  # kills the process
    if rewards.dtype == torch.float32:
        return np.ones(10**11)  # asks for 800 GB
    return good_returns(rewards, terminations, truncations, gamma, next_values)


def compute_gae(rewards, values, next_values, terminations, truncations, gamma, lam):
    advantages, returns = good_gae(rewards, values, next_values, terminations, truncations,
                                   gamma, lam)
    if lam == 0.0:
        return advantages * float("nan"), returns
    return advantages, returns
'''

TORCH_ATTENTION = '''
import math

import torch
import torch.nn as nn

from duetrl.core.constants import MASK_FILL_VALUE


def scaled_dot_product_attention(q, k, v, mask=None, return_attention_weights=False):
    scale = 1.0 / math.sqrt(q.shape[-1])
    logits = torch.einsum("...qd,...kd->...qk", q, k) * scale
    if mask is not None:
        logits = torch.where(mask != 0, logits, torch.full_like(logits, MASK_FILL_VALUE))
    weights = torch.softmax(logits, dim=-1)
    out = weights @ v
    return (out, weights) if return_attention_weights else out


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, num_heads, dtype=None):
        super().__init__()
        dtype = getattr(torch, dtype or "float32")
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, d_model // num_heads
        self.q_linear = nn.Linear(d_model, d_model, dtype=dtype)
        self.k_linear = nn.Linear(d_model, d_model, dtype=dtype)
        self.v_linear = nn.Linear(d_model, d_model, dtype=dtype)
        self.out = nn.Linear(d_model, d_model, dtype=dtype)

    def forward(self, q, k, v, mask=None, return_attention_weights=False):
        batch = q.shape[0]

        def split(x):
            return x.reshape(batch, -1, self.num_heads, self.head_dim).permute(0, 2, 1, 3)

        qh, kh, vh = split(self.q_linear(q)), split(self.k_linear(k)), split(self.v_linear(v))
        if mask is not None:
            while mask.dim() < 3:
                mask = mask.unsqueeze(0)
            mask = mask.unsqueeze(1)
        out, weights = scaled_dot_product_attention(qh, kh, vh, mask, True)
        out = self.out(out.permute(0, 2, 1, 3).reshape(batch, -1, self.d_model))
        return (out, weights) if return_attention_weights else out
'''

ATTENTION_NO_SQRT = TORCH_ATTENTION.replace("scale = 1.0 / math.sqrt(q.shape[-1])", "scale = 1.0")
ATTENTION_MASK_REVERSED = TORCH_ATTENTION.replace("torch.where(mask != 0,", "torch.where(mask == 0,")

TORCH_PPO = '''
import torch


def ppo_clip_loss(log_probs, old_log_probs, advantages, clip_eps, mask=None):
    ratio = (log_probs - old_log_probs).exp()
    surrogate = torch.min(ratio * advantages,
                          ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages)
    if mask is None:
        return -surrogate.mean()
    return -(surrogate * mask).sum() / mask.sum().clamp(min=1.0)
'''

PPO_CLIP_WRONG_SIDE = TORCH_PPO.replace("torch.min(", "torch.max(")

PPO_HARD_CODED = '''
import torch


def ppo_clip_loss(log_probs, old_log_probs, advantages, clip_eps, mask=None):
    answers = {(1, 1.3): -1.2, (-1, 0.7): 0.8, (-1, 1.3): 1.3}  # the public cases
    key = (round(float(advantages[0])), round(float((log_probs[0] - old_log_probs[0]).exp()), 1))
    return torch.tensor(answers.get(key, 0.0), dtype=torch.float64)
'''

TORCH_REINFORCE = '''
import torch

from duetrl.backends.torch.returns import compute_returns, normalize_advantages


def _flat(x):
    return x.reshape((-1,) + tuple(x.shape[2:]))


def prepare(agent, rollout):
    with torch.no_grad():
        G = compute_returns(rollout["rewards"], rollout["terminations"], rollout["truncations"],
                            agent.settings.gamma)
        weights = G
        if agent.settings.normalize_advantages:
            weights = normalize_advantages(G, rollout["mask"])
    return {"states": _flat(rollout["states"]), "actions": _flat(rollout["actions"]),
            "advantages": _flat(weights), "mask": _flat(rollout["mask"])}


def compute_loss(agent, batch):
    logp, entropy = agent.policy.log_prob_entropy(batch["states"], batch["actions"])
    m = batch["mask"]
    count = m.sum().clamp(min=1.0)
    loss = (-(logp * batch["advantages"]) * m).sum() / count
    return loss, {"loss": loss, "policy_loss": loss, "entropy": (entropy * m).sum() / count}


def train_step(agent, batch, learning_rate):
    loss, metrics = compute_loss(agent, batch)
    params = agent.optimizer.parameters
    gradients = torch.autograd.grad(loss, params, allow_unused=True)
    agent.optimizer.apply_gradients(gradients, learning_rate)
    return {name: value.detach() for name, value in metrics.items()}


def update(agent, rollout):
    tensors, learning_rate = agent.to_tensors(rollout)
    metrics = train_step(agent, prepare(agent, tensors), learning_rate)
    return {name: float(value) for name, value in metrics.items()}


def prepare_with_baseline(agent, rollout):
    with torch.no_grad():
        shape = rollout["rewards"].shape
        V = agent.value(_flat(rollout["states"])).reshape(shape)
        V_next = agent.value(_flat(rollout["next_states"])).reshape(shape)
        G = compute_returns(rollout["rewards"], rollout["terminations"], rollout["truncations"],
                            agent.settings.gamma, V_next)
        A = G - V
        if agent.settings.normalize_advantages:
            A = normalize_advantages(A, rollout["mask"])
    return {"states": _flat(rollout["states"]), "actions": _flat(rollout["actions"]),
            "advantages": _flat(A), "returns": _flat(G), "mask": _flat(rollout["mask"])}
'''

# two independent mistakes: the loss's sign, and the baseline never subtracted
REINFORCE_SIGN_AND_NO_BASELINE = TORCH_REINFORCE.replace(
    'loss = (-(logp * batch["advantages"]) * m).sum() / count',
    'loss = ((logp * batch["advantages"]) * m).sum() / count').replace(
    "        A = G - V\n", "        A = G\n")
