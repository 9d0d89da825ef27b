"""The mutation scores kept in the repository: tools/mutation_scores.json (one summary per
module, written by tools/mutate.py after each module's run) and the generated parts of
MUTATION.md (the score table, the survivors, the equivalent mutants with their reasons).

    python tools/mutation_report.py      rewrite MUTATION.md's tables from the two files
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCORES = ROOT / "tools" / "mutation_scores.json"
DOC = ROOT / "MUTATION.md"
EQUIVALENTS = ROOT / "tools" / "mutants_equivalent.toml"
KEPT = (
    "path",
    "tests",
    "functions",
    "mutants",
    "killed",
    "timeout",
    "survived",
    "equivalent",
    "uncovered",
    "score",
    "wall_s",
    "clean_s",
    "source_sha1",
    "commit",
    "date",
    "survivors",
    "stale_equivalents",
)
GOAL = 0.95


def _table(scores: dict) -> str:
    rows = [
        "| module | file | mutants | killed | timeout | survived | equivalent | score | "
        "run (s) | commit |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, s in scores.items():
        where = s["path"] + (f" ({', '.join(s['functions'])})" if s["functions"] else "")
        survived = f"{s['survived']}" + (f" ({s['uncovered']} uncovered)" if s["uncovered"] else "")
        mark = "" if s["score"] >= GOAL else " ✗"
        rows.append(
            f"| {name} | `{where}` | {s['mutants']} | {s['killed']} | {s['timeout']} | "
            f"{survived} | {s['equivalent']} | {s['score']:.1%}{mark} | "
            f"{s['wall_s']:.0f} | {s['commit']} |"
        )
    total = {
        k: sum(s[k] for s in scores.values())
        for k in ("mutants", "killed", "timeout", "survived", "equivalent", "wall_s")
    }
    if scores:
        score = (total["killed"] + total["timeout"]) / max(
            1, total["mutants"] - total["equivalent"]
        )
        rows.append(
            f"| **all** | | {total['mutants']} | {total['killed']} | "
            f"{total['timeout']} | {total['survived']} | {total['equivalent']} | "
            f"**{score:.1%}** | {total['wall_s']:.0f} | |"
        )
    return "\n".join(rows)


def _survivors(scores: dict) -> str:
    lines = []
    for name, s in scores.items():
        for survivor in s["survivors"]:
            lines.append(f"- {name}: `` {survivor} ``")
        for stale in s.get("stale_equivalents", []):
            lines.append(f"- {name}: listed as equivalent but no longer planted: `` {stale} ``")
    return "\n".join(lines) or "None: every mutant of every module above is killed or equivalent."


def _equivalents(equivalents: dict) -> str:
    lines = []
    for module, entries in equivalents.items():
        for name, why in entries.items():
            lines.append(f"- {module}: `` {name} ``  \n  {why}")
    return "\n".join(lines) or "None yet."


def _replace(text: str, section: str, body: str) -> str:
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    if start not in text or end not in text:
        raise ValueError(f"{DOC}: expected the markers {start} and {end}")
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{body}\n{end}{rest.split(end, 1)[1]}"


def render(scores: dict, equivalents: dict) -> None:
    """Rewrite the generated sections of MUTATION.md."""
    text = DOC.read_text()
    text = _replace(text, "scores", _table(scores))
    text = _replace(text, "survivors", _survivors(scores))
    text = _replace(text, "equivalents", _equivalents(equivalents))
    DOC.write_text(text)


def write_report(name: str, record: dict, equivalents: dict) -> None:
    """Keep ``record``'s summary under ``name`` and rewrite the document."""
    scores = json.loads(SCORES.read_text()) if SCORES.is_file() else {}
    scores[name] = {k: record[k] for k in KEPT}
    SCORES.write_text(json.dumps(scores, indent=1, ensure_ascii=False) + "\n")
    render(scores, equivalents)


if __name__ == "__main__":
    render(
        json.loads(SCORES.read_text()) if SCORES.is_file() else {},
        tomllib.loads(EQUIVALENTS.read_text()) if EQUIVALENTS.is_file() else {},
    )
    sys.exit(0)
