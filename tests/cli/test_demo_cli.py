"""The demo's step runner: steps skipped when done, failures named, pipelines side by side."""

from __future__ import annotations

import threading
import time

import pytest

from specsift.cli import demo


def _info(store, output):
    return demo._Step("info", output, ["info", str(store)])


def test_pipelines_run_in_child_processes_with_prefixed_logs(scoring_setup, tmp_path, capsys):
    pipelines = {"galaxy": [_info(scoring_setup.store, tmp_path / "a")],
                 "star": [_info(scoring_setup.store, tmp_path / "b")]}
    demo.run_side_by_side(pipelines, cores=2)
    relayed = capsys.readouterr().err.splitlines()
    for label in pipelines:  # each child's output reaches the user, labelled by its pipeline
        assert any(line.startswith(f"[{label}] store ") for line in relayed)


def test_a_failing_step_stops_the_demo_and_is_named(tmp_path):
    missing = tmp_path / "no-such-store"
    pipelines = {"galaxy": [_info(missing, tmp_path / "a")],
                 "star": [_info(missing, tmp_path / "b")]}
    with pytest.raises(SystemExit, match="demo step 'info' failed \\(exit 2\\)"):
        demo.run_side_by_side(pipelines, cores=2)


def test_a_finished_step_is_skipped(tmp_path, caplog):
    caplog.set_level("INFO", logger="specsift.demo")
    done = tmp_path / "done"
    done.mkdir()
    # the store does not exist: running the step would fail
    demo.run_side_by_side({"galaxy": [_info(tmp_path / "no-such-store", done)]}, cores=2)
    assert any("exists, skipping" in r.message for r in caplog.records)


def test_one_core_runs_the_pipelines_in_this_process(scoring_setup, tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "_run_child", lambda *a: pytest.fail("no child on one core"))
    pipelines = {"galaxy": [_info(scoring_setup.store, tmp_path / "a")],
                 "star": [_info(scoring_setup.store, tmp_path / "b")]}
    demo.run_side_by_side(pipelines, cores=1)



def test_a_step_started_after_the_other_pipeline_ended_gets_all_the_cores(tmp_path,
                                                                            monkeypatch):
    calls, both_started = [], threading.Barrier(2, timeout=10)

    def child(argv, label, threads):
        calls.append((label, argv[-1], threads))
        if argv[-1] in ("only", "first"):  # the first steps of both run at the same time
            both_started.wait()
        if argv[-1] == "first":  # and outlasts pipeline "a"
            time.sleep(0.5)
        return 0

    monkeypatch.setattr(demo, "_run_child", child)
    steps = {name: demo._Step(name, tmp_path / name, ["info", name])
             for name in ("only", "first", "second")}
    demo.run_side_by_side({"a": [steps["only"]], "b": [steps["first"], steps["second"]]},
                          cores=4)
    assert sorted(calls) == [("a", "only", 2), ("b", "first", 2), ("b", "second", 4)]
