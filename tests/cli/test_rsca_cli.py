"""`specsift rsca` fit / transform / evaluate / report on the small mock survey."""

import json

import numpy as np
import pytest
from astropy.table import Table

from specsift.cli.main import main
from specsift.metric.persist import MODEL_FILE, load_model


@pytest.fixture(scope="module")
def fitted(mock_apogee_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("rsca") / "model"
    code = main(["-q", "rsca", "fit", "--allstar", str(mock_apogee_dir / "allStar-mock.fits"),
                 "--occam", str(mock_apogee_dir / "occam_member-mock.fits"),
                 "--spectra", str(mock_apogee_dir / "spectra-mock.fits"), "--out", str(out),
                 "--n-components", "6", "--device", "cpu"])
    assert code == 0
    return out


def _catalogues(d):
    return ["--allstar", str(d / "allStar-mock.fits"), "--occam", str(d / "occam_member-mock.fits")]


def test_fit_writes_model_with_checksum_and_windows(fitted):
    config = json.loads((fitted / "config.json").read_text())
    assert config["kind"] == "spectra" and config["n_components"] == 6
    assert any(abs((lo + hi) / 2 - 15272) < 10 for lo, hi in config["ism_windows"])
    model, _ = load_model(fitted)
    assert model.ppca_.components_.shape == (6, 7214)


def test_tampered_model_is_refused(fitted, tmp_path, capsys):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.json", MODEL_FILE):
        (copy / name).write_bytes((fitted / name).read_bytes())
    data = bytearray((copy / MODEL_FILE).read_bytes())
    data[-1] ^= 1
    (copy / MODEL_FILE).write_bytes(bytes(data))
    assert main(["rsca", "transform", str(copy), "--spectra", "x.fits", "--out",
                 str(tmp_path / "e.fits")]) == 2
    assert "sha256" in capsys.readouterr().err


def test_transform_aspcapstar_folder_matches_bulk(fitted, mock_apogee_dir, tmp_path):
    assert main(["-q", "rsca", "transform", str(fitted), "--spectra",
                 str(mock_apogee_dir / "aspcapStar"), "--out", str(tmp_path / "a.fits")]) == 0
    assert main(["-q", "rsca", "transform", str(fitted), "--spectra",
                 str(mock_apogee_dir / "spectra-mock.fits"), "--out", str(tmp_path / "b.fits"),
                 "--n-dims", "3"]) == 0
    single, bulk = Table.read(tmp_path / "a.fits"), Table.read(tmp_path / "b.fits")
    assert single["EMBEDDING"].shape == (5, 6) and bulk["EMBEDDING"].shape[1] == 3
    rows = [list(bulk["APOGEE_ID"]).index(i) for i in single["APOGEE_ID"]]
    np.testing.assert_allclose(single["EMBEDDING"][:, :3], bulk["EMBEDDING"][rows], rtol=1e-4,
                               atol=1e-4)


def test_evaluate_json_has_loco_rates(fitted, mock_apogee_dir, capsys):
    capsys.readouterr()
    assert main(["-q", "rsca", "evaluate", str(fitted), *_catalogues(mock_apogee_dir),
                 "--spectra", str(mock_apogee_dir / "spectra-mock.fits"), "--json",
                 "--skip-empty"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"global_rate", "per_cluster", "n_field", "n_members"} <= set(result)
    assert 0 <= result["global_rate"] < 0.5
    sizes = result["cluster_sizes"]
    weighted = sum(sizes[c] * r for c, r in result["per_cluster"].items()) / sum(
        sizes[c] for c in result["per_cluster"])
    assert result["global_rate"] == pytest.approx(weighted)


def test_abundance_model_round_trip(mock_apogee_dir, tmp_path, capsys):
    out = tmp_path / "abund"
    assert main(["-q", "rsca", "fit", *_catalogues(mock_apogee_dir), "--abundances", "subset",
                 "--out", str(out)]) == 0
    assert main(["-q", "rsca", "transform", str(out), "--allstar",
                 str(mock_apogee_dir / "allStar-mock.fits"), "--out",
                 str(tmp_path / "e.fits")]) == 0
    assert Table.read(tmp_path / "e.fits")["EMBEDDING"].shape[1] == 10


def test_missing_spectra_for_catalogue_stars_names_an_id(mock_apogee_dir, tmp_path, capsys):
    code = main(["rsca", "fit", *_catalogues(mock_apogee_dir), "--spectra",
                 str(mock_apogee_dir / "aspcapStar"), "--out", str(tmp_path / "m")])
    assert code == 2
    assert "APOGEE_ID 2M" in capsys.readouterr().err


def test_report_writes_tables_and_figures(mock_apogee_dir, tmp_path):
    out = tmp_path / "report"
    assert main(["-q", "rsca", "report", *_catalogues(mock_apogee_dir), "--spectra",
                 str(mock_apogee_dir / "spectra-mock.fits"), "--out", str(out),
                 "--n-components", "6", "--truth", str(mock_apogee_dir / "truth.fits"),
                 "--device", "cpu"]) == 0
    for stem in ("table1_top_n", "fig2_rate_vs_k", "fig4_representations",
                 "fig5_training_clusters", "fig9_distances", "appendix_a_windows"):
        assert (out / f"{stem}.csv").exists(), stem
    assert (out / "appendix_a_ism.png").stat().st_size > 1000
    rows = json.loads((out / "fig4_representations.json").read_text())
    assert rows[-1]["input"] == "true_abundances_oracle"
    table1 = json.loads((out / "table1_top_n.json").read_text())
    assert [r["n_dims"] for r in table1] == sorted(r["n_dims"] for r in table1)
