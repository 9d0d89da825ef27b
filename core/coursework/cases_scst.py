"""The graded cases of the ``scst`` assignment (outline 6.3.2), against the float64 oracle:
``core/reference/scst.py`` (the self-critical advantage, the loss and its gradient) and
``core/reference/rlhf_policy.py`` (a GPT's log-probabilities of the tokens it was fed).

Each hidden case is built to kill typical one-character bugs and carries the outputs each
gives as a diagnosis (``Case.diagnoses``), so a wrong answer is told what it matches: the
baseline taken from the samples instead of the greedy decode, the advantage's sign flipped,
the greedy rewards tiled instead of repeated (row i k + j is source i's), padding counted, a
mean over tokens instead of over samples, no 1/N, the log-softmax over the wrong axis, the
logits of column t scoring token t (off by one), the model shown the token it predicts.

Every mistake of the loss is linear in the log-probabilities, L = sum_it W_it log pi_it, so
each is one weight matrix W: its value ``(W * logp).sum()`` and its gradient ``W``.
"""

from __future__ import annotations

import numpy as np

from duetrl.core.coursework.case import ATOL_FLOAT32, ATOL_FLOAT64, Case
from duetrl.core.coursework.case import arg as _arg
from duetrl.core.interfaces.gpt_config import GPTConfig
from duetrl.core.interfaces.gpt_params import init_gpt_params
from duetrl.core.reference import scst as ref
from duetrl.core.reference.functional import log_softmax
from duetrl.core.reference.rlhf_policy import hidden_states, token_log_probs

CONFIG = dict(vocab_size=13, block_size=16, n_layer=1, n_head=2, n_embd=8)
"""A tiny GPT: the grader's forward pass takes milliseconds in float64."""
WEIGHT_SCALE = 25.0
"""The embeddings scaled up from the initialiser's std 0.02: a peaked LM, so that scoring the
wrong token moves a log-probability by far more than the tolerance."""

SIGN = ("the advantage's sign flipped (r(greedy) - r(sample)): the samples that beat the "
        "greedy decode would be pushed down")
SAMPLED_BASELINE = ("a baseline from the sampled rewards (their mean per source), not the "
                    "greedy decode's reward")
TILED = ("the greedy rewards tiled (source order repeated: torch .repeat, tf.tile), not each "
         "repeated k times (repeat_interleave, tf.repeat): row i k + j belongs to source i")
NO_BASELINE = "no baseline: A = r(sample), plain REINFORCE"


# ---- the advantage ---------------------------------------------------------------------------


def _advantage_mistakes(sample: np.ndarray, greedy: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """The advantages the typical bugs give, ``(N,)`` each, with what they are."""
    k = sample.shape[0] // greedy.shape[0]
    source_mean = np.repeat(sample.reshape(-1, k).mean(1), k)
    return [(np.repeat(greedy, k) - sample, SIGN),
            (sample - source_mean, SAMPLED_BASELINE),
            (sample - sample.mean(), "a baseline from the mean of all the sampled rewards, "
                                     "not each source's greedy decode's reward"),
            (sample - np.tile(greedy, k), TILED),
            (sample, NO_BASELINE)]


def _rewards(rng, sources: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sentence-BLEU-like rewards in [0, 1], every source's greedy reward different."""
    sample = rng.uniform(0.0, 1.0, sources * k)
    greedy = np.sort(rng.choice(np.linspace(0.05, 0.95, 19), sources, replace=False))[::-1]
    return sample, rng.permutation(greedy)


def advantages_case(name: str, points: float, visibility: str, sample: np.ndarray,
                    greedy: np.ndarray, hint: str, dtype: str = "float64") -> Case:
    sample = sample.astype(dtype).astype(np.float64)  # what the student receives
    greedy = greedy.astype(dtype).astype(np.float64)
    return Case(name, points, visibility,
                {"kind": "call", "function": "scst_advantages",
                 "args": [_arg("sample_rewards"), _arg("greedy_rewards")]},
                {"sample_rewards": sample.astype(dtype), "greedy_rewards": greedy.astype(dtype)},
                {"0": ref.scst_advantages(sample, greedy)}, dtype,
                ATOL_FLOAT64 if dtype == "float64" else ATOL_FLOAT32, hint,
                diagnoses=[({"0": a}, what) for a, what in _advantage_mistakes(sample, greedy)])


# ---- the loss and its gradient ---------------------------------------------------------------


def _loss_weights(sample: np.ndarray, greedy: np.ndarray,
                  mask: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """W of each typical mistake (L = sum W log pi, grad = W), with what it is."""
    n, t = mask.shape
    a = ref.scst_advantages(sample, greedy)[:, None]
    lengths = mask.sum(1, keepdims=True)
    mistakes = [(a * mask / n, "the loss's sign flipped (or the advantage's): minimising it "
                               "pushes down the samples that beat the greedy decode"),
                (-a * np.ones_like(mask) / n, "padding counted: a sum over every column "
                 "(multiply by the mask)"),
                (-a * mask / (n * lengths), "a mean over each sample's tokens (per-token "
                 "normalisation), not their sum: log pi(y | x) is the sum"),
                (-a * mask / mask.sum(), "a mean over all the real tokens of the batch, not "
                 "over the N samples"),
                (-a * mask / (n * t), "a mean over all N x T positions, padding included, "
                 "not over the N samples"),
                (-a * mask, "a sum over the samples: no 1/N")]
    return mistakes + [(-wrong[:, None] * mask / n, what)
                       for wrong, what in _advantage_mistakes(sample, greedy)
                       if what != SIGN]  # a flipped advantage is the flipped loss above


def _batch(rng, sources: int, k: int, width: int) -> dict[str, np.ndarray]:
    """N = sources k samples: token log-probs (N, T), outputs of different lengths (at least
    one token, <eos>, each) right-padded, with nonzero log-probs on the padding too."""
    n = sources * k
    lengths = rng.integers(1, width + 1, n)
    lengths[:2] = (1, width)  # the shortest and a full row
    mask = (np.arange(width)[None, :] < rng.permutation(lengths)[:, None]).astype(np.float64)
    logp = -rng.gamma(2.0, 1.0, (n, width))
    sample, greedy = _rewards(rng, sources, k)
    return {"logp": logp, "sample_rewards": sample, "greedy_rewards": greedy, "mask": mask}


def loss_case(name: str, points: float, visibility: str, batch: dict, hint: str,
              gradient: bool = False, dtype: str = "float64") -> Case:
    batch = {k: v.astype(dtype).astype(np.float64) for k, v in batch.items()}
    args = (batch["logp"], batch["sample_rewards"], batch["greedy_rewards"], batch["mask"])
    expected = {"0": np.asarray(ref.scst_loss(*args))}
    if gradient:
        expected["grad"] = ref.scst_loss_gradient(*args)
    diagnoses = []
    for weights, what in _loss_weights(*args[1:]):
        wrong = {"0": np.asarray((weights * batch["logp"]).sum())}
        if gradient:
            wrong["grad"] = weights
        diagnoses.append((wrong, what))
    return Case(name, points, visibility,
                {"kind": "grad" if gradient else "call", "function": "scst_loss",
                 "args": [_arg(k) for k in ("logp", "sample_rewards", "greedy_rewards", "mask")]},
                {k: v.astype(dtype) for k, v in batch.items()}, expected, dtype,
                ATOL_FLOAT64 if dtype == "float64" else ATOL_FLOAT32, hint, diagnoses=diagnoses)


# ---- log pi of the tokens: from logits, and from a GPT ---------------------------------------

RAW_LOGITS = "the logits themselves, not log-probabilities (log_softmax first)"


def gather_case(name: str, points: float, visibility: str, rng, hint: str) -> Case:
    """Logits (B, T, V) with V != T (so that a softmax over the wrong axis cannot pass)."""
    b, t, v = int(rng.integers(2, 4)), int(rng.integers(3, 6)), int(rng.integers(7, 11))
    logits = rng.normal(size=(b, t, v)) * 2.0
    tokens = rng.integers(0, v, (b, t))

    def picked(x: np.ndarray) -> np.ndarray:
        return np.take_along_axis(x, tokens[..., None], -1)[..., 0]

    over_time = np.moveaxis(log_softmax(np.moveaxis(logits, 1, -1)), -1, 1)
    return Case(name, points, visibility,
                {"kind": "call", "function": "gather_log_probs",
                 "args": [_arg("logits"), _arg("tokens")]},
                {"logits": logits, "tokens": tokens}, {"0": picked(log_softmax(logits))},
                "float64", ATOL_FLOAT64, hint,
                diagnoses=[({"0": picked(logits)}, RAW_LOGITS),
                           ({"0": picked(np.exp(log_softmax(logits)))},
                            "probabilities, not log-probabilities"),
                           ({"0": picked(over_time)}, "a log-softmax over the time axis (1), not "
                                                      "over the vocabulary (the last axis)")])


def token_log_probs_case(name: str, points: float, visibility: str, rng, hint: str) -> Case:
    """A float64 GPT (the case's weights) and B sequences of T ids: log pi (B, T-1)."""
    config = GPTConfig(**CONFIG)
    params = init_gpt_params(config, int(rng.integers(1 << 30)), "float64")
    params["wte.embeddings"] = params["wte.embeddings"] * WEIGHT_SCALE
    b, t = int(rng.integers(2, 5)), int(rng.integers(6, CONFIG["block_size"] + 1))
    tokens = rng.integers(0, CONFIG["vocab_size"], (b, t))
    head = params["wte.embeddings"].T

    def picked(logits: np.ndarray, ids: np.ndarray) -> np.ndarray:
        return np.take_along_axis(logits, ids[..., None], -1)[..., 0]

    fed = hidden_states(params, tokens[:, :-1], config) @ head  # the right logits (B, T-1, V)
    whole = hidden_states(params, tokens, config) @ head  # (B, T, V): the model sees token t+1
    diagnoses = [
        ({"0": picked(log_softmax(fed), tokens[:, :-1])},
         "off by one: the logits of column t scoring token t (the distribution of token t + 1 "
         "is the output at column t: feed tokens[:, :-1], score tokens[:, 1:])"),
        ({"0": picked(log_softmax(whole[:, 1:]), tokens[:, 1:])},
         "the output at column t + 1 scoring token t + 1: the model saw the token it predicts"),
        ({"0": picked(fed, tokens[:, 1:])}, RAW_LOGITS),
    ]
    return Case(name, points, visibility,
                {"kind": "gpt", "function": "token_log_probs", "config": CONFIG,
                 "args": [_arg("tokens")]},
                {"tokens": tokens, **{f"gpt:{k}": v for k, v in params.items()}},
                {"0": token_log_probs(params, tokens, config)}, "float64", ATOL_FLOAT64, hint,
                diagnoses=diagnoses)


def scst_cases(seed: int, public_only: bool = False) -> list[Case]:
    """Public: one small case of each function. Hidden: the cases that kill the typical bugs."""
    rng0 = np.random.default_rng(0)
    cases = [
        advantages_case("advantages: 2 sources x 2 samples (public)", 1, "visible",
                        np.array([0.5, 0.2, 0.9, 0.4]), np.array([0.3, 0.6]),
                        "expected [0.2, -0.1, 0.3, -0.2]"),
        loss_case("loss: 2 sources x 2 samples, padded (public seed)", 1, "visible",
                  _batch(rng0, 2, 2, 4), "L = -1/N sum_ij A_ij sum_t m_ijt logp_ijt"),
        gather_case("gather_log_probs: log-softmax, then the token's entry (public seed)", 1,
                    "visible", rng0, "log_softmax over the last axis, then gather"),
        token_log_probs_case("token_log_probs: a GPT scores its tokens (public seed)", 1,
                             "visible", rng0, "feed tokens[:, :-1], score tokens[:, 1:]"),
    ]
    if public_only:
        return cases
    rng = np.random.default_rng(seed)
    sources, k = int(rng.integers(3, 5)), int(rng.integers(2, 5))
    width = int(rng.integers(5, 9))
    return cases + [
        advantages_case("advantages: several sources and samples", 2, "hidden",
                        *_rewards(rng, sources, k), "row i k + j is sample j of source i: its "
                        "baseline is greedy_rewards[i]"),
        advantages_case("advantages: float32 in, float32 out", 1, "hidden", *_rewards(rng, 3, 2),
                        "keep the rewards' dtype", dtype="float32"),
        loss_case("loss: samples of different lengths, padded", 2, "hidden",
                  _batch(rng, sources, k, width), "sum each sample's masked log-probs, weight "
                  "by its advantage, average over the N samples, negate"),
        loss_case("loss: its gradient with respect to the log-probs", 2, "hidden",
                  _batch(rng, sources, k, width), "dL/dlogp_ijt = -A_ij m_ijt / N",
                  gradient=True),
        loss_case("loss: float32 in, float32 out", 1, "hidden", _batch(rng, 2, 3, 5),
                  "keep the log-probs' dtype", dtype="float32"),
        gather_case("gather_log_probs: batches of logits", 1, "hidden", rng,
                    "log_softmax over the vocabulary (the last axis), then the token's entry"),
        token_log_probs_case("token_log_probs: a GPT on sequences of several lengths", 2,
                             "hidden", rng, "the output at column t is the distribution of "
                             "token t + 1"),
    ]
