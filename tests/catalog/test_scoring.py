"""Scoring: one catalogue row per store object, ranks, the star/galaxy rule and its metadata."""

from __future__ import annotations

import numpy as np
import pytest

from specsift.catalog import ScoreJob, StarGalaxyRule, read_catalog, score_catalog
from specsift.catalog.scoring import _StarFrame
from specsift.preprocess import PreprocessConfig
from specsift.store import SpectraStore


@pytest.fixture(scope="session")
def catalog(scoring_setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("catalog") / "catalog.parquet"
    job = ScoreJob(str(scoring_setup.store), str(scoring_setup.galaxy), str(scoring_setup.star),
                   str(out), batch_size=64, chunk_size=100, device="cpu")
    score_catalog(job, rule=StarGalaxyRule("chi2", threshold=0.25))
    return read_catalog(out)


def test_catalog_has_one_row_per_store_object_with_the_survey_metadata(catalog, scoring_setup):
    table, _ = catalog
    meta = SpectraStore(scoring_setup.store).meta
    assert len(table) == len(meta) == 350
    assert table["TARGETID"].tolist() == meta["TARGETID"].tolist()
    np.testing.assert_array_equal(table["Z"], meta["Z"])
    for name in ("CHI2_GALAXY", "CHI2_STAR", "LOGP_GALAXY", "LOGP_STAR", "OUTLIER_SCORE", "RANK",
                 "IS_STAR", "SPECTYPE", "ZWARN", "SPLIT", "FILENAME", "ROW"):
        assert name in table.colnames


def test_rank_one_is_the_highest_outlier_score(catalog):
    table, _ = catalog
    score = np.asarray(table["OUTLIER_SCORE"], float)
    np.testing.assert_array_equal(score, -np.asarray(table["LOGP_GALAXY"], float))
    assert sorted(table["RANK"]) == list(range(1, len(table) + 1))
    by_rank = score[np.argsort(table["RANK"])]
    finite = by_rank[np.isfinite(by_rank)]
    assert np.all(np.diff(finite) <= 0)
    assert np.isfinite(by_rank[:len(finite)]).all()  # unscored objects, if any, come last


def test_star_flag_follows_the_recorded_rule_and_threshold(catalog):
    table, metadata = catalog
    assert metadata["STARRULE"] == "chi2" and metadata["STARTHR"] == 0.25
    npix = np.minimum(table["NPIX_GALAXY"], table["NPIX_STAR"])
    ratio = 0.5 * npix * (np.asarray(table["CHI2_GALAXY"]) - np.asarray(table["CHI2_STAR"]))
    np.testing.assert_allclose(table["STAR_LOGLR"], ratio)
    assert table["IS_STAR"].tolist() == (ratio > 0.25).tolist()
    assert metadata["STORE"].endswith("store") and metadata["GALMODEL"].endswith("galaxy")


class _FourObjects:
    """Reported z: a galaxy-like -0.5 and 0.3, two stellar velocities. Flux 1 below 5300 A and
    3 above: normalised at another redshift than z = 0, the level in the window is 3, not 1."""

    wave = np.linspace(5000.0, 6000.0, 501)
    manifest = {"config": PreprocessConfig().to_dict()}

    def batches(self, **kwargs):
        flux = np.where(self.wave < 5300, 1.0, 3.0).astype(np.float32)[None].repeat(4, 0)
        yield {"z": np.array([-0.5, 0.001, -0.0004, 0.3], np.float32), "row": np.arange(4),
               "flux": flux, "ivar": np.ones_like(flux)}


def test_star_model_sees_stellar_velocities_and_the_rest_frame_otherwise():
    batch = next(_StarFrame(_FourObjects(), -0.01, 0.01).batches(rows=None))
    np.testing.assert_allclose(batch["z"], [0.0, 0.001, -0.0004, 0.0])
    assert batch["row"].tolist() == [0, 1, 2, 3]
    shifted = next(_StarFrame(_FourObjects(), 0.0005, 0.01).batches(rows=None))  # 0 not in range
    np.testing.assert_allclose(shifted["z"], [0.0005, 0.001, 0.0005, 0.0005])


def test_objects_moved_to_the_rest_frame_are_normalised_again():
    batch = next(_StarFrame(_FourObjects(), -0.01, 0.01).batches(rows=None))
    moved = [0, 3]
    np.testing.assert_allclose(batch["flux"][moved, -1], 1.0)      # window median 3 -> 1
    np.testing.assert_allclose(batch["ivar"][moved, -1], 9.0)      # S/N unchanged
    np.testing.assert_allclose(batch["flux"][[1, 2], -1], 3.0)     # kept where z was kept
