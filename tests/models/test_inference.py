"""encode_batches: every object gets latents, a chi-square and a flag; bad rows are flagged."""

import numpy as np
import pytest

from specsift.errors import SpecsiftInputError
from specsift.models.inference import encode_batches
from specsift.models.training import AutoencoderTrainer

TINY = {"channels": [8, 16, 16], "encoder_hidden": [16], "decoder_hidden": [32, 64], "rest_step": 10.0}


@pytest.fixture(scope="module")
def model(synthetic_store, tmp_path_factory):
    trainer = AutoencoderTrainer(latents=3, widths=TINY, epochs=1, decoder_epochs=0, batch_size=8,
                                 lr=1e-2, device="cpu")
    return trainer.fit(synthetic_store, tmp_path_factory.mktemp("m")).model_


def test_bad_rows_are_flagged_and_good_rows_get_finite_results(model, make_store):
    store = make_store(n=40, seed=5)
    store.ivar[3] = 0
    store.flux[4, :5] = np.nan
    store.meta["Z"][5] = 0.9
    out = list(encode_batches(model, store, batch_size=16, return_model=True))
    rows = np.concatenate([b["row"] for b in out])
    flag = np.concatenate([b["flag"] for b in out])
    chi2 = np.concatenate([b["chi2"] for b in out])
    latents = np.concatenate([b["latents"] for b in out])
    assert rows.tolist() == list(range(40))
    assert flag[3] == 1 and flag[4] == 4 and flag[5] == 2
    assert np.all(flag[[i for i in range(40) if i not in (3, 4, 5)]] == 0)
    assert np.isnan(chi2[3]) and np.all(np.isfinite(np.delete(chi2, 3)))
    assert np.isfinite(latents).all() and out[0]["model"].shape == (16, 300)


def test_a_store_on_another_grid_is_refused(model, make_store):
    store = make_store(n=8, pixels=200)
    with pytest.raises(SpecsiftInputError, match="wavelength grid"):
        next(encode_batches(model, store))


def test_refined_fit_is_never_worse_and_keeps_the_encoder_latents(model, synthetic_store):
    plain = list(encode_batches(model, synthetic_store, batch_size=32))
    refined = list(encode_batches(model, synthetic_store, batch_size=32, refine_steps=2))
    for a, b in zip(plain, refined):
        assert np.array_equal(a["latents"], b["latents"])
        assert np.all(b["chi2"] <= a["chi2"] + 1e-6) and b["chi2"].mean() < a["chi2"].mean()
        assert np.all(np.abs(b["velocity"]) < 500) and "velocity" not in a


def test_chi2_by_snr_reports_terciles_and_the_brightest(model, make_store):
    from specsift.models.evaluation import chi2_by_snr

    store = make_store(n=100, seed=3)
    store.meta["SNR"] = np.arange(len(store), dtype=float)
    report = chi2_by_snr(model, store, brightest=0.2)
    snr = [report[f"{t}_snr_tercile"]["median_snr"] for t in ("low", "middle", "high")]
    assert snr == sorted(snr) and report["brightest"]["median_snr"] > snr[-1]
    assert report["n_objects"] == int((store.meta["SPLIT"] == "validation").sum())
