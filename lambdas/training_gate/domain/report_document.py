"""report.json: the whole record of one execution's decision, written once, then updated typed.

The document is a public contract read by people and tools: changes are additive only and raise
`schema_version` (1: the first release; 2: `metrics_uri` and `fidelity_uri` added, metric sources gain `log-default`,
metrics gain `ambiguous` and `unavailable`, reason code METRIC_AMBIGUOUS)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from training_gate.domain.contract import ReportRegistration
from training_gate.domain.models import InspectionResult, MetricsResult
from training_gate.domain.policy import Decision, Policy

REPORT_SCHEMA_VERSION = 2


def report_prefix(training_job_name: str, execution_name: str) -> str:
    """Each execution writes under its own prefix: a re-run never overwrites an earlier report."""
    return f"reports/{training_job_name}/{execution_name}"


def execution_name(execution_arn: str) -> str:
    return execution_arn.rsplit(":", 1)[-1]


class Report(BaseModel):
    model_config = ConfigDict(extra="allow")

    schema_version: int = REPORT_SCHEMA_VERSION
    dry_run: bool
    training_job: str
    execution_arn: str
    model_package_group: str
    decision: Decision
    policy: Policy
    inspection: InspectionResult
    metrics: MetricsResult
    metrics_uri: str | None = None
    fidelity_uri: str | None = None
    registration: ReportRegistration | None = None

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=False)
