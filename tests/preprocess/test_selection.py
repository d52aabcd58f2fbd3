"""Sample cuts: the first failed cut is the reason, missing values fail, missing columns raise."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import MaskedColumn, Table

from specsift import SpecsiftInputError
from specsift.preprocess.config import default_config
from specsift.preprocess.selection import apply_cuts


def _meta():
    return Table({
        "SPECTYPE": np.array(["GALAXY ", "STAR", "GALAXY", "GALAXY", "GALAXY", "GALAXY"]),
        "ZWARN": [0, 0, 4, 0, 0, 0],
        "Z": [0.1, 0.0, 0.2, 0.9, 0.3, 0.3],
        "DELTACHI2": [100.0, 500.0, 80.0, 90.0, np.nan, 12.0],
        "DESI_TARGET": np.array([1 << 60] * 6, dtype=np.int64),
    })


def test_bgs_cuts_give_first_failed_cut_and_value():
    reason, detail = apply_cuts(_meta(), default_config("desi").cuts("bgs"))
    assert reason[0] == ""  # trailing blank in SPECTYPE is stripped
    assert reason[1] == "selection: SPECTYPE == GALAXY" and detail[1] == "SPECTYPE = STAR"
    assert reason[2] == "selection: ZWARN == 0" and detail[2] == "ZWARN = 4"
    assert reason[3] == "selection: Z <= 0.8"
    assert reason[4] == "selection: DELTACHI2 > 40.0" and detail[4] == "DELTACHI2 = missing"
    assert reason[5] == "selection: DELTACHI2 > 40.0" and detail[5] == "DELTACHI2 = 12.0"


def test_target_bits_select_bgs_not_mws_targets():
    meta = _meta()
    meta["DESI_TARGET"][0] = 1 << 61
    reason, _ = apply_cuts(meta, {"DESI_TARGET": {"any_bits": 1 << 60}})
    assert reason[0].startswith("selection: DESI_TARGET has any bit of 0x1000000000000000")
    assert (reason[1:] == "").all()


def test_masked_entries_fail_and_empty_cut_is_ignored():
    meta = Table({"Z": MaskedColumn([0.1, 0.2], mask=[False, True])})
    reason, _ = apply_cuts(meta, {"Z": {"min": 0.0}, "ZWARN": {}})
    assert reason.tolist() == ["", "selection: Z >= 0.0"]


def test_missing_column_raises_naming_file_and_column():
    with pytest.raises(SpecsiftInputError, match="f.fits.*'DELTACHI2'"):
        apply_cuts(Table({"Z": [0.1]}), {"DELTACHI2": {"gt": 40}}, path="f.fits")


def test_unknown_operator_is_refused():
    with pytest.raises(SpecsiftInputError, match="unknown cut operator 'above'"):
        apply_cuts(Table({"Z": [0.1]}), {"Z": {"above": 0}})
