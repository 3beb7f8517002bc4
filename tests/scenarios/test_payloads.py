"""Bounded state payloads at the largest inputs AWS allows.

Step Functions fails an execution whose state input or output passes 256 KiB with
States.DataLimitExceeded, which no Catch sees. The gate keeps every state under a 64 KiB budget
whatever the job: bulky data goes to S3 and the state carries its URI."""

from __future__ import annotations

import boto3

from training_gate.constants import STATE_PAYLOAD_BUDGET
from training_gate_cli.local_engine import LocalGate
from training_gate_cli.local_engine.emulated import create_training_job, write_log_stream

HOSTS = 64  # SageMaker's largest training cluster for one job
DEFINITIONS = 40  # MetricDefinitions per job
HYPERPARAMETERS = {f"hyperparameter-{i:03d}".ljust(256, "k"): "v" * 2500 for i in range(100)}
JUDGED = ["validation:accuracy", "validation:precision", "validation:recall", "validation:f1"]


def definitions() -> list[dict[str, str]]:
    names = JUDGED + [f"validation:custom_metric_{i:02d}" for i in range(DEFINITIONS - len(JUDGED))]
    # Long names and regexes, as users write them: each definition near SageMaker's limits.
    padding = "(?:" + "never-in-a-log-line-" * 15 + ")?"
    return [{"Name": name, "Regex": rf"{padding}{name.split(':')[1]}[ =:]+([0-9.]+)"} for name in names]


def host_log(host: int) -> list[str]:
    lines = []
    for epoch in range(3):
        for definition in definitions():
            name = definition["Name"].split(":")[1]
            lines.append(f"[epoch {epoch}] host {host} {name}={0.9 + host / 1000 + epoch / 100:.4f}")
    return lines


def test_64_hosts_40_definitions_1000_warnings_and_maximal_hyperparameters_stay_bounded(
    gate: LocalGate, iris_artifact: bytes, monkeypatch
):
    from training_gate.logic import collect

    real_combine = collect.combine

    def with_many_warnings(details):
        result = real_combine(details)
        result.warnings += [f"warning {i}: a host disagreed on something worth reading" for i in range(1000)]
        result.warnings += result.warnings[:10]  # repeated warnings are reported once
        return result

    monkeypatch.setattr(collect, "combine", with_many_warnings)
    job = "wide-job"
    create_training_job(
        gate, job, log_lines=None, artifact=iris_artifact, statuses=(), metric_definitions=definitions()
    )
    for host in range(1, HOSTS + 1):
        write_log_stream(job, host_log(host), host=f"algo-{host}")
    sagemaker_job = __import__("training_gate_cli.local_engine.moto_hooks", fromlist=["x"]).sagemaker_backend()
    sagemaker_job.training_jobs[job].hyper_parameters = HYPERPARAMETERS

    result = gate.run({"TrainingJobName": job}, name=job)

    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.largest_state_payload < STATE_PAYLOAD_BUDGET, result.largest_state_payload
    assert gate.largest_lambda_response < STATE_PAYLOAD_BUDGET, gate.lambda_responses
    collect_step = next(
        e for e in result.history if e.get("stateExitedEventDetails", {}).get("name") == "CollectMetrics"
    )
    summary = __import__("json").loads(collect_step["stateExitedEventDetails"]["output"])["metrics"]
    # 1,000 injected, 40 the job's own (the hosts disagree on each metric), each once.
    assert (summary["warnings_total"], len(summary["warnings"])) == (1040, 10)
    assert summary["log_streams"] == HOSTS and summary["metrics_total"] >= DEFINITIONS
    # Everything is still there for a person: the full result in S3.
    bucket, key = summary["metrics_uri"][5:].split("/", 1)
    stored = __import__("json").loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    assert len(stored["warnings"]) == 1040 and len({d["host"] for d in stored["details"] if d["host"]}) == HOSTS
    package = boto3.client("sagemaker").describe_model_package(ModelPackageName=result.output["model_package_arn"])
    assert len(package["CustomerMetadataProperties"]) <= 50


def test_the_longest_failure_reason_reaches_the_owners_whole_and_stays_bounded(gate: LocalGate):
    reason = "AlgorithmError: " + "x" * (1024 - len("AlgorithmError: "))
    create_training_job(gate, "long-reason", log_lines=None, final_status="Failed", statuses=(), failure_reason=reason)
    sagemaker = __import__("training_gate_cli.local_engine.moto_hooks", fromlist=["x"]).sagemaker_backend()
    sagemaker.training_jobs["long-reason"].hyper_parameters = HYPERPARAMETERS

    result = gate.run({"TrainingJobName": "long-reason"}, name="long-reason")

    assert result.error == "TrainingJobFailed"
    assert result.largest_state_payload < STATE_PAYLOAD_BUDGET
    (note,) = gate.notifications()
    assert reason in note["Message"] and len(note["Subject"]) <= 100
