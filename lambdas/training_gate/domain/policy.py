"""The threshold policy and the decision it yields. Pure: no I/O, no clock.

Comparison semantics: a rule passes exactly when `value <operator> threshold` holds for a finite
value, so with `>` a value equal to the threshold fails and with `>=` it passes. A missing or
non-finite value never passes.
"""

from __future__ import annotations

import hashlib
import json
import operator
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from training_gate.domain.metrics import canonical_name
from training_gate.domain.models import InspectionResult, MetricValue

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class Outcome(StrEnum):
    PASS = "pass"
    REJECT = "reject"
    INCONCLUSIVE = "inconclusive"


class ReasonCode(StrEnum):
    THRESHOLD_NOT_MET = "THRESHOLD_NOT_MET"
    METRIC_MISSING = "METRIC_MISSING"
    METRIC_NOT_FINITE = "METRIC_NOT_FINITE"
    ARTIFACT_CHECK_FAILED = "ARTIFACT_CHECK_FAILED"


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: Annotated[str, Field(min_length=1, description="canonical metric name")]
    operator: Literal[">", ">=", "<", "<="]
    threshold: float
    required: bool = True

    @field_validator("metric")
    @classmethod
    def _canonical(cls, value: str) -> str:
        return canonical_name(value)

    @field_validator("threshold")
    @classmethod
    def _finite(cls, value: float) -> float:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("threshold must be a finite number")
        return value


class Policy(BaseModel):
    """A versioned policy document (validated at synth and again at run time)."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    rules: Annotated[list[Rule], Field(min_length=1)]
    approval_status: Literal["Approved", "PendingManualApproval"] = "PendingManualApproval"

    def sha256(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class RuleResult(BaseModel):
    metric: str
    original_name: str | None
    value: float | None
    raw: str | None
    operator: str
    threshold: float
    required: bool
    source: str | None
    passed: bool
    reason: ReasonCode | None = None
    detail: str


class Decision(BaseModel):
    outcome: Outcome
    reasons: list[str]
    reason_codes: list[ReasonCode]
    rules: list[RuleResult]
    policy_sha256: str


def evaluate_rule(rule: Rule, metric: MetricValue | None) -> RuleResult:
    common = {
        "metric": rule.metric,
        "operator": rule.operator,
        "threshold": rule.threshold,
        "required": rule.required,
    }
    if metric is None:
        return RuleResult(
            **common,
            original_name=None,
            value=None,
            raw=None,
            source=None,
            passed=False,
            reason=ReasonCode.METRIC_MISSING,
            detail=f"{rule.metric} was not found in any source",
        )
    found = {
        "original_name": metric.original_name,
        "value": metric.value,
        "raw": metric.raw,
        "source": metric.source,
    }
    if metric.value is None:
        return RuleResult(
            **common,
            **found,
            passed=False,
            reason=ReasonCode.METRIC_NOT_FINITE,
            detail=f"{rule.metric} is {metric.raw!r}, not a finite number",
        )
    passed = OPERATORS[rule.operator](metric.value, rule.threshold)
    return RuleResult(
        **common,
        **found,
        passed=passed,
        reason=None if passed else ReasonCode.THRESHOLD_NOT_MET,
        detail=f"{rule.metric} {metric.raw} {'' if passed else 'not '}{rule.operator} {rule.threshold:g}",
    )


def decide(
    policy: Policy,
    metrics: Mapping[str, MetricValue],
    inspection: InspectionResult | None,
) -> Decision:
    """Apply every rule; a failed artifact check or a missed threshold rejects, a required metric
    that is nowhere to be found makes the decision inconclusive (a person must look)."""
    results = [evaluate_rule(rule, metrics.get(rule.metric)) for rule in policy.rules]
    reasons: list[str] = []
    codes: list[ReasonCode] = []

    if inspection is not None:
        for check in inspection.failed_checks:
            reasons.append(f"artifact check {check.name} failed: {check.detail}")
            codes.append(ReasonCode.ARTIFACT_CHECK_FAILED)

    for result in results:
        if result.passed or not result.required:
            continue
        reasons.append(result.detail)
        codes.append(result.reason)  # type: ignore[arg-type]

    rejecting = {ReasonCode.ARTIFACT_CHECK_FAILED, ReasonCode.THRESHOLD_NOT_MET, ReasonCode.METRIC_NOT_FINITE}
    if any(code in rejecting for code in codes):
        outcome = Outcome.REJECT
    elif codes:
        outcome = Outcome.INCONCLUSIVE
    else:
        outcome = Outcome.PASS
    return Decision(
        outcome=outcome,
        reasons=reasons,
        reason_codes=codes,
        rules=results,
        policy_sha256=policy.sha256(),
    )
