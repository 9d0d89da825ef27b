"""``duetrl.core.tutorial.claim``: a figure the text quotes from the full run, checked in
full mode (the published book's build), silent in quick mode. Cheap: no tutorial runs."""

from __future__ import annotations

import numpy as np
import pytest

from duetrl.core.tutorial import ClaimError, claim


@pytest.fixture
def full_mode(monkeypatch):
    monkeypatch.delenv("DUETRL_QUICK", raising=False)


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setenv("DUETRL_QUICK", "1")


def test_a_claim_that_holds_passes_silently(full_mode, capsys) -> None:
    assert claim("RLOO E[r]", 0.7012, 0.697, 0.03) is None
    claim("loss", np.float32(0.4494), 0.449, 0.0005)  # NumPy scalars, a rounded quote
    claim("edge", 0.6975, 0.697, 0.0005)  # exactly at the edge: float rounding forgiven
    assert capsys.readouterr().out == ""


def test_a_claim_that_fails_raises_with_the_figures(full_mode) -> None:
    with pytest.raises(ClaimError, match=r"RLOO E\[r\] = 0\.697 \(within 0\.03\); this run "
                                         r"measured 0\.649"):
        claim("RLOO E[r]", 0.649, 0.697, 0.03)
    with pytest.raises(ClaimError, match="measured 0.4496"):
        claim("loss", 0.4496, 0.449, 0.0005)
    assert issubclass(ClaimError, AssertionError)  # an assert of the text, failing the cell


def test_quick_mode_checks_nothing_and_prints_nothing(quick, capsys) -> None:
    assert claim("RLOO E[r]", 0.649, 0.697, 0.03) is None  # 60 updates, not 300: no verdict
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(("args", "error", "message"), [
    (("", 1.0, 1.0, 0.1), ValueError, "name: expected the claim's words, got ''"),
    (("x", "0.7", 1.0, 0.1), TypeError, "value: expected a real number, got str '0.7'"),
    (("x", True, 1.0, 0.1), TypeError, "value: expected a real number, got bool True"),
    (("x", 1.0, float("nan"), 0.1), ValueError, "expected: expected a finite number, got nan"),
    (("x", 1.0, 1.0, -0.1), ValueError, r"tolerance: expected a number >= 0, got -0.1"),
])
def test_bad_arguments_are_refused_in_both_modes(monkeypatch, args, error, message) -> None:
    for mode in ("0", "1"):
        monkeypatch.setenv("DUETRL_QUICK", mode)
        with pytest.raises(error, match=message):
            claim(*args)
