"""Training: a killed run resumes to the same weights; bad objects never make the loss NaN."""

import logging

import numpy as np
import pytest
import torch

from specsift.models.modeldir import AUTOENCODER_WEIGHTS, ModelDir
from specsift.models.training import AutoencoderTrainer, auto_batch_size, kept_epoch, redshift_range

TINY = {"channels": [8, 16, 16], "encoder_hidden": [16], "decoder_hidden": [32, 64], "rest_step": 10.0}
SETTINGS = dict(latents=3, widths=TINY, epochs=3, phase1_fraction=0.34, batch_size=8, lr=1e-2,
                seed=7, device="cpu", patience=10, decoder_epochs=0)


@pytest.fixture(scope="module")
def uninterrupted(synthetic_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    trainer = AutoencoderTrainer(**SETTINGS).fit(synthetic_store, out)
    return ModelDir(out), trainer


def test_training_lowers_the_reconstruction_error(uninterrupted):
    _, trainer = uninterrupted
    history = trainer.history_
    assert [r["phase"] for r in history] == ["fidelity", "invariance", "invariance"]
    assert history[-1]["val_reduced_chi2"] < history[0]["val_reduced_chi2"]  # starts at the mean
    assert all(np.isfinite(r["train_loss"]) and np.isfinite(r["val_loss"]) for r in history)


def test_model_dir_holds_weights_config_and_log(uninterrupted):
    md, trainer = uninterrupted
    config = md.config
    assert config["latents"] == 3 and config["size"] == "small"
    assert config["z_min"] == 0.0 and 0.29 <= config["z_max"] <= 0.31
    assert md.has_weights(AUTOENCODER_WEIGHTS)
    assert [r["epoch"] for r in md.training_log()] == [0, 1, 2]


def test_resumed_run_ends_with_exactly_the_uninterrupted_weights(synthetic_store, uninterrupted,
                                                                  tmp_path, monkeypatch):
    md_full, _ = uninterrupted
    calls = {"n": 0}
    original = AutoencoderTrainer._run_epoch

    def dies_in_epoch_2(self, *args, **kwargs):  # train+val of epochs 0 and 1, then "killed"
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderTrainer, "_run_epoch", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        AutoencoderTrainer(**SETTINGS).fit(synthetic_store, tmp_path)
    monkeypatch.setattr(AutoencoderTrainer, "_run_epoch", original)
    assert [r["epoch"] for r in ModelDir(tmp_path).training_log()] == [0, 1]
    AutoencoderTrainer(**SETTINGS).fit(synthetic_store, tmp_path, resume=True)
    resumed = ModelDir(tmp_path).load_weights(AUTOENCODER_WEIGHTS)
    full = md_full.load_weights(AUTOENCODER_WEIGHTS)
    assert resumed.keys() == full.keys()
    for key in full:
        assert torch.equal(resumed[key], full[key]), key


def test_resume_with_other_settings_or_fresh_run_on_a_used_dir_is_refused(uninterrupted,
                                                                           synthetic_store):
    md, _ = uninterrupted
    with pytest.raises(FileExistsError, match="--resume"):
        AutoencoderTrainer(**SETTINGS).fit(synthetic_store, md.path)
    with pytest.raises(ValueError, match="seed was 7"):
        AutoencoderTrainer(**{**SETTINGS, "seed": 8}).fit(synthetic_store, md.path, resume=True)


def test_bad_objects_are_skipped_with_a_warning_and_the_loss_stays_finite(tmp_path, caplog,
                                                                          make_store):
    store = make_store(n=64, seed=2)
    train = np.flatnonzero(np.asarray(store.meta["SPLIT"]) == "train")
    store.ivar[train[0]] = 0                 # no valid pixel
    store.flux[train[1], 10:20] = np.nan     # NaN flux on valid pixels
    store.meta["Z"][train[2]] = np.nan       # unknown redshift
    store.meta["Z"][train[3]] = 5.0          # far outside the model range
    caplog.set_level(logging.WARNING, logger="specsift")
    trainer = AutoencoderTrainer(**{**SETTINGS, "epochs": 2, "phase1_fraction": 0.5},
                                 z_range=(0.0, 0.3)).fit(store, tmp_path)
    assert all(np.isfinite(r["train_loss"]) for r in trainer.history_)
    assert trainer.history_[0]["train_n"] == len(train) - 4
    text = caplog.text
    assert "no valid pixels" in text and "non-finite" in text and "outside the model range" in text


def test_redshift_range_ignores_a_few_catastrophic_redshifts():
    z = np.concatenate([np.linspace(0.01, 0.55, 5000), [2.5, np.nan]])
    assert redshift_range(z) == (0.0, 0.55)
    assert redshift_range(np.array([-0.001, 0.0005, 0.001])) == (-0.01, 0.01)


def test_decoder_phase_keeps_the_encoder_and_refits_the_decoder(synthetic_store, uninterrupted,
                                                                tmp_path):
    md_two_phase, _ = uninterrupted
    trainer = AutoencoderTrainer(**{**SETTINGS, "decoder_epochs": 2}).fit(synthetic_store, tmp_path)
    start, *epochs = trainer.history_[-3:]
    # the start record names the epoch whose weights the phase began with: phase 2's best
    assert start["epoch"] == kept_epoch(trainer.history_[:-3])["epoch"]
    assert start["start"] and [r["phase"] for r in (start, *epochs)] == ["decoder"] * 3
    before = md_two_phase.load_weights(AUTOENCODER_WEIGHTS)
    after = ModelDir(tmp_path).load_weights(AUTOENCODER_WEIGHTS)
    encoder = [k for k in before if k.startswith("encoder.")]
    decoder = [k for k in before if k.startswith("decoder.")]
    assert encoder and decoder
    assert all(torch.equal(before[k], after[k]) for k in encoder)  # same seed: same two phases
    # the phase keeps its incoming weights unless an epoch beats them on validation
    kept = kept_epoch(trainer.history_)
    assert kept["val_selection"] == min(r["val_selection"] for r in (start, *epochs))
    assert all(torch.equal(before[k], after[k]) for k in decoder) == bool(kept.get("start"))
    assert all(p.requires_grad for p in trainer.model_.parameters())  # nothing left frozen


def test_the_kept_epoch_is_chosen_with_misfits_capped():
    # an epoch whose plain loss is lower only because one misfit happened to fit better is not
    # kept; logs from before the cap fall back to the plain loss
    history = [{"epoch": 0, "phase": "fidelity", "val_loss": 1.39, "val_selection": 0.56},
               {"epoch": 1, "phase": "fidelity", "val_loss": 1.61, "val_selection": 0.52}]
    assert kept_epoch(history)["epoch"] == 1
    assert kept_epoch([{k: v for k, v in r.items() if k != "val_selection"}
                       for r in history])["epoch"] == 0


def test_the_selection_loss_caps_each_object_at_the_cap(synthetic_store, tmp_path):
    def first_record(cap, out):
        trainer = AutoencoderTrainer(**{**SETTINGS, "epochs": 1, "selection_cap": cap})
        return trainer.fit(synthetic_store, tmp_path / out).history_[0]

    above = first_record(1e12, "above")   # a cap above every object: the plain loss
    assert above["val_selection"] == pytest.approx(above["val_loss"], rel=1e-6)
    capped = first_record(2.0, "capped")  # the synthetic fits after one epoch are at chi2 ~5
    assert capped["val_loss"] == pytest.approx(above["val_loss"], rel=1e-6)  # same training
    assert capped["val_selection"] < 0.9 * capped["val_loss"]
    assert capped["val_reduced_chi2"] > 2.0


def test_auto_batch_size_gives_small_samples_enough_steps():
    assert auto_batch_size(1032) == 32          # the demo's stars: 33 steps an epoch
    assert auto_batch_size(14000) == 128        # a survey sample keeps the largest batch
    assert auto_batch_size(100) == 16
    assert all(auto_batch_size(n) in (16, 32, 64, 128) for n in range(1, 20000, 97))


@pytest.mark.parametrize("warmup, peak_epoch", [(0.25, 0), (0.75, 2)])
def test_the_learning_rate_peaks_after_the_warmup_fraction_of_phase_1(synthetic_store, tmp_path,
                                                                     warmup, peak_epoch):
    settings = {**SETTINGS, "epochs": 4, "phase1_fraction": 1.0, "warmup_fraction": warmup}
    history = AutoencoderTrainer(**settings).fit(synthetic_store, tmp_path).history_
    assert [r["phase"] for r in history] == ["fidelity"] * 4
    assert int(np.argmax([r["lr"] for r in history])) == peak_epoch
