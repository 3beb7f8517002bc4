"""The policy and the decision it yields. Pure: no I/O, no clock.

Comparison semantics: a rule passes exactly when `value <operator> threshold` holds for a finite
value, so with `>` a value equal to the threshold fails and with `>=` it passes. A missing or
non-finite value never passes. Champion comparison: the candidate must improve on the champion by
at least `min_absolute_change` and by at least `min_relative_change` (a fraction of the champion's
value), in the metric's direction; with both at 0 it must simply not be worse.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import operator
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from training_gate.domain.framework_policies import default_rules, version_of
from training_gate.domain.metrics import DEFAULT_SOURCE, ambiguous_names, canonical_name, is_numeric, rank_candidates
from training_gate.domain.models import (
    FRAMEWORK_FORMATS,
    NO_MODEL_FOUND_DETAIL,
    READER_NOT_INSTALLED_DETAIL,
    CheckStatus,
    InspectionResult,
    MetricsResult,
    MetricValue,
    framework_key,
)

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
# Metrics where lower is better, when no rule's operator says otherwise (matched on the name's end).
LOWER_IS_BETTER = ("loss", "rmse", "mse", "mae", "mape", "error", "logloss", "log_loss", "cross_entropy")
Source = Literal[
    "final_metric", "tuning_objective", "log", "log-default", "cloudwatch_metric", "evaluation_file", "holdout"
]
_GROUP_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
# Float noise allowance for "improves by at least": (0.99 - 0.90) / 0.90 is 0.0999...98, not 0.1.
_EPSILON = 1e-12


class Outcome(StrEnum):
    PASS = "pass"
    REJECT = "reject"
    INCONCLUSIVE = "inconclusive"
    # Nothing was judged: the artifact holds no model of a kind the gate can load (XGBoost, PyTorch...).
    SKIPPED = "skipped"


class ReasonCode(StrEnum):
    THRESHOLD_NOT_MET = "THRESHOLD_NOT_MET"
    METRIC_MISSING = "METRIC_MISSING"
    METRIC_NOT_FINITE = "METRIC_NOT_FINITE"
    WORSE_THAN_CHAMPION = "WORSE_THAN_CHAMPION"
    NO_CHAMPION = "NO_CHAMPION"
    ARTIFACT_CHECK_FAILED = "ARTIFACT_CHECK_FAILED"
    VERSION_SKEW = "VERSION_SKEW"
    SOURCE_DISAGREEMENT = "SOURCE_DISAGREEMENT"
    METRIC_AMBIGUOUS = "METRIC_AMBIGUOUS"
    NOT_A_SKLEARN_MODEL = "NOT_A_SKLEARN_MODEL"
    # The artifact holds no model file of any framework (and the job is no built-in algorithm).
    NO_MODEL_FOUND = "NO_MODEL_FOUND"
    # A check could not vouch for the model (code that runs when it loads, content the gate does not read).
    ARTIFACT_INCONCLUSIVE = "ARTIFACT_INCONCLUSIVE"
    # The model's framework (or its format) is not one the policy's required_frameworks allows.
    FRAMEWORK_NOT_ALLOWED = "FRAMEWORK_NOT_ALLOWED"
    # Skipped: a framework the gate judges, whose reader this inspector image does not carry.
    READER_NOT_INSTALLED = "READER_NOT_INSTALLED"


# Codes that mean "this model is not good enough" (reject); the others mean "cannot tell" (a human looks).
REJECTING = {
    ReasonCode.THRESHOLD_NOT_MET,
    ReasonCode.METRIC_NOT_FINITE,
    ReasonCode.WORSE_THAN_CHAMPION,
    ReasonCode.NO_CHAMPION,
    ReasonCode.ARTIFACT_CHECK_FAILED,
    ReasonCode.VERSION_SKEW,
    ReasonCode.SOURCE_DISAGREEMENT,
    ReasonCode.NO_MODEL_FOUND,
    ReasonCode.FRAMEWORK_NOT_ALLOWED,
}


def _finite(value: float) -> float:
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("must be a finite number")
    return value


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: Annotated[str, Field(min_length=1, description="canonical metric name")]
    operator: Literal[">", ">=", "<", "<="]
    threshold: float
    required: bool = True
    source: Source | None = Field(default=None, description="preferred source; others are the fallback")
    exact: bool = Field(
        default=False,
        strict=True,
        description="metric is an original name (eval_loss), read as given, never canonicalised",
    )

    @model_validator(mode="before")
    @classmethod
    def _canonical(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("metric"), str) and data.get("exact") is not True:
            data = {**data, "metric": canonical_name(data["metric"])}
        return data

    @model_serializer(mode="wrap")
    def _without_added_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _drop_defaults(handler(self), _ADDED_RULE_FIELDS)

    @field_validator("threshold")
    @classmethod
    def _finite_threshold(cls, value: float) -> float:
        return _finite(value)


class ChampionPolicy(BaseModel):
    """Compare with the latest Approved package of the same group (TFX / MLflow style)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    metrics: list[str] | None = Field(default=None, description="default: every rule's metric")
    min_absolute_change: Annotated[float, Field(ge=0)] = 0.0
    min_relative_change: Annotated[float, Field(ge=0)] = 0.0
    first_run: Literal["absolute_only", "reject"] = "absolute_only"

    @field_validator("metrics")
    @classmethod
    def _canonical(cls, value: list[str] | None) -> list[str] | None:
        return [canonical_name(v) for v in value] if value is not None else None


class ArtifactCheckPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version_skew: Literal["fail", "warn"] = "fail"
    source_disagreement: Literal["warn", "fail"] = "warn"
    torchscript: Literal["inconclusive", "pass"] = Field(
        default="inconclusive", description="pass: a TorchScript archive (code that runs at load) may pass"
    )
    remote_code: Literal["warn", "fail"] = Field(
        default="warn", description="fail: a Hugging Face model whose config.json names code (auto_map) rejects"
    )
    infinite_values: Literal["warn", "fail"] = Field(
        default="warn", description="fail: an infinity in any tensor rejects (a NaN always does)"
    )
    smoke_prediction: Literal["optional", "required"] = Field(
        default="optional", description="required: a model no smoke prediction ran on (checkpoints) is inconclusive"
    )

    @model_serializer(mode="wrap")
    def _without_added_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _drop_defaults(handler(self), _ADDED_ARTIFACT_CHECK_FIELDS)


class OutcomePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approval_status: Literal["Approved", "PendingManualApproval"] = "PendingManualApproval"
    model_package_group: Annotated[str | None, Field(pattern=_GROUP_NAME)] = None
    group_from_tag: Annotated[str | None, Field(min_length=1, max_length=128)] = None


class Policy(BaseModel):
    """A versioned policy document (validated at synth, and again when read at run time)."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    rules: Annotated[list[Rule], Field(min_length=1)]
    champion: ChampionPolicy = ChampionPolicy()
    artifact_checks: ArtifactCheckPolicy = ArtifactCheckPolicy()
    outcome: OutcomePolicy = OutcomePolicy()
    log_defaults: Literal["accept", "refuse"] = Field(
        default="accept", description="refuse: values only the gate's default patterns found (log-default) never count"
    )
    framework_rules: dict[str, Annotated[list[Rule], Field(min_length=1)]] = Field(
        default={},
        description="framework -> the rules that judge its models instead of `rules` (and of the gate's defaults)",
    )
    required_frameworks: dict[str, list[str]] = Field(
        default={},
        description="framework -> the formats allowed ([]: any); a model of another framework or format is rejected",
    )

    @field_validator("framework_rules", "required_frameworks")
    @classmethod
    def _known_frameworks(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(FRAMEWORK_FORMATS))
        if unknown:
            raise ValueError(
                f"unknown framework(s) {', '.join(unknown)}; the gate knows {', '.join(sorted(FRAMEWORK_FORMATS))}"
            )
        return value

    @field_validator("required_frameworks")
    @classmethod
    def _known_formats(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for framework, formats in value.items():
            unknown = sorted(set(formats) - set(FRAMEWORK_FORMATS[framework]))
            if unknown:
                known = ", ".join(FRAMEWORK_FORMATS[framework]) or "none listed yet"
                raise ValueError(f"{framework} has no format(s) {', '.join(unknown)}; its formats: {known}")
        return value

    @model_serializer(mode="wrap")
    def _without_added_defaults(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _drop_defaults(handler(self), _ADDED_POLICY_FIELDS)

    def sha256(self) -> str:
        """Hash of the dumped policy. Decision keys and stored champion values depend on it, so a
        field added later is dumped only when it differs from its default: a policy that does not use
        it keeps the hash (and the report and function environment) it always had."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def with_overrides(self, overrides: Mapping[str, Any] | None) -> Policy:
        """The policy with `overrides` merged in (objects merge key by key, lists replace)."""
        if not overrides:
            return self
        return Policy.model_validate(_deep_merge(self.model_dump(mode="json"), overrides))


# Fields added after policy hashes were first stored, with the default at which they are not dumped.
_ADDED_POLICY_FIELDS: dict[str, Any] = {"log_defaults": "accept", "framework_rules": {}, "required_frameworks": {}}
_ADDED_RULE_FIELDS: dict[str, Any] = {"exact": False}
_ADDED_ARTIFACT_CHECK_FIELDS: dict[str, Any] = {
    "torchscript": "inconclusive",
    "remote_code": "warn",
    "infinite_values": "warn",
    "smoke_prediction": "optional",
}


def _drop_defaults(document: dict[str, Any], added: Mapping[str, Any]) -> dict[str, Any]:
    for key, default in added.items():
        if key in document and document[key] == default:
            del document[key]
    return document


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class Champion(BaseModel):
    """The latest Approved package of the group, with the metric values the gate stored for it."""

    model_package_arn: str
    metrics: dict[str, float]


# CloudWatch's limit for a dimension value.
MAX_DIMENSION_VALUE = 1024


class RuleResult(BaseModel):
    metric: str
    original_name: str | None
    value: float | None
    raw: str | None
    operator: str
    threshold: float
    required: bool
    source: str | None
    champion: float | None = None
    passed: bool
    reason: ReasonCode | None = None
    detail: str


class Decision(BaseModel):
    outcome: Outcome
    reasons: list[str]
    reason_codes: list[ReasonCode]
    rules: list[RuleResult]
    warnings: list[str] = []
    policy_sha256: str
    overrides: dict[str, Any] = {}
    champion_arn: str | None = None
    rules_from: str | None = Field(
        default=None, description="where the rules came from when not the policy's own `rules`: a framework's"
    )

    def observed_values(self) -> dict[str, float]:
        """The finite value of each metric the policy judged, once per metric, for dashboards.

        Only the policy's own metrics (a short, fixed list) qualify, so a metric dimension keyed on
        them stays cheap; a name CloudWatch would refuse as a dimension value is left out."""
        values: dict[str, float] = {}
        for rule in self.rules:
            if rule.value is None or not math.isfinite(rule.value) or rule.metric in values:
                continue
            if 0 < len(rule.metric) <= MAX_DIMENSION_VALUE and rule.metric.isprintable():
                values[rule.metric] = rule.value
        return values


def lower_is_better(metric: str, policy: Policy) -> bool:
    for rule in policy.rules:
        if rule.metric == metric:
            return rule.operator in ("<", "<=")
    return metric.split(":")[-1].endswith(LOWER_IS_BETTER)


def _candidates(rule: Rule, metrics: MetricsResult, log_defaults: str) -> list[MetricValue]:
    """The values a rule may judge, best first: its exact original name or its canonical name,
    defaults left out when the policy refuses them, its preferred source when that source has one."""
    if rule.exact:
        pool = [d for d in metrics.details if d.original_name == rule.metric]
    else:
        pool = [d for d in metrics.details if d.name == rule.metric]
    if log_defaults == "refuse":
        pool = [d for d in pool if d.source != DEFAULT_SOURCE]
    if rule.source is not None:
        preferred = [d for d in pool if d.source == rule.source]
        pool = preferred or pool
    return rank_candidates(pool)


def select_metric(
    rule: Rule, metrics: MetricsResult, log_defaults: str = "accept"
) -> tuple[MetricValue | None, list[str]]:
    """The value a rule judges, and the original names it is ambiguous between (empty: clear).

    A plain rule takes the reported value, so the gate judges what it reports; an exact rule, a
    preferred source or refused defaults choose again among the details with the same order."""
    if not rule.exact and rule.source is None and log_defaults == "accept":
        return metrics.metrics.get(rule.metric), list(metrics.ambiguous.get(rule.metric, []))
    ranked = _candidates(rule, metrics, log_defaults)
    if not ranked:
        return None, []
    # An exact rule names one original name, so there is nothing left to be ambiguous about.
    return ranked[0], [] if rule.exact else ambiguous_names(ranked)


def _missing_detail(rule: Rule, metrics: MetricsResult, log_defaults: str) -> str:
    canonical = canonical_name(rule.metric) if rule.exact else rule.metric
    if canonical in metrics.unavailable:
        return f"{rule.metric} was not found in any source: {metrics.unavailable[canonical]}"
    if log_defaults == "refuse" and any(
        d.source == DEFAULT_SOURCE and (d.original_name if rule.exact else d.name) == rule.metric
        for d in metrics.details
    ):
        return f"{rule.metric} was found only by a default pattern (log-default), which the policy refuses"
    return f"{rule.metric} was not found in any source"


def judge_rule(rule: Rule, metrics: MetricsResult, log_defaults: str = "accept") -> RuleResult:
    """A rule against everything collected: missing (with why), ambiguous, or evaluated."""
    metric, ambiguous = select_metric(rule, metrics, log_defaults)
    if metric is None:
        return evaluate_rule(rule, None, missing=_missing_detail(rule, metrics, log_defaults))
    if ambiguous:
        same_place = {
            d.original_name: d.raw
            for d in metrics.details
            if d.original_name in ambiguous and d.source == metric.source and d.host == metric.host
        }
        named = ", ".join(f"{name}={same_place.get(name, '?')}" for name in ambiguous)
        return RuleResult(
            metric=rule.metric,
            operator=rule.operator,
            threshold=rule.threshold,
            required=rule.required,
            original_name=" / ".join(ambiguous),
            value=None,
            raw=None,
            source=metric.source,
            passed=False,
            reason=ReasonCode.METRIC_AMBIGUOUS,
            detail=(
                f"{rule.metric} is ambiguous: {named} in {metric.source} give different values; "
                f'name one with {{"metric": "{ambiguous[0]}", "exact": true}}'
            ),
        )
    return evaluate_rule(rule, metric)


def evaluate_rule(rule: Rule, metric: MetricValue | None, missing: str | None = None) -> RuleResult:
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
            detail=missing or f"{rule.metric} was not found in any source",
        )
    found = {
        "original_name": metric.original_name,
        "value": metric.value,
        "raw": metric.raw,
        "source": metric.source,
    }
    if metric.value is None:
        what = "not a finite number" if is_numeric(metric.raw) else "not a number"
        return RuleResult(
            **common,
            **found,
            passed=False,
            reason=ReasonCode.METRIC_NOT_FINITE,
            detail=f"{rule.metric} is {metric.raw!r}, {what}",
        )
    passed = OPERATORS[rule.operator](metric.value, rule.threshold)
    return RuleResult(
        **common,
        **found,
        passed=passed,
        reason=None if passed else ReasonCode.THRESHOLD_NOT_MET,
        detail=f"{rule.metric} {metric.raw} {'' if passed else 'not '}{rule.operator} {rule.threshold:g}",
    )


def improvement(candidate: float, champion: float, lower_better: bool) -> tuple[float, float | None]:
    """(absolute, relative) improvement of the candidate over the champion, in the metric's direction."""
    gain = champion - candidate if lower_better else candidate - champion
    return gain, (gain / abs(champion) if champion else None)


def compare_with_champion(
    policy: Policy, metrics: MetricsResult, champion: Champion | None, results: list[RuleResult]
) -> tuple[list[tuple[ReasonCode, str]], list[str]]:
    """Failures and warnings of the champion comparison; fills each rule result's champion value."""
    settings = policy.champion
    if not settings.enabled:
        return [], []
    if champion is None:
        if settings.first_run == "reject":
            return [(ReasonCode.NO_CHAMPION, "no Approved champion to compare with and first_run is reject")], []
        return [], ["no Approved champion yet: absolute thresholds only (first run)"]
    failures: list[tuple[ReasonCode, str]] = []
    warnings: list[str] = []
    by_metric = {r.metric: r for r in results}
    names = settings.metrics or [rule.metric for rule in policy.rules]
    for name in names:
        reference = champion.metrics.get(name)
        if name in by_metric:
            by_metric[name].champion = reference
            if by_metric[name].reason == ReasonCode.METRIC_AMBIGUOUS:
                continue  # already inconclusive: which value to compare is the open question
        candidate = by_metric[name].value if name in by_metric else getattr(metrics.metrics.get(name), "value", None)
        if reference is None:
            warnings.append(f"champion has no stored value for {name}: not compared")
            continue
        if candidate is None:
            failures.append((ReasonCode.WORSE_THAN_CHAMPION, f"{name} has no finite value to compare with"))
            continue
        lower = lower_is_better(name, policy)
        absolute, relative = improvement(candidate, reference, lower)
        enough = absolute >= settings.min_absolute_change - _EPSILON and (
            settings.min_relative_change == 0
            or (relative is not None and relative >= settings.min_relative_change - _EPSILON)
        )
        if not enough:
            direction = "lower" if lower else "higher"
            failures.append(
                (
                    ReasonCode.WORSE_THAN_CHAMPION,
                    f"{name} {candidate:.4g} vs champion {reference:.4g} ({direction} is better): needs "
                    f"+{settings.min_absolute_change:g} absolute and +{settings.min_relative_change:.1%} relative",
                )
            )
    return failures, warnings


def artifact_check_findings(
    policy: Policy, inspection: InspectionResult | None
) -> tuple[list[tuple[ReasonCode, str]], list[str]]:
    failures: list[tuple[ReasonCode, str]] = []
    warnings: list[str] = []
    for check in inspection.checks if inspection is not None else []:
        if check.status == CheckStatus.WARN:
            warnings.append(f"artifact check {check.name}: {check.detail}")
        if check.status == CheckStatus.INCONCLUSIVE:
            failures.append(
                (ReasonCode.ARTIFACT_INCONCLUSIVE, f"artifact check {check.name} is inconclusive: {check.detail}")
            )
        if check.status != CheckStatus.FAIL:
            continue
        if check.name == "version_skew":
            if policy.artifact_checks.version_skew == "warn":
                warnings.append(f"version skew allowed by the policy: {check.detail}")
            else:
                failures.append((ReasonCode.VERSION_SKEW, f"artifact check version_skew failed: {check.detail}"))
            continue
        if check.name == "find_model" and check.detail.startswith(NO_MODEL_FOUND_DETAIL):
            failures.append((ReasonCode.NO_MODEL_FOUND, f"artifact check find_model failed: {check.detail}"))
            continue
        failures.append((ReasonCode.ARTIFACT_CHECK_FAILED, f"artifact check {check.name} failed: {check.detail}"))
    return failures + finding_outcomes(policy.artifact_checks, inspection), warnings


def finding_outcomes(checks: ArtifactCheckPolicy, inspection: InspectionResult | None) -> list[tuple[ReasonCode, str]]:
    """What the policy makes of the inspection's findings: TorchScript is inconclusive unless allowed; remote
    code and infinities reject when the policy says so; a model nothing predicted on is inconclusive when
    the policy requires a smoke prediction. (Each finding's check already carries its warning.)"""
    found: list[tuple[ReasonCode, str]] = []
    failed = any(c.status == CheckStatus.FAIL for c in inspection.checks) if inspection is not None else True
    for finding in inspection.findings if inspection is not None else []:
        if finding.code == "TORCHSCRIPT" and checks.torchscript == "inconclusive":
            found.append((ReasonCode.ARTIFACT_INCONCLUSIVE, f"{finding.detail} (artifact_checks.torchscript)"))
        elif finding.code == "REMOTE_CODE" and checks.remote_code == "fail":
            found.append((ReasonCode.ARTIFACT_CHECK_FAILED, f"{finding.detail} (artifact_checks.remote_code)"))
        elif finding.code == "INFINITE_VALUES" and checks.infinite_values == "fail":
            found.append(
                (ReasonCode.ARTIFACT_CHECK_FAILED, f"{finding.detail} (artifact_checks.infinite_values: fail)")
            )
        elif finding.code == "NO_SMOKE_PREDICTION" and checks.smoke_prediction == "required" and not failed:
            found.append(
                (ReasonCode.ARTIFACT_INCONCLUSIVE, f"{finding.detail} (artifact_checks.smoke_prediction: required)")
            )
    return found


def skipped_decision(
    policy: Policy, inspection: InspectionResult, overrides: Mapping[str, Any] | None = None
) -> Decision:
    """An artifact with no model the gate judges (another framework's, or one whose reader this image
    lacks) is outside what the gate can judge: no rule is applied (judging its metrics against this
    policy would pretend a check the model never had), and the decision says why, so a person can tell
    "not ours" from "not good enough"."""
    no_reader = next(
        (
            c.detail
            for c in inspection.checks
            if c.name == "load" and c.status == CheckStatus.SKIPPED and c.detail.startswith(READER_NOT_INSTALLED_DETAIL)
        ),
        None,
    )
    if no_reader is not None:
        reason, code = f"the model was not judged: {no_reader}", ReasonCode.READER_NOT_INSTALLED
    else:
        found = next((c.detail for c in inspection.checks if c.name == "find_model"), "no model file found")
        reason, code = (
            f"no scikit-learn model in the artifact, nothing was judged: {found}",
            ReasonCode.NOT_A_SKLEARN_MODEL,
        )
    return Decision(
        outcome=Outcome.SKIPPED,
        reasons=[reason],
        reason_codes=[code],
        rules=[],
        policy_sha256=policy.sha256(),
        overrides=dict(overrides or {}),
    )


def model_framework(inspection: InspectionResult | None) -> tuple[str | None, str | None]:
    """(framework, format) of the judged model: as its plug-in described it once loaded, or as recognition
    named it (a framework the gate does not judge; its format is then not established)."""
    if inspection is None:
        return None, None
    if inspection.model.framework:
        return inspection.model.framework, inspection.model.format
    recognition = inspection.recognition
    return (framework_key(recognition.framework), None) if recognition and recognition.framework else (None, None)


def requirement_findings(policy: Policy, inspection: InspectionResult | None) -> list[tuple[ReasonCode, str]]:
    """A model of a framework (or format) the policy's required_frameworks does not allow: a rejection. An
    artifact with no recognised model already fails its own check, which says so."""
    required = policy.required_frameworks
    framework, fmt = model_framework(inspection)
    if not required or framework is None:
        return []
    wanted = ", ".join(
        f"{name} ({', '.join(formats)})" if formats else name for name, formats in sorted(required.items())
    )
    if framework not in required:
        return [(ReasonCode.FRAMEWORK_NOT_ALLOWED, f"the model is {framework}; the policy requires {wanted}")]
    formats = required[framework]
    if formats and fmt not in formats:
        found = fmt or "a format the inspection did not establish"
        return [(ReasonCode.FRAMEWORK_NOT_ALLOWED, f"the model is {framework} {found}; the policy requires {wanted}")]
    return []


def framework_policy(
    policy: Policy, inspection: InspectionResult | None, metrics: MetricsResult
) -> tuple[Policy, str | None]:
    """The policy whose `rules` judge this model, and where they came from (None: the policy's own). A
    model of a framework the policy names in `framework_rules` is judged by those; else one the gate has
    default rules for (XGBoost, LightGBM, CatBoost: what their jobs report, see `framework_policies`) by
    those; else by `rules`. The rules chosen are the effective policy's, so its sha256 names them."""
    model = inspection.model if inspection is not None else None
    # A model that did not load is still of the framework recognition named: its own rules apply to it.
    framework, _ = model_framework(inspection)
    if not framework:
        return policy, None
    if framework in policy.framework_rules:
        chosen = policy.framework_rules[framework]
        return policy.model_copy(update={"rules": chosen}), f"the policy's framework_rules for {framework}"
    details = model.details if model is not None else {}
    objective = str(details.get("objective") or "")
    if not objective:
        return policy, None
    classes = details.get("num_class")
    num_class = classes if isinstance(classes, int) and not isinstance(classes, bool) and classes > 2 else 2
    version = version_of(model.writer_version if model is not None else None)
    defaults = default_rules(framework, objective, version, num_class, reported=set(metrics.metrics))
    if not defaults:
        return policy, None
    rules = [Rule.model_validate(rule) for rule in defaults]
    return policy.model_copy(update={"rules": rules}), f"the gate's default rules for {framework} {objective}"


def decide(
    policy: Policy,
    metrics: MetricsResult | Mapping[str, MetricValue],
    inspection: InspectionResult | None,
    champion: Champion | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Decision:
    """Apply every rule, the champion comparison and the artifact-check policy. Anything that says
    the model is not good enough rejects; a required metric found nowhere makes the decision
    inconclusive (a person must look)."""
    if not isinstance(metrics, MetricsResult):
        metrics = MetricsResult(metrics=dict(metrics), details=list(metrics.values()))
    required = requirement_findings(policy, inspection)
    if inspection is not None and inspection.verdict == "skip":
        if not required:
            return skipped_decision(policy, inspection, overrides)
        # Not judged, and of a framework the policy does not take: rejected for that alone.
        return Decision(
            outcome=Outcome.REJECT,
            reasons=[reason for _, reason in required],
            reason_codes=[code for code, _ in required],
            rules=[],
            policy_sha256=policy.sha256(),
            overrides=dict(overrides or {}),
        )
    results = [judge_rule(rule, metrics, policy.log_defaults) for rule in policy.rules]

    findings, warnings = artifact_check_findings(policy, inspection)
    findings = required + findings
    findings += [(r.reason, r.detail) for r in results if not r.passed and r.required and r.reason]
    champion_failures, champion_warnings = compare_with_champion(policy, metrics, champion, results)
    findings += champion_failures
    warnings += champion_warnings + list(metrics.warnings)
    warnings = list(dict.fromkeys(warnings))  # each warning once, whichever step first said it

    disagreeing = sorted(set(metrics.disagreements) & {r.metric for r in results})
    if disagreeing and policy.artifact_checks.source_disagreement == "fail":
        findings.append(
            (ReasonCode.SOURCE_DISAGREEMENT, f"sources disagree on {', '.join(disagreeing)} (see warnings)")
        )

    codes = [code for code, _ in findings]
    if any(code in REJECTING for code in codes):
        outcome = Outcome.REJECT
    elif codes:
        outcome = Outcome.INCONCLUSIVE
    else:
        outcome = Outcome.PASS
    return Decision(
        outcome=outcome,
        reasons=[reason for _, reason in findings],
        reason_codes=codes,
        rules=results,
        warnings=warnings,
        policy_sha256=policy.sha256(),
        overrides=dict(overrides or {}),
        champion_arn=champion.model_package_arn if champion else None,
    )
