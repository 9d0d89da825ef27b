"""An LM that scores actions (outline 3.2.3; Carta et al. 2023, "GLAM"): the policy, the value
and the PPO learner, as tensors.

    score_k = sum_t m_kt log p_LM(token t+1 of row k | tokens <= t)    (the command's tokens)
    log pi(a_k | s) = score_k - log sum_{j admissible} exp(score_j)
    V(s) = LN_f(h_L)[prompt_last] w + b                                 (ValueHead, rlhf.py)

The rows (state-major, S x K, prompt + command, right-padded) and the mask come from
``core/agents/batch.py``. ``agent_outputs`` reads every row in full (the equations as written,
the coursework's version); ``shared_prompt_outputs``, what the rollout and the learner run,
reads each state's prompt once and the commands on its keys and values (the same numbers,
about a third of the positions on KeyDoor). The learner's framework-neutral half (checks,
the loss' assembly) is ``core/learners/lm_agent.py``: ``LMAgentLearner`` here adds only the
tensors and the gradient step. The float64 oracle is ``core/reference/lm_agent.py``; the
twin in the other backend has the same names, order and comments (``duetrl diff lm_agent``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from duetrl.backends.torch.attention import fused_attention
from duetrl.backends.torch.generation import split_heads
from duetrl.backends.torch.gpt import GPT
from duetrl.backends.torch.objectives import gather_log_probs
from duetrl.backends.torch.optim import Adam, minimize
from duetrl.backends.torch.rlhf import PolicyWithHead, ValueHead
from duetrl.backends.torch.weights import import_params
from duetrl.core.constants import GRAD_CLIP_NORM, MASK_FILL_VALUE
from duetrl.core.interfaces.text_env import MAX_ADMISSIBLE
from duetrl.core.learners.lm_agent import LMAgentLearnerBase

# ---------------------------------------------------------------------------------------------
# The policy over admissible commands, and the value of the prompt
# ---------------------------------------------------------------------------------------------


def command_scores(token_logp: Tensor, mask: Tensor) -> Tensor:
    """score = sum_t m_t log p(token t+1): (R, T-1) log-probs and mask -> (R,)."""
    return torch.sum(token_logp * mask, dim=1)


def admissible_log_probs(scores: Tensor, admissible: Tensor) -> Tensor:
    """log pi(a_k | s): a log-softmax over each state's admissible commands, (S, K) -> (S, K).

    The empty places of the grid (admissible 0) get ``MASK_FILL_VALUE`` before the softmax
    (probability 0) and log pi = 0 after it, so no NaN or -1e9 reaches a loss."""
    filled = torch.where(admissible > 0, scores, torch.full_like(scores, MASK_FILL_VALUE))
    return F.log_softmax(filled, dim=-1) * admissible


def action_entropy(log_pi: Tensor, admissible: Tensor) -> Tensor:
    """H(pi(. | s)) = -sum_k pi_k log pi_k over the admissible commands: (S, K) -> (S,)."""
    return -torch.sum(torch.exp(log_pi) * log_pi * admissible, dim=-1)


def agent_outputs(
    model: GPT, value_head: ValueHead, tokens: Tensor, mask: Tensor, admissible: Tensor,
    prompt_last: Tensor,
) -> tuple[Tensor, Tensor]:
    """One forward pass over the S x K rows: (log pi (S, K), V(s) (S,))."""
    s, k = admissible.shape
    hidden = model.hidden_states(tokens[:, :-1])  # (S K, T-1, D)
    logits = F.linear(hidden, model.wte.weight)  # (S K, T-1, V): the tied head
    token_logp = gather_log_probs(logits, tokens[:, 1:])  # (S K, T-1)
    scores = command_scores(token_logp, mask).reshape(s, k)  # (S, K)
    first = hidden.reshape(s, k, *hidden.shape[1:])[:, 0]  # (S, T-1, D): each state's row 0
    last = first[torch.arange(s), prompt_last]  # (S, D): the prompt's last hidden state
    values = value_head(last[:, None, :])[:, 0]  # (S,)
    return admissible_log_probs(scores, admissible), values


# ---------------------------------------------------------------------------------------------
# The same outputs with the prompt read once (the rollout's and the learner's pass)
# ---------------------------------------------------------------------------------------------
# agent_outputs reads each state's prompt K times, once per command row. The prompt is the
# same in every row and the GPT is causal, so its keys and values are too: read it once, then
# run only the commands' words on top of them (a KV cache shared by the K commands, as in
# generation.py). For a prompt of P words and K commands of L words that is P + K (L - 1)
# positions per state instead of K (P + L), and the tied head runs on the K L command
# positions only. The equations are agent_outputs'; tests check the two agree in float64.


def prompt_and_commands(
    tokens: Tensor, mask: Tensor, admissible: Tensor, prompt_last: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """The grid's rows split: prompts (S, P) (row 0 of each state, right-padded), the
    commands' words (S, K, L) and their mask (S, K, L) (1 for a real word; L: the most words
    of any command). Command word j of row (s, k) is token prompt_last[s] + 1 + j, flagged by
    mask column prompt_last[s] + j (batch.py's layout)."""
    s, k = admissible.shape
    t = tokens.shape[1]
    rows = tokens.reshape(s, k, t)
    prompts = rows[:, 0, : int(prompt_last.max()) + 1]  # (S, P)
    length = int(mask.sum(dim=1).max())  # L
    columns = prompt_last[:, None] + torch.arange(length)  # (S, L): mask columns
    inside = (columns <= t - 2).to(mask.dtype)  # a short prompt's columns past the grid
    index = columns.clamp(max=t - 2)[:, None, :].expand(s, k, length)  # (S, K, L)
    words = torch.gather(rows, 2, index + 1)  # (S, K, L)
    word_mask = torch.gather(mask.reshape(s, k, t - 1), 2, index) * inside[:, None]
    return prompts, words, word_mask


def rows_forward(
    model: GPT, idx: Tensor, positions: Tensor, attend: Tensor, past: list | None = None
) -> tuple[Tensor, list]:
    """LN_f(h_L) (B, T_new, D) of tokens ``idx`` (B, T_new) at ``positions`` (B, T_new), and
    each layer's (keys, values) (B, heads, T_new, head_dim). Query i attends to key j of
    [past keys, its own keys] where ``attend[b, i, j]`` (B or 1, T_new, P + T_new) is True.
    The model's own layers, as ``GPT.hidden_states`` runs them (dropout off in PPO)."""
    b, t, d = idx.shape[0], idx.shape[1], model.config.n_embd
    x = model.wte(idx) + model.wpe(positions)  # (B, T_new, D)
    cache = []
    for layer, block in enumerate(model.blocks):
        a = block.attn
        z = block.ln_1(x)
        q, k, v = (split_heads(a, linear(z)) for linear in (a.q_linear, a.k_linear, a.v_linear))
        cache.append((k, v))
        if past is not None:  # the prompt's keys and values first, then the commands' own
            k, v = torch.cat([past[layer][0], k], dim=2), torch.cat([past[layer][1], v], dim=2)
        output = fused_attention(q, k, v, attend[:, None])  # (B, heads, T_new, head_dim)
        x = x + a.out(output.transpose(1, 2).reshape(b, t, d))
        x = x + block.mlp(block.ln_2(x))
    return model.ln_f(x), cache


def shared_prompt_outputs(
    model: GPT, value_head: ValueHead, tokens: Tensor, mask: Tensor, admissible: Tensor,
    prompt_last: Tensor,
) -> tuple[Tensor, Tensor]:
    """agent_outputs' (log pi (S, K), V(s) (S,)), the prompt read once per state.

        pass 1: the prompts (S, P), causal: LN_f(h) and every layer's keys/values
        pass 2: the commands' words but their last, side by side (S, K (L-1)), word j of
                command k at position P_s + j, attending to the prompt's first P_s keys and
                to the earlier words of its own command
        log p(word 0 of a_k) = log_softmax(LN_f(h)[prompt_last] W_te^T)[word 0]
        log p(word j of a_k) = log_softmax(pass 2's output at word j - 1 W_te^T)[word j]
    """
    s, k = admissible.shape
    prompts, words, word_mask = prompt_and_commands(tokens, mask, admissible, prompt_last)
    p, length = prompts.shape[1], words.shape[2]
    causal = torch.arange(p)[None, None, :] <= torch.arange(p)[None, :, None]  # (1, P, P)
    hidden, past = rows_forward(model, prompts, torch.arange(p)[None, :], causal)
    last = hidden[torch.arange(s), prompt_last]  # (S, D): the prompt's last hidden state
    logits = F.linear(last, model.wte.weight)  # (S, V): first words
    first_logp = torch.gather(F.log_softmax(logits, dim=-1), 1, words[:, :, 0])  # (S, K)
    q = k * (length - 1)  # Q: the words fed in pass 2, all but each command's last
    fed = words[:, :, :-1].reshape(s, q)  # (S, Q)
    word_of = torch.arange(length - 1).repeat(k)  # (Q,): j of each fed position
    positions = (prompt_last[:, None] + 1 + word_of[None, :]).clamp(
        max=model.config.block_size - 1)  # padding words past the context are masked
    same = torch.arange(k).repeat_interleave(length - 1)  # the command of each position
    own = (same[:, None] == same[None, :]) & (word_of[None, :] <= word_of[:, None])
    seen = torch.arange(p)[None, None, :] <= prompt_last[:, None, None]  # (S, 1, P)
    attend = torch.cat([seen.expand(s, q, p), own[None].expand(s, q, q)], dim=2)  # (S, Q, P + Q)
    hidden_words, _ = rows_forward(model, fed, positions, attend, past)
    logits = F.linear(hidden_words, model.wte.weight)  # (S, Q, V)
    targets = words[:, :, 1:]  # (S, K, L-1): what pass 2's outputs predict
    rest = gather_log_probs(logits, targets.reshape(s, q)).reshape(s, k, length - 1)
    token_logp = torch.cat([first_logp[:, :, None], rest], dim=2)  # (S, K, L)
    scores = command_scores(token_logp.reshape(s * k, length),
                            word_mask.reshape(s * k, length)).reshape(s, k)
    values = value_head(last[:, None, :])[:, 0]  # (S,)
    return admissible_log_probs(scores, admissible), values


@torch.inference_mode()
def inference_outputs(
    model: GPT, value_head: ValueHead, tokens: np.ndarray, mask: np.ndarray,
    admissible: np.ndarray, prompt_last: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """shared_prompt_outputs without gradient, as NumPy float64: the rollout's pass.

    Under ``torch.inference_mode()``: no autograd graph is recorded."""
    dtype = model.wte.weight.dtype
    log_pi, values = shared_prompt_outputs(
        model, value_head, torch.as_tensor(tokens, dtype=torch.int64),
        torch.as_tensor(mask, dtype=dtype), torch.as_tensor(admissible, dtype=dtype),
        torch.as_tensor(prompt_last, dtype=torch.int64))
    return log_pi.numpy().astype(np.float64), values.numpy().astype(np.float64)


# ---------------------------------------------------------------------------------------------
# PPO's loss over environment steps, one row per state
# ---------------------------------------------------------------------------------------------


def agent_loss(
    log_pi: Tensor, values: Tensor, admissible: Tensor, actions: Tensor, old_logp: Tensor,
    advantages: Tensor, returns: Tensor, clip_eps: Tensor | float, vf_coef: Tensor | float,
    ent_coef: Tensor | float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """L = L_clip + c_V L_V - c_H H; stats policy_loss, value_loss, entropy, clip_fraction,
    approx_kl."""
    logp = torch.gather(log_pi, 1, actions[:, None])[:, 0]  # log pi(a_s | s), (S,)
    ratio = torch.exp(logp - old_logp)  # rho_s = pi / pi_old
    clipped_ratio = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    # L_clip = -mean_s min(rho_s A_s, clip(rho_s, 1 - eps, 1 + eps) A_s)
    policy_loss = -torch.mean(torch.minimum(ratio * advantages, clipped_ratio * advantages))
    value_loss = torch.mean(0.5 * (values - returns) ** 2)  # L_V = mean_s 0.5 (V - R)^2
    entropy = torch.mean(action_entropy(log_pi, admissible))  # H = mean_s H(pi(. | s))
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy
    with torch.no_grad():  # statistics: no gradient flows through them
        clipped = ((ratio < 1.0 - clip_eps) & (advantages < 0)) | (
            (ratio > 1.0 + clip_eps) & (advantages > 0))
        stats = {
            "policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy,
            "clip_fraction": torch.mean(clipped.to(ratio.dtype)),
            "approx_kl": torch.mean((ratio - 1.0) - torch.log(ratio)),
        }
    return loss, stats


# ---------------------------------------------------------------------------------------------
# The gradient step the core training loop calls
# ---------------------------------------------------------------------------------------------


def _step_function(step: Callable, dtype: torch.dtype) -> Callable:
    """``step`` as the learner runs it: PyTorch runs it eagerly, as written (nothing to trace,
    whatever the batch shape)."""
    return step


class LMAgentLearner(LMAgentLearnerBase):
    """The LM policy, its value head, their Adam, and one PPO step per :meth:`update`.

    Args:
        policy: a ``GPT`` (pretrained or from random weights).
        value_head: a ``ValueHead`` on the GPT's hidden states.
        learning_rate: Adam's step size (the loop may change ``self.learning_rate``).
        clip_eps: PPO's ratio clip.
        vf_coef: weight c_V of the value loss.
        ent_coef: weight c_H of the entropy bonus.
        max_grad_norm: clip the global gradient norm to this (None: no clipping).

    ``update`` and the loss' assembly are ``core/learners/lm_agent.py``'s. Dropout is off
    (torch ``eval()``, Keras ``training=False``): the ratio must be exactly 1 at first.

    Example:
        >>> learner = LMAgentLearner(GPT(config), ValueHead(config.n_embd), learning_rate=1e-3)
        >>> stats = learner.update(batch)  # loss, grad_norm, entropy, clip_fraction, ...
    """

    def __init__(
        self,
        policy: GPT,
        value_head: ValueHead,
        learning_rate: float = 1e-3,
        clip_eps: float = 0.2,
        vf_coef: float = 0.5,
        ent_coef: float = 0.01,
        max_grad_norm: float | None = GRAD_CLIP_NORM,
    ) -> None:
        super().__init__(policy, value_head, learning_rate, clip_eps, vf_coef, ent_coef)
        self.trainable = PolicyWithHead(policy, value_head)
        self.optimizer = Adam(self.trainable, max_grad_norm)
        self.dtype = policy.wte.weight.dtype
        self.compiled_step = _step_function(self._step, self.dtype)

    def _step(self, batch: dict, coefficients: dict, learning_rate: float) -> dict[str, Tensor]:
        """Loss, gradients, clipping and Adam: the step (PyTorch runs it eagerly as written)."""
        self.trainable.eval()  # dropout off
        return minimize(self.optimizer, lambda: self.loss(batch, coefficients), learning_rate)

    def _as_tensor(self, value: np.ndarray, floating: bool) -> Tensor:
        return torch.as_tensor(value).to(self.dtype if floating else torch.int64)

    def _step_learning_rate(self) -> float:
        return self.learning_rate  # a float: nothing is traced

    def _agent_outputs(self, tokens: Tensor, mask: Tensor, admissible: Tensor,
                       prompt_last: Tensor) -> tuple[Tensor, Tensor]:
        return shared_prompt_outputs(self.policy, self.value_head, tokens, mask, admissible,
                                     prompt_last)

    def _agent_loss(self, *args: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return agent_loss(*args)


# ---------------------------------------------------------------------------------------------
# The baseline without an LM (outline 9.3.2 c): an MLP on the bag of words of the prompt
# ---------------------------------------------------------------------------------------------


def init_mlp_params(vocab_size: int, hidden: int, seed: int) -> dict[str, np.ndarray]:
    """Canonical weights of a ``BagOfWordsMLP`` from NumPy (the same in both backends)."""
    rng = np.random.default_rng([seed, 23])
    shapes = {"fc1": (vocab_size, hidden), "pi": (hidden, MAX_ADMISSIBLE), "v": (hidden, 1)}
    params = {}
    for name, (fan_in, fan_out) in shapes.items():
        scale = 0.01 if name == "pi" else np.sqrt(2.0 / fan_in)  # near-uniform pi at first
        params[f"{name}.kernel"] = (rng.normal(size=(fan_in, fan_out)) * scale).astype("float32")
        params[f"{name}.bias"] = np.zeros(fan_out, "float32")
    return params


class BagOfWordsMLP(nn.Module):
    """fc1 (ReLU), then ``pi`` (MAX_ADMISSIBLE logits) and ``v`` (the value): (S, V) -> both."""

    def __init__(self, vocab_size: int, hidden: int, seed: int = 0) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.fc1 = nn.Linear(vocab_size, hidden)
        self.pi = nn.Linear(hidden, MAX_ADMISSIBLE)
        self.v = nn.Linear(hidden, 1)
        import_params(self, init_mlp_params(vocab_size, hidden, seed))

    def forward(self, bags: Tensor) -> tuple[Tensor, Tensor]:
        h = F.relu(self.fc1(bags))
        return self.pi(h), self.v(h)[:, 0]


def bag_of_words(tokens: Tensor, prompt_last: Tensor, k: int, vocab_size: int) -> Tensor:
    """1 for each word of a state's prompt (row 0 of its K rows, columns <= prompt_last),
    (S K, T) -> (S, V)."""
    first = tokens.reshape(-1, k, tokens.shape[1])[:, 0]  # (S, T)
    columns = torch.arange(first.shape[1], dtype=torch.int64)
    inside = (columns[None, :] <= prompt_last[:, None]).to(torch.float32)  # (S, T)
    counts = torch.sum(F.one_hot(first, vocab_size).to(torch.float32) * inside[..., None], dim=1)
    return torch.clamp(counts, max=1.0)


def mlp_outputs(model: BagOfWordsMLP, tokens: Tensor, admissible: Tensor,
                prompt_last: Tensor) -> tuple[Tensor, Tensor]:
    """(log pi (S, K), V(s) (S,)): the MLP's logits of the K first indices, masked."""
    k = admissible.shape[1]
    logits, values = model(bag_of_words(tokens, prompt_last, k, model.vocab_size))
    return admissible_log_probs(logits[:, :k], admissible), values


@torch.inference_mode()
def mlp_inference_outputs(model: BagOfWordsMLP, tokens: np.ndarray, admissible: np.ndarray,
                          prompt_last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mlp_outputs without gradient, as NumPy float64: the rollout's pass."""
    log_pi, values = mlp_outputs(
        model, torch.as_tensor(tokens, dtype=torch.int64),
        torch.as_tensor(admissible, dtype=torch.float32),
        torch.as_tensor(prompt_last, dtype=torch.int64))
    return log_pi.numpy().astype(np.float64), values.numpy().astype(np.float64)


class MLPAgentLearner(LMAgentLearner):
    """``LMAgentLearner``'s PPO step on a ``BagOfWordsMLP`` (its ``v`` head is the value)."""

    def __init__(self, model: BagOfWordsMLP, learning_rate: float = 1e-3,
                 clip_eps: float = 0.2, vf_coef: float = 0.5, ent_coef: float = 0.01,
                 max_grad_norm: float | None = GRAD_CLIP_NORM) -> None:
        LMAgentLearnerBase.__init__(self, model, None, learning_rate, clip_eps, vf_coef,
                                    ent_coef)
        self.trainable = model
        self.optimizer = Adam(model, max_grad_norm)
        self.dtype = torch.float32
        self.compiled_step = _step_function(self._step, self.dtype)

    def _agent_outputs(self, tokens: Tensor, mask: Tensor, admissible: Tensor,
                       prompt_last: Tensor) -> tuple[Tensor, Tensor]:
        return mlp_outputs(self.policy, tokens, admissible, prompt_last)
