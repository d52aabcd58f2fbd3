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


def test_a_folder_that_records_random_state_still_loads(fitted, tmp_path):
    """Folders written before the metric's seed took the package's name record ``random_state``."""
    copy = tmp_path / "old"
    copy.mkdir()
    (copy / MODEL_FILE).write_bytes((fitted / MODEL_FILE).read_bytes())
    config = json.loads((fitted / "config.json").read_text())
    config["random_state"] = config.pop("seed")
    (copy / "config.json").write_text(json.dumps(config))
    old, _ = load_model(copy)
    new, _ = load_model(fitted)
    assert old.seed == new.seed
    np.testing.assert_array_equal(old.metric_.scaling_, new.metric_.scaling_)


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
    assert {"plate_safe_rate", "same_plate_sibling_ratio", "same_vs_other_plate_field_rate",
            "same_plate_close_field_stars", "same_plate_close_field_pairs",
            "field_rate_ratio_95ci"} <= set(result)   # the mock's allStar has plates
    assert 0 <= result["global_rate"] < 0.5
    sizes = result["cluster_sizes"]
    weighted = sum(sizes[c] * r for c, r in result["per_cluster"].items()) / sum(
        sizes[c] for c in result["per_cluster"])
    assert result["global_rate"] == pytest.approx(weighted)
    ratio = result["sibling_radius_ratio"]
    assert set(ratio) == set(result["per_cluster"])
    assert np.median(list(ratio.values())) == pytest.approx(1.0)
    assert result["wide_clusters"] == sorted(c for c, r in ratio.items() if r >= 3)


def test_evaluate_text_reports_the_plate_check(fitted, mock_apogee_dir, capsys):
    capsys.readouterr()
    assert main(["-q", "rsca", "evaluate", str(fitted), *_catalogues(mock_apogee_dir),
                 "--spectra", str(mock_apogee_dir / "spectra-mock.fits"), "--skip-empty"]) == 0
    out = capsys.readouterr().out
    assert "plate-safe rate" in out and "pairs on one plate / on two plates" in out
    assert "95% interval" in out and "distinct field stars)" in out
    assert out.count("x the median cluster's") == out.count(" members  rate ") > 1


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


def _spectra(d):
    return ["--spectra", str(d / "spectra-mock.fits"), "--allstar", str(d / "allStar-mock.fits")]


def _json_out(capsys, argv):
    capsys.readouterr()
    assert main(["-q", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _one_line_error(capsys, argv, *words):
    capsys.readouterr()
    assert main(["-q", *argv]) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert all(w in lines[0] for w in words), err


@pytest.fixture(scope="module")
def largest_cluster(fitted, mock_apogee_dir):
    """The searchable members (pass the model's field cuts) of the mock's largest cluster."""
    from specsift.io.catalogs import read_allstar, read_occam
    from specsift.preprocess.stellar_samples import SampleConfig, giant_cuts, select_samples

    config = SampleConfig.from_dict(json.loads((fitted / "config.json").read_text())
                                    ["sample_config"])
    table = read_allstar(mock_apogee_dir / "allStar-mock.fits")
    samples = select_samples(table, read_occam(mock_apogee_dir / "occam_member-mock.fits"),
                             config)
    ids = np.asarray(table["APOGEE_ID"]).astype(str)
    searchable = giant_cuts(table, config)[samples.members]
    names, counts = np.unique(samples.clusters[searchable], return_counts=True)
    biggest = names[np.argmax(counts)]
    mates = ids[samples.members][searchable & (samples.clusters == biggest)]
    assert len(mates) >= 8
    return sorted(mates), int(giant_cuts(table, config).sum())


def test_siblings_lists_a_members_own_cluster_first(fitted, mock_apogee_dir, largest_cluster,
                                                    capsys):
    mates, n_searched = largest_cluster
    scale = load_model(fitted)[1]["reference"]["sibling_scale"][0]
    first_mate, in_top10, mate_units = [], 0, []
    for star in mates:
        rows = _json_out(capsys, ["rsca", "siblings", str(fitted), *_spectra(mock_apogee_dir),
                                  "--id", star, "--top", "1000"])
        listed = [r["APOGEE_ID"] for r in rows]
        assert len(rows) == n_searched - 1 and star not in listed
        distances = [r["DISTANCE"] for r in rows]
        assert distances == sorted(distances)
        assert [r["P_FIELD_PAIR"] for r in rows] == sorted(r["P_FIELD_PAIR"] for r in rows)
        for r in rows:
            assert r["SIBLING_UNITS"] == pytest.approx(r["DISTANCE"] / scale)
        ranks = [listed.index(m) for m in mates if m != star]
        first_mate.append(min(ranks))
        in_top10 += sum(k < 10 for k in ranks)
        mate_units += [rows[k]["SIBLING_UNITS"] for k in ranks]
    # every member finds a cluster-mate among its first 10 of ~280 stars, and the first 10
    # hold cluster-mates at least 5x as often as a random ranking would
    assert max(first_mate) < 10, first_mate
    chance = len(mates) * 10 * (len(mates) - 1) / (n_searched - 1)
    assert in_top10 > 5 * chance, (in_top10, chance)
    # distances come in units of the median sibling distance: a typical cluster pair is ~1
    assert 0.5 < np.median(mate_units) < 2


def test_siblings_text_output_and_top(fitted, mock_apogee_dir, largest_cluster, capsys):
    star = largest_cluster[0][0]
    capsys.readouterr()
    assert main(["-q", "rsca", "siblings", str(fitted), *_spectra(mock_apogee_dir), "--id", star,
                 "--top", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "x median sibling" in lines[0] and len(lines) == 4
    top3 = _json_out(capsys, ["rsca", "siblings", str(fitted), *_spectra(mock_apogee_dir),
                              "--id", star, "--top", "3"])
    assert [line.split()[0] for line in lines[1:]] == [r["APOGEE_ID"] for r in top3]


def test_pair_agrees_with_siblings(fitted, mock_apogee_dir, largest_cluster, capsys):
    star = largest_cluster[0][0]
    rows = _json_out(capsys, ["rsca", "siblings", str(fitted), *_spectra(mock_apogee_dir),
                              "--id", star, "--top", "1000"])
    near, far = rows[0], rows[-1]
    for other in (near, far):
        answer = _json_out(capsys, ["rsca", "pair", str(fitted), star, other["APOGEE_ID"],
                                    *_spectra(mock_apogee_dir)])
        assert answer["APOGEE_ID_1"] == star and answer["APOGEE_ID_2"] == other["APOGEE_ID"]
        for key in ("DISTANCE", "SIBLING_UNITS", "P_FIELD_PAIR"):
            assert answer[key] == pytest.approx(other[key], rel=1e-5)
        assert answer["alike"] == (other["SIBLING_UNITS"] < 1)
        back = _json_out(capsys, ["rsca", "pair", str(fitted), other["APOGEE_ID"], star,
                                  *_spectra(mock_apogee_dir)])
        assert back["DISTANCE"] == pytest.approx(answer["DISTANCE"], rel=1e-5)
    assert far["SIBLING_UNITS"] > 1 and far["P_FIELD_PAIR"] > 0.5
    capsys.readouterr()
    assert main(["-q", "rsca", "pair", str(fitted), star, far["APOGEE_ID"],
                 *_spectra(mock_apogee_dir)]) == 0
    assert "not alike" in capsys.readouterr().out


def test_siblings_and_pair_bad_input_is_one_line(fitted, mock_apogee_dir, largest_cluster,
                                                 tmp_path, capsys):
    from astropy.io import fits

    d = mock_apogee_dir
    star = largest_cluster[0][0]
    siblings = ["rsca", "siblings", str(fitted), *_spectra(d)]
    _one_line_error(capsys, [*siblings, "--id", "2M00000000+0000000"],
                    "2M00000000+0000000", "not in the allStar catalogue")
    table = Table.read(d / "allStar-mock.fits", hdu=1)
    teff = np.asarray(table["TEFF"], float)
    outside = str(table["APOGEE_ID"][np.argmax(teff)])  # the hottest star: outside the Teff box
    _one_line_error(capsys, [*siblings, "--id", outside], outside, "outside the model's field cuts")
    _one_line_error(capsys, [*siblings, "--id", star, "--top", "0"], "--top")
    _one_line_error(capsys, ["rsca", "pair", str(fitted), star, "2M00000000+0000000",
                             *_spectra(d)], "2M00000000+0000000")
    shifted = tmp_path / "shifted.fits"  # spectra on another wavelength grid than the model's
    with fits.open(d / "spectra-mock.fits") as hdul:
        hdul["WAVE"].data = hdul["WAVE"].data * 1.001
        hdul.writeto(shifted)
    _one_line_error(capsys, ["rsca", "siblings", str(fitted), "--spectra", str(shifted),
                             "--allstar", str(d / "allStar-mock.fits"), "--id", star],
                    "differs from the model's")
    abundances = tmp_path / "abund"
    assert main(["-q", "rsca", "fit", *_catalogues(d), "--abundances", "subset", "--out",
                 str(abundances)]) == 0
    _one_line_error(capsys, ["rsca", "siblings", str(abundances), *_spectra(d), "--id", star],
                    "fitted on spectra")
    _one_line_error(capsys, ["rsca", "transform", str(abundances), "--out",
                             str(tmp_path / "e.fits")], "--allstar")
    _one_line_error(capsys, ["rsca", "evaluate", str(fitted), *_catalogues(d)], "spectra")
    _one_line_error(capsys, ["rsca", "fit", *_catalogues(d), "--out", str(tmp_path / "m")],
                    "--spectra")
    _one_line_error(capsys, ["rsca", "report", *_catalogues(d), "--spectra",
                             str(d / "spectra-mock.fits"), "--out", str(tmp_path / "r"),
                             "--only", "fig99"], "fig99")


def test_fit_skip_bad_skips_and_reports_a_fully_masked_star(mock_apogee_dir, tmp_path, capsys,
                                                            caplog):
    from astropy.io import fits

    from specsift.io.catalogs import read_allstar, read_occam
    from specsift.preprocess.stellar_samples import select_samples

    d = mock_apogee_dir
    table = read_allstar(d / "allStar-mock.fits")
    samples = select_samples(table, read_occam(d / "occam_member-mock.fits"))
    bad = str(table["APOGEE_ID"][samples.field[3]])
    spectra = tmp_path / "spectra-one-bad.fits"
    with fits.open(d / "spectra-mock.fits") as hdul:
        ids = [str(i).strip() for i in hdul["APOGEE_ID"].data["APOGEE_ID"]]
        hdul["ERROR"].data[ids.index(bad)] = 1.0  # above the error threshold: all censored
        hdul.writeto(spectra)
    fit = ["rsca", "fit", *_catalogues(d), "--spectra", str(spectra), "--n-components", "4",
           "--ism-windows", "none", "--device", "cpu"]
    _one_line_error(capsys, [*fit, "--out", str(tmp_path / "stopped")], bad,
                    "every pixel of this spectrum is censored")
    assert not (tmp_path / "stopped" / MODEL_FILE).exists()
    assert main(["-q", *fit, "--out", str(tmp_path / "m"), "--skip-bad"]) == 0
    captured = capsys.readouterr()
    assert "1 star(s) skipped" in captured.out
    assert bad in captured.err  # the warning names the star
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["skipped_stars"] == [bad]
    assert config["n_field"] == len(samples.field) - 1


def test_dimension_and_device_mistakes_are_one_line(fitted, mock_apogee_dir, tmp_path, capsys):
    d = mock_apogee_dir
    spectra = ["--spectra", str(d / "spectra-mock.fits")]
    for n_dims in ("0", "7"):  # the model has 6 dimensions
        _one_line_error(capsys, ["rsca", "transform", str(fitted), *spectra, "--out",
                                 str(tmp_path / "e.fits"), "--n-dims", n_dims], "--n-dims", "6")
    _one_line_error(capsys, ["rsca", "evaluate", str(fitted), *_catalogues(d), *spectra,
                             "--n-dims", "7"], "--n-dims")
    fit = ["rsca", "fit", *_catalogues(d), *spectra, "--ism-windows", "none", "--out",
           str(tmp_path / "m")]
    _one_line_error(capsys, [*fit, "--n-components", "0"], "n_components")
    _one_line_error(capsys, [*fit, "--n-components", "5000"], "5000 components", "stars")
    _one_line_error(capsys, [*fit, "--device", "gpu0"], "unknown device 'gpu0'")
    _one_line_error(capsys, ["rsca", "siblings", str(tmp_path / "nowhere"), *_spectra(d), "--id",
                             "x"], "nowhere", "no such RSCA model folder")
