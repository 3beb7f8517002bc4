"""Default metric policies for XGBoost, LightGBM and CatBoost jobs, as data, and derived metrics. Pure.

The shipped policy judges accuracy, precision, recall and F1, which built-in XGBoost never reports:
it emits `validation:<eval_metric>` lines (`validation:logloss`, `validation:error`, `validation:auc`,
`validation:rmse`, ...; tests/fixtures/sagemaker-logs/03 holds the container's 36 MetricDefinitions),
so every such job would be inconclusive. A model the inspection found to be one of these frameworks is
judged by these rules instead, unless the deployment's policy names rules for its framework
(`framework_rules`). They judge what the job reported of its objective family's metrics (canonical
names: `validation:logloss` is `logloss`), each with a bar a model must clear to be better than the
trivial predictor:

- binary: logloss < ln 2 (a constant 0.5 scores ln 2), error < 0.5, AUC > 0.5;
- multiclass with k classes: multi-class logloss < ln k, merror < 1 - 1/k;
- regression, ranking and count objectives have no scale-free bar: the rule asks that the metric be
  reported and finite (`>= 0`), each of the family's metrics the job reported (`mae` as well as `rmse`);
  a user sets the threshold their data needs.

A job that reported none of its family's metrics is judged on the one its framework reports by default
for the objective, which is then missing: inconclusive, naming it. Those are floors against a broken
model, not quality targets. XGBoost's default eval metric changed in 1.3 (`error` -> `logloss`,
`merror` -> `mlogloss`), so that fallback depends on the version that wrote the model. ONNX models
carry no training metric the gate can name: the deployment's own rules judge them.

Derived metrics (`derived_values`): accuracy = 1 - error (XGBoost's `error` is the share of wrong
decisions at probability 0.5) and accuracy = 1 - merror (the share of wrong classes), added beside
the original so a policy on accuracy can judge an XGBoost job that reports only `error`; only for a
model the inspection found to be an XGBoost classifier (`derived_for_model`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from training_gate.domain.metrics import canonical_name
from training_gate.domain.models import MetricValue, ModelInfo

LN2 = math.log(2)


@dataclass(frozen=True)
class DerivedMetric:
    name: str
    source: str
    description: str

    def value(self, source_value: float) -> float:
        return 1.0 - source_value


DERIVED_METRICS = (
    DerivedMetric("accuracy", "error", "accuracy = 1 - error: XGBoost's error is the share of wrong decisions at 0.5"),
    DerivedMetric("accuracy", "merror", "accuracy = 1 - merror: XGBoost's merror is the share of wrong classes"),
)

# XGBoost's default eval_metric per objective (src/objective/*: DefaultEvalMetric), before and from 1.3.
XGBOOST_DEFAULT_METRIC: dict[str, tuple[str, str]] = {
    "binary:logistic": ("error", "logloss"),
    "binary:logitraw": ("auc", "logloss"),
    "binary:hinge": ("error", "error"),
    "reg:logistic": ("rmse", "rmse"),
    "multi:softmax": ("merror", "mlogloss"),
    "multi:softprob": ("merror", "mlogloss"),
    "reg:squarederror": ("rmse", "rmse"),
    "reg:linear": ("rmse", "rmse"),
    "reg:squaredlogerror": ("rmsle", "rmsle"),
    "reg:pseudohubererror": ("mphe", "mphe"),
    "reg:absoluteerror": ("mae", "mae"),
    "reg:quantileerror": ("quantile", "quantile"),
    "count:poisson": ("poisson-nloglik", "poisson-nloglik"),
    "reg:gamma": ("gamma-nloglik", "gamma-nloglik"),
    "reg:tweedie": ("tweedie-nloglik@1.5", "tweedie-nloglik@1.5"),
    "survival:cox": ("cox-nloglik", "cox-nloglik"),
    "survival:aft": ("aft-nloglik", "aft-nloglik"),
    "rank:pairwise": ("map", "map"),
    "rank:ndcg": ("ndcg", "ndcg"),
    "rank:map": ("map", "map"),
}
# LightGBM's default metric per objective (the metric of the same name; docs: Parameters, `metric`).
LIGHTGBM_DEFAULT_METRIC = {
    "binary": "binary_logloss",
    "multiclass": "multi_logloss",
    "multiclassova": "multi_logloss",
    "regression": "l2",
    "regression_l1": "l1",
    "lambdarank": "ndcg",
    "rank_xendcg": "ndcg",
    "poisson": "poisson",
    "gamma": "gamma",
    "tweedie": "tweedie",
    "cross_entropy": "cross_entropy",
}
# CatBoost reports its loss function under the loss's name.
CATBOOST_DEFAULT_METRIC = {"Logloss": "logloss", "MultiClass": "multiclass", "RMSE": "rmse", "YetiRank": "pfound"}
# A bar against the trivial predictor, per default metric (canonical names); None: reported and finite.
_CHANCE_RULES: dict[str, tuple[str, str] | None] = {
    "logloss": ("<", "ln2"),
    "binary_logloss": ("<", "ln2"),
    "error": ("<", "0.5"),
    "binary_error": ("<", "0.5"),
    "auc": (">", "0.5"),
    "mlogloss": ("<", "lnk"),
    "multi_logloss": ("<", "lnk"),
    "multiclass": ("<", "lnk"),
    "merror": ("<", "1-1/k"),
    "multi_error": ("<", "1-1/k"),
}
# The metrics of each objective family a job may report (its eval_metric), in the order they are judged. A
# regression or ranking job judged on another of its family's metrics than the default (eval_metric=mae) is
# judged on what it reported, not found inconclusive for want of the default.
_BINARY = ("logloss", "error", "auc")
_MULTICLASS = ("mlogloss", "merror")
_XGB_REGRESSION = ("rmse", "mae", "rmsle", "mape", "mphe")
_XGB_RANKING = ("ndcg", "map", "pre", "auc")
_LGB_REGRESSION = ("l2", "rmse", "l1", "huber", "fair", "mape", "quantile")
FAMILY_METRICS: dict[str, dict[str, tuple[str, ...]]] = {
    "xgboost": {
        "binary:logistic": _BINARY,
        "binary:logitraw": _BINARY,
        "binary:hinge": ("error",),
        "multi:softmax": _MULTICLASS,
        "multi:softprob": _MULTICLASS,
        **{
            objective: _XGB_REGRESSION
            for objective in (
                "reg:squarederror",
                "reg:linear",
                "reg:squaredlogerror",
                "reg:pseudohubererror",
                "reg:absoluteerror",
                "reg:logistic",
            )
        },
        **{objective: _XGB_RANKING for objective in ("rank:pairwise", "rank:ndcg", "rank:map")},
    },
    "lightgbm": {
        "binary": ("binary_logloss", "binary_error", "auc"),
        "multiclass": ("multi_logloss", "multi_error"),
        "multiclassova": ("multi_logloss", "multi_error"),
        **{objective: _LGB_REGRESSION for objective in ("regression", "regression_l1", "huber", "fair", "quantile")},
        **{objective: ("ndcg", "map") for objective in ("lambdarank", "rank_xendcg")},
    },
    "catboost": {
        "Logloss": ("logloss", "auc"),
        "MultiClass": ("multiclass",),
        "RMSE": ("rmse", "mae"),
    },
}


def _threshold(kind: str, num_class: int) -> float:
    if kind == "ln2":
        return LN2
    if kind == "lnk":
        return math.log(max(num_class, 2))
    if kind == "1-1/k":
        return 1 - 1 / max(num_class, 2)
    return float(kind)


def default_metric(framework: str, objective: str, version: tuple[int, ...] | None = None) -> str | None:
    """The canonical name of the metric a job of this framework and objective reports by default."""
    if framework == "xgboost":
        pair = XGBOOST_DEFAULT_METRIC.get(objective)
        if pair is None:
            return None
        return canonical_name(pair[0] if version is not None and tuple(version[:2]) < (1, 3) else pair[1])
    if framework == "lightgbm":
        metric = LIGHTGBM_DEFAULT_METRIC.get(objective)
        return canonical_name(metric) if metric else None
    if framework == "catboost":
        metric = CATBOOST_DEFAULT_METRIC.get(objective)
        return canonical_name(metric) if metric else None
    return None


def _rule(metric: str, num_class: int) -> dict[str, Any]:
    bar = _CHANCE_RULES.get(metric)
    if bar is None:
        return {"metric": metric, "operator": ">=", "threshold": 0.0}
    operator, kind = bar
    return {"metric": metric, "operator": operator, "threshold": _threshold(kind, num_class)}


def default_rules(
    framework: str,
    objective: str,
    version: tuple[int, ...] | None = None,
    num_class: int = 2,
    reported: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Policy rules (the `Policy.rules` shape) for a job of this framework, objective and version: its
    family's metrics it `reported` (canonical names), or else the one it reports by default. ONNX
    models come with no training metric the gate can name: none (the deployment's rules apply)."""
    family = [m for m in FAMILY_METRICS.get(framework, {}).get(objective, ()) if m in reported]
    if family:
        return [_rule(metric, num_class) for metric in family]
    metric = default_metric(framework, objective, version)
    return [_rule(metric, num_class)] if metric is not None else []


def default_policy(
    framework: str,
    objective: str,
    version: tuple[int, ...] | None = None,
    num_class: int = 2,
    reported: Collection[str] = (),
) -> dict[str, Any] | None:
    """A whole policy document (validated by `Policy.model_validate` in the tests), or None when the
    framework reports no metric the gate knows by default."""
    rules = default_rules(framework, objective, version, num_class, reported)
    return {"version": 1, "rules": rules} if rules else None


def version_of(text: str | None) -> tuple[int, ...] | None:
    """A writer version as a model describes it ("1.7", "3.0.5", "0.x", "v4") as numbers, or None."""
    if not text:
        return None
    parts = []
    for part in text.lstrip("v").split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts) or None


def derived_values(values: Iterable[MetricValue]) -> list[MetricValue]:
    """Derived metrics for each source value that has no reported value of the derived name in the same
    source and host. The original name keeps the source's split prefix (`validation:error` gives
    `validation:accuracy`), so a derived validation metric ranks as a validation metric."""
    values = list(values)
    present = {(v.name, v.source, v.host) for v in values}
    derived: list[MetricValue] = []
    for value in values:
        for rule in DERIVED_METRICS:
            if value.name != rule.source or (rule.name, value.source, value.host) in present:
                continue
            raw = repr(rule.value(value.value)) if value.value is not None else value.raw
            derived.append(
                MetricValue.from_raw(
                    raw,
                    name=rule.name,
                    original_name=_renamed(value.original_name, rule),
                    source=value.source,
                    host=value.host,
                    location=value.location,
                    matches=value.matches,
                )
            )
            present.add((rule.name, value.source, value.host))
    return derived


def derived_for_model(model: ModelInfo | None, values: Iterable[MetricValue]) -> list[MetricValue]:
    """The derived metrics of a classifier whose `error` and `merror` mean what XGBoost's do (the share of
    wrong decisions): an XGBoost model of a binary or multiclass objective. For any other model a metric
    named `error` may be anything (a regression's error), so nothing is derived from it."""
    if model is None or model.framework != "xgboost":
        return []
    if not str(model.details.get("objective") or "").startswith(("binary:", "multi:")):
        return []
    return derived_values(values)


def _renamed(original: str, rule: DerivedMetric) -> str:
    if original.lower().endswith(rule.source):
        return original[: len(original) - len(rule.source)] + rule.name
    return rule.name
