"""Errors: bad input and unwritable outputs are one line (exit 2), found before any work;
an internal bug shows its traceback; ``-v`` shows the traceback of input errors too."""

from __future__ import annotations

import logging

import pytest

from specsift.cli import info
from specsift.cli.main import main
from specsift.models.training import AutoencoderTrainer


@pytest.fixture()
def blocked(tmp_path):
    """An output path under a regular file: unwritable even for root."""
    (tmp_path / "a-file").write_text("")
    return tmp_path / "a-file"


def _one_error_line(capsys, *names):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "cannot write here" in lines[0] and all(n in lines[0] for n in names), err


def test_unwritable_outputs_are_one_line_before_any_work(scoring_setup, blocked, tmp_path,
                                                         capsys, monkeypatch):
    s = scoring_setup
    out = blocked / "catalog.parquet"
    assert main(["-q", "score", str(s.store), "--galaxy-model", str(s.galaxy), "--star-model",
                 str(s.star), "--out", str(out), "--device", "cpu", "--batch-size", "64"]) == 2
    _one_error_line(capsys, str(out))
    assert main(["-q", "encode", str(s.store), "--model", str(s.galaxy), "--out",
                 str(blocked / "latents.fits"), "--device", "cpu"]) == 2
    _one_error_line(capsys, "latents.fits")
    trained = []
    monkeypatch.setattr(AutoencoderTrainer, "fit", lambda self, *a, **k: trained.append(1))
    assert main(["-q", "train-ae", str(s.store), "--out", str(blocked / "model"),
                 "--device", "cpu"]) == 2
    _one_error_line(capsys, "model")
    assert trained == []  # no epoch is spent before the output is found unwritable
    catalog = tmp_path / "catalog.parquet"
    assert main(["-q", "score", str(s.store), "--galaxy-model", str(s.galaxy), "--star-model",
                 str(s.star), "--out", str(catalog), "--device", "cpu", "--batch-size", "64"]) == 0
    capsys.readouterr()
    assert main(["-q", "gallery", str(catalog), "--top", "2", "--out", str(blocked / "gallery"),
                 "--device", "cpu"]) == 2
    _one_error_line(capsys, "gallery")


def test_internal_bug_shows_its_traceback_and_v_shows_input_errors(tmp_path, capsys,
                                                                   monkeypatch, caplog):
    def bug(args):
        raise ValueError("an internal bug, not bad input")

    monkeypatch.setattr(info, "run", bug)
    with pytest.raises(ValueError, match="internal bug"):
        main(["info", str(tmp_path)])  # propagates: Python prints the traceback, exit 1
    monkeypatch.undo()
    with caplog.at_level(logging.ERROR, logger="specsift"):
        assert main(["-v", "info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a specsift store" in err and "Traceback" in err
