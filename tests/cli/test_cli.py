from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from training_gate_cli import cli, demo


def test_demo_runs_four_jobs_and_exits_zero_when_all_end_as_designed(
    synthesized: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
):
    # What each path does is proved by tests/scenarios; this is the demo's own contract.
    monkeypatch.setattr(demo, "synthesize", lambda: synthesized)
    assert cli.main(["demo", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and [job["as_designed"] for job in report["jobs"]] == [True] * 4
    assert [(job["status"], job["error"]) for job in report["jobs"]] == [
        ("SUCCEEDED", None),
        ("FAILED", "ModelRejected"),
        ("SUCCEEDED", None),
        ("FAILED", "TrainingJobFailed"),
    ]
    # The XGBoost job beside the scikit-learn ones: registered on the metrics XGBoost logs.
    xgboost = report["jobs"][2]
    assert xgboost["job"].startswith("iris-xgboost-") and xgboost["model_package_arn"]


def test_demo_exits_non_zero_when_a_job_does_not_end_as_designed(synthesized: Path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "synthesize", lambda: synthesized)
    original = demo.scenarios

    def one_wrong_expectation(stamp: str):
        first = original(stamp)[0]
        return [demo.Scenario(**{**first.__dict__, "expected_status": "FAILED"})]

    monkeypatch.setattr(demo, "scenarios", one_wrong_expectation)
    assert cli.main(["demo", "--no-color"]) == 1
    assert "NOT as designed" in capsys.readouterr().out


def test_usage_errors_exit_2_with_a_message_on_stderr(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["frobnicate"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "sagemaker-logs"


def test_metrics_reads_one_file_per_host_with_the_jobs_definitions(tmp_path, capsys):
    case = CORPUS / "A3_adv_multihost_pytorch_mnist"
    assert (
        cli.main(
            [
                "metrics",
                str(case / "streams" / "algo-1.txt"),
                str(case / "streams" / "algo-2.txt"),
                "--metric-definitions",
                str(case / "metric_definitions.json"),
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    expected = json.loads((case / "expected_per_stream.json").read_text())
    assert out["metrics"]["train:loss"] == expected["algo-1"]["train:loss"]["value"]
    hosts = {d["host"]: d["value"] for d in out["details"] if d["original_name"] == "train:loss"}
    assert hosts == {
        "algo-1": expected["algo-1"]["train:loss"]["value"],
        "algo-2": expected["algo-2"]["train:loss"]["value"],
    }
    assert set(out["details"][0]) == {"name", "original_name", "value", "source", "host", "matches"}


def test_metrics_splits_lines_on_newline_only(tmp_path, capsys):
    log = tmp_path / "algo-1.txt"
    log.write_bytes(b"progress\r val_accuracy: 0.5\rmore\nval_loss: 0.25\n")
    assert cli.main(["metrics", str(log), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["metrics"] == {"accuracy": 0.5, "loss": 0.25}


@pytest.mark.parametrize(
    ("definitions", "message"),
    [
        ('{"Name": "auc"}', "must be a JSON list"),
        ("not json", "not valid JSON"),
    ],
)
def test_metrics_bad_definitions_exit_2_naming_the_problem(tmp_path, capsys, definitions, message):
    (tmp_path / "defs.json").write_text(definitions)
    (tmp_path / "algo-1.txt").write_text("x\n")
    code = cli.main(["metrics", str(tmp_path / "algo-1.txt"), "--metric-definitions", str(tmp_path / "defs.json")])
    assert code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("regex", ["(", "<><><><><><>"])
def test_metrics_definitions_sagemaker_accepts_are_a_warning_not_an_error(tmp_path, capsys, regex):
    # SageMaker accepts any 1-500 character regex; one the gate cannot apply just records no data.
    (tmp_path / "defs.json").write_text(json.dumps([{"Name": "auc", "Regex": regex}]))
    (tmp_path / "algo-1.txt").write_text("auc: 0.9\nval_auc: 0.8\n")
    code = cli.main(["metrics", str(tmp_path / "algo-1.txt"), "--metric-definitions", str(tmp_path / "defs.json")])
    assert code == 0
    out = capsys.readouterr().out
    assert "warning: MetricDefinitions: metric 'auc'" in out and "0.8" not in out


def test_metrics_missing_log_file_exits_2(tmp_path, capsys):
    assert cli.main(["metrics", str(tmp_path / "nope.txt")]) == 2
    assert "log file not found" in capsys.readouterr().err


def test_inspect_passes_a_good_artifact_and_prints_the_documented_json(tmp_path, capsys):
    from training_gate_cli.artifacts import iris_model_joblib, pack_model_tar_gz

    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(pack_model_tar_gz({"model.joblib": iris_model_joblib()}))
    sample = tmp_path / "sample.json"
    sample.write_text("[[5.1, 3.5, 1.4, 0.2]]")
    assert cli.main(["inspect", str(artifact), "--sample-input", str(sample), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "pass" and out["model"]["class"] == "Pipeline"
    assert out["artifact"]["bytes"] == artifact.stat().st_size and len(out["artifact"]["sha256"]) == 64


def test_inspect_rejects_a_hostile_artifact_with_exit_1(tmp_path, capsys):
    import io

    import joblib

    from training_gate_cli.artifacts import pack_model_tar_gz

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "ran"),))

    buffer = io.BytesIO()
    joblib.dump(Payload(), buffer)
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(pack_model_tar_gz({"model.joblib": buffer.getvalue()}))
    assert cli.main(["inspect", str(artifact)]) == 1
    assert "refused global 'posix.system'" in capsys.readouterr().out
    assert not (tmp_path / "ran").exists()


def test_inspect_an_artifact_with_no_sklearn_model_exits_3_like_inconclusive(tmp_path, capsys):
    from training_gate_cli.artifacts import pack_model_tar_gz

    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(pack_model_tar_gz({"model.pmml": b'<?xml version="1.0"?>\n<PMML version="4.4">'}))
    assert cli.main(["inspect", str(artifact), "--json"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "skip"
    assert [c["status"] for c in out["checks"] if c["name"] == "find_model"] == ["skipped"]


def test_inspect_missing_file_is_a_failed_locate_check(tmp_path, capsys):
    assert cli.main(["inspect", str(tmp_path / "none.tar.gz"), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["checks"][0]["status"] == "fail"


@pytest.mark.parametrize(
    ("metrics", "code"),
    [
        ({"Accuracy": 0.95, "Precision": 0.9, "Recall": 0.9, "F1-Score": 0.9}, 0),
        ({"Accuracy": 0.90, "Precision": 0.9, "Recall": 0.9, "F1-Score": 0.9}, 1),
        ({"Accuracy": 0.95, "Precision": 0.9, "Recall": 0.9}, 3),
        ({"metrics": {"accuracy": 0.95, "precision": 0.9, "recall": 0.9, "f1": None}}, 1),
    ],
    ids=["pass", "equal-to-threshold-fails", "missing-is-inconclusive", "null-is-not-finite"],
)
def test_evaluate_applies_the_shipped_policy(tmp_path, capsys, metrics, code):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(metrics))
    assert cli.main(["evaluate", "--metrics", str(path)]) == code
    assert "| Metric | Value | Threshold | Champion | Source | Result |" in capsys.readouterr().out


def test_evaluate_bad_policy_exits_2_naming_the_field(tmp_path, capsys):
    (tmp_path / "m.json").write_text('{"accuracy": 0.9}')
    (tmp_path / "p.json").write_text('{"rules": [{"metric": "accuracy", "operator": "~", "threshold": 1}]}')
    assert cli.main(["evaluate", "--metrics", str(tmp_path / "m.json"), "--policy", str(tmp_path / "p.json")]) == 2
    assert "rules.0.operator" in capsys.readouterr().err


def test_evaluate_reads_a_yaml_policy_and_compares_with_a_champion(tmp_path, capsys):
    (tmp_path / "m.json").write_text('{"metrics": {"accuracy": 0.93, "val_loss": 0.30}}')
    (tmp_path / "policy.yaml").write_text(
        "version: 1\n"
        "rules:\n"
        "  - {metric: accuracy, operator: '>', threshold: 0.9}\n"
        "  - {metric: loss, operator: '<', threshold: 0.5}\n"
        "champion: {enabled: true, min_absolute_change: 0.01}\n"
    )
    (tmp_path / "champion.json").write_text('{"accuracy": 0.92, "loss": 0.25}')
    args = ["evaluate", "--metrics", str(tmp_path / "m.json"), "--policy", str(tmp_path / "policy.yaml")]
    assert cli.main([*args, "--champion", str(tmp_path / "champion.json")]) == 1
    out = capsys.readouterr().out
    assert "| accuracy | 0.93 | > 0.9 | 0.92 | log | PASS |" in out
    assert "loss 0.3 vs champion 0.25 (lower is better)" in out
    assert cli.main(args) == 0  # no champion given: absolute thresholds only
