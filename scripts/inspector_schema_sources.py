"""What the schema generator learns from besides the zoo: the internal classes a model may carry, the
functions a model may keep and where, and what each of scikit-learn's parameter constraints admits."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from training_gate.inspector.restricted.table import LOSS_NAMES

# Classes a model carries besides estimators, allowed to be learned (by exact name; names of another
# version simply do not resolve). Left out on purpose: builders, splitters' and pruners' internals,
# PyFuncDistance (calls back into Python), scipy.stats distributions (their __setstate__ runs exec).
INTERNAL_CLASSES = (
    *(f"sklearn._loss.loss.{name}" for name in LOSS_NAMES),
    *(
        f"sklearn._loss.link.{name}"
        for name in (
            "HalfLogitLink",
            "IdentityLink",
            "Interval",
            "LogLink",
            "LogitLink",
            "MultinomialLogit",
            "HalfMultinomialLink",
        )
    ),
    *(
        f"sklearn.ensemble._gb_losses.{name}"
        for name in (
            "LeastSquaresError",
            "LeastAbsoluteError",
            "HuberLossFunction",
            "QuantileLossFunction",
            "BinomialDeviance",
            "MultinomialDeviance",
            "ExponentialLoss",
        )
    ),
    "sklearn.utils._bunch.Bunch",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.metrics._scorer._PassthroughScorer",
    "sklearn.metrics._scorer._Scorer",
    "sklearn.metrics._scorer._PredictScorer",
    "sklearn.metrics._scorer._ProbaScorer",
    "sklearn.metrics._scorer._ThresholdScorer",
    "sklearn.metrics._scorer._CurveScorer",
    "sklearn.metrics._scorer._MultimetricScorer",
    *(
        f"sklearn.model_selection._split.{name}"
        for name in (
            "KFold",
            "StratifiedKFold",
            "GroupKFold",
            "StratifiedGroupKFold",
            "ShuffleSplit",
            "StratifiedShuffleSplit",
            "TimeSeriesSplit",
            "RepeatedKFold",
            "RepeatedStratifiedKFold",
            "LeaveOneOut",
            "PredefinedSplit",
            "_CVIterableWrapper",
        )
    ),
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
    *(
        f"sklearn.gaussian_process.kernels.{name}"
        for name in (
            "RBF",
            "ConstantKernel",
            "WhiteKernel",
            "Matern",
            "RationalQuadratic",
            "ExpSineSquared",
            "DotProduct",
            "Product",
            "Sum",
            "Exponentiation",
            "CompoundKernel",
            "PairwiseKernel",
        )
    ),
    "sklearn.cluster._birch._CFNode",
    "sklearn.cluster._birch._CFSubcluster",
    "sklearn.cluster._bisect_k_means._BisectingTree",
    "sklearn.multiclass._ConstantPredictor",
    "sklearn.utils._metadata_requests.MetadataRequest",
    "sklearn.utils._metadata_requests.MethodMetadataRequest",
    "sklearn.compose._column_transformer.make_column_selector",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "scipy.interpolate._bsplines.BSpline",
    "scipy.interpolate._bsplines._BSpline",  # scipy >= 1.18: the spline BSpline delegates to
    "sklearn.compose._column_transformer._RemainderColsList",  # scikit-learn 1.5: a list that warns
    "sklearn.model_selection._classification_threshold._CurveScorer",
    *(f"scipy.sparse._{fmt}.{fmt}_{kind}" for fmt in ("csr", "csc", "coo") for kind in ("matrix", "array")),
)

# Functions a model may keep, and the only (class, attribute) places they may sit. The model's own code
# calls them with arguments it builds; the same function elsewhere (FunctionTransformer.func, whose
# kw_args come from the file) would be called with arguments the file chose.
_SCORE_OWNERS = [
    f"sklearn.feature_selection._univariate_selection.{name}"
    for name in ("SelectKBest", "SelectPercentile", "SelectFpr", "SelectFdr", "SelectFwe", "GenericUnivariateSelect")
]
_SCORERS = [
    "sklearn.metrics._scorer._Scorer",
    "sklearn.metrics._scorer._CurveScorer",
    "sklearn.metrics._scorer._PredictScorer",
    "sklearn.metrics._scorer._ProbaScorer",
    "sklearn.metrics._scorer._ThresholdScorer",
]
FUNCTION_SLOTS: dict[str, list[tuple[str, str]]] = {
    **{
        f"sklearn.feature_selection._univariate_selection.{name}": [(owner, "score_func") for owner in _SCORE_OWNERS]
        for name in ("f_classif", "f_regression", "chi2", "r_regression")
    },
    **{
        f"sklearn.feature_selection._mutual_info.{name}": [(owner, "score_func") for owner in _SCORE_OWNERS]
        for name in ("mutual_info_classif", "mutual_info_regression")
    },
    "numpy.mean": [("sklearn.cluster._agglomerative.FeatureAgglomeration", "pooling_func")],
    # scikit-learn < 1.4 keeps this function (it calls estimator.score) as a search's default scorer_.
    "sklearn.metrics._scorer._passthrough_scorer": [
        (f"sklearn.model_selection._search.{name}", "scorer_") for name in ("GridSearchCV", "RandomizedSearchCV")
    ],
    **{
        f"sklearn.cluster._kmeans.{name}": [("sklearn.cluster._bisect_k_means.BisectingKMeans", "_kmeans_single")]
        for name in ("_kmeans_single_lloyd", "_kmeans_single_elkan")
    },
    "scipy._lib.array_api_compat.numpy._aliases.asarray": [("scipy.interpolate._bsplines.BSpline", "_asarray")],
    **{
        name: [(owner, "_score_func") for owner in _SCORERS]
        for name in (
            *(
                f"sklearn.metrics._classification.{m}"
                for m in (
                    "accuracy_score",
                    "balanced_accuracy_score",
                    "brier_score_loss",
                    "f1_score",
                    "jaccard_score",
                    "log_loss",
                    "matthews_corrcoef",
                    "precision_score",
                    "recall_score",
                )
            ),
            *(
                f"sklearn.metrics._ranking.{m}"
                for m in ("average_precision_score", "roc_auc_score", "top_k_accuracy_score")
            ),
            *(
                f"sklearn.metrics._regression.{m}"
                for m in (
                    "explained_variance_score",
                    "max_error",
                    "mean_absolute_error",
                    "mean_absolute_percentage_error",
                    "mean_gamma_deviance",
                    "mean_poisson_deviance",
                    "mean_squared_error",
                    "mean_squared_log_error",
                    "median_absolute_error",
                    "r2_score",
                    "root_mean_squared_error",
                    "root_mean_squared_log_error",
                )
            ),
        )
    },
}
PLAIN = {"plain": True}


# -- parameter constraints -> patterns -------------------------------------------------------------------------


def _subclasses_of(base: type, candidates: dict[str, type]) -> list[str]:
    return sorted(name for name, cls in candidates.items() if isinstance(cls, type) and issubclass(cls, base))


def constraint_pattern(constraint: Any, candidates: dict[str, type]) -> dict[str, Any] | None:
    """What a parameter constraint admits, as a pattern (None: a constraint the generator does not map,
    so only what the zoo stored is admitted)."""
    from numbers import Integral, Real

    from sklearn.utils import _param_validation as pv

    if isinstance(constraint, str) and constraint == "no_validation":
        return PLAIN
    try:
        constraint = pv.make_constraint(constraint)
    except (ValueError, TypeError):
        return None
    kind = type(constraint).__name__
    if kind == "Hidden":
        return constraint_pattern(constraint.constraint, candidates)
    if kind == "_NoneConstraint":
        return {"none": True}
    if kind in ("_Booleans",):
        return {"bool": True}
    if kind == "_VerboseHelper":
        return {"bool": True, "int": True}
    if kind in ("_NanConstraint", "_PandasNAConstraint"):
        return {"float": True}
    if kind == "MissingValues":
        return {"int": True, "float": True, "str": True, "none": True}
    if kind == "Interval":
        return {"int": True} if constraint.type is Integral else {"int": True, "float": True}
    if kind == "StrOptions":
        return {"str": True}
    if kind == "Options":
        options = list(constraint.options)
        if all(isinstance(o, type) for o in options):
            names = [n for o in options for n, c in candidates.items() if c is o]
            return {"types": sorted(names)} if names else None
        return {"plain": True}
    if kind in ("_ArrayLikes", "_IterablesNotString"):
        return PLAIN
    if kind == "_SparseMatrices":
        return {"objects": sorted(n for n in candidates if n.startswith("scipy.sparse."))}
    if kind == "_RandomStates":
        return {"int": True, "none": True, "objects": ["numpy.random.mtrand.RandomState"]}
    if kind == "_CVObjects":
        return {
            "int": True,
            "none": True,
            "plain": True,
            "objects": sorted(n for n in candidates if ".model_selection._split." in n),
        }
    if kind == "HasMethods":
        return {"estimators": True}
    if kind == "_Callables":
        # Where the library keeps a callable: the functions it keeps there (learned, FUNCTION_SLOTS), any
        # the deployment allowlists by name, and the one partial the gate builds (check_array with plain
        # options). No other function.
        return {"functions": [], "partial": True}
    if kind == "_InstancesOf":
        cls = constraint.type
        if cls is Integral:
            return {"int": True}
        if cls in (Real, float):
            return {"int": True, "float": True}
        if cls is str:
            return {"str": True}
        if cls is bool:
            return {"bool": True}
        if cls in (list, tuple, dict, np.ndarray):
            return PLAIN
        if isinstance(cls, type) and issubclass(cls, BaseEstimator):
            return {"estimators": True}
        names = _subclasses_of(cls, candidates)
        return {"objects": names} if names else None
    return None  # the rest: what the zoo stored
