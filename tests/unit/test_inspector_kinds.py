"""What the zoo needed, one rule at a time: the smoke check by estimator kind, and the new allowlist
entries with the checks that keep them narrow (a function only where the model keeps it, a partial only
around check_array, spline knots and bisecting-tree centers sized for the C code that reads them)."""

from __future__ import annotations

import functools
import io
import pickle

import joblib
import numpy as np
import pytest
from sklearn.cluster import DBSCAN, BisectingKMeans
from sklearn.datasets import load_iris
from sklearn.decomposition import PCA
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import Lars, SGDClassifier, TweedieRegressor
from sklearn.preprocessing import FunctionTransformer, SplineTransformer
from sklearn.utils.validation import check_array

from training_gate.domain.models import CheckStatus
from training_gate.inspector.child import smoke_prediction
from training_gate.inspector.config import InspectConfig
from training_gate.inspector.loader import RefusedCall, load_model_stream
from training_gate.inspector.structures import InvalidStructure

X, Y = load_iris(return_X_y=True)


def load(obj: object, how: str = "joblib"):
    if how == "joblib":
        buffer = io.BytesIO()
        joblib.dump(obj, buffer)
        return load_model_stream(io.BytesIO(buffer.getvalue()), "model.joblib").model
    return load_model_stream(io.BytesIO(pickle.dumps(obj, protocol=2)), "model.pkl").model


# -- the smoke check by kind ---------------------------------------------------------------------------------


def test_a_transformer_is_smoke_tested_by_transform():
    status, detail = smoke_prediction(PCA(n_components=2).fit(X), InspectConfig())
    assert status == CheckStatus.PASS
    assert "transform on 1 row(s)" in detail and "1 x 2, finite" in detail


class _Transformer(PCA):
    def __init__(self, output=None):
        self.output = output

    def fit(self, rows, y=None):
        self.n_features_in_ = rows.shape[1]
        return self

    def transform(self, rows):
        return self.output


@pytest.mark.parametrize(
    ("output", "detail"),
    [
        (np.zeros((2, 3)), "transform returned (2, 3) for 1 rows"),
        (np.zeros(3), "transform returned (3,) for 1 rows"),
        (np.array([[np.nan, 1.0]]), "transform returned NaN or infinity"),
        (np.array([["a", "b"]]), "not numbers"),
    ],
    ids=["rows", "one-dimensional", "nan", "strings"],
)
def test_a_transform_that_loses_rows_or_gives_non_finite_values_fails(output, detail):
    status, got = smoke_prediction(_Transformer(output).fit(X), InspectConfig())
    assert status == CheckStatus.FAIL
    assert detail in got


def test_an_estimator_with_neither_predict_nor_transform_is_loaded_only_with_a_warning():
    status, detail = smoke_prediction(DBSCAN().fit(X), InspectConfig())
    assert status == CheckStatus.WARN
    assert "neither predict nor transform" in detail


def test_an_object_that_is_no_estimator_still_fails():
    status, detail = smoke_prediction({"weights": np.ones(3)}, InspectConfig())
    assert status == CheckStatus.FAIL
    assert "not an estimator" in detail


# -- the new allowlist entries, and their limits --------------------------------------------------------------


def test_sgd_and_parametrised_cython_losses_load_at_every_protocol():
    sgd = SGDClassifier(random_state=0).fit(X, Y)
    tweedie = TweedieRegressor(power=1.5).fit(X, X[:, 0])
    for how in ("joblib", "pickle-2"):
        assert load(sgd, how).predict(X[:3]).tolist() == sgd.predict(X[:3]).tolist()
        assert np.allclose(load(tweedie, how).predict(X[:3]), tweedie.predict(X[:3]))


def test_a_cython_loss_is_called_with_one_finite_float_only():
    from sklearn.linear_model._sgd_fast import Hinge

    class Forged:
        def __reduce__(self):
            return (Hinge, ("1.0",))

    with pytest.raises(RefusedCall, match="one finite float"):
        load(Forged(), "pickle-2")


def test_a_plain_class_default_may_be_set_on_the_instance_but_a_method_may_not():
    model = Lars().fit(X, X[:, 0])  # Lars has `positive = False` on the class; the instance sets it
    assert load(model).positive is False
    model.__dict__["predict"] = None
    with pytest.raises(InvalidStructure, match="invalid Lars: predict is not an attribute the library writes"):
        load(model)


def test_a_score_function_loads_where_it_belongs_and_nowhere_else():
    selector = SelectKBest(k=2).fit(X, Y)
    assert load(selector).score_func is f_classif
    moved = FunctionTransformer(func=f_classif).fit(X)
    with pytest.raises(
        InvalidStructure,
        match=r"FunctionTransformer: func holds the function .*f_classif, which the library does not",
    ):
        load(moved)
    with pytest.raises(InvalidStructure, match=r"top level \['hidden'\] \[0\] holds the function .*f_classif"):
        load({"hidden": [f_classif]})


def test_a_kmeans_routine_cannot_be_moved_where_the_file_chooses_its_arguments():
    model = BisectingKMeans(n_clusters=3, random_state=0).fit(X)
    assert load(model).predict(X[:5]).tolist() == model.predict(X[:5]).tolist()
    moved = FunctionTransformer(func=model._kmeans_single, kw_args={"centers_init": np.zeros((1, 1))}).fit(X)
    with pytest.raises(InvalidStructure, match=r"FunctionTransformer: func holds the function .*_kmeans_single_lloyd"):
        load(moved)


def test_a_bisecting_tree_center_narrower_than_the_data_is_refused():
    model = BisectingKMeans(n_clusters=3, random_state=0).fit(X)
    model._bisecting_tree.left.center = np.zeros(1)
    with pytest.raises(InvalidStructure, match=r"_bisecting_tree\.center has 1 values for 4 features"):
        load(model)


def test_a_partial_wraps_only_check_array_and_only_in_function_transformer():
    good = FunctionTransformer(functools.partial(check_array, dtype=[np.float64], ensure_2d=True)).fit(X)
    assert np.array_equal(load(good).transform(X[:2]), X[:2])
    with pytest.raises(RefusedCall, match="partial wraps check_array only"):
        load(FunctionTransformer(functools.partial(f_classif)).fit(X))
    with pytest.raises(InvalidStructure, match="keywords"):
        load(FunctionTransformer(functools.partial(check_array, estimator=PCA())).fit(X))
    with pytest.raises(InvalidStructure, match=r"top level \['later'\] holds a functools\.partial"):
        load({"later": functools.partial(check_array)})


def test_spline_knots_too_few_for_the_degree_are_refused():
    model = SplineTransformer().fit(X)
    assert np.allclose(load(model).transform(X[:3]), model.transform(X[:3]))
    spline = model.bsplines_[0]
    knots = spline.t[:4]
    if hasattr(spline, "_t"):
        spline._t = knots
    else:
        spline.t = knots
    with pytest.raises(InvalidStructure, match=r"invalid _?BSpline: t has 4 knots"):  # scipy 1.18: _BSpline
        load(model)


def test_a_function_kept_as_a_parameter_is_never_called_while_loading():
    class Call:
        def __reduce__(self):
            return (f_classif, (np.ones((2, 2)), np.array([0, 1])))

    with pytest.raises(RefusedCall, match="f_classif may not be called while loading"):
        load(Call(), "pickle-2")
