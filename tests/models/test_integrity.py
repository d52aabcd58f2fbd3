"""Model files are trusted only after their sha256 matches, and damage is a one-line error:
training checkpoints as well as safetensors weights."""

from __future__ import annotations

import json

import pytest
import torch

from specsift import SpecsiftInputError
from specsift.models.modeldir import AUTOENCODER_WEIGHTS, CONFIG_NAME, ModelDir
from specsift.models.training import AutoencoderTrainer

TINY = {"channels": [8, 16, 16], "encoder_hidden": [16], "decoder_hidden": [32, 64],
        "rest_step": 10.0}
SETTINGS = dict(latents=3, widths=TINY, epochs=2, phase1_fraction=0.5, batch_size=16, lr=1e-2,
                seed=7, device="cpu", patience=10, decoder_epochs=0)


def test_resume_from_a_damaged_checkpoint_stops_and_writes_no_model(make_store, tmp_path,
                                                                    monkeypatch):
    store = make_store(n=48, pixels=120)
    original = AutoencoderTrainer._run_epoch
    calls = {"n": 0}

    def killed_after_the_first_epoch(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderTrainer, "_run_epoch", killed_after_the_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        AutoencoderTrainer(**SETTINGS).fit(store, tmp_path)
    monkeypatch.setattr(AutoencoderTrainer, "_run_epoch", original)
    md = ModelDir(tmp_path)
    data = bytearray(md.checkpoint_path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    md.checkpoint_path.write_bytes(bytes(data))
    with pytest.raises(SpecsiftInputError, match="checkpoint is damaged"):
        AutoencoderTrainer(**SETTINGS).fit(store, tmp_path, resume=True)
    assert not md.weights_path(AUTOENCODER_WEIGHTS).exists()


def test_safetensors_with_a_corrupt_header_but_a_matching_hash_is_an_input_error(tmp_path):
    from specsift.atomic import sha256_file

    md = ModelDir(tmp_path)
    md.save_weights("flow", {"w": torch.ones(3)})
    path = md.weights_path("flow")
    data = bytearray(path.read_bytes())
    data[8:16] = b"{garbage"  # the JSON header of safetensors starts at byte 8
    path.write_bytes(bytes(data))
    config = json.loads((tmp_path / CONFIG_NAME).read_text())
    config["weights"]["flow"]["sha256"] = sha256_file(path)  # recorded after the damage
    (tmp_path / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(SpecsiftInputError, match="not a readable safetensors file"):
        md.load_weights("flow")
