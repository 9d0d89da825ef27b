"""The command line: info, compare attention (table, JSON, heat map), clear errors."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

from duetrl.core.cli import main


def test_info_json_lists_both_backends(capsys) -> None:
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backends"]["torch"]["available"] and info["backends"]["tf"]["available"]
    # the version the environment has installed, whatever it is (never a hard-coded one)
    assert info["backends"]["torch"]["version"] == importlib.metadata.version("torch")


def test_compare_attention_json_and_heatmap(capsys, tmp_path) -> None:
    plot = tmp_path / "heat.png"
    code = main(["compare", "attention", "--batch", "2", "--length", "6", "--d-model", "8",
                 "--heads", "2", "--mask", "padding", "--repeats", "2", "--threads", "1",
                 "--plot", str(plot), "--json"])
    assert code == 0
    figures = json.loads(capsys.readouterr().out)
    assert set(figures["time_ms"]) == {"torch", "tf"}
    for label, value in figures["max_abs"].items():
        assert value <= figures["tolerance"], label
    assert plot.stat().st_size > 1000


def test_compare_attention_table_for_a_person(capsys, tmp_path) -> None:
    assert main(["compare", "attention", "--batch", "1", "--length", "4", "--d-model", "8",
                 "--heads", "2", "--dtype", "float64", "--repeats", "1", "--plot", ""]) == 0
    out = capsys.readouterr().out
    assert "output torch vs tf" in out and "forward+backward" in out and " NO" not in out


def test_bad_argument_is_one_clear_line_not_a_traceback(capsys) -> None:
    code = main(["compare", "attention", "--d-model", "10", "--heads", "3", "--plot", ""])
    assert code == 2
    err = capsys.readouterr().err
    assert "duetrl: error: d_model: expected a multiple of num_heads=3" in err
    assert "Traceback" not in err


def test_console_script_runs_as_a_module() -> None:
    result = subprocess.run([sys.executable, "-m", "duetrl", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("info", "compare", "notebooks", "demo"):
        assert command in result.stdout


@pytest.mark.parametrize("argv", [["compare"], ["compare", "nothing"], ["frobnicate"]])
def test_unknown_commands_exit_with_usage(argv, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def _readme_commands(text: str) -> list[str]:
    """The ``duetrl ...`` lines of the README's bash blocks (continuations joined, comments cut)."""
    import re

    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("duetrl "):
                commands.append(line)
    return commands


def test_every_command_the_readme_shows_parses(capsys):
    """A command the README shows with a flag the CLI does not know (renamed, removed) fails
    here, not in a reader's terminal."""
    import shlex

    from duetrl.core.cli import build_parser

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    commands = _readme_commands(readme)
    assert len(commands) >= 40, commands  # the blocks were found
    parser = build_parser()
    refused = []
    for command in commands:
        try:
            parser.parse_args(shlex.split(command)[1:])
        except SystemExit:
            refused.append(f"{command}: {capsys.readouterr().err.strip().splitlines()[-1]}")
    assert not refused, "\n".join(refused)
    with pytest.raises(SystemExit):  # the check itself tells a wrong flag
        parser.parse_args(shlex.split("duetrl rlhf train --no-such-flag 1")[1:])
