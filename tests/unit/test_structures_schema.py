"""The schema's rules, one at a time: what makes a state fitted and what it then must have, how patterns
admit values (by kind, by identity, estimators anywhere the library keeps a user's choice), and what a
class the deployment allowlists by name may hold."""

from __future__ import annotations

import io
import pickle
import warnings

import numpy as np
import pytest
from sklearn.ensemble import BaggingClassifier, RandomForestClassifier
from sklearn.feature_selection import f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import FunctionTransformer
from sklearn.tree import DecisionTreeClassifier

from tests.unit.zoo_data import X, Y
from training_gate.inspector.loader import InvalidStructure, RefusedGlobal, load_model_stream
from training_gate.inspector.restricted.environment import environment
from training_gate.inspector.schema.patterns import describe


def load(obj: object, extra: tuple[str, ...] = ()) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_model_stream(io.BytesIO(pickle.dumps(obj, protocol=4)), "model.pkl", extra).model


def test_an_unfitted_estimator_needs_only_its_parameters():
    # A forest keeps an unfitted tree as its template; a search keeps the unfitted estimator it was given.
    search = GridSearchCV(LogisticRegression(), {"C": [0.5, 1.0]}, cv=3).fit(X, Y)
    assert load(search).estimator.get_params() == LogisticRegression().get_params()
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, Y)
    assert load(forest).estimator.get_params()["random_state"] is None


def test_any_fitted_attribute_makes_a_state_fitted_and_then_all_required_ones_must_be_there():
    model = DecisionTreeClassifier().fit(X, Y)
    fitted = {k: v for k, v in vars(model).items() if k.endswith("_")}
    unfitted = DecisionTreeClassifier()
    unfitted.__dict__["tree_"] = fitted["tree_"]  # a tree, without the width it is checked against
    with pytest.raises(InvalidStructure, match="is missing: every such state has it"):
        load(unfitted)


def test_a_parameter_admits_what_its_constraint_admits_not_only_what_the_zoo_used():
    model = DecisionTreeClassifier(max_depth=np.int64(3), min_samples_leaf=0.1, max_features="log2").fit(X, Y)
    assert load(model).max_depth == 3
    model.max_depth = "deep"
    with pytest.raises(InvalidStructure, match="max_depth is a str"):
        load(model)


def test_where_the_library_keeps_the_users_estimator_any_estimator_may_sit():
    bagging = BaggingClassifier(KNeighborsClassifier(), n_estimators=2, random_state=0).fit(X, Y)
    assert type(load(bagging).estimators_[0]) is KNeighborsClassifier
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(X, Y)
    forest.estimators_[0] = LogisticRegression().fit(X, Y)  # a forest's members are its own trees
    with pytest.raises(InvalidStructure, match=r"estimators_ \[0\] holds a .*LogisticRegression"):
        load(forest)


def test_patterns_match_scalars_by_kind_and_arrays_by_kind_and_dimensions():
    matcher = environment().matcher()
    pattern = describe(np.zeros((2, 3)), lambda obj: None)
    assert pattern == {"array": {"float": [2]}}
    assert matcher.problem(np.ones((4, 5), dtype=np.float32), pattern) is None
    assert "1-d array" in matcher.problem(np.ones(3), pattern)
    assert matcher.problem(np.int32(3), {"int": True}) is None
    assert "is a bool" in matcher.problem(True, {"int": True})


def test_a_class_the_deployment_names_holds_plain_data_and_runs_none_of_its_code():
    name = f"{__name__}.Custom"
    assert type(load(Custom(weights=np.ones(3)), (name,))) is Custom
    shadowing = Custom(weights=np.ones(3))
    shadowing.__dict__["predict"] = None
    with pytest.raises(InvalidStructure, match="predict shadows an attribute of its class"):
        load(shadowing, (name,))
    with pytest.raises(InvalidStructure, match=r"holds the function .*f_classif"):
        load(Custom(weights=f_classif), (name,))


def test_a_function_the_deployment_names_may_sit_where_the_library_keeps_one():
    transformer = FunctionTransformer(_double).fit(X)
    with pytest.raises(RefusedGlobal, match="_double"):
        load(transformer)
    loaded = load(transformer, (f"{__name__}._double",))
    assert np.array_equal(loaded.transform(X[:2]), 2 * X[:2])


class Custom:
    def __init__(self, weights):
        self.weights = weights

    def predict(self, rows):
        return rows @ np.ones(rows.shape[1])


def _double(rows):
    return 2 * rows
