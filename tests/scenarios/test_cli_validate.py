"""`training-gate validate` against the emulated account: the same checks, no state machine."""

from __future__ import annotations

import json

import boto3
import pytest

from training_gate_cli import cli
from training_gate_cli.local_engine import LocalGate
from training_gate_cli.local_engine.emulated import create_training_job, training_log

GOOD_LOG = training_log(0.912, 0.905, 0.908, 0.901, 0.905)


def validate(capsys, *args: str) -> tuple[int, dict]:
    code = cli.main(["validate", *args, "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def test_dry_run_decides_without_registering(gate: LocalGate, iris_artifact: bytes, capsys):
    create_training_job(gate, "cli-good", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    code, view = validate(capsys, "--job", "cli-good")
    assert code == 0 and view["outcome"] == "pass" and view["applied"] is False
    assert "| accuracy (validation:accuracy) | 0.905 | > 0.9 | - | log | PASS |" in view["table"]
    assert view["report_uri"] is None
    sagemaker = boto3.client("sagemaker")
    assert not sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]


def test_apply_registers_a_passing_model(gate: LocalGate, iris_artifact: bytes, capsys):
    create_training_job(gate, "cli-apply", log_lines=GOOD_LOG, artifact=iris_artifact, statuses=())
    code, view = validate(capsys, "--job", "cli-apply", "--apply", "--reports-bucket", gate.reports_bucket)
    assert code == 0
    assert view["model_package_arn"].endswith("model-package/training-gate-models/1")
    assert view["report_uri"].startswith(f"s3://{gate.reports_bucket}/reports/cli-apply/")


def test_rejected_job_exits_1_with_the_reasons(gate: LocalGate, iris_artifact: bytes, capsys):
    create_training_job(
        gate, "cli-weak", log_lines=training_log(0.7, 0.7, 0.7, 0.7, 0.7), artifact=iris_artifact, statuses=()
    )
    code, view = validate(capsys, "--job", "cli-weak")
    assert code == 1 and "accuracy 0.700 not > 0.9" in view["reasons"][0]


def test_a_job_with_no_sklearn_model_exits_3_and_applying_notifies_no_owner(gate: LocalGate, capsys):
    from training_gate_cli.artifacts import pack_model_tar_gz

    artifact = pack_model_tar_gz({"model.pmml": b'<?xml version="1.0"?>\n<PMML version="4.4">'})
    create_training_job(gate, "cli-pmml", log_lines=GOOD_LOG, artifact=artifact, statuses=())
    code, view = validate(capsys, "--job", "cli-pmml")
    assert code == 3 and view["outcome"] == "skipped"
    assert view["reasons"][0].startswith("no scikit-learn model in the artifact, nothing was judged")
    code, view = validate(
        capsys,
        "--job",
        "cli-pmml",
        "--apply",
        "--reports-bucket",
        gate.reports_bucket,
        "--topic-arn",
        gate.account.owners_topic_arn,
    )
    assert code == 3 and "notified" not in view and "model_package_arn" not in view
    assert list(gate.notifications()) == []


def test_unknown_job_and_apply_without_bucket_are_usage_errors(gate: LocalGate, capsys):
    assert cli.main(["validate", "--job", "nope"]) == 2
    assert "training job 'nope' not found" in capsys.readouterr().err
    assert cli.main(["validate", "--job", "nope", "--apply"]) == 2
    assert "--apply needs --reports-bucket" in capsys.readouterr().err


@pytest.mark.parametrize("flags", [["--dry-run", "--apply"]])
def test_dry_run_and_apply_exclude_each_other(capsys, flags):
    with pytest.raises(SystemExit) as exited:
        cli.main(["validate", "--job", "x", *flags])
    assert exited.value.code == 2
