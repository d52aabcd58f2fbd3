"""The demo's evaluation card on the tiny mocks: a catalogue of tiny models, a 6-component RSCA."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from specsift.catalog import read_catalog
from specsift.cli import demo
from specsift.cli.main import main
from specsift.evaluation import roc_auc, top_count_precision, top_fraction_precision
from specsift.evaluation.mock_desi import match_truth, outlier_metrics, star_galaxy_metrics
from specsift.models.modeldir import ModelDir


@pytest.fixture(scope="module")
def demo_dir(scoring_setup, mock_desi_dir, mock_apogee_dir, tmp_path_factory):
    """A folder laid out as ``specsift demo`` leaves it, from the session's tiny mocks/models."""
    out = tmp_path_factory.mktemp("demo")
    os.symlink(mock_desi_dir, out / "mock_desi")
    os.symlink(mock_apogee_dir, out / "mock_apogee")
    (out / "models").mkdir()
    for name in ("galaxy", "star"):
        os.symlink(getattr(scoring_setup, name), out / "models" / name)
    assert main(["-q", "score", str(scoring_setup.store),
                 "--galaxy-model", str(scoring_setup.galaxy), "--star-model", str(scoring_setup.star), "--out", str(out / "catalog.parquet"),
                 "--device", "cpu", "--batch-size", "64"]) == 0
    inputs = ["--allstar", str(mock_apogee_dir / "allStar-mock.fits"),
              "--occam", str(mock_apogee_dir / "occam_member-mock.fits"),
              "--spectra", str(mock_apogee_dir / "spectra-mock.fits")]
    assert main(["-q", "rsca", "fit", *inputs, "--n-components", "6", "--device", "cpu",
                 "--out", str(out / "rsca" / "model")]) == 0
    assert main(["-q", "rsca", "evaluate", str(out / "rsca" / "model"), *inputs, "--skip-empty",
                 "--out", str(out / "rsca" / "evaluation.json")]) == 0
    return out


@pytest.fixture(scope="module")
def card(demo_dir):
    demo._evaluate(demo_dir, demo_dir / "mock_desi", demo_dir / "mock_apogee", start=0.0,
                   resumed=True)
    return json.loads((demo_dir / "card.json").read_text())


def test_card_is_labelled_as_evaluation_and_printed(demo_dir, capsys, caplog):
    caplog.set_level("INFO", logger="specsift.demo")
    demo._evaluate(demo_dir, demo_dir / "mock_desi", demo_dir / "mock_apogee",
                   start=0.0, resumed=False)
    printed = capsys.readouterr().out
    assert "== evaluation:" in printed and "ROC AUC" in printed and "oracle" in printed
    assert any(r.message.startswith("evaluation:") for r in caplog.records)
    assert not list(demo_dir.glob(".card.json.*"))  # written atomically, no leftover


def test_card_reports_every_field(card, demo_dir, mock_desi_dir):
    table, _ = read_catalog(demo_dir / "catalog.parquet")
    truth = match_truth(table, mock_desi_dir / "truth.fits")
    o = card["outliers"]
    assert card["step"].startswith("evaluation")
    assert o["n_bgs"] == truth.bgs.sum() and o["n_anomalies"] == (truth.bgs & truth.outlier).sum()
    assert o["n_anomalies"] > 0 and 0 <= o["auc"] <= 1
    assert o["top"] == 20 and o["n_top_fraction"] == max(1, round(0.01 * o["n_bgs"]))
    for key in ("top_fraction_anomaly_fraction", "top_anomaly_fraction"):
        assert 0 <= o[key] <= 1
    sg = card["star_galaxy"]
    assert sg["n_stars"] == (truth.sample == "MWS").sum() > 0
    assert sg["n_galaxies"] == (truth.bgs & ~truth.outlier).sum()
    expected = np.concatenate([~np.asarray(table["IS_STAR"])[truth.clean_galaxies],
                               np.asarray(table["IS_STAR"])[truth.stars]]).mean()
    assert sg["accuracy"] == pytest.approx(expected)
    rsca = json.loads((demo_dir / "rsca" / "evaluation.json").read_text())
    assert card["rsca"]["doppelganger_rate"] == rsca["global_rate"]
    assert 0 <= card["rsca"]["oracle_rate"] <= 1
    for name in ("galaxy", "star"):  # one epoch: the kept epoch is the only one
        log = ModelDir(demo_dir / "models" / name).training_log()
        assert card["models"][name]["val_reduced_chi2"] == pytest.approx(
            log[-1]["val_reduced_chi2"])
    assert card["resumed"] is True and card["seconds"] > 0
    assert len(card["bars"]) == 3 and all(isinstance(v, bool) for v in card["bars"].values())


def test_oracle_is_the_rate_of_the_true_abundances(card, mock_apogee_dir):
    """The oracle equals the no-CV rate the RSCA benchmark computes from a context's latents."""
    from specsift.metric.experiments import plain_rate, true_abundances
    from specsift.metric.fitting import load_censored

    data, _, _ = load_censored(mock_apogee_dir / "allStar-mock.fits",
                               mock_apogee_dir / "occam_member-mock.fits",
                               spectra=mock_apogee_dir / "spectra-mock.fits")
    zf, zm = true_abundances(mock_apogee_dir / "truth.fits",
                             mock_apogee_dir / "allStar-mock.fits", data.samples)
    assert zf.shape[0] == len(data.field) and zm.shape[0] == len(data.members)
    assert card["rsca"]["oracle_rate"] == pytest.approx(plain_rate(zf, zm, data).global_rate)


def test_perfect_ranking_and_classification_score_one(demo_dir, mock_desi_dir):
    table, _ = read_catalog(demo_dir / "catalog.parquet")
    truth = match_truth(table, mock_desi_dir / "truth.fits")
    order = np.lexsort((np.arange(len(table)), ~truth.outlier))  # anomalies first
    table["RANK"][order] = np.arange(1, len(table) + 1)
    result = outlier_metrics(table, truth, top=5)
    assert result["auc"] == 1.0 and result["top_anomaly_fraction"] == 1.0
    assert result["top_fraction_anomaly_fraction"] == 1.0
    assert all(f["auc"] == 1.0 for f in result["auc_per_family"].values())
    assert star_galaxy_metrics(truth.stars, truth)["accuracy"] == 1.0
    assert star_galaxy_metrics(~truth.stars, truth)["accuracy"] == 0.0


def test_ranking_metrics():
    score = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    positive = np.array([True, False, True, False, False])
    assert roc_auc(score, positive) == pytest.approx(5 / 6)
    assert roc_auc(-score, positive) == pytest.approx(1 / 6)
    assert math.isnan(roc_auc(score, np.zeros(5, bool)))
    assert top_count_precision(score, positive, 2) == 0.5
    assert top_fraction_precision(score, positive, 0.2) == 1.0  # one object: the first
    assert top_fraction_precision(score, positive, 0.0) == 1.0  # at least one
