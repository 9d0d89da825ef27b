"""KL coefficient controllers (core/rlhf/kl.py): Ziegler et al.'s adaptive rule and a fixed beta."""

from __future__ import annotations

import math

import numpy as np
import pytest

from duetrl.core.rlhf.kl import AdaptiveKLController, FixedKLController


def test_fixed_controller_never_moves():
    controller = FixedKLController(0.05)
    for kl in (0.0, 3.0, -0.2, 100.0, float("nan")):
        assert controller.update(kl, 64) == 0.05
    assert controller.value == 0.05
    assert FixedKLController(0).value == 0.0  # beta = 0: no KL term at all


def test_adaptive_update_by_hand():
    controller = AdaptiveKLController(0.1, target=6.0, horizon=10000)
    # error = (6.6 - 6) / 6 = 0.1 (inside the clip); beta * (1 + 0.1 * 256 / 10000)
    assert controller.update(6.6, 256) == pytest.approx(0.1 * (1 + 0.1 * 0.0256), rel=1e-14)
    before = controller.value
    # error = (3 - 6) / 6 = -0.5 -> clipped to -0.2
    assert controller.update(3.0, 1000) == pytest.approx(before * (1 - 0.2 * 0.1), rel=1e-14)


@pytest.mark.parametrize("kl, error", [(100.0, 0.2), (0.0, -0.2), (-5.0, -0.2), (7.2, 0.2),
                                       (4.8, -0.2), (6.0, 0.0)])
def test_adaptive_error_is_clipped_at_0_2(kl, error):
    controller = AdaptiveKLController(1.0, target=6.0, horizon=100)
    assert controller.update(kl, 10) == pytest.approx(1.0 + error * 0.1, rel=1e-12)


def test_adaptive_no_samples_or_nan_leaves_beta():
    controller = AdaptiveKLController(0.3, target=1.0, horizon=10)
    assert controller.update(50.0, 0) == 0.3
    assert controller.update(float("nan"), 10) == 0.3


def test_adaptive_controller_drives_kl_to_target():
    """A toy policy whose KL falls as 1/beta: the controller finds beta = 1 / target."""
    controller = AdaptiveKLController(0.05, target=4.0, horizon=1000)
    for _ in range(2000):
        controller.update(1.0 / controller.value, 100)
    assert controller.value == pytest.approx(0.25, rel=1e-3)
    assert 1.0 / controller.value == pytest.approx(4.0, rel=1e-3)


def test_adaptive_beta_stays_positive():
    controller = AdaptiveKLController(1.0, target=1.0, horizon=1.0)
    values = [controller.update(0.0, 4) for _ in range(50)]  # 1 - 0.2 * 4 = 0.2 per step
    assert all(v > 0 for v in values) and math.isfinite(values[-1])
    assert values[0] == pytest.approx(0.2)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: AdaptiveKLController(0.0, 1.0, 10), r"beta: expected a finite float > 0, got 0.0"),
        (lambda: AdaptiveKLController(-0.1, 1.0, 10), r"beta: expected a finite float > 0"),
        (lambda: AdaptiveKLController(0.1, 0.0, 10), r"target: expected a finite float > 0"),
        (lambda: AdaptiveKLController(0.1, 1.0, 0), r"horizon: expected a finite float > 0"),
        (lambda: AdaptiveKLController(0.1, float("inf"), 10), r"target: expected a finite"),
        (lambda: AdaptiveKLController("0.1", 1.0, 10), r"beta: expected a float > 0, got '0.1'"),
        (lambda: FixedKLController(-1.0), r"beta: expected a finite float >= 0, got -1.0"),
        (lambda: FixedKLController(True), r"beta: expected a float >= 0, got True"),
    ],
)
def test_bad_construction(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("controller", [FixedKLController(0.1), AdaptiveKLController(0.1, 1, 10)])
def test_bad_update(controller):
    with pytest.raises(ValueError, match=r"kl: expected a finite float .*got inf"):
        controller.update(float("inf"), 4)
    with pytest.raises(ValueError, match=r"kl: expected a finite float .*got 'big'"):
        controller.update("big", 4)
    with pytest.raises(ValueError, match=r"n_steps: expected an int >= 0 .*got -1"):
        controller.update(1.0, -1)
    with pytest.raises(ValueError, match=r"n_steps: expected an int >= 0 .*got 2.5"):
        controller.update(1.0, 2.5)
    assert controller.update(np.float32(0.5), np.int64(3)) == controller.value  # NumPy scalars
