"""Built-in XGBoost jobs through the whole gate on the local engine, every call checked against its role: the
`xgboost-model` validated by the gate's parser, loaded by xgboost and smoke-tested; the job judged by what XGBoost
logged (validation:logloss, error, auc) under the container's own MetricDefinitions; the framework, format and
reader said in the report, the package's metadata, the decision event and the owners' message."""

from __future__ import annotations

import json

import boto3

from tests.conftest import FIXTURES
from tests.support.native_fixtures import NATIVE
from training_gate_cli.artifacts import iris_xgboost_model, pack_model_tar_gz
from training_gate_cli.demo import xgboost_log
from training_gate_cli.local_engine import LocalGate
from training_gate_cli.local_engine.emulated import create_training_job, state_change_event

# The built-in container's 36 MetricDefinitions, as a real job carries them.
DEFINITIONS = json.loads(
    (FIXTURES / "sagemaker-logs" / "03_xgboost_builtin_churn_error" / "metric_definitions.json").read_text()
)
ARTIFACT = pack_model_tar_gz({"xgboost-model": iris_xgboost_model()})


def s3_json(uri: str) -> dict:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())


def run(gate: LocalGate, name: str, log: list[str], artifact: bytes = ARTIFACT):
    job = create_training_job(gate, name, log_lines=log, artifact=artifact, metric_definitions=DEFINITIONS)
    return gate.run(gate.route_event(state_change_event(job, "Completed")), name=name)


def test_a_built_in_xgboost_job_is_judged_on_what_it_logged_and_registered_saying_what_it_is(gate: LocalGate):
    result = run(gate, "xgb-good", xgboost_log(0.105, 0.027, 0.996))

    assert result.states[-1] == "Registered", (result.error, result.cause)
    report = s3_json(result.output["report_uri"])
    assert report["schema_version"] == 4
    model = report["inspection"]["model"]
    assert (model["framework"], model["format"], model["reader"], model["bytes_validated"]) == (
        "xgboost",
        "ubjson",
        "xgboost",
        True,
    )
    assert model["details"]["objective"] == "binary:logistic"
    checks = {c["name"]: c for c in report["inspection"]["checks"]}
    assert "validated by the gate's own parser" in checks["load"]["detail"]
    assert checks["smoke_prediction"]["detail"].startswith("XGBoost: predict on 1 row(s) (configured sample input)")
    decision = report["decision"]
    assert decision["rules_from"] == "the gate's default rules for xgboost binary:logistic"
    assert [(r["original_name"], r["passed"]) for r in decision["rules"]] == [
        ("validation:logloss", True),
        ("validation:error", True),
        ("validation:auc", True),
    ]
    assert [r["metric"] for r in report["policy"]["rules"]] == ["logloss", "error", "auc"]

    package = boto3.client("sagemaker").describe_model_package(ModelPackageName=result.output["model_package_arn"])
    metadata = package["CustomerMetadataProperties"]
    assert (metadata["model_framework"], metadata["model_format"]) == ("xgboost", "ubjson")
    assert (
        metadata["model_reader"] == f"xgboost {model['reader_version']}" and metadata["model_bytes_validated"] == "true"
    )
    assert metadata["metric_error"] == "0.02700"

    (event,) = gate.decision_events()
    assert event["detail"]["model"]["framework"] == "xgboost"
    assert event["detail"]["model"]["writer_version"] == model["writer_version"]


def test_an_xgboost_model_no_better_than_chance_is_rejected_and_the_owners_told_what_it_is(gate: LocalGate):
    result = run(gate, "xgb-chance", xgboost_log(0.7, 0.52, 0.49))

    assert (result.status, result.error) == ("FAILED", "ModelRejected")
    (note,) = gate.notifications()
    assert note["Subject"].startswith("Model rejected: xgb-chance - logloss 0.70000 not < 0.693147")
    assert "Model: xgboost ubjson, Booster, written by" in note["Message"]
    assert "Rules: the gate's default rules for xgboost binary:logistic" in note["Message"]
    (event,) = gate.decision_events()
    assert event["detail"]["reason_codes"] == ["THRESHOLD_NOT_MET"] and len(event["detail"]["reasons"]) == 3
    assert event["detail"]["model"]["format"] == "ubjson"


def test_a_built_in_model_wider_than_the_sample_input_is_rejected_naming_the_setting(gate: LocalGate):
    # A 1.7-1 container's old binary model of five features; the deployment's sample rows have four.
    artifact = pack_model_tar_gz({"xgboost-model": (NATIVE / "xgboost" / "1.7.6" / "binary.model").read_bytes()})
    result = run(gate, "xgb-wide", xgboost_log(0.105, 0.027, 0.996), artifact)

    assert (result.status, result.error) == ("FAILED", "ModelRejected")
    report = s3_json(result.output["report_uri"]) if result.output else None
    (note,) = gate.notifications()
    assert "smoke_prediction failed" in note["Message"]
    assert "rows of 4 values, the model reads 5 features" in note["Message"]
    assert "old-binary" in note["Message"]
    assert report is None or report["inspection"]["model"]["format"] == "old-binary"
