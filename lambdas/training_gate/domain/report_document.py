"""report.json: the whole record of one execution's decision, written once, then updated typed.

The document is a public contract read by people and tools: changes are additive only and raise
`schema_version` (1: the first release; 2: `metrics_uri` and `fidelity_uri` added, metric sources gain `log-default`,
metrics gain `ambiguous` and `unavailable`, reason code METRIC_AMBIGUOUS; 3: `tuning`, set when the decision is a
tuning job's, and the metric source `tuning_objective`; 4: `inspection.model` gains `framework`, `format`, `reader`,
`reader_version`, `writer_version`, `bytes_validated` and `details`, `decision` gains `rules_from`, the policy gains
`framework_rules` and `required_frameworks`, reason codes FRAMEWORK_NOT_ALLOWED and READER_NOT_INSTALLED)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from training_gate.domain.contract import CandidateResult, ReportRegistration, TuningContext
from training_gate.domain.models import InspectionResult, MetricsResult
from training_gate.domain.policy import Decision, Policy

REPORT_SCHEMA_VERSION = 4


def report_prefix(training_job_name: str, execution_name: str) -> str:
    """Each execution writes under its own prefix: a re-run never overwrites an earlier report."""
    return f"reports/{training_job_name}/{execution_name}"


def execution_name(execution_arn: str) -> str:
    return execution_arn.rsplit(":", 1)[-1]


class TuningCandidateReport(CandidateResult):
    definition_name: str | None = None
    objective_metric: str | None = None


class TuningReport(BaseModel):
    """The tuning job a decision judged: its objective, how many training jobs it launched, and
    each candidate tried, best first, with what the policy said about it."""

    tuning_job_name: str
    tuning_job_arn: str
    status: str
    objective_metric: str | None = None
    objective_type: str | None = None
    children: int
    children_completed: int
    definitions: list[str] = []
    best_training_job: str | None = None
    overall_best_training_job: str | None = None
    candidates_considered: int
    candidates: list[TuningCandidateReport]

    @classmethod
    def of(cls, tuning: TuningContext, tried: list[CandidateResult]) -> TuningReport:
        by_name = {c.training_job_name: c for c in tuning.candidates}
        return cls(
            tuning_job_name=tuning.tuning_job_name,
            tuning_job_arn=tuning.tuning_job_arn,
            status=tuning.status,
            objective_metric=tuning.objective_metric,
            objective_type=tuning.objective_type,
            children=tuning.children,
            children_completed=tuning.children_completed,
            definitions=tuning.definitions,
            best_training_job=tuning.best_training_job,
            overall_best_training_job=tuning.overall_best_training_job,
            candidates_considered=len(tuning.candidates),
            candidates=[
                TuningCandidateReport(
                    **result.model_dump(),
                    definition_name=getattr(by_name.get(result.training_job_name), "definition_name", None),
                    objective_metric=getattr(by_name.get(result.training_job_name), "objective_metric", None),
                )
                for result in tried
            ],
        )


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
    tuning: TuningReport | None = None

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=False)
