"""The zoo's parameter variants: per estimator, the parameters that change what it stores (search
algorithms and metrics of neighbours, losses, kernels, solvers, categorical features, early stopping...).
Each is fitted on the estimator's base data unless it says otherwise ("__data__")."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tests.unit.zoo_composites import Fresh
from tests.unit.zoo_data import X_CATEGORICAL, X_MIXED_OBJECT, Y_BINARY, Y_REGRESSION, X, Y


def _kernel(expression: Callable[[Any], Any]) -> Fresh:
    def make() -> Any:
        from sklearn.gaussian_process import kernels

        return expression(kernels)

    return Fresh(make)


_NEIGHBOURS = {
    "brute": {"algorithm": "brute"},
    "kd-tree": {"algorithm": "kd_tree", "leaf_size": 5},
    "ball-tree": {"algorithm": "ball_tree", "leaf_size": 5},
    "manhattan-kd-tree": {"metric": "manhattan", "algorithm": "kd_tree"},
    "chebyshev": {"metric": "chebyshev"},
    "minkowski-p3": {"p": 3},
    "weighted-minkowski-brute": {
        "metric": "minkowski",
        "metric_params": {"w": np.linspace(0.5, 1.5, 4)},
        "algorithm": "brute",
    },
    "weighted-minkowski-ball-tree": {
        "metric": "minkowski",
        "metric_params": {"w": np.linspace(0.5, 1.5, 4)},
        "algorithm": "ball_tree",
    },
    "seuclidean-ball-tree": {
        "metric": "seuclidean",
        "metric_params": {"V": np.var(X, axis=0) + 0.1},
        "algorithm": "ball_tree",
    },
    "mahalanobis-brute": {"metric": "mahalanobis", "metric_params": {"VI": np.eye(4)}, "algorithm": "brute"},
    "mahalanobis-ball-tree": {"metric": "mahalanobis", "metric_params": {"VI": np.eye(4)}, "algorithm": "ball_tree"},
    "cosine-brute": {"metric": "cosine", "algorithm": "brute"},
    "haversine-ball-tree": {"metric": "haversine", "algorithm": "ball_tree", "__data__": lambda: (X[:, :2], Y)},
}
_SUPERVISED_NEIGHBOURS = {**_NEIGHBOURS, "distance-weights": {"weights": "distance"}}
_SVM = {"linear": {"kernel": "linear"}, "poly": {"kernel": "poly", "degree": 2}, "sigmoid": {"kernel": "sigmoid"}}
_TREE_REGRESSION = {"absolute-error": {"criterion": "absolute_error"}, "poisson": {"criterion": "poisson"}}

# estimator -> {label: parameters}; "__data__" gives other data for that variant.
PARAMETER_VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    **dict.fromkeys(
        ("KNeighborsClassifier", "KNeighborsRegressor", "RadiusNeighborsClassifier", "RadiusNeighborsRegressor"),
        _SUPERVISED_NEIGHBOURS,
    ),
    **dict.fromkeys(("NearestNeighbors", "KNeighborsTransformer", "RadiusNeighborsTransformer"), _NEIGHBOURS),
    "LocalOutlierFactor": {label: {**params, "novelty": True} for label, params in _NEIGHBOURS.items()},
    "KernelDensity": {
        "kd-tree": {"algorithm": "kd_tree"},
        "ball-tree": {"algorithm": "ball_tree"},
        "epanechnikov": {"kernel": "epanechnikov"},
        "manhattan": {"metric": "manhattan"},
    },
    "DecisionTreeClassifier": {
        "entropy": {"criterion": "entropy"},
        "max-features": {"max_features": 2},
        "ccp": {"ccp_alpha": 0.01},
        "depth-2": {"max_depth": 2},
    },
    "DecisionTreeRegressor": {**_TREE_REGRESSION, "monotonic": {"monotonic_cst": [1, 0, 0, 0]}},
    "ExtraTreeRegressor": _TREE_REGRESSION,
    "RandomForestClassifier": {
        "oob": {"oob_score": True, "n_estimators": 10},
        "max-samples": {"max_samples": 0.5},
        "no-bootstrap": {"bootstrap": False},
    },
    "RandomForestRegressor": {"oob": {"oob_score": True, "n_estimators": 10}, "poisson": {"criterion": "poisson"}},
    "ExtraTreesClassifier": {"bootstrap-oob": {"bootstrap": True, "oob_score": True}},
    "GradientBoostingClassifier": {
        "exponential": {"loss": "exponential", "__data__": lambda: (X, Y_BINARY)},
        "subsample": {"subsample": 0.7},
        "early-stopping": {"n_iter_no_change": 2, "validation_fraction": 0.2},
        "init-zero": {"init": "zero"},
        "max-features": {"max_features": 2},
    },
    "GradientBoostingRegressor": {
        "absolute-error": {"loss": "absolute_error"},
        "huber": {"loss": "huber"},
        "quantile": {"loss": "quantile", "alpha": 0.8},
        "subsample": {"subsample": 0.7},
        "init-zero": {"init": "zero"},
    },
    "HistGradientBoostingClassifier": {
        "early-stopping": {"early_stopping": True},
        "early-stopping-loss": {"early_stopping": True, "scoring": "loss"},
        "categorical": {"categorical_features": [4], "__data__": lambda: (X_CATEGORICAL, Y)},
        "interaction": {"interaction_cst": [[0, 1], [2, 3]]},
    },
    "HistGradientBoostingRegressor": {
        "poisson": {"loss": "poisson"},
        "gamma": {"loss": "gamma"},
        "quantile": {"loss": "quantile", "quantile": 0.8},
        "absolute-error": {"loss": "absolute_error"},
        "monotonic": {"monotonic_cst": [1, 0, 0, 0]},
        "categorical": {"categorical_features": [4], "__data__": lambda: (X_CATEGORICAL, Y_REGRESSION)},
        "early-stopping": {"early_stopping": True},
    },
    "SVC": {
        **_SVM,
        "one-vs-one": {"decision_function_shape": "ovo"},
        "probability": {"probability": True},
        "precomputed": {"kernel": "precomputed", "__data__": lambda: (X @ X.T, Y)},
    },
    **dict.fromkeys(("NuSVC", "SVR", "NuSVR", "OneClassSVM"), _SVM),
    "LogisticRegression": {
        "liblinear": {"solver": "liblinear", "__data__": lambda: (X, Y_BINARY)},
        "saga-l1": {"solver": "saga", "penalty": "l1", "max_iter": 300},
        "elasticnet": {"solver": "saga", "penalty": "elasticnet", "l1_ratio": 0.5, "max_iter": 300},
        "no-intercept": {"fit_intercept": False},
        "newton-cg": {"solver": "newton-cg"},
    },
    "SGDClassifier": {
        **{
            loss.replace("_", "-"): {"loss": loss}
            for loss in ("log_loss", "modified_huber", "squared_hinge", "perceptron", "huber", "epsilon_insensitive")
        },
        "average": {"average": True},
        "early-stopping": {"early_stopping": True},
    },
    "SGDRegressor": {
        **{
            loss.replace("_", "-"): {"loss": loss}
            for loss in ("huber", "epsilon_insensitive", "squared_epsilon_insensitive")
        },
        "average": {"average": True},
    },
    "TweedieRegressor": {
        "normal": {"power": 0},
        "compound": {"power": 1.5},
        "inverse-gaussian": {"power": 3},
        "identity-link": {"power": 1.5, "link": "identity"},
    },
    "QuantileRegressor": {"upper": {"quantile": 0.8}},
    **{
        name: {
            "sgd": {"solver": "sgd", "max_iter": 50},
            "lbfgs": {"solver": "lbfgs"},
            "early-stopping": {"early_stopping": True},
        }
        for name in ("MLPClassifier", "MLPRegressor")
    },
    "KMeans": {"elkan": {"algorithm": "elkan"}},
    "BisectingKMeans": {"largest-cluster": {"bisecting_strategy": "largest_cluster"}, "elkan": {"algorithm": "elkan"}},
    "OneHotEncoder": {
        "dense": {"sparse_output": False},
        "drop-first": {"drop": "first"},
        "infrequent": {"min_frequency": 5, "handle_unknown": "infrequent_if_exist"},
        "ignore-unknown": {"handle_unknown": "ignore"},
        "mixed-object-columns": {"__data__": lambda: (X_MIXED_OBJECT, Y)},
    },
    "OrdinalEncoder": {
        "unknown-value": {"handle_unknown": "use_encoded_value", "unknown_value": -1},
        "mixed-object-columns": {"__data__": lambda: (X_MIXED_OBJECT, Y)},
    },
    "KBinsDiscretizer": {
        "one-hot": {"encode": "onehot"},
        "uniform": {"strategy": "uniform"},
        "kmeans": {"strategy": "kmeans"},
    },
    "PolynomialFeatures": {"interaction-only": {"interaction_only": True}, "degree-3": {"degree": 3}},
    "SplineTransformer": {
        "periodic": {"extrapolation": "periodic"},
        "quantile-knots": {"knots": "quantile"},
        "sparse": {"sparse_output": True},
    },
    "QuantileTransformer": {"normal": {"output_distribution": "normal", "n_quantiles": 20}},
    "PowerTransformer": {"box-cox": {"method": "box-cox", "__data__": lambda: (X + 0.1, None)}},
    "SimpleImputer": {
        "median": {"strategy": "median"},
        "most-frequent": {"strategy": "most_frequent"},
        "constant": {"strategy": "constant", "fill_value": 0.0},
        "indicator": {"add_indicator": True},
    },
    "KNNImputer": {"distance": {"weights": "distance"}},
    "PCA": {
        "whiten": {"whiten": True},
        "arpack": {"svd_solver": "arpack", "n_components": 2},
        "variance": {"n_components": 0.9},
    },
    "KernelPCA": {"rbf-inverse": {"kernel": "rbf", "fit_inverse_transform": True}, "poly": {"kernel": "poly"}},
    "TruncatedSVD": {"arpack": {"algorithm": "arpack"}},
    "Birch": {"small-threshold": {"threshold": 0.1}},
    "IsolationForest": {"max-features": {"max_features": 2}},
    "GaussianProcessRegressor": {
        "rbf-white": {"kernel": _kernel(lambda k: k.ConstantKernel() * k.RBF() + k.WhiteKernel())},
        "matern": {"kernel": _kernel(lambda k: k.Matern(nu=2.5))},
        "rational-quadratic": {"kernel": _kernel(lambda k: k.RationalQuadratic())},
        "periodic": {"kernel": _kernel(lambda k: k.ExpSineSquared() + k.WhiteKernel())},
        "dot-product": {"kernel": _kernel(lambda k: k.DotProduct() ** 2)},
    },
    "GaussianProcessClassifier": {"matern": {"kernel": _kernel(lambda k: 1.0 * k.Matern())}},
    "LinearDiscriminantAnalysis": {"lsqr": {"solver": "lsqr"}, "eigen": {"solver": "eigen", "shrinkage": "auto"}},
    "CalibratedClassifierCV": {"isotonic": {"method": "isotonic"}, "no-ensemble": {"ensemble": False}},
    "SelectKBest": {
        "chi2": {"score_func": Fresh(lambda: _make_function("chi2"))},
        "mutual-info": {"score_func": Fresh(lambda: _make_function("mutual_info_classif"))},
    },
    "Nystroem": {"poly": {"kernel": "poly"}},
    "DummyClassifier": {"constant": {"strategy": "constant", "constant": 1}, "stratified": {"strategy": "stratified"}},
    "DummyRegressor": {"quantile": {"strategy": "quantile", "quantile": 0.5}},
    "IsotonicRegression": {"clip": {"out_of_bounds": "clip"}},
    "LabelSpreading": {"knn": {"kernel": "knn"}},
    "LabelPropagation": {"knn": {"kernel": "knn"}},
}


def _make_function(name: str) -> Any:
    from sklearn import feature_selection

    return getattr(feature_selection, name)
