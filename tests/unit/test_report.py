from __future__ import annotations

import re

from training_gate.domain.failure import classify_failure
from training_gate.domain.models import MetricValue
from training_gate.domain.policy import Policy, decide
from training_gate.domain.report import (
    client_token,
    decision_subject,
    decision_table,
    model_monitor_statistics,
    sanitize_metadata,
)

SEED = Policy(
    rules=[
        {"metric": "accuracy", "operator": ">", "threshold": 0.90},
        {"metric": "precision", "operator": ">", "threshold": 0.85},
    ]
)


def _metrics(accuracy: str, precision: str) -> dict[str, MetricValue]:
    return {
        "accuracy": MetricValue.from_raw(accuracy, name="accuracy", original_name="validation:accuracy", source="log"),
        "precision": MetricValue.from_raw(precision, name="precision", original_name="Precision", source="log"),
    }


def test_table_has_the_columns_people_expect_and_marks_failures():
    table = decision_table(decide(SEED, _metrics("0.71", "0.9"), None))
    lines = table.splitlines()
    assert lines[0] == "| Metric | Value | Threshold | Champion | Source | Result |"
    assert "| accuracy (validation:accuracy) | 0.71 | > 0.9 | - | log | FAIL |" in lines
    assert "| precision | 0.9 | > 0.85 | - | log | PASS |" in lines


def test_subject_is_ascii_single_line_and_within_the_sns_limit():
    job = "churn-xgb-" + "x" * 60
    subject = decision_subject(job, decide(SEED, _metrics("0.71", "0.5"), None))
    assert len(subject) <= 100
    assert subject.isascii() and "\n" not in subject
    assert subject.startswith("Model rejected: churn-xgb-")


def test_metadata_is_sanitised_to_aws_limits():
    clean = sanitize_metadata({"k" * 200: '{"json": [1, 2]}' + "v" * 400, **{f"m{i}": "1" for i in range(60)}})
    assert len(clean) <= 50
    for key, value in clean.items():
        assert len(key) <= 128 and len(value) <= 256
        assert re.fullmatch(r"[A-Za-z0-9 _.:/=+\-@]*", key + value)


def test_client_token_is_stable_per_job_and_policy_and_fits_36_chars():
    token = client_token("arn:aws:sagemaker:us-east-1:1:training-job/a", "h1")
    assert token == client_token("arn:aws:sagemaker:us-east-1:1:training-job/a", "h1")
    assert token != client_token("arn:aws:sagemaker:us-east-1:1:training-job/a", "h2")
    assert len(token) <= 36 and re.fullmatch(r"[a-zA-Z0-9-]+", token)


def test_statistics_follow_the_model_monitor_shape():
    stats = model_monitor_statistics(
        {
            **_metrics("0.91", "0.88"),
            "train:loss": MetricValue.from_raw("0.2", name="train:loss", original_name="l", source="log"),
            "auc": MetricValue.from_raw("nan", name="auc", original_name="AUC", source="log"),
        }
    )
    # Model Monitor's model-quality shape: {"version", "<problem>_metrics": {name: {value, standard_deviation}}}
    assert set(stats) == {"version", "multiclass_classification_metrics"} and stats["version"] == 0.0
    body = stats["multiclass_classification_metrics"]
    assert body == {
        "accuracy": {"value": 0.91, "standard_deviation": "NaN"},
        "precision": {"value": 0.88, "standard_deviation": "NaN"},
    }  # training metrics and non-finite values are left out


def test_training_failures_are_classified_with_advice():
    crash = classify_failure("j", "Failed", "Failed", "AlgorithmError: Traceback ... KeyError: 'label'")
    assert crash.action == "fix-code"
    spot = classify_failure("j", "Stopped", "Interrupted", None)
    assert spot.action == "retry"
    capacity = classify_failure(
        "j", "Failed", "Failed", "CapacityError: Unable to provision requested ML compute capacity"
    )
    assert capacity.action == "retry"
    assert len(capacity.subject) <= 100 and capacity.subject.isascii()


def test_a_subject_is_printable_ascii_whatever_the_text():
    from training_gate.domain.report import ascii_line

    line = ascii_line("accuracy\x07 été\u200b\nnext\x00", 100)
    assert line.isascii() and line.isprintable() and "\n" not in line
    assert ascii_line("x" * 300, 100) == "x" * 97 + "..."
    assert ascii_line("\x01\x02", 100) == "??"
