"""Per-object checks: each kind of bad data is rejected with its own reason and pixel count."""

from __future__ import annotations

import numpy as np

from specsift.preprocess.masks import bad_pixels
from specsift.preprocess.quality import check_quality

from .helpers import WAVE, flat_spectra


def test_each_problem_has_its_reason():
    s = flat_spectra(np.ones(7), z=np.full(7, 0.1))
    s.meta["IS_TARGET"][1] = False
    s.ivar[2, :3] = np.nan
    s.ivar[3, 100:105] = -1.0
    s.flux[4, 7] = np.inf
    s.flux[5, 8] = np.nan
    s.ivar[5, 8] = 0  # NaN flux on a pixel without information: only masked
    s.mask[6] = True
    reason, detail = check_quality(s, bad_pixels(s, np.zeros(WAVE.size, bool)))
    assert reason[0] == "" and reason[5] == ""
    assert reason[1] == "bad data: not a target (sky or empty fibre)"
    assert reason[2] == "bad data: non-finite ivar" and detail[2] == f"3 of {WAVE.size} pixels"
    assert reason[3] == "bad data: negative ivar" and detail[3] == f"5 of {WAVE.size} pixels"
    assert reason[4] == "bad data: non-finite flux where ivar > 0"
    assert reason[6] == "bad data: all pixels masked"
