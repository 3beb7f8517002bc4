"""Metric parsing benchmark (make bench): 1,000,000 log lines over 4 host streams, 4 MetricDefinitions.

Reports the scanner's lines/s on one core, the naive loop's (every line, every regex), and the number
of CloudWatch Logs API calls the collector makes against emulated CloudWatch. Prints numbers; asserts
only that both parsers found the same values.
"""

from __future__ import annotations

import argparse
import random
import time

from training_gate.domain.metrics import DEFAULT_PATTERNS, StreamMetrics, compile_definitions

DEFINITIONS = [
    {"Name": "train:loss", "Regex": r".*Train Loss: ([0-9\.]+);"},
    {"Name": "validation:accuracy", "Regex": r".*Validation accuracy: ([0-9\.]+)"},
    {"Name": "validation:f1", "Regex": r".*Validation f1: ([0-9\.]+)"},
    {"Name": "validation:auc", "Regex": r"#011validation-auc:(\S+)"},
]
HOSTS = ("algo-1", "algo-2", "algo-3", "algo-4")
PAGE = 10_000


def make_lines(count: int, metric_share: float, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    noise = [
        "2026-11-26 12:00:00,123 sagemaker-training-toolkit INFO     Reporting training SUCCESS",
        "[2026-11-26 12:00:01.456 algo-1:27 INFO hook.py:420] Monitoring the collections: losses",
        "Epoch 3/20 step 120/500 - 0s 12ms/step - throughput=812.3 samples/s lr=0.0010",
        "NCCL INFO Channel 00/02 :    0   1   2   3",
    ]
    metric_lines = [
        lambda: f"Train Epoch: 3 [{rng.randint(0, 60000)}/60000] Train Loss: {rng.random():.6f};",
        lambda: f"[INFO] Validation accuracy: {rng.random():.4f}",
        lambda: f"[INFO] Validation f1: {rng.random():.4f}",
        lambda: f"[{rng.randint(0, 999)}]#011train-auc:{rng.random():.5f}#011validation-auc:{rng.random():.5f}",
    ]
    return [rng.choice(metric_lines)() if rng.random() < metric_share else rng.choice(noise) for _ in range(count)]


def scan(lines_per_host: dict[str, list[str]], patterns) -> dict[str, dict[str, tuple[str, int]]]:
    out = {}
    for host, lines in lines_per_host.items():
        stream = StreamMetrics(host=host)
        for start in range(0, len(lines), PAGE):
            stream.scan("\n".join(lines[start : start + PAGE]), patterns)
        out[host] = {k: (v.raw, v.matches) for k, v in {**stream.values, **stream.defaults}.items()}
    return out


def naive(lines_per_host: dict[str, list[str]], patterns) -> dict[str, dict[str, tuple[str, int]]]:
    out = {}
    for host, lines in lines_per_host.items():
        found: dict[str, tuple[str, int]] = {}
        for line in lines:
            for pattern in patterns:
                for name, raw in pattern.names_in(line):
                    found[name] = (raw, found.get(name, ("", 0))[1] + 1)
        out[host] = found
    return out


def parser_bench(total: int, metric_share: float, naive_lines: int) -> None:
    patterns = [*compile_definitions(DEFINITIONS), *DEFAULT_PATTERNS]
    per_host = {h: make_lines(total // len(HOSTS), metric_share, seed=i) for i, h in enumerate(HOSTS)}
    started = time.perf_counter()
    fast = scan(per_host, patterns)
    fast_s = time.perf_counter() - started
    subset = {h: lines[: naive_lines // len(HOSTS)] for h, lines in per_host.items()}
    started = time.perf_counter()
    slow = naive(subset, patterns)
    naive_s = time.perf_counter() - started
    assert scan(subset, patterns) == slow, "scanner and naive loop disagree"
    print(
        f"metric lines {metric_share:>4.0%}: scanner {total / fast_s:>12,.0f} lines/s "
        f"({total:,} lines, {fast_s:.2f} s); "
        f"naive loop {naive_lines / naive_s:>10,.0f} lines/s ({naive_lines:,} lines)"
    )
    assert fast  # keep the result alive


def api_call_bench(total: int, metric_share: float) -> None:
    import os

    import boto3
    from moto import mock_aws

    from tests.support.builders import sources, training_job
    from training_gate.constants import TRAINING_LOG_GROUP
    from training_gate.dal.logs import TrainingLogs
    from training_gate.logic.collect import collect_job_metrics
    from training_gate_cli.local_engine import LOCAL_ENVIRONMENT, cloudwatch_filter_patterns

    os.environ.update({k: v for k, v in LOCAL_ENVIRONMENT.items() if k.startswith("AWS_")})
    with mock_aws(), cloudwatch_filter_patterns():
        logs = boto3.client("logs")
        logs.create_log_group(logGroupName=TRAINING_LOG_GROUP)
        now = int(time.time() * 1000)
        for index, host in enumerate(HOSTS):
            stream = f"bench-job/{host}-1700000000"
            logs.create_log_stream(logGroupName=TRAINING_LOG_GROUP, logStreamName=stream)
            lines = make_lines(total // len(HOSTS), metric_share, seed=index)
            for start in range(0, len(lines), 10_000):
                batch = lines[start : start + 10_000]
                logs.put_log_events(
                    logGroupName=TRAINING_LOG_GROUP,
                    logStreamName=stream,
                    logEvents=[{"timestamp": now + start + i, "message": m} for i, m in enumerate(batch)],
                )
        reader = TrainingLogs(logs)
        started = time.perf_counter()
        result = collect_job_metrics(training_job("bench-job"), sources(DEFINITIONS), reader)
        elapsed = time.perf_counter() - started
    print(
        f"emulated CloudWatch, {total:,} lines, {metric_share:.0%} metric lines: {reader.api_calls} Logs API calls "
        f"({reader.api_calls / (total / 10_000):.2f} per 10,000 lines), collect {elapsed:.1f} s, "
        f"{len(result.metrics)} metrics"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--naive-lines", type=int, default=100_000)
    args = parser.parse_args()
    for share in (0.02, 0.25, 1.0):
        parser_bench(args.lines, share, args.naive_lines)
    api_call_bench(args.lines, 0.02)


if __name__ == "__main__":
    main()
