"""A model directory loads only weights whose sha256 matches the one recorded at training."""

import numpy as np
import pytest
import torch

from specsift.errors import SpecsiftInputError
from specsift.models.autoencoder import SpectrumAutoencoder
from specsift.models.configs import architecture
from specsift.models.instrument import Instrument
from specsift.models.modeldir import AUTOENCODER_WEIGHTS, ModelDir


def _save_tiny_autoencoder(path):
    arch = architecture("small", channels=[4, 8, 8], decoder_hidden=[16], encoder_hidden=[8],
                        rest_step=20.0)
    ae = SpectrumAutoencoder(Instrument(np.linspace(4000.0, 8000.0, 300)), 3, 0.0, 0.3, **arch)
    md = ModelDir(path)
    md.save_weights(AUTOENCODER_WEIGHTS, ae.state_dict(),
                    extra_config={"latents": 3, "z_min": 0.0, "z_max": 0.3, "architecture": arch})
    return md, ae.eval()


def test_saved_autoencoder_reloads_with_identical_outputs(tmp_path):
    md, ae = _save_tiny_autoencoder(tmp_path / "m")
    loaded = md.load_autoencoder()
    flux, ivar, z = torch.randn(2, 300), torch.ones(2, 300), torch.tensor([0.05, 0.25])
    with torch.no_grad():
        assert torch.equal(ae.decode(ae.encode(flux, ivar, z), z),
                           loaded.decode(loaded.encode(flux, ivar, z), z))
    assert len(md.config["weights"][AUTOENCODER_WEIGHTS]["sha256"]) == 64


def test_tampered_weights_file_is_refused(tmp_path):
    md, _ = _save_tiny_autoencoder(tmp_path / "m")
    weights = md.weights_path(AUTOENCODER_WEIGHTS)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(SpecsiftInputError, match="sha256") as error:
        md.load_autoencoder()
    assert str(weights) in str(error.value)


def test_missing_or_foreign_weights_name_the_problem(tmp_path):
    md, _ = _save_tiny_autoencoder(tmp_path / "m")
    with pytest.raises(SpecsiftInputError, match="no 'flow' weights"):
        md.load_weights("flow")
    with pytest.raises(SpecsiftInputError, match="not a trained autoencoder"):
        ModelDir(tmp_path / "empty").load_autoencoder()


def test_extra_config_of_a_second_model_is_merged_not_overwritten(tmp_path):
    md, _ = _save_tiny_autoencoder(tmp_path / "m")
    md.save_weights("flow", {"w": torch.zeros(3)}, extra_config={"flow": {"transforms": 2}})
    config = md.config
    assert config["flow"] == {"transforms": 2} and config["latents"] == 3
    assert set(config["weights"]) == {AUTOENCODER_WEIGHTS, "flow"}
    assert torch.equal(md.load_weights("flow")["w"], torch.zeros(3))
