"""PyTorch jobs through the whole gate on the local engine: a state_dict is judged by its bytes and
registered; a whole-model pickle is rejected and the owners told which class and how to fix it; a
TorchScript archive is inconclusive unless the group's policy opts in."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from tests.scenarios.paths import NOTIFIED_TAIL, REGISTERED_PATH
from tests.scenarios.test_gate_paths import GOOD_LOG, run_job, s3_json
from training_gate_cli.artifacts import pack_model_tar_gz
from training_gate_cli.local_engine import LocalGate
from training_gate_cli.local_engine.emulated import create_training_job

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "checkpoints"
MANIFEST = {m["name"]: m for m in json.loads((FIXTURES / "manifest.json").read_text())}


def artifact(name: str) -> bytes:
    return pack_model_tar_gz({f: (FIXTURES / name / f).read_bytes() for f in MANIFEST[name]["files"]})


def test_a_pytorch_state_dict_is_judged_by_its_bytes_and_registered(gate: LocalGate):
    result, notes = run_job(gate, "torch-good", log_lines=GOOD_LOG, artifact=artifact("torch-state-dict"))
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.states[-len(REGISTERED_PATH[3:]) :] == REGISTERED_PATH[3:]
    assert notes == []
    report = s3_json(result.output["report_uri"])
    checks = {c["name"]: c for c in report["inspection"]["checks"]}
    assert checks["load"]["status"] == "pass" and "67 parameters" in checks["load"]["detail"]
    assert checks["smoke_prediction"]["status"] == "skipped"
    assert report["inspection"]["recognition"]["framework"] == "PyTorch"
    assert [f["code"] for f in report["inspection"]["findings"]] == ["NO_SMOKE_PREDICTION"]
    package = boto3.client("sagemaker").describe_model_package(ModelPackageName=result.output["model_package_arn"])
    metadata = package["CustomerMetadataProperties"]
    assert metadata["gate_decision"] == "pass"
    assert (metadata["model_framework"], metadata["model_format"], metadata["model_parameters"]) == (
        "pytorch",
        "torch-zip",
        "67",
    )
    assert report["inspection"]["model"]["details"]["dtypes"] == "float32=67"
    assert (metadata["model_reader"], metadata["model_dtypes"], metadata["model_bytes"]) == (
        "training-gate",
        "float32=67",
        "268",
    )


def test_a_whole_model_pickle_is_rejected_and_the_owners_are_told_the_class_and_the_fix(gate: LocalGate):
    result, notes = run_job(gate, "torch-pickled-net", log_lines=GOOD_LOG, artifact=artifact("torch-whole-model"))
    assert (result.status, result.error) == ("FAILED", "ModelRejected")
    assert result.states[-7:] == [*NOTIFIED_TAIL, "ModelRejected"]
    (note,) = notes
    assert "artifact check load failed" in note["Message"]
    assert "__main__.Net" in note["Message"] and "torch.save(model.state_dict(), path)" in note["Message"]
    assert "RegisterModel" not in result.states


def test_torchscript_is_inconclusive_and_nothing_is_registered(gate: LocalGate):
    result, notes = run_job(gate, "torch-scripted", log_lines=GOOD_LOG, artifact=artifact("torchscript"))
    assert (result.status, result.error) == ("FAILED", "ModelInconclusive")
    (note,) = notes
    assert "[ARTIFACT_INCONCLUSIVE]" in note["Message"] and "artifact_checks.torchscript" in note["Message"]
    assert "RegisterModel" not in result.states


def test_a_policy_that_opts_in_lets_torchscript_pass_with_its_code_reported(gate: LocalGate):
    create_training_job(gate, "torch-scripted-ok", log_lines=GOOD_LOG, artifact=artifact("torchscript"))
    result = gate.run(
        {"TrainingJobName": "torch-scripted-ok", "policy_overrides": {"artifact_checks": {"torchscript": "pass"}}},
        name="scripted-opt-in",
    )
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    report = s3_json(result.output["report_uri"])
    assert any("TorchScript archive" in w for w in report["decision"]["warnings"])
