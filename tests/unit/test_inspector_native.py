"""XGBoost, LightGBM, CatBoost and ONNX models through the inspection: the sample input's shapes and its width
against the model's features, a reader the image lacks, pickled scikit-learn wrappers through the gate's loader
(alone and in pipelines, each Booster validated before any reader sees it), holdout scoring, and what the report
learns about the model."""

from __future__ import annotations

import io
import json
import pickle
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest

from tests.support.native_fixtures import NATIVE, manifest
from training_gate.domain.models import READER_NOT_INSTALLED_DETAIL, CheckStatus, HoldoutConfig
from training_gate.domain.policy import Outcome, Policy, ReasonCode, decide
from training_gate.inspector.inspect import InspectConfig, inspect_artifact
from training_gate.inspector.sandbox import Sandbox
from training_gate_cli.artifacts import pack_model_tar_gz

BINARY_JSON = NATIVE / "xgboost" / "2.1.4" / "binary.json"
PROBE = [[0.0 if v is None else v for v in row] for row in manifest()["probe"]]


def run(files: dict[str, bytes], sample=None, sandbox: Sandbox | None = None, uri: str = "s3://b/model.tar.gz", **kw):
    artifact = pack_model_tar_gz(files)
    config = InspectConfig(sample_input=sample, **kw)
    result = inspect_artifact(uri, lambda: io.BytesIO(artifact), config, sandbox=sandbox)
    return result, {c.name: c for c in result.checks}


def named(path: Path, names: list[str]) -> bytes:
    document = json.loads(path.read_bytes())
    document["learner"]["feature_names"] = names
    document["learner"]["feature_types"] = ["float"] * len(names)
    return json.dumps(document).encode()


# -- the sample input, as the model reads it ----------------------------------------------------------------


def test_a_sample_narrower_than_the_models_features_fails_the_smoke_naming_both_widths():
    # XGBoost itself would predict this 5-feature model on 4 columns without a word.
    result, checks = run({"xgboost-model": BINARY_JSON.read_bytes()}, sample=[[5.1, 3.5, 1.4, 0.2]])
    assert result.verdict == "reject"
    smoke = checks["smoke_prediction"]
    assert smoke.status == CheckStatus.FAIL
    assert "rows of 4 values, the model reads 5 features" in smoke.detail
    assert "set sample_input to rows of 5 values" in smoke.detail


def test_without_a_sample_one_row_of_zeros_of_the_models_width_is_predicted():
    result, checks = run({"model.txt": (NATIVE / "lightgbm" / "4.6.0" / "multiclass.txt").read_bytes()})
    assert result.verdict == "pass", checks
    assert "derived sample: one row of 5 zeros" in checks["smoke_prediction"].detail


def test_records_and_csv_reach_the_model_in_its_own_column_order():
    names = ["age", "income", "score", "tenure", "plan"]
    model = named(BINARY_JSON, names)
    rows = PROBE[:3]
    shuffled = [dict(reversed(list(zip(names, row, strict=True)))) for row in rows]
    csv = ",".join(reversed(names)) + "\n" + "\n".join(",".join(str(v) for v in reversed(row)) for row in rows)
    details = []
    for sample in (rows, shuffled, {"csv": csv}):
        result, checks = run({"model.json": model}, sample=sample)
        assert result.verdict == "pass", checks
        details.append(checks["smoke_prediction"].detail.split(" -> ")[1])
    assert details[0] == details[1] == details[2]


def test_records_without_the_models_columns_are_refused_naming_them():
    model = named(BINARY_JSON, ["age", "income", "score", "tenure", "plan"])
    result, checks = run({"model.json": model}, sample=[{"age": 1, "income": 2}])
    assert result.verdict == "reject"
    assert "lack column(s) score, tenure, plan" in checks["smoke_prediction"].detail


@pytest.mark.parametrize(
    ("sample", "detail"),
    [
        (["a review"], "rows of 1 values, the model reads 5 features"),
        ([[1.0, 2.0, "Paris", 0.0, 1.0]], "holds 'Paris'"),
    ],
    ids=["documents", "text-cell"],
)
def test_a_sample_the_model_cannot_take_is_refused_by_name(sample, detail):
    result, checks = run({"xgboost-model": BINARY_JSON.read_bytes()}, sample=sample)
    assert result.verdict == "reject"
    assert detail in checks["smoke_prediction"].detail


def test_missing_values_route_through_trees_but_an_onnx_graph_needs_complete_rows():
    sample = [[1.0, None, -1.0, 0.75, 2.0]]
    result, _ = run({"xgboost-model": BINARY_JSON.read_bytes()}, sample=sample)
    assert result.verdict == "pass"
    result, checks = run({"model.onnx": (NATIVE / "onnx" / "binary-by-hand.onnx").read_bytes()}, sample=sample)
    assert result.verdict == "reject"
    assert "holds missing values" in checks["smoke_prediction"].detail


# -- a reader the image lacks ---------------------------------------------------------------------------------


def test_a_framework_whose_reader_the_image_lacks_is_skipped_naming_why_after_its_bytes_were_checked():
    uri = "s3://t/no-reader.tar.gz"
    sandbox = Sandbox(test_hooks={uri: "reader:missing"})
    try:
        result, checks = run({"xgboost-model": BINARY_JSON.read_bytes()}, PROBE, sandbox, uri)
        broken, broken_checks = run({"xgboost-model": BINARY_JSON.read_bytes()[:-50]}, PROBE, sandbox, uri)
    finally:
        sandbox.close()
    assert result.verdict == "skip", checks
    assert checks["load"].status == CheckStatus.SKIPPED
    assert checks["load"].detail.startswith(f"{READER_NOT_INSTALLED_DETAIL}: XGBoost is read by xgboost")
    assert checks["smoke_prediction"].status == CheckStatus.SKIPPED
    decision = decide(Policy(rules=[{"metric": "auc", "operator": ">", "threshold": 0.5}]), {}, result)
    assert (decision.outcome, decision.reason_codes) == (Outcome.SKIPPED, [ReasonCode.READER_NOT_INSTALLED])
    # the gate's own parser needs no reader: a broken model is rejected all the same
    assert broken.verdict == "reject" and broken_checks["load"].status == CheckStatus.FAIL


# -- pickled scikit-learn wrappers, through the gate's loader ---------------------------------------------------


def _data(labels: list[str] | None = None):
    rng = np.random.RandomState(3)
    x = rng.normal(size=(80, 5))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    return x, (np.asarray(labels)[y] if labels else y)


def _dumps(model, how: str) -> bytes:
    if how == "joblib":
        buffer = io.BytesIO()
        joblib.dump(model, buffer)
        return buffer.getvalue()
    return pickle.dumps(model, protocol=int(how[-1]))


WRAPPERS = ["xgboost-classifier", "xgboost-regressor", "lightgbm-classifier", "lightgbm-regressor", "catboost"]


def _wrapper(kind: str):
    if kind.startswith("xgboost"):
        import xgboost

        cls = xgboost.XGBClassifier if kind.endswith("classifier") else xgboost.XGBRegressor
        return cls(n_estimators=3, max_depth=2, n_jobs=1), None
    if kind.startswith("lightgbm"):
        import lightgbm

        if kind.endswith("classifier"):
            return lightgbm.LGBMClassifier(n_estimators=3, verbose=-1, n_jobs=1), ["no", "yes"]
        return lightgbm.LGBMRegressor(n_estimators=3, verbose=-1, n_jobs=1), None
    import catboost

    return catboost.CatBoostClassifier(iterations=3, verbose=False, allow_writing_files=False, thread_count=1), None


@pytest.mark.parametrize("how", ["pickle2", "pickle4", "joblib"])
@pytest.mark.parametrize("kind", WRAPPERS)
def test_a_pickled_scikit_learn_wrapper_is_read_as_data_and_predicts_like_itself(kind: str, how: str):
    model, labels = _wrapper(kind)
    x, y = _data(labels)
    model.fit(x, y)
    rows = x[:4].tolist()
    with warnings.catch_warnings():  # LightGBM names the columns it was fit on Column_0...; these have none
        warnings.simplefilter("ignore", UserWarning)
        expected = model.predict(np.asarray(rows)).tolist()
        reference = {"inputs": rows, "predictions": expected}
        if hasattr(model, "predict_proba"):
            reference["probabilities"] = model.predict_proba(np.asarray(rows)).tolist()
    files = {"model.pkl": _dumps(model, how), "reference_predictions.json": json.dumps(reference).encode()}
    result, checks = run(files, rows, reference_tolerance=1e-5)
    assert result.verdict == "pass", checks
    assert checks["reference_predictions"].status == CheckStatus.PASS, checks["reference_predictions"]
    assert result.model.class_name == type(model).__name__
    assert result.model.format in ("sklearn-pickle", "pickle") or result.model.format.startswith("sklearn-pickle-")


def test_a_payload_inside_a_wrappers_state_is_refused_before_anything_runs(tmp_path: Path):
    import xgboost

    class Payload:
        def __reduce__(self):
            return (open, (str(tmp_path / "owned"), "w"))

    model = xgboost.XGBClassifier(n_estimators=2, max_depth=2).fit(*_data())
    model.callbacks = [Payload()]
    result, checks = run({"model.pkl": pickle.dumps(model)}, PROBE)
    assert result.verdict == "reject"
    assert "PICKLE_GLOBAL_REFUSED" in checks["load"].detail and "io.open" in checks["load"].detail
    assert not (tmp_path / "owned").exists()


def _corrupt_xgboost(booster) -> bytes:
    """The Booster's JSON with the first tree's first left child pointing past its nodes."""
    document = json.loads(bytes(booster.save_raw("json")))
    document["learner"]["gradient_booster"]["model"]["trees"][0]["left_children"][0] = 999
    return json.dumps(document).encode()


def _corrupt_lightgbm(booster) -> str:
    """The model text with the first tree's first left child pointing past its nodes."""
    lines = booster.model_to_string().split("\n")
    index = next(i for i, line in enumerate(lines) if line.startswith("left_child="))
    children = lines[index].split("=", 1)[1].split(" ")
    lines[index] = "left_child=" + " ".join(["99", *children[1:]])
    return "\n".join(lines)


def _with_state(booster, state: dict) -> None:
    # What pickle asks the object for: here, the state an attacker writes.
    booster.__getstate__ = lambda: state


def test_a_second_booster_hidden_in_a_wrappers_state_is_refused_by_the_states_schema(tmp_path: Path):
    import xgboost

    model = xgboost.XGBClassifier(n_estimators=2, max_depth=2, n_jobs=1).fit(*_data())
    model.spare = model.get_booster().copy()  # serving's joblib.load would hand its bytes to XGBoost's C parser
    result, checks = run({"model.pkl": pickle.dumps(model)}, PROBE)
    assert result.verdict == "reject"
    assert "PICKLE_SHAPE" in checks["load"].detail
    assert "spare is not an attribute the library writes for this class" in checks["load"].detail
    # and when its bytes are hostile, the gate's parser refuses them before anything else sees them
    _with_state(model.spare, {"handle": _corrupt_xgboost(model.spare)})
    result, checks = run({"model.pkl": pickle.dumps(model)}, PROBE)
    assert result.verdict == "reject" and "CHILD_OUT_OF_RANGE" in checks["load"].detail


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
def test_a_wrappers_corrupt_booster_is_refused_by_the_gates_parser_before_any_reader(framework: str):
    if framework == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier(n_estimators=2, max_depth=2, n_jobs=1).fit(*_data())
        _with_state(model.get_booster(), {"handle": _corrupt_xgboost(model.get_booster())})
        reason = "CHILD_OUT_OF_RANGE"
    else:
        import lightgbm

        model = lightgbm.LGBMClassifier(n_estimators=2, verbose=-1, n_jobs=1).fit(*_data())
        state = dict(model.booster_.__getstate__())
        state["_handle"] = _corrupt_lightgbm(model.booster_)
        _with_state(model.booster_, state)
        reason = "INCONSISTENT"
    result, checks = run({"model.pkl": pickle.dumps(model)}, PROBE)
    assert result.verdict == "reject"
    assert "no C loader read it" in checks["load"].detail and reason in checks["load"].detail, checks["load"]


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
def test_a_pipeline_with_a_framework_estimator_loads_through_the_allowlist_and_predicts_like_itself(framework):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model, labels = _wrapper(f"{framework}-classifier")
    pipeline = make_pipeline(StandardScaler(), model)
    x, y = _data(labels)
    pipeline.fit(x, y)
    rows = x[:4].tolist()
    reference = {
        "inputs": rows,
        "predictions": pipeline.predict(np.asarray(rows)).tolist(),
        "probabilities": pipeline.predict_proba(np.asarray(rows)).tolist(),
    }
    files = {"model.joblib": _dumps(pipeline, "joblib"), "reference_predictions.json": json.dumps(reference).encode()}
    result, checks = run(files, rows, reference_tolerance=1e-5)
    assert result.verdict == "pass", checks
    assert checks["reference_predictions"].status == CheckStatus.PASS, checks["reference_predictions"]
    assert (result.model.framework, result.model.class_name) == ("scikit-learn", "Pipeline")


def test_a_corrupt_booster_inside_a_pipeline_is_refused_by_the_gates_parser():
    import xgboost
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = make_pipeline(StandardScaler(), xgboost.XGBClassifier(n_estimators=2, max_depth=2, n_jobs=1))
    pipeline.fit(*_data())
    booster = pipeline[-1].get_booster()
    _with_state(booster, {"handle": _corrupt_xgboost(booster)})
    result, checks = run({"model.pkl": pickle.dumps(pipeline)}, PROBE)
    assert result.verdict == "reject"
    assert "CHILD_OUT_OF_RANGE" in checks["load"].detail, checks["load"]


# -- holdout and describe -----------------------------------------------------------------------------------


def test_a_native_classifier_is_scored_on_the_holdout_set(tmp_path: Path):
    fixture = next(f for f in manifest()["fixtures"] if f["path"] == "xgboost/2.1.4/binary.json")
    labels = [int(p > 0.5) for p in fixture["predictions"]]
    rows = [[("" if v is None else v) for v in row] for row in manifest()["probe"]]
    table = "f0,f1,f2,f3,f4,label\n" + "\n".join(",".join(map(str, [*r, y])) for r, y in zip(rows, labels, strict=True))
    holdout = tmp_path / "holdout.csv"
    holdout.write_text(table)
    artifact = pack_model_tar_gz({"xgboost-model": BINARY_JSON.read_bytes()})
    config = InspectConfig(sample_input=PROBE, holdout=HoldoutConfig(uri=str(holdout), label_column="label"))
    result = inspect_artifact(
        "s3://b/m.tar.gz", lambda: io.BytesIO(artifact), config, read_holdout=lambda uri: open(uri, "rb")
    )
    checks = {c.name: c for c in result.checks}
    assert checks["holdout"].status == CheckStatus.PASS, checks["holdout"]
    scores = {m.name: m.value for m in result.metrics if m.source == "holdout"}
    assert scores["accuracy"] == 1.0 and scores["auc"] == 1.0


def test_the_inspection_says_what_the_model_is_and_what_read_it():
    result, _ = run({"xgboost-model": (NATIVE / "xgboost" / "1.7.6" / "multiclass.model").read_bytes()}, PROBE)
    model = result.model
    assert (model.framework, model.format, model.writer_version, model.reader) == (
        "xgboost",
        "old-binary",
        "1.7",
        "xgboost",
    )
    assert model.bytes_validated is True and model.details["objective"] == "multi:softprob"
    assert model.details["num_class"] == 3
    assert model.summary().startswith("xgboost old-binary, Booster, written by 1.7, read by xgboost ")


# -- ONNX graphs that take no table --------------------------------------------------------------------------


def _graph(nodes, inputs, outputs, initializers=()) -> bytes:
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_an_onnx_graph_of_images_or_token_ids_is_smoke_tested_on_zeros_of_its_declared_inputs():
    from onnx import TensorProto, helper, numpy_helper

    image = _graph(
        [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]), helper.make_node("Flatten", ["pooled"], ["y"])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
    )
    text = _graph(
        [helper.make_node("Gather", ["E", "input_ids"], ["e"]), helper.make_node("ReduceMean", ["e"], ["y"], axes=[1])],
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1, 4])],
        [numpy_helper.from_array(np.ones((10, 4), np.float32), "E")],
    )
    for data, inputs in ((image, "image float"), (text, "input_ids int64")):
        result, checks = run({"model.onnx": data}, PROBE)  # a table sample, which such a graph cannot take
        assert result.verdict == "pass", checks
        assert checks["smoke_prediction"].status == CheckStatus.PASS
        assert "zeros of the graph's inputs" in checks["smoke_prediction"].detail
        assert inputs in result.model.details["inputs"]


def test_an_onnx_graph_whose_output_on_zeros_is_not_finite_fails_its_smoke_prediction():
    from onnx import TensorProto, helper

    data = _graph(
        [helper.make_node("Log", ["image"], ["y"])],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 2, 2])],
    )
    result, checks = run({"model.onnx": data}, None)
    assert result.verdict == "reject"
    assert "non-finite" in checks["smoke_prediction"].detail


def test_a_float16_onnx_table_takes_the_sample_input():
    from onnx import TensorProto, helper, numpy_helper

    data = _graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["batch", 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["batch", 1])],
        [numpy_helper.from_array(np.ones((5, 1), np.float16), "W")],
    )
    result, checks = run({"model.onnx": data}, PROBE)
    assert result.verdict == "pass", checks
    assert checks["smoke_prediction"].detail.startswith("ONNX: predict on 6 row(s) (configured sample input)")


def test_a_catboost_model_with_categorical_features_takes_them_as_text(tmp_path: Path):
    import catboost

    x, y = _data()
    cities = ["paris", "lyon", "nice", "lyon"] * 20
    rows = [[*map(float, r[:4]), city] for r, city in zip(x.tolist(), cities, strict=True)]
    model = catboost.CatBoostClassifier(
        iterations=3, depth=2, verbose=False, allow_writing_files=False, thread_count=1, cat_features=[4]
    ).fit(rows, y)
    path = tmp_path / "model.cbm"
    model.save_model(str(path))
    sample = rows[:3]
    reference = {"inputs": sample, "predictions": model.predict(sample).tolist()}
    reference["probabilities"] = model.predict_proba(sample).tolist()
    files = {"model.cbm": path.read_bytes(), "reference_predictions.json": json.dumps(reference).encode()}
    result, checks = run(files, sample, reference_tolerance=1e-6)
    assert result.verdict == "pass", checks
    assert checks["reference_predictions"].status == CheckStatus.PASS, checks["reference_predictions"]
    # a sample of numbers only: the category column's numbers reach CatBoost as text
    result, checks = run({"model.cbm": path.read_bytes()}, [[0.1, 0.2, 0.3, 0.4, 2.0]])
    assert result.verdict == "pass", checks
