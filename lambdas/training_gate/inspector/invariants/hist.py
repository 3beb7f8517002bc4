"""Invariants of histogram gradient boosting: its predictors' node records and bitsets, the bin mapper's
categories, and the width of what reaches the predictors (the model's own, or its preprocessor's)."""

from __future__ import annotations

from typing import Any

import numpy as np

from training_gate.inspector.invariants import invariant
from training_gate.inspector.invariants.base import array, attribute, fail, integer, tree_links, width


def _nodes(predictor: Any) -> np.ndarray:
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE

    nodes = array(predictor, "nodes", attribute(predictor, "nodes"), 1)
    if nodes.dtype != PREDICTOR_RECORD_DTYPE or not len(nodes) or not nodes.flags.c_contiguous:
        raise fail(predictor, "nodes", f"has dtype {nodes.dtype}, not this scikit-learn's node record, or no node")
    return nodes


@invariant("hgb-predictor-nodes")
def hgb_predictor_nodes(predictor: Any) -> None:
    nodes = _nodes(predictor)
    leaf = nodes["is_leaf"].astype(bool)
    tree_links(predictor, nodes["left"].astype(np.int64), nodes["right"].astype(np.int64), leaf, "nodes.")
    if (nodes["feature_idx"][~leaf] < 0).any():
        raise fail(predictor, "nodes.feature_idx", "is negative")


@invariant("hgb-predictor-bitsets")
def hgb_predictor_bitsets(predictor: Any) -> None:
    from sklearn.ensemble._hist_gradient_boosting.common import X_BITSET_INNER_DTYPE

    nodes = _nodes(predictor)
    categorical = ~nodes["is_leaf"].astype(bool) & nodes["is_categorical"].astype(bool)
    for field in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
        bitsets = array(predictor, field, attribute(predictor, field), 2)
        if bitsets.dtype != X_BITSET_INNER_DTYPE or bitsets.shape[1] != 8 or not bitsets.flags.c_contiguous:
            raise fail(predictor, field, f"has shape {bitsets.shape} and dtype {bitsets.dtype}")
        if (nodes["bitset_idx"][categorical] >= len(bitsets)).any():
            raise fail(predictor, "nodes.bitset_idx", f"is past the {len(bitsets)} {field}")


@invariant("hgb-bin-mapper-categories")
def hgb_bin_mapper_categories(mapper: Any) -> None:
    """Known categories become bit positions in 8 x 32-bit words: 256 values at most, per feature."""
    if "bin_thresholds_" not in vars(mapper):
        return
    categorical = array(mapper, "is_categorical_", attribute(mapper, "is_categorical_"), 1, "bu")
    thresholds = attribute(mapper, "bin_thresholds_")
    if type(thresholds) is not list or len(thresholds) != len(categorical):
        raise fail(mapper, "bin_thresholds_", f"is not one entry for each of {len(categorical)} features")
    for index in np.flatnonzero(categorical):
        values = array(mapper, f"bin_thresholds_[{index}]", thresholds[index], 1, "fiu")
        if len(values) and (values.min() < 0 or values.max() >= 256 or (values != np.floor(values)).any()):
            raise fail(mapper, f"bin_thresholds_[{index}]", "holds a category outside 0..255")


def _predictor_lists(estimator: Any) -> list[list[Any]]:
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    iterations = attribute(estimator, "_predictors")
    per_iteration = integer(estimator, "n_trees_per_iteration_", attribute(estimator, "n_trees_per_iteration_"), 1)
    if type(iterations) is not list:
        raise fail(estimator, "_predictors", "is not a list of iterations")
    for iteration in iterations:
        if type(iteration) is not list or len(iteration) != per_iteration:
            raise fail(estimator, "_predictors", f"has an iteration without exactly {per_iteration} predictors")
        if any(type(p) is not TreePredictor for p in iteration):
            raise fail(estimator, "_predictors", "holds something that is not a TreePredictor")
    return iterations


@invariant("hgb-feature-width")
def hgb_feature_width(estimator: Any) -> None:
    """The predictors read X[row, feature_idx] of the input as validated (or as the preprocessor gives
    it) without checking its width; categorical splits look the feature up in the bin mapper's map."""
    if "_predictors" not in vars(estimator):
        return
    n_features = width(estimator)
    mapper = attribute(estimator, "_bin_mapper")
    categorical = vars(mapper).get("is_categorical_")
    if categorical is None or len(categorical) != n_features:
        raise fail(estimator, "_bin_mapper.is_categorical_", f"is not one flag for each of {n_features} features")
    for iteration in _predictor_lists(estimator):
        for predictor in iteration:
            nodes = attribute(predictor, "nodes")
            inner = ~nodes["is_leaf"].astype(bool)
            if (nodes["feature_idx"][inner] >= n_features).any():
                raise fail(estimator, "_predictors.nodes.feature_idx", f"is past the {n_features} features")
            uses = inner & nodes["is_categorical"].astype(bool)
            if uses.any() and not categorical[nodes["feature_idx"][uses]].all():
                raise fail(estimator, "_predictors.nodes.is_categorical", "splits on a feature that is not categorical")


def _selected(owner: Any, columns: Any, n_features: int, names: Any) -> np.ndarray:
    """The input column indices a ColumnTransformer entry selects."""
    if type(columns) is slice:
        return np.arange(n_features)[columns]
    values = np.asarray(columns)
    if values.dtype.kind == "b":
        if values.shape != (n_features,):
            raise fail(owner, "_preprocessor.transformers_", "has a column mask of another width")
        return np.flatnonzero(values)
    if values.dtype.kind in "iu":
        if values.size and (values.min() < 0 or values.max() >= n_features):
            raise fail(owner, "_preprocessor.transformers_", "selects a column outside the input")
        return values.ravel().astype(np.int64)
    if values.dtype.kind in "OU" and names is not None:
        lookup = {name: i for i, name in enumerate(np.asarray(names).tolist())}
        if any(name not in lookup for name in values.ravel().tolist()):
            raise fail(owner, "_preprocessor.transformers_", "selects a column by a name the input does not have")
        return np.array([lookup[name] for name in values.ravel().tolist()], dtype=np.int64)
    raise fail(owner, "_preprocessor.transformers_", f"selects columns with {type(columns).__name__}")


@invariant("hgb-preprocessor-width")
def hgb_preprocessor_width(estimator: Any) -> None:
    """With categorical features the model's input goes through its own ColumnTransformer (an ordinal
    encoder, then check_array on the rest) and the predictors read the result unchecked: that output
    must have exactly the model's width, each input column used once."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

    preprocessor = vars(estimator).get("_preprocessor")
    if preprocessor is None:
        return
    n_features = width(estimator)
    if type(preprocessor) is not ColumnTransformer or width(preprocessor) != n_features:
        raise fail(estimator, "_preprocessor", f"is not a ColumnTransformer over the model's {n_features} features")
    names = vars(preprocessor).get("feature_names_in_")
    used = np.zeros(n_features, dtype=np.int64)
    indices = vars(preprocessor).get("_transformer_to_input_indices") or {}
    for name, transformer, columns in attribute(preprocessor, "transformers_"):
        selected = _selected(estimator, columns, n_features, names)
        if name in indices and not np.array_equal(
            np.sort(np.asarray(indices[name], dtype=np.int64)), np.sort(selected)
        ):
            raise fail(estimator, "_preprocessor._transformer_to_input_indices", f"of {name!r} differ from its columns")
        if isinstance(transformer, str):
            if transformer == "drop" and not len(selected):
                continue
            if transformer != "passthrough":
                raise fail(estimator, "_preprocessor.transformers_", f"drops or renames columns with {transformer!r}")
        elif type(transformer) is OrdinalEncoder:
            if width(transformer) != len(selected) or len(attribute(transformer, "categories_")) != len(selected):
                raise fail(
                    estimator, "_preprocessor.encoder", f"is not one column each for its {len(selected)} columns"
                )
        elif type(transformer) is FunctionTransformer:
            if vars(transformer).get("kw_args") or vars(transformer).get("inverse_func") is not None:
                raise fail(estimator, "_preprocessor.numerical", "has arguments beyond check_array's")
            from sklearn.utils.validation import check_array

            func = vars(transformer).get("func")
            if getattr(func, "func", None) is not check_array:
                raise fail(estimator, "_preprocessor.numerical", "does not pass its columns through check_array")
        else:
            raise fail(estimator, "_preprocessor.transformers_", f"holds a {type(transformer).__name__}")
        np.add.at(used, selected, 1)
    if (used != 1).any():
        raise fail(estimator, "_preprocessor.transformers_", "do not use each input column exactly once")
