"""The estimator zoo: every scikit-learn estimator, fitted on a small dataset, passes the inspection.

What is tried: every class `sklearn.utils.all_estimators()` lists, with default parameters, fitted on
60 iris rows scaled to [0, 1] (non-negative, so NMF, chi2 and the count-based naive Bayes fit; zeros,
the sample the gate derives when none is configured, lie inside the data). Where the defaults cannot
fit these rows the table below says what was given instead, each with its reason: meta-estimators get
their required sub-estimator, a few estimators a target or input of another shape (`_INPUTS`), the
random projections one parameter (`_PARAMETERS`), the few without n_features_in_ a configured sample
(`_SAMPLES`). `EXCLUDED` lists the estimators not tried, with why; `EXPECTED_REJECTIONS` the ones tried
that the smoke check rightly rejects (a defect of that scikit-learn), and `SKOPS_CANNOT_SAVE` the ones
skops itself cannot write.
On top come the composites a real training job ships (`COMPOSITES`): pipelines, a ColumnTransformer
with OneHotEncoder, GridSearchCV, CalibratedClassifierCV, MultiOutputClassifier, stacking and voting,
histogram gradient boosting with a categorical feature, SGD with log loss.

How each is saved: joblib at protocol 5 uncompressed and skops, for every model. Then, so that every
pickle protocol (2 to 5) and every joblib compressor (none, zlib, lzma) is covered by many estimators
without multiplying the cost by twelve, each estimator gets one more format from a rotation over the
other eleven (protocol x compressor) pairs: estimator i gets pair i mod 11, so each pair is seen by
about 18 estimators (199 on scikit-learn 1.9.1). The composites, which pickle the most varied objects
(slices, nested estimators, a partial), get all twelve pairs and skops. So each of protocols 2-4 is
covered by about 100 models, protocol 5 by all of them, zlib and lzma by about 135 each.

How each is inspected: the whole inspection (tar.gz, unpack, allowlisted load, structural validation,
smoke check) in the sandbox's disposable child, forked from one shared zygote (which imports skops
too): a fork costs ~20-40 ms, where a fresh interpreter would cost ~2 s a model. Measured on
scikit-learn 1.9.1: 804 inspections, 35 s of CPU in all (fitting, saving and the parent's half here,
plus every child), ~70 s of wall time on the shared two-core machine. The smoke check must pass
(predictors, transformers) or warn (neither predict nor transform).
The test prints how many were tried and passed, the exclusions and their reasons.
"""

from __future__ import annotations

import io
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.base import is_regressor
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.decomposition import PCA
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    RandomForestClassifier,
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.feature_selection import SelectKBest
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.multiclass import OneVsRestClassifier
from sklearn.multioutput import MultiOutputClassifier
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsRegressor, LocalOutlierFactor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler
from sklearn.svm import SVC, LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils import all_estimators

from training_gate.domain.models import CheckStatus
from training_gate.inspector.inspect import InspectConfig, inspect_artifact
from training_gate.inspector.sandbox import Sandbox
from training_gate_cli.artifacts import pack_model_tar_gz

# -- the data ------------------------------------------------------------------------------------------------

_IRIS_X, _IRIS_Y = load_iris(return_X_y=True)
_ROWS = np.r_[0:20, 50:70, 100:120]
_RAW = _IRIS_X[_ROWS]
X = (_RAW - _RAW.min(axis=0)) / (_RAW.max(axis=0) - _RAW.min(axis=0))
Y = _IRIS_Y[_ROWS]
Y_REGRESSION = X @ np.array([0.5, -0.25, 1.0, 0.75]) + 0.5  # positive: Poisson and Gamma fit it
Y_TWO_TARGETS = np.c_[Y_REGRESSION, X[:, 0] - X[:, 1]]
Y_BINARY = (Y == 2).astype(int)
Y_MULTILABEL = np.c_[Y == 2, X[:, 0] > 0.5].astype(int)
Y_MULTIOUTPUT = np.c_[Y, Y_BINARY]
# A fifth column of category codes 0..3, for the one-hot and categorical-split composites.
X_CATEGORICAL = np.c_[X, np.floor(X[:, 0] * 3.999)]

Data = tuple[np.ndarray, np.ndarray | None]

# -- what is tried, and what is not ------------------------------------------------------------------------

# Not tried, and why. Each is a scikit-learn estimator whose input is not rows of numbers: the gate's
# smoke sample (configured `sample_input`, a list of rows of floats, or the derived row of zeros) cannot
# be given to it, so no inspection of it could pass the smoke check.
EXCLUDED: dict[str, str] = {
    "CountVectorizer": "its input is text documents; the gate's smoke sample is rows of numbers",
    "TfidfVectorizer": "its input is text documents; the gate's smoke sample is rows of numbers",
    "HashingVectorizer": "its input is text documents; the gate's smoke sample is rows of numbers",
    "DictVectorizer": "its input is dicts of feature values; the gate's smoke sample is rows of numbers",
    "FeatureHasher": "its input is dicts or strings; the gate's smoke sample is rows of numbers",
    "PatchExtractor": "its input is images (n, height, width); the gate's smoke sample is rows of numbers",
    "LabelBinarizer": "it encodes a target (fit(y)), not rows of X: not a model a training job ships",
    "LabelEncoder": "it encodes a target (fit(y)), not rows of X: not a model a training job ships",
    "MultiLabelBinarizer": "it encodes a target (fit(y)), not rows of X: not a model a training job ships",
}

# A configured sample for estimators that do not declare n_features_in_ (the gate then asks for one):
# IsotonicRegression in 1.9, the dummy estimators in 1.4.
_SAMPLES: dict[str, list[list[float]]] = {
    "IsotonicRegression": [[0.5]],
    "DummyClassifier": [[0.0, 0.0, 0.0, 0.0]],
    "DummyRegressor": [[0.0, 0.0, 0.0, 0.0]],
}

# Tried, and rejected by the smoke check for a defect of the estimator itself: name -> (the check's
# detail, why). The inspection must end exactly so (or pass, on a scikit-learn without the defect).
EXPECTED_REJECTIONS: dict[str, tuple[str, str]] = {
    name: (
        "transform returned (4,) for 1 rows",
        "scikit-learn 1.9's transform drops the row dimension of a one-row input (ridge_regression squeezes a "
        "single target): an endpoint sending one row at a time would get a 1-D array",
    )
    for name in ("SparsePCA", "MiniBatchSparsePCA")
}

# skops cannot save these (UnsupportedTypeException): they are inspected in every joblib format only.
SKOPS_CANNOT_SAVE: dict[str, str] = {
    "Birch": "skops 0.16 refuses to save Birch (its _CFNode tree is not a supported type)",
}

# Data of another shape for estimators whose defaults need it (instead of X and the class labels, or X
# and a continuous target for regressors).
_INPUTS: dict[str, Callable[[], Data]] = {
    "IsotonicRegression": lambda: (X[:, :1], Y_REGRESSION),  # one feature only
    "KernelCenterer": lambda: (X @ X.T, None),  # a square kernel matrix
    **dict.fromkeys(
        (
            "MultiTaskElasticNet",
            "MultiTaskElasticNetCV",
            "MultiTaskLasso",
            "MultiTaskLassoCV",
            "CCA",  # n_components=2 needs two targets
            "PLSCanonical",
            "PLSSVD",
            "MultiOutputRegressor",
            "RegressorChain",
        ),
        lambda: (X, Y_TWO_TARGETS),
    ),
    "ClassifierChain": lambda: (X, Y_MULTILABEL),
    "MultiOutputClassifier": lambda: (X, Y_MULTIOUTPUT),
    "FixedThresholdClassifier": lambda: (X, Y_BINARY),
    "TunedThresholdClassifierCV": lambda: (X, Y_BINARY),
}


def _classifier() -> LogisticRegression:
    return LogisticRegression()


def _two_classifiers() -> list[tuple[str, Any]]:
    return [("logistic", LogisticRegression()), ("tree", DecisionTreeClassifier(random_state=0))]


def _two_regressors() -> list[tuple[str, Any]]:
    return [("ridge", Ridge()), ("tree", DecisionTreeRegressor(random_state=0))]


# Required constructor arguments (passed by position: scikit-learn 1.4 and 1.9 name some differently).
_ARGUMENTS: dict[str, Callable[[], tuple[Any, ...]]] = {
    **dict.fromkeys(
        (
            "ClassifierChain",
            "FixedThresholdClassifier",
            "MultiOutputClassifier",
            "OneVsOneClassifier",
            "OneVsRestClassifier",
            "OutputCodeClassifier",
            "RFE",
            "RFECV",
            "SelectFromModel",
            "SelfTrainingClassifier",
            "SequentialFeatureSelector",
            "TunedThresholdClassifierCV",
        ),
        lambda: (_classifier(),),
    ),
    "FrozenEstimator": lambda: (LogisticRegression().fit(X, Y),),
    "MultiOutputRegressor": lambda: (Ridge(),),
    "RegressorChain": lambda: (Ridge(),),
    "GridSearchCV": lambda: (_classifier(), {"C": [0.5, 1.0]}),
    "RandomizedSearchCV": lambda: (_classifier(), {"C": [0.5, 1.0]}),
    "Pipeline": lambda: ([("scale", StandardScaler()), ("model", _classifier())],),
    "FeatureUnion": lambda: ([("pca", PCA(n_components=2)), ("scale", StandardScaler())],),
    "ColumnTransformer": lambda: ([("scale", StandardScaler(), [0, 1]), ("pca", PCA(n_components=1), [2, 3])],),
    "SparseCoder": lambda: (PCA(n_components=3).fit(X).components_,),
    "StackingClassifier": lambda: (_two_classifiers(),),
    "VotingClassifier": lambda: (_two_classifiers(),),
    "StackingRegressor": lambda: (_two_regressors(),),
    "VotingRegressor": lambda: (_two_regressors(),),
}

# A parameter changed from its default, and why.
_PARAMETERS: dict[str, tuple[dict[str, Any], str]] = {
    name: ({"n_components": 2}, "the default n_components='auto' asks 3,509 dimensions for 60 rows")
    for name in ("GaussianRandomProjection", "SparseRandomProjection")
}


def _target(name: str, estimator: Any) -> Data:
    if name in _INPUTS:
        return _INPUTS[name]()
    return X, (Y_REGRESSION if is_regressor(estimator) else Y)


# Composites a real training job ships, beyond the single estimators.
COMPOSITES: dict[str, tuple[Callable[[], Any], Callable[[], Data]]] = {
    "pipeline-scaler-pca-logistic": (
        lambda: make_pipeline(StandardScaler(), PCA(n_components=2), LogisticRegression()),
        lambda: (X, Y),
    ),
    "column-transformer-one-hot": (
        lambda: make_pipeline(
            ColumnTransformer([("numeric", StandardScaler(), [0, 1, 2, 3]), ("category", OneHotEncoder(), [4])]),
            LogisticRegression(),
        ),
        lambda: (X_CATEGORICAL, Y),
    ),
    "grid-search-pipeline-svc": (
        lambda: GridSearchCV(make_pipeline(StandardScaler(), SVC()), {"svc__C": [0.5, 1.0]}, cv=3),
        lambda: (X, Y),
    ),
    "calibrated-linear-svc-isotonic": (
        lambda: CalibratedClassifierCV(LinearSVC(), method="isotonic", cv=3),
        lambda: (X, Y),
    ),
    "multi-output-forest": (
        lambda: MultiOutputClassifier(RandomForestClassifier(n_estimators=5, random_state=0)),
        lambda: (X, Y_MULTIOUTPUT),
    ),
    "one-vs-rest-multilabel": (lambda: OneVsRestClassifier(LogisticRegression()), lambda: (X, Y_MULTILABEL)),
    "stacking-classifier": (
        lambda: StackingClassifier(
            [
                ("logistic", LogisticRegression()),
                ("forest", RandomForestClassifier(n_estimators=5, random_state=0)),
                ("svc", SVC()),
            ],
            final_estimator=LogisticRegression(),
        ),
        lambda: (X, Y),
    ),
    "stacking-regressor": (
        lambda: StackingRegressor(
            [("ridge", Ridge()), ("tree", DecisionTreeRegressor(random_state=0)), ("knn", KNeighborsRegressor())]
        ),
        lambda: (X, Y_REGRESSION),
    ),
    "voting-soft": (
        lambda: VotingClassifier(
            [("logistic", LogisticRegression()), ("bayes", GaussianNB()), ("tree", DecisionTreeClassifier())],
            voting="soft",
        ),
        lambda: (X, Y),
    ),
    "voting-regressor": (lambda: VotingRegressor(_two_regressors()), lambda: (X, Y_REGRESSION)),
    "hist-gradient-boosting-categorical": (
        lambda: HistGradientBoostingClassifier(categorical_features=[4], max_iter=10, random_state=0),
        lambda: (X_CATEGORICAL, Y),
    ),
    "sgd-log-loss": (lambda: SGDClassifier(loss="log_loss", random_state=0), lambda: (X, Y)),
    "svc-probability": (lambda: SVC(probability=True, random_state=0), lambda: (X, Y)),
    "local-outlier-factor-novelty": (lambda: LocalOutlierFactor(novelty=True), lambda: (X, None)),
    "select-k-best-pipeline": (lambda: make_pipeline(SelectKBest(k=2), LogisticRegression()), lambda: (X, Y)),
    "spline-pipeline": (lambda: make_pipeline(SplineTransformer(), Ridge()), lambda: (X, Y_REGRESSION)),
}

# -- formats -------------------------------------------------------------------------------------------------

PROTOCOLS = (2, 3, 4, 5)
COMPRESSORS = (None, "zlib", "lzma")
BASE_FORMATS = ("joblib-protocol-5", "skops")
# Every (protocol, compressor) pair but the base one, handed out in turn (module docstring).
ROTATION = tuple(
    f"joblib-protocol-{p}" + (f"-{c}" if c else "") for c in COMPRESSORS for p in PROTOCOLS if (p, c) != (5, None)
)
ALL_FORMATS = (*BASE_FORMATS, *ROTATION)


def dump(model: Any, form: str) -> tuple[str, bytes]:
    """The model file as a training job would write it: its name and bytes."""
    if form == "skops":
        import skops.io

        return "model.skops", skops.io.dumps(model)
    parts = form.split("-")
    protocol = int(parts[2])
    compress: Any = (parts[3], 3) if len(parts) > 3 else 0
    buffer = io.BytesIO()
    joblib.dump(model, buffer, protocol=protocol, compress=compress)
    return "model.joblib", buffer.getvalue()


# -- building and inspecting the zoo -------------------------------------------------------------------------


@dataclass
class Entry:
    name: str
    build: Callable[[], Any]
    data: Callable[[], Data]
    formats: tuple[str, ...]
    how: str  # "defaults", "arguments", "parameters", "inputs" or "composite"


@dataclass
class Outcome:
    entry: Entry
    failures: list[str] = field(default_factory=list)
    smoke: dict[str, tuple[str, str]] = field(default_factory=dict)  # format -> (status, detail)
    rejected_as_expected: bool = False

    @property
    def passed(self) -> bool:
        return not self.failures and not self.rejected_as_expected


def _build(cls: type, name: str) -> Any:
    arguments = _ARGUMENTS[name]() if name in _ARGUMENTS else ()
    estimator = cls(*arguments)
    if name in _PARAMETERS:
        estimator.set_params(**_PARAMETERS[name][0])
    if "random_state" in estimator.get_params(deep=False):
        estimator.set_params(random_state=0)  # reproducible fits; not a behaviour of its own
    return estimator


def zoo_entries() -> tuple[list[Entry], dict[str, str]]:
    """Every estimator of this scikit-learn, tried or excluded, then the composites."""
    entries: list[Entry] = []
    excluded: dict[str, str] = {}
    for name, cls in all_estimators():
        if name in EXCLUDED:
            excluded[name] = EXCLUDED[name]
            continue
        how = (
            "arguments"
            if name in _ARGUMENTS
            else "parameters"
            if name in _PARAMETERS
            else "inputs"
            if name in _INPUTS
            else "defaults"
        )
        rotating = ROTATION[len(entries) % len(ROTATION)]

        def build(cls: type = cls, name: str = name) -> Any:
            return _build(cls, name)

        def data(name: str = name, cls: type = cls) -> Data:
            return _target(name, _build(cls, name))

        base = ("joblib-protocol-5",) if name in SKOPS_CANNOT_SAVE else BASE_FORMATS
        entries.append(Entry(name, build, data, (*base, rotating), how))
    for name, (build, data) in COMPOSITES.items():
        entries.append(Entry(name, build, data, ALL_FORMATS, "composite"))
    return entries, excluded


def _fit(entry: Entry) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated classes, and convergence warnings of small default fits
        estimator = entry.build()
        rows, target = entry.data()
        return estimator.fit(rows) if target is None else estimator.fit(rows, target)


def _inspect(sandbox: Sandbox, entry: Entry, model: Any, form: str, outcome: Outcome, cpu: list[float]) -> None:
    try:
        filename, data = dump(model, form)
    except Exception as exc:  # noqa: BLE001 - reported as this format's failure
        outcome.failures.append(f"{form}: could not be saved: {type(exc).__name__}: {exc}")
        return
    artifact = pack_model_tar_gz({filename: data})
    uri = f"s3://zoo/{entry.name}/{form}/model.tar.gz"
    config = InspectConfig(sample_input=_SAMPLES.get(entry.name))
    result = inspect_artifact(
        uri,
        lambda: io.BytesIO(artifact),
        config,
        sandbox=sandbox,
        on_child=lambda child, _limits: cpu.append(child.cpu_s),
    )
    checks = {c.name: c for c in result.checks}
    smoke = checks["smoke_prediction"]
    outcome.smoke[form] = (smoke.status.value, smoke.detail)
    expected = EXPECTED_REJECTIONS.get(entry.name)
    if result.verdict != "pass":
        failed = next(c for c in result.checks if c.status == CheckStatus.FAIL)
        if expected is None or failed.name != "smoke_prediction" or expected[0] not in failed.detail:
            outcome.failures.append(f"{form}: {failed.name}: {failed.detail}")
        else:
            outcome.rejected_as_expected = True
    elif smoke.status not in (CheckStatus.PASS, CheckStatus.WARN):
        outcome.failures.append(f"{form}: smoke_prediction {smoke.status.value}: {smoke.detail}")


@dataclass
class ZooRun:
    outcomes: list[Outcome]
    excluded: dict[str, str]
    seconds: float
    cpu_seconds: float  # this process (fitting, saving, the parent's half) and every inspection child

    def __iter__(self) -> Iterator[Outcome]:
        return iter(self.outcomes)

    def by_name(self, name: str) -> Outcome:
        return next(o for o in self.outcomes if o.entry.name == name)

    def report(self) -> str:
        single = [o for o in self.outcomes if o.entry.how != "composite"]
        composites = [o for o in self.outcomes if o.entry.how == "composite"]
        kinds = Counter(o.entry.how for o in single)
        inspections = sum(len(o.smoke) for o in self.outcomes)
        warned = sorted(o.entry.name for o in single if any(s == "warn" for s, _ in o.smoke.values()))
        lines = [
            f"estimator zoo on scikit-learn {sklearn.__version__}: {len(single) + len(self.excluded)} estimators, "
            f"{len(single)} tried ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), "
            f"{sum(o.passed for o in single)} passed; {len(composites)} composites, "
            f"{sum(o.passed for o in composites)} passed; {inspections} inspections in {self.seconds:.1f} s "
            f"({self.cpu_seconds:.1f} s of CPU)",
            f"loaded only, with a warning (neither predict nor transform): {', '.join(warned) or 'none'}",
            f"excluded ({len(self.excluded)}):",
            *(f"  {name}: {reason}" for name, reason in sorted(self.excluded.items())),
            *(
                f"rejected as expected: {o.entry.name}: {EXPECTED_REJECTIONS[o.entry.name][1]}"
                for o in self.outcomes
                if o.rejected_as_expected
            ),
            *(
                f"not saved with skops: {name}: {why}"
                for name, why in SKOPS_CANNOT_SAVE.items()
                if name in self.names()
            ),
            *(f"changed: {name}: {_PARAMETERS[name][1]}" for name in sorted(_PARAMETERS) if name in self.names()),
        ]
        failures = [f"  {o.entry.name}: {failure}" for o in self.outcomes for failure in o.failures]
        if failures:
            lines += [f"FAILED ({len(failures)}):", *failures]
        return "\n".join(lines)

    def names(self) -> set[str]:
        return {o.entry.name for o in self.outcomes}


@pytest.fixture(scope="module")
def zoo() -> Iterator[ZooRun]:
    from threadpoolctl import threadpool_limits

    sandbox = Sandbox()  # one zygote: every inspection is a fork of it
    started, cpu_started = time.monotonic(), time.process_time()
    entries, excluded = zoo_entries()
    outcomes = []
    child_cpu: list[float] = []
    try:
        # One BLAS/OpenMP thread, as in the children: on 60 rows more threads cost more than they give.
        with threadpool_limits(limits=1):
            for entry in entries:
                outcome = Outcome(entry)
                outcomes.append(outcome)
                try:
                    model = _fit(entry)
                except Exception as exc:  # noqa: BLE001 - an estimator that does not fit is a failure, listed
                    outcome.failures.append(f"fit: {type(exc).__name__}: {str(exc)[:200]}")
                    continue
                for form in entry.formats:
                    _inspect(sandbox, entry, model, form, outcome, child_cpu)
        cpu = time.process_time() - cpu_started + sum(child_cpu)
        yield ZooRun(outcomes, excluded, time.monotonic() - started, cpu)
    finally:
        sandbox.close()


# -- the tests -------------------------------------------------------------------------------------------------


def test_every_estimator_and_composite_passes_the_inspection_in_every_format(zoo: ZooRun, capsys):
    report = zoo.report()
    with capsys.disabled():  # the counts and the exclusions are the point: shown even when it passes
        print("\n" + report)
    assert not [o for o in zoo if o.failures], report


def test_every_estimator_is_tried_or_excluded_with_a_reason(zoo: ZooRun):
    listed = {name for name, _ in all_estimators()}
    assert zoo.names() | set(zoo.excluded) >= listed
    assert not zoo.names() & set(zoo.excluded)
    assert all(reason for reason in zoo.excluded.values())
    # Every table names estimators of some supported scikit-learn: a typo would silently do nothing.
    tables = set(EXCLUDED) | set(_INPUTS) | set(_ARGUMENTS) | set(_PARAMETERS)
    newer_only = {"FrozenEstimator", "FixedThresholdClassifier", "TunedThresholdClassifierCV", "ClassicalMDS"}
    assert tables - listed <= newer_only


def test_every_protocol_and_compressor_is_covered_by_many_estimators(zoo: ZooRun):
    seen = Counter(form for o in zoo for form in o.smoke)
    for protocol in PROTOCOLS:
        assert sum(n for form, n in seen.items() if f"protocol-{protocol}" in form) >= 40, protocol
    for compressor in ("zlib", "lzma"):
        assert sum(n for form, n in seen.items() if form.endswith(compressor)) >= 60, compressor
    assert min(seen[form] for form in ROTATION) >= 15
    assert seen["joblib-protocol-5"] == len(zoo.outcomes)
    assert seen["skops"] == len(zoo.outcomes) - len(set(SKOPS_CANNOT_SAVE) & zoo.names())


def test_what_skops_cannot_save_is_still_refused_by_skops():
    import skops.io

    for name, cls in all_estimators():
        if name in SKOPS_CANNOT_SAVE:
            with pytest.raises(skops.io.exceptions.UnsupportedTypeException):
                skops.io.dumps(cls().fit(X, Y))


@pytest.mark.parametrize(
    ("name", "status", "detail"),
    [
        ("LogisticRegression", "pass", "predict_proba rows sum to 1"),
        ("KNeighborsRegressor", "pass", "predict on 1 row(s)"),
        ("PCA", "pass", "transform on 1 row(s)"),
        ("OneHotEncoder", "pass", "-> sparse 1 x"),
        ("DBSCAN", "warn", "neither predict nor transform"),
        ("TSNE", "warn", "loaded only"),
        ("multi-output-forest", "pass", "predict_proba rows sum to 1 for each of 2 outputs"),
        ("one-vs-rest-multilabel", "pass", "one probability per label"),
        ("MultiTaskLasso", "pass", "predict on 1 row(s)"),
    ],
)
def test_the_smoke_check_fits_the_estimators_kind(zoo: ZooRun, name: str, status: str, detail: str):
    outcome = zoo.by_name(name)
    for form, (got_status, got_detail) in outcome.smoke.items():
        assert got_status == status, (form, got_detail)
        assert detail in got_detail, (form, got_detail)
