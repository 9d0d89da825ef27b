"""The graded cases of the ``lm-agent`` assignment (outline 3.2.3, 3.2.5), against the float64
oracle: ``core/reference/lm_agent.py`` (GLAM's scores, pi and V, each command scored on its own,
without padding) and ``core/reference/decision_transformer.py`` (returns-to-go, their tokens).

Each hidden case is built to kill one typical one-character bug, and carries the outputs that
bug gives as a diagnosis (``Case.diagnoses``), so the student is told what their answer
matches: a mean instead of a sum, padding or prompt columns counted, the LM's own
probabilities instead of a softmax over the commands, the empty places of the grid given
probability, the logits of column t scoring token t (the distribution of token t is at t-1),
the value read one column late, returns-to-go summed forwards, gamma ignored, the sum running
past an episode's end, ties rounded up or down instead of to even, no clipping, floor.
"""

from __future__ import annotations

import numpy as np

from duetrl.core.constants import MASK_FILL_VALUE
from duetrl.core.coursework.case import ATOL_FLOAT32, ATOL_FLOAT64, Case
from duetrl.core.coursework.case import arg as _arg
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.interfaces.rlhf import init_value_head_params
from duetrl.core.reference import lm_agent as ref
from duetrl.core.reference.decision_transformer import return_tokens, returns_to_go
from duetrl.core.reference.functional import log_softmax
from duetrl.core.reference.rlhf_policy import hidden_states, scalar_head

CONFIG = dict(vocab_size=13, block_size=16, n_layer=1, n_head=2, n_embd=8)
"""A tiny GPT: the grader's forward pass takes milliseconds in float64."""
WEIGHT_SCALE = 25.0
"""The embeddings (and the value head) scaled up from the initialiser's std 0.02: a peaked
LM, so that scoring the wrong token moves a score by far more than the tolerance."""

MEAN = "a mean over the command's tokens, not their sum"
UNMASKED = "a sum over every column: prompt and padding columns counted (multiply by the mask)"
NOT_RENORMALISED = ("the LM's own log-probabilities (normalised over the vocabulary only), "
                    "not a softmax over the state's commands")
EMPTY_PLACES = "a softmax over all K places: the empty places of the grid took probability"


# ---- part A: GLAM's scores, pi and V ---------------------------------------------------------


def _masked_log_softmax(scores: np.ndarray, admissible: np.ndarray) -> np.ndarray:
    """The oracle's log pi over a grid: fill, log-softmax over the last axis, times admissible."""
    filled = np.where(admissible > 0, scores, MASK_FILL_VALUE)
    return log_softmax(filled) * admissible


def _policy_mistakes(scores: np.ndarray, admissible: np.ndarray) -> list[tuple[dict, str]]:
    """log pi of the grid's typical mistakes, from the (right) scores ``(S, K)``."""
    return [({"0": scores * admissible}, NOT_RENORMALISED),
             ({"0": log_softmax(scores) * admissible}, EMPTY_PLACES),
             ({"0": log_softmax(scores)}, EMPTY_PLACES + ", and log pi is not 0 there"),
             ({"0": log_softmax(np.where(admissible > 0, scores, MASK_FILL_VALUE).T).T
               * admissible}, "a softmax over the states (axis 0), not over each state's "
                              "commands")]


def command_scores_case(name: str, points: float, visibility: str, rng, hint: str,
                        dtype: str = "float64") -> Case:
    """Token log-probs of rows of different lengths; the mask flags a few columns of each."""
    rows, width = int(rng.integers(3, 7)), int(rng.integers(6, 11))
    token_logp = -rng.gamma(2.0, 1.5, size=(rows, width))  # log-probs: negative
    mask = np.zeros((rows, width))
    for r in range(rows):
        start, length = int(rng.integers(0, width - 3)), 1 + r % 3  # lengths 1, 2, 3, ...
        mask[r, start:start + length] = 1.0
    expected = (token_logp * mask).sum(axis=1)
    mean = expected / mask.sum(axis=1)
    return Case(name, points, visibility,
                {"kind": "call", "function": "command_scores",
                 "args": [_arg("token_logp"), _arg("mask")]},
                {"token_logp": token_logp.astype(dtype), "mask": mask.astype(dtype)},
                {"0": expected}, dtype, ATOL_FLOAT64 if dtype == "float64" else ATOL_FLOAT32,
                hint, diagnoses=[({"0": mean}, MEAN), ({"0": token_logp.sum(axis=1)}, UNMASKED)])


def admissible_case(name: str, points: float, visibility: str, rng, hint: str) -> Case:
    """Scores of S states over K places, some places empty (random scores there too)."""
    states, places = int(rng.integers(2, 5)), int(rng.integers(3, 6))
    scores = -rng.gamma(3.0, 2.0, size=(states, places))
    counts = rng.integers(1, places + 1, size=states)
    counts[0] = places - 1  # at least one empty place, and at least two commands somewhere
    counts[-1] = places
    admissible = (np.arange(places)[None, :] < counts[:, None]).astype(np.float64)
    return Case(name, points, visibility,
                {"kind": "call", "function": "admissible_log_probs",
                 "args": [_arg("scores"), _arg("admissible")]},
                {"scores": scores, "admissible": admissible},
                {"0": _masked_log_softmax(scores, admissible)}, "float64", ATOL_FLOAT64, hint,
                diagnoses=_policy_mistakes(scores, admissible))


def _grid(rng, states: int, places: int, garbage_padding: bool) -> tuple[dict, list]:
    """The S x K rows (the layout of ``core/agents/batch.py``) and each state's ids."""
    vocab = CONFIG["vocab_size"]
    encoded = []
    for s in range(states):
        prompt = rng.integers(1, vocab, size=int(rng.integers(2, 7)))
        # the first state fills the grid's width, the last leaves a place empty
        count = places if s == 0 else places - 1 if s == states - 1 else \
            int(rng.integers(1, places + 1))
        commands = [rng.integers(1, vocab, size=1 + (s + k) % 4) for k in range(count)]
        encoded.append((prompt, commands))
    length = max(len(p) + len(c) for p, cs in encoded for c in cs)  # T <= 6 + 4 < block_size
    fill = rng.integers(1, vocab, size=(states * places, length)) if garbage_padding else \
        np.zeros((states * places, length), np.int64)
    tokens = np.array(fill, np.int64)
    mask = np.zeros((states * places, length - 1))
    admissible = np.zeros((states, places))
    prompt_last = np.zeros(states, np.int64)
    for s, (prompt, commands) in enumerate(encoded):
        p = len(prompt)
        prompt_last[s] = p - 1
        admissible[s, :len(commands)] = 1.0
        for k in range(places):  # an empty place's row: the prompt, then padding
            row = s * places + k
            tokens[row, :p] = prompt
            if k < len(commands):
                tokens[row, p:p + len(commands[k])] = commands[k]
                mask[row, p - 1:p - 1 + len(commands[k])] = 1.0  # columns predicting it
    return {"tokens": tokens, "mask": mask, "admissible": admissible,
            "prompt_last": prompt_last}, encoded


def _lm_params(seed: int) -> tuple[GPTConfig, dict, dict]:
    config = GPTConfig(**CONFIG)
    params = init_gpt_params(config, seed, "float64")
    params["wte.embeddings"] = params["wte.embeddings"] * WEIGHT_SCALE
    head = init_value_head_params(config.n_embd, seed, "float64")
    head["linear.kernel"] = head["linear.kernel"] * WEIGHT_SCALE
    head["linear.bias"] = np.array([0.3])
    return config, params, head


def agent_outputs_case(name: str, points: float, visibility: str, rng, hint: str,
                       garbage_padding: bool) -> Case:
    """A float64 GPT and value head on S states' rows: log pi (S, K) and V (S,)."""
    config, params, head = _lm_params(int(rng.integers(1 << 30)))
    states, places = int(rng.integers(2, 4)), int(rng.integers(2, 4))
    grid, encoded = _grid(rng, states, places, garbage_padding)
    scores = np.zeros((states, places))
    values = np.zeros(states)
    for s, (prompt, commands) in enumerate(encoded):  # the oracle: one command at a time
        scores[s, :len(commands)] = ref.command_scores(params, config, prompt, commands)
        values[s] = ref.state_value(params, head, config, prompt)
    admissible = grid["admissible"]
    # the mistakes, on the padded rows as a student's code sees them
    hidden = hidden_states(params, grid["tokens"][:, :-1], config)  # (R, T-1, D)
    logp = log_softmax(hidden @ params["wte.embeddings"].T)  # (R, T-1, V)
    next_logp = np.take_along_axis(logp, grid["tokens"][:, 1:, None], -1)[..., 0]
    same_logp = np.take_along_axis(logp, grid["tokens"][:, :-1, None], -1)[..., 0]
    mask = grid["mask"]
    shape = (states, places)
    per_length = np.where(mask.sum(1) > 0, mask.sum(1), 1.0).reshape(shape)
    late_values = scalar_head(params, head, grid["tokens"][::places, :-1],
                              config)[np.arange(states), grid["prompt_last"] + 1]
    diagnoses = [
        ({"0": _masked_log_softmax(scores / per_length, admissible)}, MEAN),
        ({"0": _masked_log_softmax(next_logp.sum(1).reshape(shape), admissible)}, UNMASKED),
        ({"0": _masked_log_softmax((same_logp * mask).sum(1).reshape(shape), admissible)},
         "the logits of column t scoring token t: the distribution of token t is the GPT's "
         "output at column t - 1 (feed tokens[:, :-1], score tokens[:, 1:])"),
        *_policy_mistakes(scores, admissible),
        ({"1": late_values}, "V(s) read one column after the prompt's last token"),
    ]
    arrays = {**grid, **{f"gpt:{k}": v for k, v in params.items()},
              **{f"head:{k}": v for k, v in head.items()}}
    call = {"kind": "lm_policy", "config": CONFIG,
            "args": [_arg(k) for k in ("tokens", "mask", "admissible", "prompt_last")]}
    return Case(name, points, visibility, call, arrays,
                {"0": _masked_log_softmax(scores, admissible), "1": values}, "float64",
                ATOL_FLOAT64, hint, diagnoses=diagnoses)


# ---- part B: returns-to-go and their tokens --------------------------------------------------


def returns_to_go_case(name: str, points: float, visibility: str, rewards: np.ndarray,
                       dones: np.ndarray, gamma: float, hint: str,
                       dtype: str = "float64") -> Case:
    expected = returns_to_go(rewards, dones, gamma)
    flip = (..., slice(None, None, -1))
    diagnoses = [
        ({"0": returns_to_go(rewards[flip], dones[flip], gamma)[flip]},
         "the same recursion run forwards in time: R_t sums the rewards from t to the end "
         "of its episode (loop t = T-1, ..., 0)"),
        ({"0": returns_to_go(rewards, np.zeros_like(dones), gamma)},
         "a sum that runs past the end of an episode: start again where done_t = 1"),
    ]
    if gamma != 1.0:
        diagnoses.append(({"0": returns_to_go(rewards, dones, 1.0)}, "gamma ignored (gamma = 1)"))
    return Case(name, points, visibility,
                {"kind": "call", "function": "returns_to_go",
                 "args": [_arg("rewards"), _arg("dones"), float(gamma)]},
                {"rewards": rewards.astype(dtype), "dones": dones.astype(dtype)},
                {"0": expected}, dtype, ATOL_FLOAT64 if dtype == "float64" else ATOL_FLOAT32,
                hint, diagnoses=diagnoses)


def _episodes(rng, shape: tuple[int, ...], p_done: float) -> tuple[np.ndarray, np.ndarray]:
    rewards = rng.normal(size=shape) + 0.5
    dones = (rng.random(shape) < p_done).astype(np.float64)
    return rewards, dones


def return_tokens_case(name: str, points: float, visibility: str, returns: np.ndarray,
                       low: float, high: float, num: int, hint: str,
                       dtype: str = "float64") -> Case:
    returns = returns.astype(dtype).astype(np.float64)  # what the student receives
    expected = return_tokens(returns, low, high, num)
    span = high - low
    scaled = (returns - low) / span * (num - 1) if span > 0 else np.zeros_like(returns)
    top = num - 1
    diagnoses = [
        ({"0": np.clip(np.floor(scaled + 0.5), 0, top)},
         "ties rounded up (a boundary tested with >=): a return halfway between two bucket "
         "centres goes to the even bucket"),
        ({"0": np.clip(np.ceil(scaled - 0.5), 0, top)},
         "ties rounded down (a boundary tested with <): a return halfway between two bucket "
         "centres goes to the even bucket"),
        ({"0": np.rint(scaled)}, "no clipping: returns outside [low, high] go to the end buckets"),
        ({"0": np.clip(np.floor(scaled), 0, top)}, "floor, not round to the nearest bucket"),
    ]
    return Case(name, points, visibility,
                {"kind": "call", "function": "return_tokens",
                 "args": [_arg("returns"), float(low), float(high), int(num)]},
                {"returns": returns.astype(dtype)}, {"0": expected}, "int64", ATOL_FLOAT64,
                hint, diagnoses=diagnoses)


def _away_from_ties(rng, size: int, low: float, high: float, num: int) -> np.ndarray:
    """Returns in and around [low, high], none within 1e-3 of a bucket boundary (float32 safe)."""
    returns = rng.uniform(low - 0.2 * (high - low), high + 0.2 * (high - low), size)
    scaled = (returns - low) / (high - low) * (num - 1)
    near = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-3
    return np.where(near, returns + 0.01 * (high - low) / (num - 1), returns)


def lm_agent_cases(seed: int, public_only: bool = False) -> list[Case]:
    """Public: one small case of each function. Hidden: the cases that kill the typical bugs."""
    rng0 = np.random.default_rng(0)
    cases = [
        command_scores_case("scores: masked sum (public seed)", 1, "visible", rng0,
                            "score = sum_t mask_t token_logp_t"),
        admissible_case("policy: log-softmax over the admissible commands (public seed)", 1,
                        "visible", rng0, "fill empty places, log-softmax over K, times admissible"),
        agent_outputs_case("agent_outputs: a GPT scores the commands (public seed)", 1,
                           "visible", rng0, "the output at column t is the distribution of "
                           "token t+1", garbage_padding=False),
        returns_to_go_case("returns-to-go: one episode, gamma 0.5 (public)", 1, "visible",
                           np.array([1.0, 0.0, 2.0]), np.array([0.0, 0.0, 1.0]), 0.5,
                           "expected [1.5, 1.0, 2.0]"),
        return_tokens_case("return tokens: 11 buckets over [0, 10] (public)", 1, "visible",
                           np.array([0.0, 3.0, 10.0, 7.2, 2.9]), 0.0, 10.0, 11,
                           "expected [0, 3, 10, 7, 3]"),
    ]
    if public_only:
        return cases
    rng = np.random.default_rng(seed)
    gamma = float(rng.uniform(0.8, 0.99))
    rewards, dones = _episodes(rng, (int(rng.integers(2, 4)), int(rng.integers(9, 15))), 0.25)
    dones[:, -1] = 0.0  # the arrays end in the middle of an episode: R_T = 0 after them
    # over [-2, 6] in 5 buckets, (R + 2) / 8 * 4 is exact: -1, 1, 3, 5 fall on x.5 (ties)
    ties = np.array([-1.0, 1.0, 3.0, 5.0, -2.0, 0.0, 2.0, 4.0, 6.0, -3.0, 7.5])
    num = int(rng.integers(4, 9))
    low, high = float(rng.uniform(-5, 0)), float(rng.uniform(1, 10))
    return cases + [
        command_scores_case("scores: commands of different lengths, padded", 2, "hidden", rng,
                            "multiply by the mask and sum over the columns"),
        command_scores_case("scores: float32 in, float32 out", 1, "hidden", rng,
                            "keep the inputs' dtype", dtype="float32"),
        admissible_case("policy: states with empty places", 2, "hidden", rng,
                        "empty places get probability 0 and log pi = 0"),
        agent_outputs_case("agent_outputs: commands of different lengths", 3, "hidden", rng,
                           "feed tokens[:, :-1], score tokens[:, 1:], sum over the mask, "
                           "softmax over the commands", garbage_padding=False),
        agent_outputs_case("agent_outputs: padding with arbitrary ids", 2, "hidden", rng,
                           "padding ids mean nothing: only the mask's columns count; V at "
                           "prompt_last", garbage_padding=True),
        returns_to_go_case("returns-to-go: episodes end to end", 2, "hidden", rewards, dones,
                           gamma, "R_t = r_t + gamma (1 - done_t) R_{t+1}, backwards in time"),
        returns_to_go_case("returns-to-go: gamma = 1 (the Decision Transformer's)", 1, "hidden",
                           *_episodes(rng, (int(rng.integers(8, 13)),), 0.2), 1.0,
                           "with gamma = 1, R_t is the sum of the rest of the episode"),
        returns_to_go_case("returns-to-go: one-step episodes", 1, "hidden",
                           rng.normal(size=(2, 5)), np.ones((2, 5)), gamma,
                           "an episode of one step: R_t = r_t"),
        returns_to_go_case("returns-to-go: float32 in, float32 out", 1, "hidden",
                           *_episodes(rng, (2, 7), 0.3), gamma, "keep the rewards' dtype",
                           dtype="float32"),
        return_tokens_case("return tokens: returns on the bucket boundaries", 2, "hidden", ties,
                           -2.0, 6.0, 5, "round half to even (torch.round, tf.round), then clip"),
        return_tokens_case("return tokens: returns in and outside the range", 1, "hidden",
                           _away_from_ties(rng, 12, low, high, num), low, high, num,
                           "scale to [0, n - 1], round, clip to [0, n - 1]"),
        return_tokens_case("return tokens: every return the same (high == low)", 1, "hidden",
                           np.full(4, low), low, low, num, "high == low: every return is "
                           "bucket 0 (no division by zero)"),
        return_tokens_case("return tokens: float32 returns, int64 ids", 1, "hidden",
                           _away_from_ties(rng, 8, low, high, num), low, high, num,
                           "ids are int64 whatever the returns' dtype", dtype="float32"),
    ]
