"""The estimator zoo: every estimator of the installed scikit-learn, fitted on small data, and then fitted
again in each way that changes what it stores. scripts/generate_inspector_schema.py learns the schema of
the states scikit-learn writes from all of it; the zoo tests check that every specimen loads through the
gate and predicts as the original does.

The base zoo (what the sandboxed inspection test runs in every format): every class
`sklearn.utils.all_estimators()` lists, with default parameters, fitted on 60 iris rows scaled to [0, 1]
(non-negative, so NMF, chi2 and the count-based naive Bayes fit). Where the defaults cannot fit these
rows the tables below say what was given instead, each with its reason, and `COMPOSITES` adds what a real
training job ships (pipelines, searches, stacking...).

The variants, for every estimator where they apply (`variants`): fitted on a DataFrame (feature_names_in_),
on float32, on a sparse matrix, with NaNs, with sample weights, with a RandomState object, twice with
warm_start, with pandas output; classifiers on string, unicode, int32, float and bool labels, on two
classes, with class_weight and on several outputs; regressors on two targets. A variant an estimator
refuses (it does not take sparse input, say) is not a specimen of it: `variants` reports each with the
reason. `PARAMETER_VARIANTS` adds, per estimator, the parameters that change its state (search
algorithms and metrics of neighbours, losses, kernels, solvers, categorical features, early stopping...).
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import is_classifier, is_regressor
from sklearn.utils import all_estimators

from tests.unit.zoo_composites import COMPOSITES, RECORD_COMPOSITES, Fresh
from tests.unit.zoo_data import LABELS, TEXT, Y_BINARY, Y_MULTILABEL, Y_MULTIOUTPUT, Y_REGRESSION, Y_TWO_TARGETS, X, Y
from tests.unit.zoo_parameters import PARAMETER_VARIANTS

Data = tuple[Any, Any]

# Estimators whose input is not rows of numbers. They are fitted on their own input (their schema is
# learned) but not given to the sandboxed inspection, whose smoke sample is rows of numbers.
NOT_ROWS: dict[str, tuple[str, Callable[[], Data]]] = {
    "CountVectorizer": ("its input is text documents", lambda: (TEXT, None)),
    "TfidfVectorizer": ("its input is text documents", lambda: (TEXT, None)),
    "HashingVectorizer": ("its input is text documents", lambda: (TEXT, None)),
    "DictVectorizer": (
        "its input is dicts of feature values",
        lambda: ([{"a": float(r[0]), "b": float(r[1])} for r in X], None),
    ),
    "FeatureHasher": ("its input is dicts or strings", lambda: ([{"a": float(r[0])} for r in X], None)),
    "PatchExtractor": ("its input is images (n, height, width)", lambda: (X.reshape(60, 2, 2), None)),
    "LabelBinarizer": ("it encodes a target (fit(y)), not rows of X", lambda: (Y, None)),
    "LabelEncoder": ("it encodes a target (fit(y)), not rows of X", lambda: (LABELS[Y], None)),
    "MultiLabelBinarizer": ("it encodes a target (fit(y)), not rows of X", lambda: ([(1, 2), (3,)] * 30, None)),
}

# A configured sample for estimators that do not declare n_features_in_ (the gate then asks for one).
SAMPLES: dict[str, list[list[float]]] = {
    "IsotonicRegression": [[0.5]],
    "DummyClassifier": [[0.0, 0.0, 0.0, 0.0]],
    "DummyRegressor": [[0.0, 0.0, 0.0, 0.0]],
}

# Data of another shape for estimators whose defaults need it.
INPUTS: dict[str, Callable[[], Data]] = {
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
    **{name: data for name, (_why, data) in NOT_ROWS.items()},
}


def _classifier() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression()


def _two(kind: str) -> list[tuple[str, Any]]:
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if kind == "classifiers":
        return [("logistic", LogisticRegression()), ("tree", DecisionTreeClassifier(random_state=0))]
    return [("ridge", Ridge()), ("tree", DecisionTreeRegressor(random_state=0))]


def _fitted_logistic() -> Any:
    return _classifier().fit(X, Y)


def _pipeline() -> list[tuple[str, Any]]:
    from sklearn.preprocessing import StandardScaler

    return [("scale", StandardScaler()), ("model", _classifier())]


def _union() -> list[tuple[str, Any]]:
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    return [("pca", PCA(n_components=2)), ("scale", StandardScaler())]


def _columns() -> list[tuple[str, Any, list[int]]]:
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    return [("scale", StandardScaler(), [0, 1]), ("pca", PCA(n_components=1), [2, 3])]


def _components() -> Any:
    from sklearn.decomposition import PCA

    return PCA(n_components=3).fit(X).components_


# Required constructor arguments (passed by position: scikit-learn 1.2 and 1.9 name some differently).
ARGUMENTS: dict[str, Callable[[], tuple[Any, ...]]] = {
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
    "FrozenEstimator": lambda: (_fitted_logistic(),),
    "MultiOutputRegressor": lambda: (_two("regressors")[0][1],),
    "RegressorChain": lambda: (_two("regressors")[0][1],),
    "GridSearchCV": lambda: (_classifier(), {"C": [0.5, 1.0]}),
    "RandomizedSearchCV": lambda: (_classifier(), {"C": [0.5, 1.0]}),
    "Pipeline": lambda: (_pipeline(),),
    "FeatureUnion": lambda: (_union(),),
    "ColumnTransformer": lambda: (_columns(),),
    "SparseCoder": lambda: (_components(),),
    "StackingClassifier": lambda: (_two("classifiers"),),
    "VotingClassifier": lambda: (_two("classifiers"),),
    "StackingRegressor": lambda: (_two("regressors"),),
    "VotingRegressor": lambda: (_two("regressors"),),
}

# A parameter changed from its default, and why.
PARAMETERS: dict[str, tuple[dict[str, Any], str]] = {
    **{
        name: ({"n_components": 2}, "the default n_components='auto' asks 3,509 dimensions for 60 rows")
        for name in ("GaussianRandomProjection", "SparseRandomProjection")
    },
    "SelectKBest": ({"k": 2}, "the default k=10 is more than the 4 features, which scikit-learn 1.2 refuses"),
    "QuantileRegressor": (
        {"solver": "highs"},
        "scikit-learn 1.2's default solver, interior-point, is gone from the scipy of its image",
    ),
}


# -- specimens ------------------------------------------------------------------------------------------------


@dataclass
class Specimen:
    name: str  # unique: the estimator, "<estimator>[<variant>]", or a composite's name
    estimator: str
    how: str  # "defaults", "arguments", "parameters", "inputs", "composite" or "variant"
    build: Callable[[], Any]
    data: Callable[[], Data]
    second_fit: dict[str, Any] | None = None  # warm start: parameters set before fitting again
    fit_params: dict[str, Any] = field(default_factory=dict)
    sample: list[list[float]] | None = None  # the sandboxed inspection's configured sample

    @property
    def rows_input(self) -> bool:
        return self.estimator not in NOT_ROWS


def _build(cls: type, name: str) -> Any:
    estimator = cls(*ARGUMENTS[name]()) if name in ARGUMENTS else cls()
    if name in PARAMETERS:
        estimator.set_params(**PARAMETERS[name][0])
    if "random_state" in estimator.get_params(deep=False):
        estimator.set_params(random_state=0)  # reproducible fits; not a behaviour of its own
    return estimator


def _target(name: str, estimator: Any) -> Data:
    if name in INPUTS:
        return INPUTS[name]()
    return X, (Y_REGRESSION if is_regressor(estimator) else Y)


def estimator_classes() -> list[tuple[str, type]]:
    return [(name, cls) for name, cls in all_estimators() if not inspect.isabstract(cls)]


def base_specimens() -> list[Specimen]:
    """Every estimator with its defaults (or the table's arguments), then the composites."""
    found = []
    for name, cls in estimator_classes():
        how = (
            "arguments"
            if name in ARGUMENTS
            else "parameters"
            if name in PARAMETERS
            else "inputs"
            if name in INPUTS
            else "defaults"
        )

        def build(cls: type = cls, name: str = name) -> Any:
            return _build(cls, name)

        def data(name: str = name, cls: type = cls) -> Data:
            return _target(name, _build(cls, name))

        found.append(Specimen(name, name, how, build, data, sample=SAMPLES.get(name)))
    for name, (build, data) in COMPOSITES.items():
        found.append(Specimen(name, name, "composite", build, data))
    return found


def fit(specimen: Specimen) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated classes, and convergence warnings of small default fits
        estimator = specimen.build()
        rows, target = specimen.data()
        args = (rows,) if target is None else (rows, target)
        estimator.fit(*args, **specimen.fit_params)
        if specimen.second_fit is not None:
            estimator.set_params(**specimen.second_fit)
            estimator.fit(*args, **specimen.fit_params)
        return estimator


# -- variants ---------------------------------------------------------------------------------------------------


def _frame(rows: Any) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=[f"f{i}" for i in range(rows.shape[1])])


def _with_nan(rows: np.ndarray) -> np.ndarray:
    rows = rows.copy()
    rows[::7, 1] = np.nan
    return rows


def _data_variants(
    estimator: Any, base: Callable[[], Data]
) -> Iterator[tuple[str, Callable[[], Data], dict[str, Any]]]:
    import scipy.sparse

    def mapped(
        rows_of: Callable[[Any], Any] | None = None, target_of: Callable[[Any], Any] | None = None
    ) -> Callable[[], Data]:
        def data() -> Data:
            rows, target = base()
            return (rows_of(rows) if rows_of else rows), (target_of(target) if target_of else target)

        return data

    yield "dataframe", mapped(_frame), {}
    yield "float32", mapped(lambda r: r.astype(np.float32)), {}
    yield "sparse", mapped(scipy.sparse.csr_matrix), {}
    yield "nan", mapped(_with_nan), {}
    if "sample_weight" in inspect.signature(type(estimator).fit).parameters:
        yield "sample-weight", base, {"sample_weight": np.linspace(0.5, 1.5, len(X))}
    if is_classifier(estimator):
        yield "labels-str", mapped(target_of=lambda t: LABELS[t] if t is not None and t.ndim == 1 else t), {}
        yield (
            "labels-unicode",
            mapped(target_of=lambda t: LABELS.astype(str)[t] if t is not None and t.ndim == 1 else t),
            {},
        )
        yield "labels-int32", mapped(target_of=lambda t: t.astype(np.int32)), {}
        yield "labels-float", mapped(target_of=lambda t: t.astype(np.float64)), {}
        yield "binary", lambda: (base()[0], Y_BINARY), {}
        yield "labels-bool", lambda: (base()[0], Y_BINARY.astype(bool)), {}
        yield "multioutput", lambda: (base()[0], Y_MULTIOUTPUT), {}
    if is_regressor(estimator):
        yield "multioutput", lambda: (base()[0], Y_TWO_TARGETS), {}


def variants(base: list[Specimen]) -> list[Specimen]:
    """The data and parameter variants of every base estimator (`variants` are candidates: whether an
    estimator takes one is found by fitting it)."""
    found = []
    for specimen in base:
        if specimen.how == "composite" or specimen.name in INPUTS:
            continue
        probe = specimen.build()
        params = probe.get_params(deep=False)
        for label, data, fit_params in _data_variants(probe, specimen.data):
            found.append(
                Specimen(
                    f"{specimen.name}[{label}]", specimen.name, "variant", specimen.build, data, fit_params=fit_params
                )
            )
        if "random_state" in params:
            found.append(_with_params(specimen, "random-state-object", {"random_state": np.random.RandomState(0)}))
        if "class_weight" in params and is_classifier(probe):
            found.append(_with_params(specimen, "class-weight", {"class_weight": "balanced"}))
        if "warm_start" in params:
            more = {k: params[k] + 5 for k in ("n_estimators", "max_iter") if isinstance(params.get(k), int)}
            warm = _with_params(specimen, "warm-start", {"warm_start": True})
            warm.second_fit = more
            found.append(warm)
        if hasattr(probe, "set_output") and hasattr(probe, "transform"):
            found.append(_with_params(specimen, "pandas-output", {}, output="pandas"))
    for name, entries in PARAMETER_VARIANTS.items():
        specimen = next((s for s in base if s.name == name), None)
        if specimen is None:
            continue
        for label, given in entries.items():
            data = given.get("__data__")
            params = {k: v for k, v in given.items() if k != "__data__"}
            variant = _with_params(specimen, label, params)
            if data is not None:
                variant.data = data
            found.append(variant)
    return found


def _with_params(specimen: Specimen, label: str, params: dict[str, Any], output: str | None = None) -> Specimen:
    base_build = specimen.build

    def build() -> Any:
        estimator = base_build()
        # Each specimen gets its own copy: an estimator may change a parameter's value in place.
        estimator.set_params(**{k: v.make() if isinstance(v, Fresh) else copy.deepcopy(v) for k, v in params.items()})
        if output:
            estimator.set_output(transform=output)
        return estimator

    return Specimen(f"{specimen.name}[{label}]", specimen.estimator, "variant", build, specimen.data)


def all_specimens() -> list[Specimen]:
    """The base zoo, its variants, and the composites given records rather than rows of numbers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # building deprecated classes to read their parameters
        return _all_specimens()


def _all_specimens() -> list[Specimen]:
    base = base_specimens()
    records = [Specimen(name, name, "composite", build, data) for name, (build, data) in RECORD_COMPOSITES.items()]
    return base + variants(base) + records
