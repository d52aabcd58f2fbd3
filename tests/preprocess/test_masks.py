"""Pixel masks: the sky-line list is vacuum, the strongest lines on the grid, every bad pixel."""

from __future__ import annotations

import numpy as np

from specsift.preprocess.config import MaskConfig
from specsift.preprocess.masks import bad_pixels, load_sky_lines, sky_line_mask

from .helpers import WAVE, flat_spectra


def test_sky_list_is_in_vacuum_angstrom():
    lines, intensity = load_sky_lines()
    # [O I] 5577.339 A in air is 5578.887 A in vacuum; the list's strongest O I line is that one
    oi = lines[np.argmin(np.abs(lines - 5578))]
    assert abs(oi - 5578.887) < 0.01
    assert intensity.size > 100 and np.all(lines > 5000)


def test_mask_covers_exactly_the_strongest_lines_on_the_grid():
    config = MaskConfig(n_sky_lines=100, sky_half_width=5.0)
    mask = sky_line_mask(WAVE, config)
    lines, intensity = load_sky_lines()
    on_grid = (lines > WAVE[0] - 5) & (lines < WAVE[-1] + 5)
    chosen = lines[on_grid][np.argsort(-intensity[on_grid])][:100]
    expected = (np.abs(WAVE[:, None] - chosen[None, :]) <= 5.0).any(axis=1)
    np.testing.assert_array_equal(mask, expected)
    assert 0.10 < mask.mean() < 0.20  # 100 lines x 10 A over 6224 A, some overlapping


def test_more_lines_and_wider_windows_mask_more():
    base = sky_line_mask(WAVE, MaskConfig()).mean()
    assert sky_line_mask(WAVE, MaskConfig(n_sky_lines=200)).mean() > base
    assert sky_line_mask(WAVE, MaskConfig(sky_half_width=8)).mean() > base
    assert not sky_line_mask(WAVE, MaskConfig(n_sky_lines=0)).any()


def test_bad_pixels_combine_instrument_ivar_nonfinite_and_sky():
    s = flat_spectra([1.0, 1.0], z=[0.1, 0.1])
    s.mask[0, 10] = True
    s.ivar[0, 20] = 0
    s.ivar[0, 30] = -1
    s.flux[1, 40] = np.nan
    s.ivar[1, 50] = np.inf
    sky = np.zeros(WAVE.size, bool)
    sky[60] = True
    bad = bad_pixels(s, sky)
    assert {int(i) for i in np.flatnonzero(bad[0])} == {10, 20, 30, 60}
    assert {int(i) for i in np.flatnonzero(bad[1])} == {40, 50, 60}
