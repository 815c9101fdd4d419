"""The lab's plotting helpers, read back from the Matplotlib artists they draw."""

from __future__ import annotations

import numpy as np

from noisereg.lab._plotting import log_steps, plt, seed_points


def test_log_steps_draws_step_zero_at_one_half_on_log_axes() -> None:
    fig, axes = plt.subplots(1, 2)
    np.testing.assert_array_equal(log_steps([0, 1, 10], *axes), [0.5, 1.0, 10.0])
    for ax in axes:
        assert ax.get_xscale() == "log"
        assert ax.get_xlabel() == "GD step (step 0 drawn at 0.5)"
    plt.close(fig)


def test_seed_points_spread_the_seeds_and_mark_their_mean_without_nan() -> None:
    fig, ax = plt.subplots()
    seed_points(ax, 2.0, [1.0, np.nan, 4.0], color="C1", spread=0.1, mean_width=0.25,
                label="mean")
    dots, mean = ax.get_lines()
    np.testing.assert_allclose(dots.get_xdata(), [1.9, 2.0, 2.1])
    np.testing.assert_array_equal(dots.get_ydata(), [1.0, np.nan, 4.0])
    np.testing.assert_array_equal(mean.get_xdata(), [1.75, 2.25])
    np.testing.assert_array_equal(mean.get_ydata(), [2.5, 2.5])  # (1 + 4) / 2
    assert mean.get_label() == "mean"
    assert dots.get_label().startswith("_")  # only the mean is in a legend
    plt.close(fig)
