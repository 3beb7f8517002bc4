"""The states the gate's loader admits for XGBoost's and LightGBM's classes: learned from the zoo of every
supported version (scripts/generate_pickled_states.py), kept as data, and current."""

from __future__ import annotations

import sys

from tests.conftest import REPO
from tests.support.native_fixtures import NATIVE
from training_gate.inspector.loader import load_model
from training_gate.inspector.plugins import pickled

sys.path.insert(0, str(REPO / "scripts"))
import generate_pickled_states


def test_the_committed_states_are_what_the_zoo_gives():
    assert generate_pickled_states.render(generate_pickled_states.learn()) == pickled.STATES.read_text()


def test_every_wrapper_and_booster_class_has_a_state_and_parameters_admit_any_plain_value():
    schemas = pickled.class_schemas()
    for name in ("xgboost.sklearn.XGBClassifier", "xgboost.sklearn.XGBRegressor", "xgboost.sklearn.XGBRanker"):
        assert schemas[name].attributes["_Booster"] == {"objects": [pickled.XGBOOST_BOOSTER]}
        assert schemas[name].attributes["max_depth"]["plain"] is True
    for name in ("lightgbm.sklearn.LGBMClassifier", "lightgbm.sklearn.LGBMRegressor", "lightgbm.sklearn.LGBMRanker"):
        assert schemas[name].attributes["_Booster"] == {"objects": [pickled.LIGHTGBM_BOOSTER]}
    assert schemas[pickled.XGBOOST_BOOSTER].attributes["handle"] == {"bytes": True}


def test_a_1_x_classifiers_label_encoder_loads_as_the_gates_stand_in_where_xgboost_no_longer_has_it():
    model = load_model(NATIVE / "xgboost" / "1.5.2" / "sklearn-binary-labels.pkl").model
    encoder = vars(model)["_le"]
    assert type(encoder) is pickled.LegacyLabelEncoder and encoder.classes_.tolist() == ["no", "yes"]
    found = pickled.judged_model(model)
    assert found is not None and found.framework == "xgboost" and found.estimator is model
