from __future__ import annotations

import json
from pathlib import Path

import pytest

from training_gate_cli import cli, demo


def test_demo_runs_three_jobs_and_exits_zero_when_all_end_as_designed(
    synthesized: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setattr(demo, "synthesize", lambda: synthesized)
    assert cli.main(["demo", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    outcomes = [(job["status"], job["error"]) for job in report["jobs"]]
    assert outcomes == [("SUCCEEDED", None), ("FAILED", "ModelRejected"), ("FAILED", "TrainingJobFailed")]
    assert report["jobs"][0]["model_package_version"] == "1"
    assert report["jobs"][1]["notifications"][0]["subject"].startswith("Model rejected:")
    assert "Input contains NaN" in report["jobs"][2]["notifications"][0]["message"]


def test_demo_exits_non_zero_when_a_job_does_not_end_as_designed(synthesized: Path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "synthesize", lambda: synthesized)
    original = demo.scenarios

    def wrong_expectation(stamp: str):
        first, *rest = original(stamp)
        return [demo.Scenario(**{**first.__dict__, "expected_status": "FAILED"}), *rest]

    monkeypatch.setattr(demo, "scenarios", wrong_expectation)
    assert cli.main(["demo", "--no-color"]) == 1
    assert "NOT as designed" in capsys.readouterr().out


def test_usage_errors_exit_2_with_a_message_on_stderr(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["frobnicate"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
