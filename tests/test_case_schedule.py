"""The MLE phase's learning rate of the case studies (core/cases/schedule.py)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from duetrl.core.cases.schedule import mle_learning_rate


def test_warm_up_then_cosine_to_a_tenth_at_the_last_step():
    s = SimpleNamespace(learning_rate=1.0, warmup_steps=4, mle_steps=14)
    rates = [mle_learning_rate(t, s) for t in range(14)]
    assert rates[:4] == [0.25, 0.5, 0.75, 1.0]  # (t + 1) / W: the peak at the last warm-up step
    assert rates[4] == 1.0  # the cosine starts at the peak
    assert rates[13] == pytest.approx(0.1)  # and ends at a tenth on the last MLE step
    assert rates[4 + 9 // 2] < 1.0 and all(a >= b for a, b in zip(rates[4:], rates[5:]))
    middle = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 5 / 9))
    assert mle_learning_rate(9, s) == pytest.approx(middle)
    assert mle_learning_rate(40, s) == pytest.approx(0.1)  # past the end: held at the floor


def test_no_warm_up_and_a_single_step():
    assert mle_learning_rate(0, SimpleNamespace(learning_rate=2.0, warmup_steps=0,
                                                mle_steps=1)) == pytest.approx(2.0)
