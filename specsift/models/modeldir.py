"""One directory = one complete model: ``config.json``, safetensors weights, sha256, training log.

Weights are loaded without pickle (safetensors) and only after their sha256 matches the one
recorded in ``config.json`` when they were written, so a truncated copy or a swapped file is
caught before it produces silently wrong scores. The flow (``specsift.models.flow``) is saved
into the same directory with :meth:`ModelDir.save_weights`.

The training checkpoint gets the same check: its sha256 is written in a one-line header of the
file itself (the checkpoint is rewritten every epoch, and one atomic rename must replace data and
hash together), and it is loaded with ``torch.load(weights_only=True)`` only once that matches.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import torch

from ..atomic import atomic_path, sha256_file
from ..errors import SpecsiftInputError
from ..runtime import DEFAULT_DEVICE, resolve_device

__all__ = ["ModelDir", "CONFIG_NAME", "LOG_NAME", "CHECKPOINT_NAME", "AUTOENCODER_WEIGHTS"]

CONFIG_NAME = "config.json"
LOG_NAME = "training_log.jsonl"
CHECKPOINT_NAME = "checkpoint.pt"
AUTOENCODER_WEIGHTS = "autoencoder"
FORMAT_VERSION = 1
CHECKPOINT_MAGIC = b"specsift-checkpoint 1 sha256="


class ModelDir:
    """A model directory; it need not exist yet when it is about to be written.

    Example:
        >>> import tempfile
        >>> md = ModelDir(tempfile.mkdtemp())
        >>> md.save_weights("demo", {"w": torch.ones(2)}, extra_config={"latents": 2})
        >>> md.load_weights("demo")["w"].tolist(), md.config["latents"]
        ([1.0, 1.0], 2)
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"ModelDir({str(self.path)!r})"

    # -- config ---------------------------------------------------------------------------------

    @property
    def config(self) -> dict:
        """The parsed ``config.json`` ({} for a directory that holds no model yet)."""
        file = self.path / CONFIG_NAME
        if not file.exists():
            return {}
        try:
            return json.loads(file.read_text())
        except json.JSONDecodeError as error:
            raise SpecsiftInputError(f"config.json is not valid JSON ({error})", path=file) from None

    def update_config(self, values: dict) -> None:
        """Merge ``values`` into ``config.json`` (written atomically)."""
        config = self.config
        config.setdefault("format_version", FORMAT_VERSION)
        config.update(values)
        with atomic_path(self.path / CONFIG_NAME) as tmp:
            tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    # -- weights --------------------------------------------------------------------------------

    def weights_path(self, name: str) -> Path:
        return self.path / f"{name}.safetensors"

    def has_weights(self, name: str) -> bool:
        return name in self.config.get("weights", {}) and self.weights_path(name).exists()

    def save_weights(self, name: str, state_dict: dict, extra_config: dict | None = None) -> None:
        """Write ``<name>.safetensors`` atomically and record its sha256 (and ``extra_config``)."""
        from safetensors.torch import save_file

        tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
        target = self.weights_path(name)
        with atomic_path(target) as tmp:
            save_file(tensors, str(tmp))
            digest = sha256_file(tmp)
        weights = self.config.get("weights", {})
        weights[name] = {"file": target.name, "sha256": digest}
        self.update_config({**(extra_config or {}), "weights": weights})

    def load_weights(self, name: str) -> dict:
        """Verify ``<name>.safetensors`` against the recorded sha256, then load it into host memory
        (the caller moves what it needs to its device)."""
        from safetensors.torch import load_file

        record = self.config.get("weights", {}).get(name)
        if record is None:
            raise SpecsiftInputError(f"model directory holds no '{name}' weights", path=self.path)
        file = self.path / record["file"]
        if not file.exists():
            raise SpecsiftInputError("weights file is missing", path=file)
        digest = sha256_file(file)
        if digest != record["sha256"]:
            raise SpecsiftInputError(f"sha256 {digest[:12]}... does not match the recorded "
                                     f"{record['sha256'][:12]}...: the weights were modified or "
                                     "truncated after training", path=file)
        try:
            return load_file(str(file), device="cpu")
        except Exception as error:  # SafetensorError: a damaged header under a matching hash
            raise SpecsiftInputError(f"not a readable safetensors file ({error}); its recorded "
                                     "sha256 matches, so it was written or recorded wrongly: "
                                     "retrain or restore it", path=file) from None

    # -- the autoencoder --------------------------------------------------------------------------

    def load_autoencoder(self, device: str | torch.device = DEFAULT_DEVICE):
        """Rebuild the trained :class:`~specsift.models.autoencoder.SpectrumAutoencoder` (eval mode)."""
        from .autoencoder import SpectrumAutoencoder
        from .instrument import Instrument

        config = self.config
        if "architecture" not in config:
            raise SpecsiftInputError("not a trained autoencoder directory (no architecture in "
                                     "config.json); run `specsift train-ae`", path=self.path)
        state = self.load_weights(AUTOENCODER_WEIGHTS)
        lsf = state.get("decoder.lsf")
        instrument = Instrument(state["wave_obs"].numpy(), mask=state["fixed_mask"].numpy(),
                                lsf=None if lsf is None else lsf.reshape(-1).numpy(),
                                name=config.get("survey", ""))
        model = SpectrumAutoencoder(instrument, config["latents"], config["z_min"], config["z_max"],
                                    **config["architecture"])
        model.load_state_dict(state)
        return model.to(resolve_device(device)).eval()

    # -- training artefacts -------------------------------------------------------------------------

    @property
    def checkpoint_path(self) -> Path:
        return self.path / CHECKPOINT_NAME

    def save_checkpoint(self, state: dict) -> None:
        """Write the training checkpoint atomically, its sha256 in the file's first line."""
        buffer = io.BytesIO()
        torch.save(state, buffer)
        payload = buffer.getvalue()
        digest = hashlib.sha256(payload).hexdigest().encode()
        with atomic_path(self.checkpoint_path) as tmp:
            tmp.write_bytes(CHECKPOINT_MAGIC + digest + b"\n" + payload)

    def load_checkpoint(self) -> dict:
        """The checkpoint's state, only after its sha256 matches; damage is a one-line error.

        Example:
            >>> import tempfile
            >>> md = ModelDir(tempfile.mkdtemp())
            >>> md.save_checkpoint({"epoch": 3, "w": torch.zeros(4)})
            >>> md.load_checkpoint()["epoch"]
            3
            >>> data = bytearray(md.checkpoint_path.read_bytes())
            >>> data[-200:-136] = bytes(64)  # 64 bytes flipped near the end
            >>> _ = md.checkpoint_path.write_bytes(bytes(data))
            >>> md.load_checkpoint()
            Traceback (most recent call last):
            ...
            specsift.errors.SpecsiftInputError: .../checkpoint.pt: the training checkpoint is damaged ...
        """
        file = self.checkpoint_path
        try:
            data = file.read_bytes()
        except OSError as error:
            raise SpecsiftInputError(f"cannot read the training checkpoint ({error.strerror})",
                                     path=file) from None
        head, _, payload = data.partition(b"\n")
        if not head.startswith(CHECKPOINT_MAGIC):
            raise SpecsiftInputError("not a specsift training checkpoint (no sha256 header; "
                                     "written by an older specsift?); remove it to start over",
                                     path=file)
        recorded = head[len(CHECKPOINT_MAGIC):].decode("ascii", "replace")
        digest = hashlib.sha256(payload).hexdigest()
        if digest != recorded:
            raise SpecsiftInputError(f"the training checkpoint is damaged (sha256 {digest[:12]}... "
                                     f"does not match the recorded {recorded[:12]}...); remove it "
                                     "to start over, or restore it", path=file)
        try:
            return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
        except Exception as error:  # a matching hash over unreadable data: written wrongly
            raise SpecsiftInputError(f"cannot read the training checkpoint ({error}); remove it "
                                     "to start over", path=file) from None

    @property
    def log_path(self) -> Path:
        return self.path / LOG_NAME

    def training_log(self) -> list[dict]:
        """The per-epoch records of ``training_log.jsonl`` ([] if there are none)."""
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line]

    def write_training_log(self, records: list[dict]) -> None:
        with atomic_path(self.log_path) as tmp:
            tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
