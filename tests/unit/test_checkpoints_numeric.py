"""The numbers that make a model unusable, read in bounded windows, every dtype decoded as its format
defines it; and what the policy makes of them and of the other findings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training_gate.domain.models import CheckResult, CheckStatus, Finding, InspectionResult
from training_gate.domain.policy import Outcome, Policy, ReasonCode, decide
from training_gate.inspector.checkpoints import numeric
from training_gate.inspector.checkpoints.dtypes import BY_NAME, as_numbers
from training_gate.inspector.checkpoints.numeric import TensorPlace, judge, scan


def place(tmp_path: Path, values: np.ndarray, dtype: str = "float32", name: str = "w", **kwargs) -> TensorPlace:
    path = tmp_path / f"{name}.bin"
    raw = np.ascontiguousarray(values).tobytes()
    path.write_bytes(b"\0" * 16 + raw)
    shape = kwargs.pop("shape", values.shape)
    if "stride" in kwargs:
        return TensorPlace(name, path, 16, len(raw), BY_NAME[dtype], shape, kwargs["stride"], kwargs.get("offset", 0))
    return TensorPlace.dense(name, path, 16, len(raw), BY_NAME[dtype], shape)


def test_a_nan_anywhere_rejects_naming_the_tensor_and_the_count(tmp_path: Path):
    values = np.ones(10, dtype=np.float32)
    values[[2, 7]] = np.nan
    verdicts = judge([(place(tmp_path, values, name="decoder.out"), scan(place(tmp_path, values, name="decoder.out")))])
    assert verdicts.rejects == ["NaN in 1 tensor(s): decoder.out (2)"]


def test_infinities_warn_and_are_counted_apart_from_nan(tmp_path: Path):
    values = np.array([0.0, -np.inf, np.inf, 1.0], dtype=np.float32)
    stats = scan(place(tmp_path, values))
    assert (stats.posinf, stats.neginf, stats.nan, stats.minimum, stats.maximum) == (1, 1, 0, 0.0, 1.0)
    verdicts = judge([(place(tmp_path, values), stats)])
    assert verdicts.infinite and not verdicts.rejects


def test_zero_constant_and_extreme_tensors_warn_but_a_scalar_or_an_int_buffer_does_not(tmp_path: Path):
    results = [
        (p := place(tmp_path, np.zeros(5, dtype=np.float32), name="zero"), scan(p)),
        (p := place(tmp_path, np.full(5, 0.5, dtype=np.float32), name="const"), scan(p)),
        (p := place(tmp_path, np.array([1e7, 0.1], dtype=np.float32), name="huge"), scan(p)),
        (p := place(tmp_path, np.array([0.0], dtype=np.float32), name="scalar"), scan(p)),
        (p := place(tmp_path, np.zeros(5, dtype=np.int64), "int64", name="steps"), scan(p)),
    ]
    warnings = " | ".join(judge(results).warnings)
    assert "entirely zero: zero" in warnings and "constant: const" in warnings and "above 1e+06: huge" in warnings
    assert "scalar" not in warnings and "steps" not in warnings


@pytest.mark.parametrize(
    ("dtype", "raw", "expected"),
    [
        ("bfloat16", np.array([0x3F80, 0xC000, 0x7FC0, 0xFF80], dtype="<u2"), [1.0, -2.0, np.nan, -np.inf]),
        ("float16", np.array([1.5, -0.0, np.inf], dtype="<f2"), [1.5, -0.0, np.inf]),
        ("float8_e4m3fn", np.array([0x38, 0x7F, 0xFF, 0x01], dtype=np.uint8), [1.0, np.nan, np.nan, 2.0**-9]),
        ("float8_e5m2", np.array([0x3C, 0x7C, 0xFC, 0x7E], dtype=np.uint8), [1.0, np.inf, -np.inf, np.nan]),
        ("float8_e4m3fnuz", np.array([0x40, 0x80, 0x00], dtype=np.uint8), [1.0, np.nan, 0.0]),
    ],
)
def test_each_dtype_is_decoded_as_its_format_defines_it(dtype: str, raw: np.ndarray, expected: list[float]):
    decoded = as_numbers(raw.view(np.uint8), BY_NAME[dtype])
    np.testing.assert_array_equal(decoded.astype(np.float64), np.array(expected, dtype=np.float64))


def test_a_strided_view_is_read_element_by_element_not_as_its_span(tmp_path: Path):
    storage = np.arange(24, dtype=np.float32)
    storage[2] = np.nan  # between the view's elements: the view must not be blamed for it
    view = place(tmp_path, storage, shape=(3, 4), stride=(6, 2), offset=1)
    numeric.check_bounds(view, "x")
    stats = scan(view)
    reference = np.lib.stride_tricks.as_strided(storage[1:], shape=(3, 4), strides=(24, 8))
    assert stats.count == 12 and stats.nan == 0
    assert (stats.minimum, stats.maximum) == (float(reference.min()), float(reference.max()))


def test_tensors_larger_than_a_window_are_read_in_windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(numeric, "WINDOW", 64)
    values = np.arange(1000, dtype=np.float32)
    values[999] = np.nan
    stats = scan(place(tmp_path, values))
    assert (stats.count, stats.nan, stats.minimum, stats.maximum) == (1000, 1, 0.0, 998.0)
    strided = scan(place(tmp_path, values, name="t", shape=(10, 50), stride=(100, 2)))
    assert strided.count == 500


def test_bounds_are_checked_before_anything_is_read(tmp_path: Path):
    from training_gate.inspector.checkpoints.errors import Refused

    with pytest.raises(Refused, match="reads element 12"):
        numeric.check_bounds(place(tmp_path, np.ones(12, dtype=np.float32), shape=(13,), stride=(1,)), "x")


# -- the policy -------------------------------------------------------------------------------------------------


def inspection(*findings: str, load: CheckStatus = CheckStatus.PASS) -> InspectionResult:
    checks = [CheckResult(name="load", status=load, detail="read")]
    found = [Finding(code=code, check="load", detail=f"{code.lower()} here") for code in findings]
    return InspectionResult(
        verdict=InspectionResult.verdict_of(checks, found), checks=checks, artifact={"uri": "s3://b/k"}, findings=found
    )


def policy(**artifact_checks: str) -> Policy:
    return Policy.model_validate(
        {"rules": [{"metric": "accuracy", "operator": ">", "threshold": 0.5}], "artifact_checks": artifact_checks}
    )


METRICS = {"accuracy": {"name": "accuracy", "original_name": "accuracy", "value": 0.9, "raw": "0.9", "source": "log"}}


def decided(result: InspectionResult, **checks: str):
    from training_gate.domain.models import MetricValue

    return decide(policy(**checks), {k: MetricValue.model_validate(v) for k, v in METRICS.items()}, result)


def test_torchscript_is_inconclusive_by_default_and_passes_only_by_opt_in():
    result = inspection("TORCHSCRIPT", "NO_SMOKE_PREDICTION")
    assert result.verdict == "inconclusive"
    default = decided(result)
    assert (default.outcome, default.reason_codes) == (Outcome.INCONCLUSIVE, [ReasonCode.ARTIFACT_INCONCLUSIVE])
    assert decided(result, torchscript="pass").outcome == Outcome.PASS


def test_remote_code_and_infinities_warn_unless_the_policy_rejects_them():
    result = inspection("REMOTE_CODE", "INFINITE_VALUES")
    assert result.verdict == "pass" and decided(result).outcome == Outcome.PASS
    assert decided(result, remote_code="fail").outcome == Outcome.REJECT
    rejected = decided(result, infinite_values="fail")
    assert rejected.outcome == Outcome.REJECT and "artifact_checks.infinite_values" in rejected.reasons[0]


def test_a_policy_requiring_a_smoke_prediction_makes_a_checkpoint_inconclusive():
    result = inspection("NO_SMOKE_PREDICTION")
    assert decided(result).outcome == Outcome.PASS
    required = decided(result, smoke_prediction="required")
    assert (required.outcome, required.reason_codes) == (Outcome.INCONCLUSIVE, [ReasonCode.ARTIFACT_INCONCLUSIVE])


def test_an_inconclusive_check_is_inconclusive_whatever_the_policy_allows():
    result = inspection(load=CheckStatus.INCONCLUSIVE)
    assert result.verdict == "inconclusive"
    assert decided(result, torchscript="pass").outcome == Outcome.INCONCLUSIVE


def test_a_policy_that_sets_none_of_these_keeps_its_hash():
    plain = policy()
    assert "torchscript" not in plain.model_dump(mode="json")["artifact_checks"]
    assert (
        plain.sha256()
        == Policy.model_validate({"rules": [{"metric": "accuracy", "operator": ">", "threshold": 0.5}]}).sha256()
    )
    assert policy(torchscript="pass").sha256() != plain.sha256()
