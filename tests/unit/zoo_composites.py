"""The zoo's composites (what a real training job ships beyond single estimators) and its parameter
variants (the parameters that change what an estimator stores)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tests.unit.zoo_data import (
    COLUMNS,
    LABELS,
    TEXT,
    X_CATEGORICAL,
    Y_MULTILABEL,
    Y_MULTIOUTPUT,
    Y_REGRESSION,
    Y_TWO_TARGETS,
    X,
    Y,
)

Data = tuple[Any, Any]


@dataclass(frozen=True)
class Fresh:
    """A parameter value made anew for each specimen (an estimator or kernel, never shared)."""

    make: Callable[[], Any]


def _xy() -> Data:
    return X, Y


def _make(name: str, *args: Any, **kwargs: Any) -> Any:
    """An estimator by its public name, so that one missing from an older scikit-learn fails only its entry."""
    import importlib

    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)(*args, **kwargs)


def _pipe(*steps: Any) -> Any:
    from sklearn.pipeline import make_pipeline

    return make_pipeline(*steps)


def _lr() -> Any:
    return _make("sklearn.linear_model.LogisticRegression")


def _tree(kind: str = "Classifier", **params: Any) -> Any:
    return _make(f"sklearn.tree.DecisionTree{kind}", random_state=0, **params)


def _forest(**params: Any) -> Any:
    return _make("sklearn.ensemble.RandomForestClassifier", n_estimators=5, random_state=0, **params)


def _frame(categorical: bool = False) -> Any:
    import pandas as pd

    frame = pd.DataFrame(X, columns=COLUMNS)
    frame["color"] = np.array(["red", "green", "blue", "red"], dtype=object)[np.floor(X[:, 0] * 3.999).astype(int)]
    if categorical:
        frame["color"] = frame["color"].astype("category")
    frame["text"] = TEXT
    return frame


def _semi_supervised() -> Data:
    labels = Y.copy()
    labels[::3] = -1
    return X, labels


# name -> (build, data): given numbers, so the sandboxed inspection can smoke-test them.
COMPOSITES: dict[str, tuple[Callable[[], Any], Callable[[], Data]]] = {
    "pipeline-scaler-pca-logistic": (
        lambda: _pipe(
            _make("sklearn.preprocessing.StandardScaler"), _make("sklearn.decomposition.PCA", n_components=2), _lr()
        ),
        _xy,
    ),
    "column-transformer-one-hot": (
        lambda: _pipe(
            _make(
                "sklearn.compose.ColumnTransformer",
                [
                    ("numeric", _make("sklearn.preprocessing.StandardScaler"), [0, 1, 2, 3]),
                    ("category", _make("sklearn.preprocessing.OneHotEncoder"), [4]),
                ],
            ),
            _lr(),
        ),
        lambda: (X_CATEGORICAL, Y),
    ),
    "grid-search-pipeline-svc": (
        lambda: _make(
            "sklearn.model_selection.GridSearchCV",
            _pipe(_make("sklearn.preprocessing.StandardScaler"), _make("sklearn.svm.SVC")),
            {"svc__C": [0.5, 1.0]},
            cv=3,
        ),
        _xy,
    ),
    "calibrated-linear-svc-isotonic": (
        lambda: _make(
            "sklearn.calibration.CalibratedClassifierCV", _make("sklearn.svm.LinearSVC"), method="isotonic", cv=3
        ),
        _xy,
    ),
    "multi-output-forest": (
        lambda: _make("sklearn.multioutput.MultiOutputClassifier", _forest()),
        lambda: (X, Y_MULTIOUTPUT),
    ),
    "one-vs-rest-multilabel": (
        lambda: _make("sklearn.multiclass.OneVsRestClassifier", _lr()),
        lambda: (X, Y_MULTILABEL),
    ),
    "stacking-classifier": (
        lambda: _make(
            "sklearn.ensemble.StackingClassifier",
            [("logistic", _lr()), ("forest", _forest()), ("svc", _make("sklearn.svm.SVC"))],
            final_estimator=_lr(),
        ),
        _xy,
    ),
    "stacking-regressor": (
        lambda: _make(
            "sklearn.ensemble.StackingRegressor",
            [
                ("ridge", _make("sklearn.linear_model.Ridge")),
                ("tree", _tree("Regressor")),
                ("knn", _make("sklearn.neighbors.KNeighborsRegressor")),
            ],
        ),
        lambda: (X, Y_REGRESSION),
    ),
    "voting-soft": (
        lambda: _make(
            "sklearn.ensemble.VotingClassifier",
            [
                ("logistic", _lr()),
                ("bayes", _make("sklearn.naive_bayes.GaussianNB")),
                ("tree", _make("sklearn.tree.DecisionTreeClassifier")),
            ],
            voting="soft",
        ),
        _xy,
    ),
    "voting-regressor": (
        lambda: _make(
            "sklearn.ensemble.VotingRegressor",
            [("ridge", _make("sklearn.linear_model.Ridge")), ("tree", _tree("Regressor"))],
        ),
        lambda: (X, Y_REGRESSION),
    ),
    "hist-gradient-boosting-categorical": (
        lambda: _make(
            "sklearn.ensemble.HistGradientBoostingClassifier", categorical_features=[4], max_iter=10, random_state=0
        ),
        lambda: (X_CATEGORICAL, Y),
    ),
    "hist-gradient-boosting-categorical-mask": (
        lambda: _make(
            "sklearn.ensemble.HistGradientBoostingRegressor",
            categorical_features=[False] * 4 + [True],
            max_iter=10,
            random_state=0,
        ),
        lambda: (X_CATEGORICAL, Y_REGRESSION),
    ),
    "sgd-log-loss": (lambda: _make("sklearn.linear_model.SGDClassifier", loss="log_loss", random_state=0), _xy),
    "svc-probability": (lambda: _make("sklearn.svm.SVC", probability=True, random_state=0), _xy),
    "local-outlier-factor-novelty": (
        lambda: _make("sklearn.neighbors.LocalOutlierFactor", novelty=True),
        lambda: (X, None),
    ),
    "select-k-best-pipeline": (lambda: _pipe(_make("sklearn.feature_selection.SelectKBest", k=2), _lr()), _xy),
    "spline-pipeline": (
        lambda: _pipe(_make("sklearn.preprocessing.SplineTransformer"), _make("sklearn.linear_model.Ridge")),
        lambda: (X, Y_REGRESSION),
    ),
    "bagging-knn": (
        lambda: _make(
            "sklearn.ensemble.BaggingClassifier",
            _make("sklearn.neighbors.KNeighborsClassifier"),
            n_estimators=3,
            random_state=0,
        ),
        _xy,
    ),
    "bagging-feature-subsets": (
        lambda: _make(
            "sklearn.ensemble.BaggingRegressor", n_estimators=3, max_features=2, bootstrap_features=True, random_state=0
        ),
        lambda: (X, Y_REGRESSION),
    ),
    "adaboost-logistic": (
        lambda: _make("sklearn.ensemble.AdaBoostClassifier", _lr(), n_estimators=3, random_state=0),
        _xy,
    ),
    "one-vs-rest-svc": (lambda: _make("sklearn.multiclass.OneVsRestClassifier", _make("sklearn.svm.SVC")), _xy),
    "one-vs-one-tree": (lambda: _make("sklearn.multiclass.OneVsOneClassifier", _tree()), _xy),
    "grid-search-multimetric": (
        lambda: _make(
            "sklearn.model_selection.GridSearchCV",
            _lr(),
            {"C": [0.5, 1.0]},
            scoring=["accuracy", "f1_macro"],
            refit="accuracy",
            cv=3,
        ),
        _xy,
    ),
    "grid-search-splitter": (
        lambda: _make(
            "sklearn.model_selection.GridSearchCV",
            _tree(),
            {"max_depth": [2, 3]},
            cv=_make("sklearn.model_selection.StratifiedKFold", 3, shuffle=True, random_state=0),
        ),
        _xy,
    ),
    "grid-search-string-parameters": (
        lambda: _make(
            "sklearn.model_selection.GridSearchCV", _make("sklearn.svm.SVC"), {"kernel": ["rbf", "linear"]}, cv=3
        ),
        _xy,
    ),
    "randomized-search-forest": (
        lambda: _make(
            "sklearn.model_selection.RandomizedSearchCV",
            _forest(),
            {"max_depth": [2, 3, None]},
            n_iter=2,
            random_state=0,
            cv=3,
        ),
        _xy,
    ),
    "calibrated-sigmoid-bayes": (
        lambda: _make(
            "sklearn.calibration.CalibratedClassifierCV",
            _make("sklearn.naive_bayes.GaussianNB"),
            method="sigmoid",
            cv=3,
        ),
        _xy,
    ),
    "calibrated-no-ensemble": (
        lambda: _make("sklearn.calibration.CalibratedClassifierCV", _lr(), ensemble=False, cv=3),
        _xy,
    ),
    "classifier-chain-tree": (lambda: _make("sklearn.multioutput.ClassifierChain", _tree()), lambda: (X, Y_MULTILABEL)),
    "stacking-passthrough": (
        lambda: _make(
            "sklearn.ensemble.StackingClassifier",
            [("logistic", _lr()), ("tree", _tree())],
            passthrough=True,
            stack_method="predict_proba",
        ),
        _xy,
    ),
    "transformed-target": (
        lambda: _make(
            "sklearn.compose.TransformedTargetRegressor",
            regressor=_make("sklearn.linear_model.Ridge"),
            transformer=_make("sklearn.preprocessing.StandardScaler"),
        ),
        lambda: (X, Y_REGRESSION),
    ),
    "feature-union-pipeline": (
        lambda: _pipe(
            _make(
                "sklearn.pipeline.FeatureUnion",
                [
                    ("pca", _make("sklearn.decomposition.PCA", n_components=2)),
                    ("scale", _make("sklearn.preprocessing.StandardScaler")),
                ],
            ),
            _lr(),
        ),
        _xy,
    ),
    "pipeline-passthrough-step": (
        lambda: _make(
            "sklearn.pipeline.Pipeline",
            [("scale", _make("sklearn.preprocessing.StandardScaler")), ("skip", "passthrough"), ("model", _lr())],
        ),
        _xy,
    ),
    "rfe-linear-svc": (
        lambda: _make(
            "sklearn.feature_selection.RFE", _make("sklearn.svm.SVC", kernel="linear"), n_features_to_select=2
        ),
        _xy,
    ),
    "select-from-forest": (lambda: _make("sklearn.feature_selection.SelectFromModel", _forest()), _xy),
    "self-training-svc": (
        lambda: _make(
            "sklearn.semi_supervised.SelfTrainingClassifier", _make("sklearn.svm.SVC", probability=True, random_state=0)
        ),
        _semi_supervised,
    ),
    "gradient-boosting-init-estimator": (
        lambda: _make("sklearn.ensemble.GradientBoostingClassifier", init=_lr(), n_estimators=5, random_state=0),
        _xy,
    ),
    "multi-output-gradient-boosting": (
        lambda: _make(
            "sklearn.multioutput.MultiOutputRegressor",
            _make("sklearn.ensemble.GradientBoostingRegressor", n_estimators=5, random_state=0),
        ),
        lambda: (X, Y_TWO_TARGETS),
    ),
    "voting-hard-weights": (
        lambda: _make(
            "sklearn.ensemble.VotingClassifier", [("logistic", _lr()), ("tree", _tree())], voting="hard", weights=[1, 2]
        ),
        _xy,
    ),
    "kd-tree-pipeline": (
        lambda: _pipe(
            _make("sklearn.preprocessing.StandardScaler"),
            _make("sklearn.neighbors.KNeighborsClassifier", algorithm="kd_tree"),
        ),
        _xy,
    ),
    "one-hot-infrequent": (
        lambda: _pipe(
            _make(
                "sklearn.compose.ColumnTransformer",
                [
                    ("numeric", "passthrough", [0, 1, 2, 3]),
                    (
                        "category",
                        _make(
                            "sklearn.preprocessing.OneHotEncoder",
                            min_frequency=20,
                            handle_unknown="infrequent_if_exist",
                        ),
                        [4],
                    ),
                ],
            ),
            _lr(),
        ),
        lambda: (X_CATEGORICAL, Y),
    ),
    "column-transformer-remainder": (
        lambda: _pipe(
            _make(
                "sklearn.compose.ColumnTransformer",
                [("pca", _make("sklearn.decomposition.PCA", n_components=1), [0, 1])],
                remainder="passthrough",
            ),
            _lr(),
        ),
        _xy,
    ),
}

# name -> (build, data): given records (DataFrames, text), so they are fitted and loaded, not smoke-tested
# in the sandbox with rows of numbers.
RECORD_COMPOSITES: dict[str, tuple[Callable[[], Any], Callable[[], Data]]] = {
    "column-transformer-dataframe": (
        lambda: _pipe(
            _make(
                "sklearn.compose.ColumnTransformer",
                [
                    ("numeric", _make("sklearn.preprocessing.StandardScaler"), COLUMNS),
                    ("color", _make("sklearn.preprocessing.OneHotEncoder", handle_unknown="ignore"), ["color"]),
                ],
            ),
            _lr(),
        ),
        lambda: (_frame(), LABELS[Y]),
    ),
    "column-transformer-text": (
        lambda: _pipe(
            _make(
                "sklearn.compose.ColumnTransformer",
                [
                    ("text", _make("sklearn.feature_extraction.text.TfidfVectorizer"), "text"),
                    ("numeric", "passthrough", COLUMNS),
                ],
            ),
            _lr(),
        ),
        lambda: (_frame(), Y),
    ),
    "column-selector": (
        lambda: _pipe(
            _make(
                "sklearn.compose.ColumnTransformer",
                [
                    (
                        "numeric",
                        _make("sklearn.preprocessing.StandardScaler"),
                        _make("sklearn.compose.make_column_selector", dtype_include=np.number),
                    )
                ],
            ),
            _lr(),
        ),
        lambda: (_frame()[COLUMNS], Y),
    ),
    "hist-gradient-boosting-from-dtype": (
        lambda: _make(
            "sklearn.ensemble.HistGradientBoostingClassifier",
            categorical_features="from_dtype",
            max_iter=10,
            random_state=0,
        ),
        lambda: (_frame(categorical=True)[[*COLUMNS, "color"]], Y),
    ),
    "hist-gradient-boosting-named-categories": (
        lambda: _make(
            "sklearn.ensemble.HistGradientBoostingRegressor",
            categorical_features=["color"],
            max_iter=10,
            random_state=0,
        ),
        lambda: (_frame()[[*COLUMNS, "color"]], Y_REGRESSION),
    ),
    "tfidf-logistic": (
        lambda: _pipe(_make("sklearn.feature_extraction.text.TfidfVectorizer"), _lr()),
        lambda: (TEXT, Y),
    ),
    "pipeline-pandas-output": (
        lambda: _pipe(
            _make("sklearn.preprocessing.StandardScaler"), _make("sklearn.decomposition.PCA", n_components=2), _lr()
        ).set_output(transform="pandas"),
        lambda: (_frame()[COLUMNS], Y),
    ),
}
