"""Load on the local engine (make bench): 200 executions over 50 distinct jobs (4 deliveries each),
all started at once, with 10% of SageMaker and Lambda calls throttled (seeded). Checks that every
job gets exactly one decision, no package is created twice, and no execution ends without a
notification or a decision record; prints decisions, duplicates absorbed, retries and wall time."""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--deliveries", type=int, default=4)
    parser.add_argument("--throttle-rate", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import boto3

    from training_gate.dal.dynamodb import DecisionLog
    from training_gate_cli.artifacts import iris_model_joblib, pack_model_tar_gz
    from training_gate_cli.local_engine import LocalGate, load_template
    from training_gate_cli.local_engine.emulated import create_training_job, training_log
    from training_gate_cli.synth import synthesize

    artifact = pack_model_tar_gz({"model.joblib": iris_model_joblib()})
    good, weak = training_log(0.91, 0.905, 0.908, 0.901, 0.905), training_log(0.7, 0.7, 0.7, 0.7, 0.7)
    template = synthesize()
    with LocalGate(
        load_template(template),
        retry_time_scale=0.01,
        throttle_rate=args.throttle_rate,
        seed=args.seed,
        assets=template.parent,
    ) as gate:
        jobs = [f"load-{i:03d}" for i in range(args.jobs)]
        for index, job in enumerate(jobs):
            create_training_job(gate, job, log_lines=weak if index % 5 == 4 else good, artifact=artifact, statuses=())
        started = time.monotonic()
        arns = [
            gate.start({"TrainingJobName": job}, name=f"{job}-delivery-{d}")
            for d in range(args.deliveries)
            for job in jobs
        ]
        results = [gate.watch(arn, timeout_seconds=900) for arn in arns]
        wall = time.monotonic() - started

        log = DecisionLog(gate.decision_table)
        ends = Counter(r.states[-1] for r in results)
        notified = sum(1 for _ in gate.notifications())
        problems = []
        decisions = 0
        for job in jobs:
            history = log.history(job)
            live = [h for h in history if h["status"] == "complete"]
            decisions += len(live)
            if len(live) != 1:
                problems.append(f"{job}: {len(live)} live decisions ({history})")
        packages = boto3.client("sagemaker").list_model_packages(
            ModelPackageGroupName="training-gate-models", MaxResults=100
        )["ModelPackageSummaryList"]
        registered_jobs = [h for job in jobs for h in log.history(job) if h.get("completion") == "registered"]
        if len(packages) != len(registered_jobs):
            problems.append(f"{len(packages)} packages for {len(registered_jobs)} registered decisions")
        silent = [
            r.arn
            for r in results
            if r.states[-1] not in ("Registered", "DuplicateDecision", "DuplicateInProgress", "ModelRejected")
            and not (r.alert or {}).get("alerted")
        ]
        problems += [f"ended silently: {arn}" for arn in silent]
        duplicates = sum(int(h.get("duplicates", 0) or 0) for job in jobs for h in log.history(job))

    print(
        f"{len(results)} executions over {len(jobs)} jobs in {wall:.1f} s: ends {dict(ends)}; "
        f"{decisions} decisions, {duplicates} duplicates absorbed, {len(packages)} packages, "
        f"{notified} notifications; {gate.throttler.injected} throttles injected, "
        f"{len(gate.retries.intervals)} retries"
    )
    if problems:
        raise SystemExit("FAILED:\n" + "\n".join(problems))
    print("every job has exactly one complete decision; no package twice; no execution ended silently")


if __name__ == "__main__":
    main()
