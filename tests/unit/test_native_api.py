"""The plug-in steps the recogniser registry calls: recognise, validate the bytes, load and predict, describe."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.conftest import REPO
from tests.support.native_fixtures import NATIVE, manifest, probe
from training_gate.inspector.native.api import (
    Recognition,
    _check_objective_output,
    load_and_predict,
    recognise,
    validate_bytes,
)
from training_gate.inspector.native.errors import NativeRefusal, Reason

# The libraries' own formats: a pickled scikit-learn wrapper goes through the gate's loader (the zoo tests it).
ALL = [f for f in manifest()["fixtures"] if not f["format"].startswith("sklearn-")]


@pytest.mark.parametrize("fixture", ALL, ids=[f["path"] for f in ALL])
def test_every_fixture_is_recognised_by_content_alone(fixture):
    head = (NATIVE / fixture["path"]).read_bytes()[:512]
    found = recognise(head, name="xgboost-model")  # the built-in container's name says nothing
    assert found is not None and found.framework == fixture["framework"]


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"hello",
        b'{"accuracy": 0.9}',
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x07sklearn",
        b"PK\x03\x04",
    ],
    ids=["empty", "text", "a metrics json", "a scikit-learn pickle", "a zip"],
)
def test_other_files_are_not_recognised(head):
    assert recognise(head, "model.bin") is None


# One per framework and format: every fixture's prediction through the converter is in test_native_xgboost.
RUNNABLE = list(
    {(f["framework"], f["format"]): f for f in ALL if f["framework"] in ("xgboost", "lightgbm", "onnx")}.values()
)


@pytest.mark.parametrize("fixture", RUNNABLE, ids=[f["path"] for f in RUNNABLE])
def test_the_framework_loads_what_the_gate_validated_and_predicts_the_recorded_values(fixture):
    path = NATIVE / fixture["path"]
    data = path.read_bytes()
    model = validate_bytes(recognise(data, path.name), data, path)
    rows = probe(missing=0.0 if fixture["framework"] == "onnx" else float("nan"))

    outputs = load_and_predict(model, rows)

    expected = fixture.get("outputs") or [fixture["predictions"]]
    for output, recorded in zip(outputs, expected, strict=True):
        np.testing.assert_allclose(np.asarray(output, dtype=np.float64), recorded, atol=2e-5)
    assert model.describe()["framework"] == fixture["framework"]
    assert model.describe()["bytes_validated"] is True


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def test_a_pickle_payload_named_xgboost_model_is_judged_as_xgboost_and_refused_by_name():
    payload = pickle.dumps(_Payload(), protocol=3)
    found = recognise(payload[:512], "xgboost-model")
    assert found == Recognition("xgboost", "pickle")
    with pytest.raises(NativeRefusal) as caught:
        validate_bytes(found, payload)
    assert caught.value.reason == Reason.PICKLE_GLOBAL_REFUSED
    assert "system" in caught.value.detail


def test_catboost_is_described_as_not_validated():
    fixture = next(f for f in ALL if f["framework"] == "catboost")
    data = (NATIVE / fixture["path"]).read_bytes()
    model = validate_bytes(Recognition("catboost", "cbm"), data, NATIVE / fixture["path"])
    assert model.describe()["bytes_validated"] is False


def test_a_sample_narrower_than_num_feature_is_refused_before_xgboost_predicts():
    # XGBoost itself predicts a 5-feature model on 4 columns without a word.
    fixture = next(f for f in ALL if f["path"] == "xgboost/1.7.6/binary.json")
    data = (NATIVE / fixture["path"]).read_bytes()
    model = validate_bytes(recognise(data), data)
    with pytest.raises(NativeRefusal) as caught:
        load_and_predict(model, [row[:4] for row in probe()])
    assert caught.value.reason == Reason.INPUT_WIDTH


@pytest.mark.parametrize(
    ("transform", "values"),
    [("sigmoid", [0.2, 1.5]), ("softmax", [[0.2, 0.2, 0.2]]), ("identity", [1.0, float("nan")])],
    ids=["probability above 1", "probabilities not summing to 1", "NaN output"],
)
def test_implausible_outputs_are_refused(transform, values):
    with pytest.raises(NativeRefusal) as caught:
        _check_objective_output(transform, values)
    assert caught.value.reason == Reason.PREDICTION_INVALID


def test_the_parsers_import_no_framework(tmp_path):
    # Every parser and validator runs with xgboost, lightgbm, onnx, onnxruntime and catboost unimportable.
    script = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        for name in ("xgboost", "lightgbm", "onnx", "onnxruntime", "catboost", "google.protobuf"):
            sys.modules[name] = None
        from training_gate.inspector.native.api import recognise, validate_bytes
        root = Path({str(NATIVE)!r})
        done = 0
        for fixture in json.loads((root / "manifest.json").read_text())["fixtures"]:
            if fixture["format"].startswith("sklearn-"):
                continue
            path = root / fixture["path"]
            data = path.read_bytes()
            validate_bytes(recognise(data, path.name), data, path)
            done += 1
        print(json.dumps({{"done": done, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in
            ("xgboost", "lightgbm", "onnx", "onnxruntime", "catboost", "sklearn", "numpy") and sys.modules[m])}}))
        """
    )
    environment = {"PYTHONPATH": f"{REPO}:{REPO / 'lambdas'}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True)
    report = json.loads(result.stdout)
    assert report == {"done": len(ALL), "loaded": []}
