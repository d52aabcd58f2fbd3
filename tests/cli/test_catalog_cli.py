"""``specsift train-flow``, ``score`` and ``gallery`` end to end on tiny trained models."""

from __future__ import annotations

import re
import shutil

import numpy as np

from specsift.catalog import read_catalog
from specsift.cli.main import main
from specsift.models.modeldir import ModelDir


def test_train_flow_adds_a_hashed_flow_to_the_model_directory(scored):
    root, _ = scored
    config = ModelDir(root / "galaxy").config
    assert config["flow"]["transforms"] == 2 and config["flow"]["epochs"] <= 4
    assert re.fullmatch(r"[0-9a-f]{64}", config["weights"]["flow"]["sha256"])
    assert config["weights"]["autoencoder"]  # the autoencoder record is kept


def test_score_writes_the_catalog_with_the_chosen_rule(scored):
    _, catalog = scored
    table, metadata = read_catalog(catalog)
    assert len(table) == 350 and metadata["STARRULE"] == "logp"
    ratio = np.asarray(table["LOGP_STAR"]) - np.asarray(table["LOGP_GALAXY"])
    assert table["IS_STAR"].tolist() == (ratio > 0).tolist()
    assert table[np.argmin(table["RANK"])]["OUTLIER_SCORE"] == np.nanmax(table["OUTLIER_SCORE"])


def test_calibrated_catalogue_has_the_refined_fit_and_q_values_for_the_surveys_galaxies(scored):
    """The q-values' family is what the survey reported as galaxies, whatever the catalogue's
    own star/galaxy call says (it calls the anomalies the galaxy model fits worst stars)."""
    _, catalog = scored
    table, metadata = read_catalog(catalog)
    galaxy = np.char.strip(np.asarray(table["SPECTYPE"]).astype(str)) == "GALAXY"
    q = np.asarray(table["OUTLIER_QVALUE"], float)
    assert galaxy.any() and (~galaxy).any()
    assert np.isnan(q[~galaxy]).all() and np.isfinite(q[galaxy]).all()
    assert ((q[galaxy] > 0) & (q[galaxy] <= 1)).all()
    assert (galaxy & np.asarray(table["IS_STAR"], bool)).any()  # the two families differ
    encoder, refined = (np.asarray(table[c], float) for c in ("CHI2_GALAXY", "CHI2_REFINED"))
    assert np.all(refined <= encoder + 1e-6) and np.isfinite(table["DV_GALAXY"]).all()
    assert np.isfinite(table["DSIGMA2_GALAXY"]).all()
    assert "refined fit" in metadata["SCORE"]


def test_gallery_draws_the_top_outliers_and_lists_them_in_rank_order(scored, tmp_path):
    _, catalog = scored
    out = tmp_path / "gallery"
    assert main(["-q", "gallery", str(catalog), "--top", "4", "--out", str(out),
                 "--device", "cpu"]) == 0
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 4 and all(p.startswith(f"rank{r:05d}_") for r, p in zip(range(1, 5), pngs))
    page = (out / "index.html").read_text()
    assert [page.index(name) for name in pngs] == sorted(page.index(name) for name in pngs)
    table, _ = read_catalog(catalog)
    top = table[np.argsort(table["RANK"])[:4]]
    for target in top["TARGETID"]:
        assert str(target) in page
    assert (out / pngs[0]).read_bytes()[:4] == b"\x89PNG"


def test_gallery_file_names_from_hostile_ids_stay_inside_the_gallery(scored, tmp_path):
    from specsift.catalog.writer import write_catalog

    _, catalog = scored
    table, metadata = read_catalog(catalog)
    table["TARGETID"] = [f"x/../../../escaped{i}" for i in range(len(table))]
    hostile = tmp_path / "deep" / "catalog.fits"
    hostile.parent.mkdir()
    write_catalog(table, hostile, metadata)
    out = tmp_path / "deep" / "gallery"
    assert main(["-q", "gallery", str(hostile), "--top", "3", "--out", str(out),
                 "--device", "cpu"]) == 0
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".png"]
    assert len(written) == 3 and all(p.parent == out for p in written)
    assert not [p for p in tmp_path.rglob("escaped*") if out not in p.parents]


def test_gallery_sample_draws_only_that_samples_outliers(scored, tmp_path, capsys):
    from specsift.catalog.samples import in_sample, sample_config

    _, catalog = scored
    table, metadata = read_catalog(catalog)
    bgs = in_sample(table, "bgs", sample_config(metadata))
    assert 0 < bgs.sum() < len(table) and not np.asarray(table["IS_STAR"])[bgs].all()
    out = tmp_path / "gallery"
    assert main(["-q", "gallery", str(catalog), "--top", "3", "--sample", "bgs", "--out",
                 str(out), "--device", "cpu"]) == 0
    expected = table[bgs][np.argsort(table["RANK"][bgs])[:3]]
    drawn = sorted(p.name for p in out.glob("*.png"))
    assert drawn == sorted(f"rank{r:05d}_{t}.png" for r, t in zip(expected["RANK"],
                                                                   expected["TARGETID"]))
    assert main(["gallery", str(catalog), "--sample", "lrg", "--out", str(tmp_path / "x"),
                 "--device", "cpu"]) != 0
    assert "unknown sample 'lrg'" in capsys.readouterr().err


def test_score_reports_bad_input_in_one_line(scoring_setup, tmp_path, capsys):
    not_a_store = tmp_path / "empty"
    not_a_store.mkdir()
    code = main(["score", str(not_a_store), "--galaxy-model", str(scoring_setup.galaxy),
                 "--star-model", str(scoring_setup.star), "--out", str(tmp_path / "c.parquet")])
    assert code == 2
    assert "not a specsift store" in capsys.readouterr().err
    assert not (tmp_path / "c.parquet").exists()


def test_score_refuses_a_model_whose_weights_were_modified(scored, scoring_setup, tmp_path,
                                                            capsys):
    root, _ = scored
    star = tmp_path / "star"
    shutil.copytree(root / "star", star)
    weights = star / "flow.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    code = main(["score", str(scoring_setup.store), "--galaxy-model", str(root / "galaxy"),
                 "--star-model", str(star), "--out", str(tmp_path / "c.parquet"),
                 "--device", "cpu"])
    assert code == 2 and "sha256" in capsys.readouterr().err


def test_gallery_reports_bad_input_in_one_line(scored, tmp_path, capsys):
    _, catalog = scored
    empty = tmp_path / "empty"
    empty.mkdir()
    junk = tmp_path / "junk.parquet"
    junk.write_text("not a catalogue")
    out = ["--out", str(tmp_path / "gallery"), "--device", "cpu"]
    for argv, words in (([str(catalog), "--top", "0"], ("--top",)),
                        ([str(tmp_path / "none.parquet")], ("none.parquet",)),
                        ([str(junk)], ("junk.parquet", "not a readable catalogue")),
                        ([str(catalog), "--store", str(empty)], ("not a specsift store",)),
                        ([str(catalog), "--galaxy-model", str(empty)], ("empty",))):
        capsys.readouterr()
        assert main(["-q", "gallery", *argv, *out]) == 2, argv
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in err, err
        assert all(w in lines[0] for w in words), err
    assert not list((tmp_path / "gallery").glob("*.png"))


def test_train_flow_can_skip_the_outlier_calibration(scoring_setup, tmp_path):
    model = tmp_path / "star"
    shutil.copytree(scoring_setup.star, model)
    for name in ("outlier.safetensors", "flow.safetensors"):
        (model / name).unlink(missing_ok=True)
    assert main(["-q", "train-flow", str(scoring_setup.store), "--model", str(model),
                 "--transforms", "2", "--hidden", "16", "--max-epochs", "3", "--device", "cpu",
                 "--no-outlier-calibration"]) == 0
    assert ModelDir(model).has_weights("flow") and not ModelDir(model).has_weights("outlier")


def test_score_fdr_writes_the_selection_in_rank_order(scored, scoring_setup, tmp_path):
    from specsift.catalog.distributed import fdr_path

    root, _ = scored
    out = tmp_path / "c.parquet"
    assert main(["-q", "score", str(scoring_setup.store), "--galaxy-model", str(root / "galaxy"),
                 "--star-model", str(root / "star"), "--out", str(out), "--device", "cpu",
                 "--fdr", "0.5"]) == 0
    table, _ = read_catalog(out)
    chosen, metadata = read_catalog(fdr_path(out, 0.5))
    q = np.nan_to_num(np.asarray(table["OUTLIER_QVALUE"], float), nan=np.inf)
    assert len(chosen) == (q < 0.5).sum()
    assert (np.asarray(chosen["OUTLIER_QVALUE"]) < 0.5).all()
    assert list(chosen["RANK"]) == sorted(chosen["RANK"]) and float(metadata["FDR"]) == 0.5


def test_score_refuses_a_false_discovery_rate_outside_0_and_1(scored, scoring_setup, tmp_path,
                                                               capsys):
    root, _ = scored
    for rate in ("0", "1", "1.5", "-0.1"):
        capsys.readouterr()
        assert main(["score", str(scoring_setup.store), "--galaxy-model", str(root / "galaxy"),
                     "--star-model", str(root / "star"), "--out", str(tmp_path / "c.parquet"),
                     "--fdr", rate]) == 2
        assert "--fdr must lie strictly between 0 and 1" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_model_without_outlier_calibration_scores_with_empty_columns(scoring_setup, tmp_path,
                                                                       capsys):
    """Model directories written before the calibration (as ``scoring_setup``'s) still score:
    OUTLIER_SCORE is the paper's -log p, the columns they cannot fill are NaN, the log says so."""
    assert not ModelDir(scoring_setup.galaxy).has_weights("outlier")
    out = tmp_path / "c.parquet"
    assert main(["score", str(scoring_setup.store), "--galaxy-model", str(scoring_setup.galaxy),
                 "--star-model", str(scoring_setup.star), "--out", str(out),
                 "--device", "cpu"]) == 0
    assert "no outlier calibration" in capsys.readouterr().err
    table, metadata = read_catalog(out)
    assert np.allclose(table["OUTLIER_SCORE"], -np.asarray(table["LOGP_GALAXY"]))
    for column in ("OUTLIER_PVALUE", "OUTLIER_QVALUE", "CHI2_REFINED"):
        assert np.isnan(np.asarray(table[column], float)).all(), column
    assert np.isfinite(np.asarray(table["CHI2_GALAXY"], float)).all()
