"""The graded cases of every assignment, written once against the float64 reference.

A :class:`Case` is what the child process runs (``call``, with NumPy ``arrays``) and what the
grader expects back (``expected``, computed here with ``core/reference``). Public cases use
fixed seeds and are the ones in the student's public test file; hidden cases are drawn from a
seed the student does not know, so hard-coding the public answers earns nothing.
The same cases grade a PyTorch and a TensorFlow submission: arrays cross the process boundary
as NumPy and become framework tensors only in the child.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from duetrl.core.constants import MASK_FILL_VALUE
from duetrl.core.coursework.case import ATOL_FLOAT32, ATOL_FLOAT64, Case
from duetrl.core.coursework.case import arg as _arg
from duetrl.core.coursework.cases_kg import kg_cases
from duetrl.core.coursework.cases_lm_agent import lm_agent_cases
from duetrl.core.coursework.cases_recommender import recommender_cases
from duetrl.core.coursework.cases_scst import scst_cases
from duetrl.core.coursework.specs import Assignment, LearningSpec
from duetrl.core.interfaces.rl_settings import make_settings
from duetrl.core.reference import algorithms as ref_algorithms
from duetrl.core.reference.attention import (
    causal_mask,
    init_multi_head_attention_params,
    multi_head_attention,
    scaled_dot_product_attention,
)
from duetrl.core.reference.policy import init_agent_params
from duetrl.core.reference.returns import discounted_returns, gae

# ---- returns -------------------------------------------------------------------------------


def _trajectory(rng: np.random.Generator, t: int, n: int, p_term: float = 0.15,
                p_trunc: float = 0.1) -> dict[str, np.ndarray]:
    terminations = rng.random((t, n)) < p_term
    truncations = (rng.random((t, n)) < p_trunc) & ~terminations
    return {"rewards": rng.normal(size=(t, n)), "terminations": terminations,
            "truncations": truncations, "values": rng.normal(size=(t, n)),
            "next_values": rng.normal(size=(t, n))}


def _returns_case(name: str, points: float, visibility: str, traj: dict, gamma: float,
                  bootstrap: bool, hint: str, dtype: str = "float64") -> Case:
    args = [_arg("rewards"), _arg("terminations"), _arg("truncations"), float(gamma)]
    arrays = {k: traj[k] for k in ("rewards", "terminations", "truncations")}
    if bootstrap:
        args.append(_arg("next_values"))
        arrays["next_values"] = traj["next_values"]
    expected = discounted_returns(traj["rewards"], traj["terminations"], traj["truncations"],
                                  gamma, traj["next_values"] if bootstrap else None)
    arrays = {k: (v.astype(dtype) if v.dtype.kind == "f" else v) for k, v in arrays.items()}
    return Case(name, points, visibility, {"kind": "call", "function": "compute_returns",
                                           "args": args}, arrays, {"0": expected}, dtype,
                ATOL_FLOAT64 if dtype == "float64" else ATOL_FLOAT32, hint)


def _gae_case(name: str, points: float, visibility: str, traj: dict, gamma: float, lam: float,
              hint: str) -> Case:
    keys = ("rewards", "values", "next_values", "terminations", "truncations")
    advantages, returns = gae(*(traj[k] for k in keys), gamma, lam)
    return Case(name, points, visibility,
                {"kind": "call", "function": "compute_gae",
                 "args": [_arg(k) for k in keys] + [float(gamma), float(lam)]},
                {k: traj[k] for k in keys}, {"0": advantages, "1": returns}, "float64",
                ATOL_FLOAT64, hint)


def returns_cases(seed: int, public_only: bool = False) -> list[Case]:
    """Public: the published GAE vector, a hand case, one random case. Hidden: the rest."""
    published = {"rewards": np.array([[0.0], [0.0], [1.0]]), "values": np.full((3, 1), 0.5),
                 "next_values": np.array([[0.5], [0.5], [0.0]]),
                 "terminations": np.array([[False], [False], [True]]),
                 "truncations": np.zeros((3, 1), bool)}
    hand = {**published, "rewards": np.ones((3, 1))}
    cases = [
        _gae_case("gae: the published vector (gamma 1, lambda 0.95)", 1, "visible", published,
                  1.0, 0.95, "A = [0.45125, 0.475, 0.5], returns = A + V"),
        _returns_case("returns: three rewards of 1, gamma 0.5, termination at the end", 1,
                      "visible", hand, 0.5, False, "expected [1.75, 1.5, 1.0]"),
        _returns_case("returns: random episodes (public seed)", 1, "visible",
                      _trajectory(np.random.default_rng(0), 6, 3), 0.9, True,
                      "bootstrap from next_values only where the episode was cut"),
    ]
    if public_only:
        return cases
    rng = np.random.default_rng(seed)

    def traj(**kw) -> dict:
        return _trajectory(rng, int(rng.integers(7, 13)), int(rng.integers(2, 6)), **kw)

    gamma = float(rng.uniform(0.8, 0.999))
    last_cut = traj(p_term=0.0, p_trunc=0.0)
    last_cut["truncations"][-1] = True
    step0 = traj(p_trunc=0.0)
    step0["terminations"][0] = True
    return cases + [
        _returns_case("returns: random episodes, no critic", 2, "hidden", traj(), gamma, False,
                      "G_t = r_t + gamma G_{t+1} inside an episode; 0 after a termination"),
        _returns_case("returns: bootstrapping at truncations", 2, "hidden",
                      traj(p_term=0.05, p_trunc=0.25), gamma, True,
                      "a truncation is not a termination: add gamma V(s_{t+1}) there"),
        _returns_case("returns: truncation at the last step", 1, "hidden", last_cut, gamma, True,
                      "the last row bootstraps from next_values unless it terminated"),
        _returns_case("returns: termination at step 0", 1, "hidden", step0, gamma, True,
                      "a termination ends the sum: nothing after r_t"),
        _returns_case("returns: gamma = 0", 1, "hidden", traj(), 0.0, True,
                      "with gamma = 0 the return is the reward"),
        _returns_case("returns: gamma = 1", 1, "hidden", traj(), 1.0, True,
                      "with gamma = 1 the return is the undiscounted sum"),
        _returns_case("returns: float32 in, float32 out", 1, "hidden", traj(), gamma, True,
                      "keep the inputs' dtype", dtype="float32"),
        _gae_case("gae: random episodes", 2, "hidden", traj(), gamma, float(rng.uniform(0.8, 1)),
                  "delta_t = r_t + gamma (1 - term_t) V(s_{t+1}) - V(s_t); "
                  "A_t = delta_t + gamma lambda c_t A_{t+1}"),
        _gae_case("gae: lambda = 0 (one-step TD errors)", 1, "hidden", traj(), gamma, 0.0,
                  "with lambda = 0 the advantage is delta_t"),
        _gae_case("gae: lambda = 1 and truncations", 1, "hidden", traj(p_trunc=0.3), gamma, 1.0,
                  "a truncation bootstraps from V(s_{t+1}) in delta_t"),
    ]


# ---- attention -----------------------------------------------------------------------------


def _sdpa_case(name: str, points: float, visibility: str, q, k, v, mask, hint: str,
               weights: bool = False, dtype: str = "float64") -> Case:
    arrays = {"q": q, "k": k, "v": v}
    args = [_arg("q"), _arg("k"), _arg("v")]
    if mask is not None:
        arrays["mask"] = mask
        args.append(_arg("mask"))
    else:
        args.append(None)
    out, w = scaled_dot_product_attention(q, k, v, mask, True)
    expected = {"0": out, "1": w} if weights else {"0": out}
    arrays = {key: a.astype(dtype) for key, a in arrays.items()}
    return Case(name, points, visibility, {"kind": "call", "function":
                                           "scaled_dot_product_attention",
                                           "args": args + [weights]}, arrays, expected, dtype,
                ATOL_FLOAT64 if dtype == "float64" else ATOL_FLOAT32, hint)


def _mha_case(name: str, points: float, visibility: str, rng, d_model: int, heads: int,
              masked: bool, hint: str) -> Case:
    b, t = int(rng.integers(1, 4)), int(rng.integers(2, 7))
    params = init_multi_head_attention_params(d_model, seed=int(rng.integers(1 << 30)))
    q, k, v = (rng.normal(size=(b, t, d_model)) for _ in range(3))
    mask = (rng.random((b, t, t)) < 0.7).astype(np.float64) if masked else None
    if masked:
        mask[:, :, 0] = 1.0
    expected = multi_head_attention(params, q, k, v, heads, mask)
    arrays = {"q": q, "k": k, "v": v, **{f"param:{n}": p for n, p in params.items()}}
    if masked:
        arrays["mask"] = mask
    return Case(name, points, visibility,
                {"kind": "mha", "d_model": d_model, "num_heads": heads,
                 "args": [_arg("q"), _arg("k"), _arg("v"), _arg("mask") if masked else None]},
                arrays, {"0": expected}, "float64", ATOL_FLOAT64, hint)


def attention_cases(seed: int, public_only: bool = False) -> list[Case]:
    """Public: a small unmasked case and a causal one. Hidden: shapes, masks, heads, dtype."""
    rng0 = np.random.default_rng(0)
    q, k, v = (rng0.normal(size=(2, 4, 8)) for _ in range(3))
    cases = [
        _sdpa_case("attention: small, no mask", 1, "visible", q, k, v, None,
                   "softmax(q k^T / sqrt(d_k)) v"),
        _sdpa_case("attention: causal mask", 1, "visible", q, k, v, causal_mask(4),
                   "mask: 1 = attend, 0 = masked (replaced by MASK_FILL_VALUE)"),
    ]
    if public_only:
        return cases
    rng = np.random.default_rng(seed)
    b, h, tq, tk, d = (int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(2, 7)),
                       int(rng.integers(2, 7)), int(rng.integers(3, 17)))
    q, k, v = (rng.normal(size=(b, h, t, d)) for t in (tq, tk, tk))
    padding = (rng.random((b, 1, 1, tk)) < 0.7).astype(np.float64)
    padding[..., 0] = 1.0
    full = (rng.random((b, h, tq, tk)) < 0.6).astype(np.float64)
    full[:, :, 0, :] = 0.0  # the first query attends to nothing
    assert MASK_FILL_VALUE < 0
    return cases + [
        _sdpa_case("attention: batched heads, no mask", 2, "hidden", q, k, v, None,
                   "divide the scores by sqrt(d_k), d_k = q.shape[-1]"),
        _sdpa_case("attention: padding mask broadcast over queries", 2, "hidden", q, k, v,
                   padding, "mask == 0 means masked; broadcast it to the scores' shape"),
        _sdpa_case("attention: a fully masked row", 1, "hidden", q, k, v, full,
                   "replace masked scores (do not add to them): a fully masked row is uniform"),
        _sdpa_case("attention: weights returned", 1, "hidden", q, k, v, padding,
                   "return (output, weights) when return_attention_weights", weights=True),
        _sdpa_case("attention: float32 in, float32 out", 1, "hidden", q, k, v, padding,
                   "keep the inputs' dtype", dtype="float32"),
        _mha_case("multi-head attention: no mask", 2, "hidden", rng, 12, 3, False,
                  "(B, T, d_model) -> (B, heads, T, head_dim) and back, then out"),
        _mha_case("multi-head attention: with a mask", 2, "hidden", rng, 8, 2, True,
                  "the same mask for every head (head_broadcast_mask)"),
    ]


# ---- PPO clip ------------------------------------------------------------------------------


def ppo_reference(log_probs, old_log_probs, advantages, clip_eps, mask=None):
    """(loss, d loss / d log_probs) of the clipped surrogate, float64."""
    mask = np.ones_like(log_probs) if mask is None else mask
    count = max(mask.sum(), 1.0)
    ratio = np.exp(log_probs - old_log_probs)
    clipped = np.clip(ratio, 1 - clip_eps, 1 + clip_eps)
    loss = -(np.minimum(ratio * advantages, clipped * advantages) * mask).sum() / count
    unclipped_wins = ratio * advantages <= clipped * advantages
    return np.float64(loss), -(ratio * advantages * unclipped_wins) * mask / count


def _ppo_case(name: str, points: float, visibility: str, lp, olp, adv, eps, mask, hint,
              gradient: bool = False) -> Case:
    arrays = {"log_probs": lp, "old_log_probs": olp, "advantages": adv}
    if mask is not None:
        arrays["mask"] = mask
    loss, grad = ppo_reference(lp, olp, adv, eps, mask)
    call = {"kind": "grad" if gradient else "call", "function": "ppo_clip_loss",
            "args": [_arg("log_probs"), _arg("old_log_probs"), _arg("advantages"), float(eps),
                     _arg("mask") if mask is not None else None]}
    expected = {"0": loss, "grad": grad} if gradient else {"0": loss}
    return Case(name, points, visibility, call, arrays, expected, "float64", ATOL_FLOAT64, hint)


def ppo_cases(seed: int, public_only: bool = False) -> list[Case]:
    """Public: the three published vectors. Hidden: random batches, masks, eps, the gradient."""
    one = np.zeros(1)
    cases = [
        _ppo_case(f"ppo: published vector A={a:+.0f}, ratio {r}", 1, "visible", np.log([r]), one,
                  np.array([a], dtype=np.float64), 0.2, None, f"expected loss {e}")
        for a, r, e in ((1, 1.3, -1.2), (-1, 0.7, 0.8), (-1, 1.3, 1.3))
    ]
    if public_only:
        return cases
    rng = np.random.default_rng(seed)

    def batch(n: int):
        lp = rng.normal(size=n) * 0.3 - 1.0
        return lp, lp + rng.normal(size=n) * 0.3, rng.normal(size=n)

    mask = (rng.random(24) < 0.7).astype(np.float64)
    eps = float(rng.uniform(0.1, 0.3))
    return cases + [
        _ppo_case("ppo: random batch", 2, "hidden", *batch(int(rng.integers(10, 40))), eps, None,
                  "min(rho A, clip(rho, 1-eps, 1+eps) A), negated, averaged"),
        _ppo_case("ppo: masked batch", 2, "hidden", *batch(24), eps, mask,
                  "average over mask == 1 only (masked_mean)"),
        _ppo_case("ppo: another clip epsilon", 1, "hidden", *batch(16), 0.05, None,
                  "use clip_eps, not a constant"),
        _ppo_case("ppo: gradient with respect to log_probs", 2, "hidden", *batch(24), eps, mask,
                  "the clipped branch carries no gradient; do not stop the ratio's gradient",
                  gradient=True),
    ]


# ---- REINFORCE -----------------------------------------------------------------------------


def _rollout(rng, t: int, n: int, state_dim: int, actions: int) -> dict:
    terminations = rng.random((t, n)) < 0.15
    truncations = (rng.random((t, n)) < 0.1) & ~terminations
    return {"states": rng.normal(size=(t, n, state_dim)),
            "next_states": rng.normal(size=(t, n, state_dim)),
            "actions": rng.integers(0, actions, (t, n)), "rewards": rng.normal(size=(t, n)),
            "terminations": terminations, "truncations": truncations,
            "mask": (rng.random((t, n)) < 0.9).astype(np.float64),
            "log_probs": rng.normal(size=(t, n)) * 0.1 - 0.7}


def _agent_case(name: str, points: float, visibility: str, op: str, rng, hint: str,
                algorithm: str = "reinforce", **overrides) -> Case:
    t, n, state_dim, actions, hidden = (int(rng.integers(4, 9)), int(rng.integers(2, 5)),
                                        int(rng.integers(2, 6)), int(rng.integers(2, 5)), 8)
    settings = {"hidden_dim": hidden, **overrides}
    s = make_settings(algorithm, **settings)
    params = init_agent_params(algorithm, state_dim, hidden, actions, False,
                               int(rng.integers(1 << 30)))
    rollout = _rollout(rng, t, n, state_dim, actions)
    lr = float(rng.uniform(1e-3, 3e-2))
    arrays = {**{f"rollout:{k}": v for k, v in rollout.items()},
              **{f"param:{k}": v for k, v in params.items()}}
    call = {"kind": "agent", "op": op, "algorithm": algorithm, "settings": settings,
            "state_dim": state_dim, "action_dim": actions, "learning_rate": lr}
    batch = ref_algorithms.prepare_batch(algorithm, params, rollout, s)
    if op in ("prepare", "prepare_with_baseline"):
        expected = {"advantages": batch["advantages"]}
        if op == "prepare_with_baseline":
            expected["returns"] = batch["returns"]
    elif op == "compute_loss":
        loss, _, _ = ref_algorithms.loss_and_gradients(algorithm, params, batch, s, False)
        arrays.update({f"batch:{k}": batch[k] for k in ("states", "actions", "advantages",
                                                        "mask")})
        expected = {"loss": np.float64(loss)}
    else:
        new_params, _, _ = ref_algorithms.update(algorithm, params, {},
                                                 {**rollout, "learning_rate": lr}, s, False)
        expected = {f"param:{k}": v for k, v in new_params.items()}
    return Case(name, points, visibility, call, arrays, expected, "float64", ATOL_FLOAT64, hint)


def reinforce_cases(seed: int, public_only: bool = False) -> list[Case]:
    """Public: prepare, the loss and one update on a fixed seed. Hidden: the same on a secret
    seed, without standardisation, with a truncation at the last step, and the baseline."""
    rng0 = np.random.default_rng(0)
    cases = [
        _agent_case("reinforce: prepare (public seed)", 1, "visible", "prepare", rng0,
                    "advantages = standardised returns, flattened to (T*N,)"),
        _agent_case("reinforce: loss (public seed)", 1, "visible", "compute_loss", rng0,
                    "L = masked mean of -log pi(a|s) * advantages"),
        _agent_case("reinforce: one update (public seed)", 1, "visible", "update", rng0,
                    "one Adam step on the loss's gradient"),
    ]
    if public_only:
        return cases
    rng = np.random.default_rng(seed)
    gamma = float(rng.uniform(0.8, 0.999))
    return cases + [
        _agent_case("reinforce: prepare", 2, "hidden", "prepare", rng,
                    "G_t from compute_returns, then normalize_advantages", gamma=gamma),
        _agent_case("reinforce: prepare without standardisation", 1, "hidden", "prepare", rng,
                    "only standardise when agent.settings.normalize_advantages",
                    gamma=gamma, normalize_advantages=False),
        _agent_case("reinforce: loss", 2, "hidden", "compute_loss", rng,
                    "the sign: minimise -log pi(a|s) * A", gamma=gamma),
        _agent_case("reinforce: one update", 3, "hidden", "update", rng,
                    "gradient of your loss, then agent.optimizer.apply_gradients",
                    gamma=gamma, max_grad_norm=0.5),
        _agent_case("reinforce with baseline: prepare", 2, "hidden", "prepare_with_baseline",
                    rng, "A_t = G_t - V(s_t), G_t bootstrapped from V(s_{t+1}) at a cut",
                    algorithm="reinforce_baseline", gamma=gamma, normalize_advantages=False),
    ]


# ---- learning ------------------------------------------------------------------------------


def learning_cases(spec: LearningSpec, seed: int, public_only: bool = False) -> list[Case]:
    """One case per hidden training seed; the grader evaluates the returned parameters."""
    from duetrl.core.coursework.evaluate import greedy_return

    rng = np.random.default_rng(seed)
    seeds = [0] if public_only else [int(s) for s in rng.integers(1, 1 << 30, spec.seeds)]
    cases = []
    for i, train_seed in enumerate(seeds):
        eval_seed = int(rng.integers(1 << 30))

        def check(outputs: dict, eval_seed: int = eval_seed) -> tuple[bool, str]:
            params = {k.split(":", 1)[1]: v for k, v in outputs.items()
                      if k.startswith("param:")}
            score = greedy_return(params, spec.env_id, eval_seed)
            steps = int(outputs.get("env_steps", -1))
            seconds = float(outputs.get("seconds", 0))
            mean_return = float(outputs.get("mean_return", float("nan")))
            figures = (f"trained {steps} environment steps in {seconds:.1f} s; mean return "
                       f"of the last 100 training episodes {mean_return:.1f}; greedy return "
                       f"over 10 fresh episodes {score:.1f} (targets {spec.target:g} in training, "
                       f"{spec.eval_fraction * spec.target:g} greedy)")
            solved = mean_return >= spec.target and steps <= spec.budget_steps + 10_000
            return solved and score >= spec.eval_fraction * spec.target, figures

        cases.append(Case(
            f"learning: {spec.env_id} within {spec.budget_steps} steps, seed {i + 1}",
            spec.points_per_seed, "visible" if public_only else "hidden",
            {"kind": "learn", "algorithm": spec.algorithm, "env_id": spec.env_id,
             "seed": train_seed, "budget_steps": spec.budget_steps, "target": spec.target,
             "settings": dict(spec.settings)},
            expected_dtype=None, hint="check the sign of the loss and the standardisation",
            timeout_s=spec.time_limit_s, check=check))
    return cases


CASE_BUILDERS: dict[str, Callable[[int, bool], list[Case]]] = {
    "attention": attention_cases,
    "returns": returns_cases,
    "reinforce": reinforce_cases,
    "ppo-clip": ppo_cases,
    "lm-agent": lm_agent_cases,
    "scst": scst_cases,
    "kg": kg_cases,
    "recommender": recommender_cases,
}


def build_cases(assignment: Assignment, seed: int, public_only: bool = False,
                learning: LearningSpec | None = None) -> list[Case]:
    """Every case of ``assignment``: public ones, then (unless ``public_only``) hidden ones."""
    if assignment.learning is not None:
        return learning_cases(learning or assignment.learning, seed, public_only)
    return CASE_BUILDERS[assignment.name](seed, public_only)
