"""The rows of ``benchmarks/run_all.py``'s table: each benchmark's JSON read into rows.

A :class:`Row` is one piece of work measured in both backends and perhaps a peer. Most
scripts print ``{"torch": {...}, "tf": {...}}`` with the same key on each side, so most rows
are made by :func:`_pair`; a figure whose unit ends in ``/s`` is a rate (higher is better),
and :meth:`Row.time_ratio` turns it into a time so that every ratio in the table is a ratio
of times (lower is faster).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Reader = Callable[[dict[str, Any]], list["Row"]]  # a script's JSON -> its rows


@dataclass
class Row:
    """One line of the table: a piece of work measured in both backends and perhaps a peer."""

    work: str
    unit: str
    torch: float | None = None
    tf: float | None = None
    peer: float | None = None
    peer_name: str = ""
    higher_is_better: bool = False  # a rate (tokens/s); else a time
    note: str = ""

    def time_ratio(self, ours: float | None, other: float | None) -> float | None:
        """ours' time over other's: t_ours / t_other, or r_other / r_ours for rates."""
        if ours is None or other is None or ours <= 0 or other <= 0:
            return None
        return other / ours if self.higher_is_better else ours / other


def _get(d: dict[str, Any], *keys: str) -> Any:
    """d[k1][k2]... or None when any key is missing."""
    for key in keys:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def _fmt(x: Any) -> str:
    """A figure with three significant digits ('-' when missing)."""
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1e4 else f"{x:,.0f}"
    return str(x)


def _pair(r: dict[str, Any], work: str, unit: str, *keys: str, **fields: Any) -> Row:
    """The row whose figures are ``r["torch"][keys...]`` and ``r["tf"][keys...]``; a unit
    ending in ``/s`` is a rate unless ``higher_is_better`` says otherwise."""
    fields.setdefault("higher_is_better", unit.endswith("/s"))
    return Row(work, unit, torch=_get(r, "torch", *keys), tf=_get(r, "tf", *keys), **fields)


def pairs(*specs: tuple[str, str, str]) -> Reader:
    """A reader of ``(work, unit, key)`` rows, each from :func:`_pair` (a case study's whole
    run and its rate, the LM agent's two rates)."""

    def rows(r: dict[str, Any]) -> list[Row]:
        return [_pair(r, work, unit, key) for work, unit, key in specs]

    return rows


def _case_rows(title: str, rate: str, unit: str) -> Reader:
    """Rows of a case-study benchmark: its whole run's wall time and one rate."""
    return pairs((f"{title}, whole run", "s", "wall_s"), (f"{title}, {unit}", unit, rate))


lm_agent_rows = pairs(("LM agent (KeyDoor), one PPO update", "updates/s", "updates_per_s"),
                      ("Decision Transformer training", "tokens/s", "dt_tokens_per_s"))


def attention_rows(r: dict[str, Any]) -> list[Row]:
    return [_pair(r, "multi-head attention, forward + backward", "ms", "ours",
                  peer=_get(r, "torch", "builtin"), peer_name="torch SDPA module",
                  note=f"tf's own keras MHA: {_fmt(_get(r, 'tf', 'builtin'))} ms")]


def returns_rows(r: dict[str, Any]) -> list[Row]:
    return [_pair(v, f"discounted returns, scan, {size}", "ms", "scan",
                  peer=_get(v, "torch", "matrix"), peer_name="torch matrix form")
            for size, v in r.items()]


def lm_rows(r: dict[str, Any]) -> list[Row]:
    hf = r.get("hugging_face") or {}
    rows = [_pair(r, work, "tokens/s", key, peer=hf.get(key), peer_name=peer)
            for work, key, peer in (
                ("GPT training", "train_tokens_per_second", "HF GPT-2"),
                ("cached generation, batch 1", "generate_tokens_per_second_cached",
                 "HF generate"))]
    return rows + [_pair(r, "one decode step", "us", "decode_step_breakdown_us",
                         "decode_step_us")]


def qa_rows(r: dict[str, Any]) -> list[Row]:
    return [_pair(r, "QA warm-up + GRPO, whole run", "s", "total_s",
                  note=f"greedy accuracy torch {_fmt(_get(r, 'torch', 'warmup_greedy'))} -> "
                  f"{_fmt(_get(r, 'torch', 'rl_greedy'))}")]


def _median(runs: list[dict[str, Any]] | None, key: str = "wall_s") -> tuple[float | None, str]:
    """Median seconds (``key``: wall_s or cpu_s) over seeds, and how many solved (every seed
    counts); None when a run lacks the figure."""
    if not runs or any(key not in run for run in runs):
        return None, ""
    walls = sorted(run[key] for run in runs)
    solved = sum(bool(run.get("solved")) for run in runs)
    return walls[len(walls) // 2], f"{solved}/{len(runs)} solved"


def cartpole_rows(r: dict[str, Any]) -> list[Row]:
    rows = []
    for key, what in (("wall_s", "wall"), ("cpu_s", "CPU")):
        sb3, sb3_note = _median(r.get("sb3_ppo/torch"), key)
        for algo in ("ppo", "reinforce_baseline"):
            t, t_note = _median(r.get(f"{algo}/torch"), key)
            f, f_note = _median(r.get(f"{algo}/tf"), key)
            if t is None and f is None:
                continue
            note = f"torch {t_note}, tf {f_note}" + (
                f", SB3 {sb3_note}" if sb3 is not None else "")
            rows.append(Row(f"CartPole-v1 {algo}, {what} to solve (median)", "s", torch=t, tf=f,
                            peer=sb3, peer_name="SB3 PPO", note=note))
    listing = {b: (r.get(f"listing/{b}") or [{}])[0] for b in ("torch", "tf")}
    if any("us_per_step" in v for v in listing.values()):
        episodes = next(v["episodes"] for v in listing.values() if "episodes" in v)
        rows.append(Row("listing 5.2 on CartPole-v1, wall per environment step", "us",
                        torch=listing["torch"].get("us_per_step"),
                        tf=listing["tf"].get("us_per_step"),
                        note=f"{episodes} episodes, one update each; acting one step at a time"))
    calls = (r.get("listing_calls") or [{}])[0]
    if "tf concrete function" in calls:
        rows.append(Row("one policy call on one observation (the framework's per-call cost)",
                        "us", torch=calls.get("torch eager"), tf=calls["tf concrete function"],
                        note=f"tf eager Keras call {_fmt(calls.get('tf eager (Keras call)'))} us"
                        f", tf.function {_fmt(calls.get('tf.function'))} us; torch eager under "
                        "inference_mode"))
    return rows


def dqn_rows(r: dict[str, Any]) -> list[Row]:
    walls = r.get("median_wall_s") or {}
    return [Row("CartPole-v1 DQN, wall (median)", "s", torch=walls.get("ours_torch"),
                tf=walls.get("ours_tf"), peer=walls.get("sb3"), peer_name="SB3 DQN")]


def rlhf_rows(r: dict[str, Any]) -> list[Row]:
    rows = []
    for algo, v in (r.get("objectives") or {}).items():
        rows.append(_pair(v, f"sort-digits {algo}, one update (median)", "updates/s",
                          "updates_per_s",
                          note=f"first update torch {_fmt(_get(v, 'torch', 'first_update_s'))}"
                          f" s, tf {_fmt(_get(v, 'tf', 'first_update_s'))} s"))
        t, f = _get(v, "torch", "time_to_target_s"), _get(v, "tf", "time_to_target_s")
        if t is not None or f is not None:
            rows.append(Row(f"sort-digits {algo}, wall to mean reward 0.9", "s", torch=t, tf=f))
    trl = r.get("trl")
    if rows and trl:
        rows[-1].note += f" TRL: {trl}"
    return rows


def rlhf_trl_rows(r: dict[str, Any]) -> list[Row]:
    """Per model size: wall and process-CPU seconds to mean reward 0.9, vs TRL's GRPOTrainer."""
    rows = []
    for size, v in (r.get("sizes") or {}).items():
        updates = ", ".join(f"{name} {_fmt(_get(v, name, 'updates_to_target'))}"
                            for name in ("torch", "tf", "trl") if name in v)
        for key, what in (("time_to_target_s", "wall"), ("cpu_to_target_s", "CPU")):
            rows.append(_pair(
                v, f"sort-digits GRPO, {size} GPT ({_fmt(v.get('parameters'))} parameters), "
                f"{what} to mean reward {_fmt(r.get('target'))}", "s", key,
                peer=_get(v, "trl", key),
                peer_name=f"TRL {r.get('trl')} GRPOTrainer" if r.get("trl") else "",
                note=f"updates to the target: {updates}; same weights, settings matched"))
    return rows


def startup_rows(r: dict[str, Any]) -> list[Row]:
    """Per work: the first update's CPU seconds beyond a steady one (tracing, compiling)."""
    works: dict[str, dict[str, Any]] = {}
    for name, v in (r.get("runs") or {}).items():
        work, backend = name.split()
        works.setdefault(work, {})[backend] = v
    load = r.get("load_average_1min") or {}
    return [_pair(v, f"{work}: first update beyond a steady one (start-up), CPU", "s",
                  "startup_cpu_s",
                  note=f"wall torch {_fmt(_get(v, 'torch', 'startup_s'))} s, tf "
                  f"{_fmt(_get(v, 'tf', 'startup_s'))} s; load {_fmt(load.get('before'))}; "
                  "goal: tf <= 1 s")
            for work, v in works.items()]


def sweep_rows(r: dict[str, Any]) -> list[Row]:
    seq, ray = _get(r, "sequential", "wall_s"), _get(r, "ray", "wall_s")
    return [Row(f"sweep of {r.get('runs', '?')} runs, wall", "s", torch=ray, peer=seq,
                peer_name="--sequential",
                note=f"through local Ray (torch column); Ray start {_fmt(r.get('ray_init_s'))}"
                f" s, child start {_fmt(r.get('child_start_s'))} s")]
