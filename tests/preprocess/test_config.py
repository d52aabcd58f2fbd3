"""Preprocessing configuration: survey defaults, file overrides, clear errors on bad files."""

from __future__ import annotations

import json

import pytest

from specsift import SpecsiftInputError
from specsift.preprocess.config import BGS_ANY, PreprocessConfig, default_config, load_config


def test_desi_defaults_declare_bgs_redshift_success_and_mws_cuts():
    config = default_config("desi")
    bgs = config.cuts("bgs")
    assert bgs["SPECTYPE"] == {"eq": "GALAXY"} and bgs["ZWARN"] == {"eq": 0}
    assert bgs["Z"] == {"min": 0.0, "max": 0.8} and bgs["DELTACHI2"] == {"gt": 40.0}
    assert bgs["DESI_TARGET"] == {"any_bits": BGS_ANY}
    assert config.cuts("mws")["SPECTYPE"] == {"eq": "STAR"}
    assert config.cuts("all") == {}


def test_apogee_is_not_renormalised_and_desi_uses_rest_5300_5850():
    assert default_config("apogee").normalize.method == "none"
    assert default_config("desi").normalize.window == (5300.0, 5850.0)


def test_toml_file_changes_one_cut_and_keeps_the_others(tmp_path):
    path = tmp_path / "pre.toml"
    path.write_text('[samples.bgs]\nDELTACHI2 = { gt = 25 }\nZWARN = {}\n'
                    '[masks]\nn_sky_lines = 200\n[split]\nsalt = "v2"\n')
    config = load_config(path, "desi")
    bgs = config.cuts("bgs")
    assert bgs["DELTACHI2"] == {"gt": 25} and bgs["ZWARN"] == {}
    assert bgs["SPECTYPE"] == {"eq": "GALAXY"}
    assert config.masks.n_sky_lines == 200 and config.masks.sky_half_width == 5.0
    assert config.split.salt == "v2" and config.digest() != default_config("desi").digest()


def test_json_file_adds_a_sample(tmp_path):
    path = tmp_path / "pre.json"
    path.write_text(json.dumps({"samples": {"bright": {"FLUX_R": {"min": 10}}}}))
    assert load_config(path, "desi").cuts("bright") == {"FLUX_R": {"min": 10}}


@pytest.mark.parametrize("text, words", [
    ("[mask]\nn_sky_lines = 3\n", "unknown configuration section 'mask'"),
    ("[masks]\nn_lines = 3\n", "unknown key(s) n_lines"),
    ("[split]\nfractions = [0.5, 0.5, 0.5]\n", "summing to 1"),
    ("[normalize]\nmethod = 'mean'\n", "normalize.method"),
    ("[masks\n", "not valid TOML"),
])
def test_bad_config_file_names_the_file_and_the_problem(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SpecsiftInputError) as info:
        load_config(path, "desi")
    assert str(path) in str(info.value) and words in str(info.value)


def test_unknown_sample_lists_known_ones():
    with pytest.raises(SpecsiftInputError, match="bgs, mws"):
        default_config("desi").cuts("lrg")


def test_digest_is_stable_for_equal_configs():
    assert PreprocessConfig().digest() == PreprocessConfig().digest()
