"""The native frameworks' zoo as model.tar.gz artifacts: every fixture of tests/fixtures/native (benign) with the
predictions its own library made as reference_predictions.json, and hostile or broken variants per framework,
each with the reason the gate must name. Built from the fixtures and pickle alone: nothing here imports a
framework, so the zoo runs in the inspector image's lock environments as it is."""

from __future__ import annotations

import copy
import json
import pickle
from dataclasses import dataclass, field
from typing import Any

from tests.support.native_fixtures import NATIVE, manifest
from training_gate_cli.artifacts import pack_model_tar_gz

# The file each built-in XGBoost container writes (0.90-x: a pickle, 1.0-1.2: a pickle of a snapshot,
# 1.3-1.7: the old binary, 3.0-5: UBJSON), by the version that wrote it; other files keep their own names.
BUILT_IN = {("0.90", ".pkl"), ("1.0.2", ".pkl"), ("1.2.1", ".pkl"), ("3.0.5", ".ubj")}
BUILT_IN |= {(v, ".model") for v in ("1.3.3", "1.5.2", "1.7.6")}
FRAMEWORK_NAMES = {"xgboost": "XGBoost", "lightgbm": "LightGBM", "catboost": "CatBoost", "onnx": "ONNX"}
REFERENCE_TOLERANCE = 1e-4


@dataclass
class ZooCase:
    name: str
    framework: str  # the policy's name: xgboost, lightgbm, catboost, onnx
    format: str | None  # the file's format (the zoo's counts)
    files: dict[str, bytes]
    reason: str | None = None  # a hostile or broken case: what the load check must name
    marker: str | None = None  # a payload's witness: this file must never exist
    sample: list[list[Any]] = field(default_factory=list)
    reported: str | None = None  # the format the report names, when it says more than the file's
    # The framework recognition names, when not the case's: a pickle that opens with no framework's module is
    # the loader's to read, whatever its name.
    recognised: str | None = None

    @property
    def report_format(self) -> str | None:
        return self.reported or self.format

    def artifact(self) -> bytes:
        return pack_model_tar_gz(self.files)


def _probe(missing: Any) -> list[list[Any]]:
    return [[missing if v is None else v for v in row] for row in manifest()["probe"]]


def _argmax(rows: list[list[float]]) -> list[int]:
    return [max(range(len(row)), key=row.__getitem__) for row in rows]


def _reference(fixture: dict[str, Any], inputs: list[list[Any]]) -> dict[str, Any]:
    """What predict (and predict_proba) must give on the probe: the fixture's own library's outputs, as a
    scikit-learn classifier or regressor states them."""
    framework, objective = fixture["framework"], fixture.get("objective")
    if framework == "onnx":
        outputs = fixture["outputs"]
        if len(outputs) == 2:  # skl2onnx classifiers: labels, then probabilities
            return {"inputs": inputs, "predictions": outputs[0], "probabilities": outputs[1]}
        values = outputs[0]
        if fixture["family"] == "regression":
            return {"inputs": inputs, "predictions": [row[0] for row in values]}
        return {"inputs": inputs, "predictions": _argmax(values), "probabilities": values}
    if "labels" in fixture:  # a scikit-learn wrapper: what its own predict and predict_proba gave
        reference = {"inputs": inputs, "predictions": fixture["labels"]}
        if "probabilities" in fixture:
            reference["probabilities"] = fixture["probabilities"]
        return reference
    values = fixture["predictions"]
    if objective in ("binary:logistic", "binary"):
        return {
            "inputs": inputs,
            "predictions": [int(p > 0.5) for p in values],
            "probabilities": [[1 - p, p] for p in values],
        }
    if objective in ("multi:softprob", "multiclass", "Logloss", "MultiClass"):
        labels = _argmax(values)
        if framework == "catboost":  # CatBoost's classes are the training labels, as floats
            labels = [float(label) for label in labels]
        return {"inputs": inputs, "predictions": labels, "probabilities": values}
    if objective == "multi:softmax":
        return {"inputs": inputs, "predictions": [int(v) for v in values]}
    if objective == "binary:logitraw":
        return {"inputs": inputs, "predictions": [int(v > 0) for v in values]}
    return {"inputs": inputs, "predictions": values}


def benign() -> list[ZooCase]:
    """Every fixture as a job would leave it, each with its library's predictions to reproduce."""
    cases = []
    for fixture in manifest()["fixtures"]:
        path = NATIVE / fixture["path"]
        missing = 0.0 if fixture["framework"] == "onnx" else None
        inputs = _probe(missing)
        files: dict[str, bytes]
        if fixture["format"] == "onnx-external-data":
            files = {p.name: p.read_bytes() for p in sorted(path.parent.iterdir())}
        else:
            name = path.name
            if fixture["framework"] == "xgboost" and (fixture["library_version"], path.suffix) in BUILT_IN:
                name = "xgboost-model"
            files = {name: path.read_bytes()}
        files["reference_predictions.json"] = json.dumps(_reference(fixture, inputs)).encode()
        cases.append(
            ZooCase(
                fixture["path"],
                fixture["framework"],
                fixture["format"],
                files,
                sample=[r[:] for r in inputs],
                reported=_reported_format(fixture),
            )
        )
    return cases


def _reported_format(fixture: dict[str, Any]) -> str | None:
    """A pickled wrapper (pickle or joblib, compressed or not) is reported as `sklearn-pickle`, and XGBoost's
    with the format of its Booster's state, as the version that wrote it pickles a Booster."""
    if not fixture["format"].startswith("sklearn-"):
        return None
    if fixture["framework"] == "lightgbm":
        return "sklearn-pickle"
    version = tuple(int(p) for p in fixture["library_version"].split(".")[:2])
    state = "snapshot" if version < (1, 3) else "json-snapshot" if version < (1, 6) else "ubjson-snapshot"
    return f"sklearn-pickle-{state}"


# -- hostile and broken ------------------------------------------------------------------------------------


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def _fixture(path: str) -> bytes:
    return (NATIVE / path).read_bytes()


def _json_model(path: str, edit: Any) -> bytes:
    document = json.loads(_fixture(path))
    edit(document)
    return json.dumps(document).encode()


def _tree(document: dict[str, Any]) -> dict[str, Any]:
    return document["learner"]["gradient_booster"]["model"]["trees"][0]


def _set(target: dict[str, Any], key: str, index: int, value: Any) -> None:
    target[key][index] = value


def _lightgbm(path: str, key: str, value: str) -> bytes:
    """The fixture with the first value of the first tree's `key` line set to `value`."""
    lines = _fixture(path).decode().split("\n")
    index = next(i for i, line in enumerate(lines) if line.startswith(f"{key}="))
    values = lines[index][len(key) + 1 :].split(" ")
    lines[index] = f"{key}={' '.join([value, *values[1:]])}"
    return "\n".join(lines).encode()


def _onnx_model(nodes: list[Any], initializers: list[Any], opsets: list[Any] | None = None) -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes,
        "hostile",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=opsets or [helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def _onnx_external(location: str) -> bytes:
    from onnx import TensorProto

    tensor = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 1])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "8")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def hostile(marker: str) -> list[ZooCase]:
    """Hostile or broken models, per framework, each refused with a named reason before anything runs.
    `marker` is a path the pickle payloads try to create."""
    from onnx import helper, numpy_helper

    payload = pickle.dumps(_Payload(marker), protocol=3)
    xgb_json = "xgboost/2.1.4/binary.json"
    cases = [
        ZooCase("xgboost payload named xgboost-model", "xgboost", None, {"xgboost-model": payload},
                "refused global", marker, recognised="scikit-learn"),
        ZooCase("xgboost child index out of range", "xgboost", "json",
                {"model.json": _json_model(xgb_json, lambda d: _set(_tree(d), "left_children", 0, 99))},
                "CHILD_OUT_OF_RANGE"),
        ZooCase("xgboost split feature past num_feature", "xgboost", "json",
                {"model.json": _json_model(xgb_json, lambda d: _set(_tree(d), "split_indices", 0, 7))},
                "FEATURE_OUT_OF_RANGE"),
        ZooCase("xgboost a cycle", "xgboost", "json",
                {"model.json": _json_model(xgb_json, lambda d: _set(_tree(d), "right_children", 0, 0))},
                "NOT_A_TREE"),
        ZooCase("xgboost a NaN leaf", "xgboost", "json",
                {"model.json": _json_model(xgb_json, lambda d: _set(_tree(d), "split_conditions", -1, float("nan")))},
                "NOT_FINITE"),
        ZooCase("xgboost truncated old binary", "xgboost", "old-binary",
                {"xgboost-model": _fixture("xgboost/1.7.6/binary.model")[:-40]}, "LENGTH_TOO_LARGE"),
        ZooCase("xgboost truncated UBJSON", "xgboost", "ubjson",
                {"xgboost-model": _fixture("xgboost/3.0.5/binary.ubj")[:200]}, "TRUNCATED"),
        ZooCase("xgboost truncated pickle", "xgboost", "pickle-old-binary",
                {"xgboost-model": _fixture("xgboost/0.90/binary.pkl")[:-30]}, "TRUNCATED"),
        ZooCase("xgboost a payload in a pickled Booster's state", "xgboost", None,
                {"model.pkl": _booster_with_payload(marker)}, "PICKLE_GLOBAL_REFUSED", marker),
        ZooCase("xgboost a wrapper whose Booster has a child out of range", "xgboost", None,
                {"model.pkl": _repickled("xgboost/3.2.0/sklearn-binary.pkl", lambda root: _json_handle(
                    root.state["_Booster"].state, lambda d: _set(_tree(d), "left_children", 0, 99)))},
                "CHILD_OUT_OF_RANGE"),
        ZooCase("xgboost a wrapper hiding a second Booster in its state", "xgboost", None,
                {"model.pkl": _repickled("xgboost/3.2.0/sklearn-binary.pkl", _spare_booster)},
                "spare is not an attribute the library writes"),
        ZooCase("xgboost a Booster state beyond the model's bytes", "xgboost", None,
                {"xgboost-model": _repickled("xgboost/1.2.1/binary.pkl",
                                             lambda root: root.state.update(predictor=[1, 2]))},
                "predictor is not an attribute the library writes"),
        ZooCase("lightgbm truncated text", "lightgbm", "text",
                {"model.txt": _fixture("lightgbm/4.6.0/binary.txt")[:-400]}, "TRUNCATED"),
        ZooCase("lightgbm child index out of range", "lightgbm", "text",
                {"model.txt": _lightgbm("lightgbm/4.6.0/binary.txt", "left_child", "99")}, "INCONSISTENT"),
        ZooCase("lightgbm a cycle", "lightgbm", "text",
                {"model.txt": _lightgbm("lightgbm/4.6.0/binary.txt", "right_child", "0")}, "NOT_A_TREE"),
        ZooCase("lightgbm split feature past max_feature_idx", "lightgbm", "text",
                {"model.txt": _lightgbm("lightgbm/4.6.0/regression.txt", "split_feature", "9")},
                "FEATURE_OUT_OF_RANGE"),
        ZooCase("lightgbm a NUL byte", "lightgbm", "text",
                {"model.txt": _lightgbm("lightgbm/4.6.0/binary.txt", "num_leaves", "6\x00")}, "MALFORMED"),
        ZooCase("lightgbm a payload in a pickled Booster", "lightgbm", None,
                {"model.pkl": b"\x80\x04\x8c\x0elightgbm.basic\x8c\x07Booster\x93)\x81" + payload[2:-1] + b"b."},
                "PICKLE_GLOBAL_REFUSED", marker),
        ZooCase("lightgbm a pickled Booster whose text has a cycle", "lightgbm", None,
                {"model.pkl": _repickled("lightgbm/4.6.0/binary.pkl", lambda root: root.state.update(
                    _handle=_lightgbm("lightgbm/4.6.0/binary.txt", "right_child", "0").decode()))},
                "NOT_A_TREE"),
        ZooCase("catboost truncated cbm", "catboost", "cbm",
                {"model.cbm": _fixture("catboost/1.2.10/binary.cbm")[:-500]}, "CatBoostError"),
        ZooCase("catboost a payload named model.cbm", "catboost", None,
                {"model.cbm": b"\x80\x04\x8c\x0dcatboost.core\x8c\x08CatBoost\x93)\x81" + payload[2:-1] + b"b."},
                "PICKLE_GLOBAL_REFUSED", marker),
        ZooCase("onnx external data outside the artifact", "onnx", None,
                {"model.onnx": _onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                                           [_onnx_external("../weights.bin")])},
                "EXTERNAL_DATA_OUTSIDE"),
        ZooCase("onnx external data at an absolute path", "onnx", None,
                {"model.onnx": _onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                                           [_onnx_external("/etc/passwd")])},
                "EXTERNAL_DATA_OUTSIDE"),
        ZooCase("onnx a claimed 100 GB initializer", "onnx", None,
                {"model.onnx": _onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                                           [_claimed("w", [25_000_000_000, 1])])},
                "TENSOR_TOO_LARGE"),
        ZooCase("onnx a custom operator domain", "onnx", None,
                {"model.onnx": _onnx_model([helper.make_node("Evil", ["x"], ["y"], domain="com.attacker")],
                                           [numpy_helper.from_array(_ones(), "w")],
                                           [helper.make_opsetid("", 17), helper.make_opsetid("com.attacker", 1)])},
                "OPERATOR_DOMAIN_REFUSED"),
        ZooCase("onnx raw data shorter than its dims", "onnx", None,
                {"model.onnx": _onnx_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                                           [_claimed("w", [2, 1], raw=b"\0" * 4)])},
                "TENSOR_SIZE_MISMATCH"),
        ZooCase("onnx truncated", "onnx", None,
                {"model.onnx": _fixture("onnx/regression-linear.onnx")[:-60]}, "LENGTH_TOO_LARGE"),
    ]  # fmt: skip
    return cases


def _ones() -> Any:
    import numpy as np

    return np.ones((2, 1), dtype=np.float32)


def _claimed(name: str, dims: list[int], raw: bytes = b"\0" * 8) -> Any:
    """A float tensor whose dims claim more than the bytes it carries (onnx.helper would refuse to write it)."""
    from onnx import TensorProto

    tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=dims)
    tensor.raw_data = raw
    return tensor


def _booster_with_payload(marker: str) -> bytes:
    """A pickled Booster whose state hides a payload where its model bytes go."""
    inner = pickle.dumps(_Payload(marker), protocol=2)[2:-1]
    return b"\x80\x02cxgboost.core\nBooster\n)\x81}X\x06\x00\x00\x00handle" + inner + b"sb."


def _emit(value: Any) -> bytes:
    """`value` as protocol 2 pickle opcodes: an object the gate's data reader read (class and state) is written
    back as NEWOBJ of its class and BUILD of its state, anything else as pickle writes it."""
    from training_gate.inspector.native.pickle_data import PickledObject

    if isinstance(value, PickledObject):
        module, name = value.cls.rsplit(".", 1)
        return f"c{module}\n{name}\n".encode() + b")\x81" + _emit(value.state) + b"b"
    if isinstance(value, dict) and any(isinstance(v, (PickledObject, dict)) for v in value.values()):
        return b"}(" + b"".join(_emit(k) + _emit(v) for k, v in value.items()) + b"u"
    return pickle.dumps(value, protocol=2)[2:-1]


def _repickled(path: str, edit: Any) -> bytes:
    """A fixture pickle read as data, changed by `edit`, and written back: what an attacker edits by hand."""
    from training_gate.inspector.native.pickle_data import read_pickle

    data = _fixture(path)
    names = {"xgboost.core.Booster", "xgboost.sklearn.XGBClassifier", "lightgbm.basic.Booster"}
    root = read_pickle(data, frozenset(names), path, arrays=True)
    edit(root)
    return b"\x80\x02" + _emit(root) + b"."


def _json_handle(state: dict[str, Any], edit: Any) -> None:
    document = json.loads(_fixture("xgboost/3.2.0/binary.json"))
    edit(document)
    state["handle"] = json.dumps(document).encode()


def _spare_booster(root: Any) -> None:
    root.state["spare"] = copy.deepcopy(root.state["_Booster"])


def counts(cases: list[ZooCase]) -> dict[str, dict[str, int]]:
    """framework -> format -> how many cases (the closing note's numbers)."""
    table: dict[str, dict[str, int]] = {}
    for case in cases:
        by_format = table.setdefault(case.framework, {})
        key = case.format or "hostile"
        by_format[key] = by_format.get(key, 0) + 1
    return table
