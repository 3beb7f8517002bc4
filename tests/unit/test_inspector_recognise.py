"""What the artifact is: every framework recognised by its files' content, the stated precedence between
candidates, the training image's say, and every pickle through the allowlist whatever its role (or, for
XGBoost, LightGBM and CatBoost pickles, their own data readers).

Fixtures are written in each format's own layout (no framework is installed): a torch.save zip, TorchScript,
safetensors, a transformers directory, XGBoost's binary, JSON, UBJSON and pickled Booster, LightGBM text,
CatBoost, ONNX, a SavedModel, Keras v3 and HDF5, MXNet, PMML, and SageMaker built-in algorithms."""

from __future__ import annotations

import io
import json
import pickle
import struct
import zipfile
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import LabelEncoder, StandardScaler

from tests.support.native_fixtures import NATIVE
from training_gate.domain.models import CheckStatus, MetricValue
from training_gate.domain.policy import Policy, ReasonCode, decide
from training_gate.inspector.inspect import InspectConfig, inspect_artifact
from training_gate_cli.artifacts import pack_model_tar_gz

X, Y = load_iris(return_X_y=True)
SAMPLE = [[5.1, 3.5, 1.4, 0.2]]


def dump(obj: object) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def zipped(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


CLASSIFIER = dump(LogisticRegression(max_iter=500).fit(X, Y))
SCALER = dump(StandardScaler().fit(X))
LABELS = dump(LabelEncoder().fit(["a", "b", "c"]))
TORCH_ZIP = zipped({"archive/data.pkl": b"\x80\x02}q\x00.", "archive/version": b"3\n", "archive/data/0": b"\0" * 16})
TORCHSCRIPT = zipped({"model/data.pkl": b"\x80\x02}.", "model/code/__torch__.py": b"", "model/constants.pkl": b""})
TORCH_LEGACY = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.\x80\x02M\xe9\x03."
SAFETENSORS_HEADER = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
SAFETENSORS = struct.pack("<Q", len(SAFETENSORS_HEADER)) + SAFETENSORS_HEADER + b"\0" * 4
HF_CONFIG = json.dumps({"architectures": ["BertForSequenceClassification"], "model_type": "bert"}).encode()
BOOSTER_PICKLE = b"\x80\x02cxgboost.core\nBooster\nq\x00)\x81q\x01}q\x02b."
NDARRAY = b"\x12\x01\x00\x00\x00\x00\x00\x00" + b"\0" * 32
HDF5 = b"\x89HDF\r\n\x1a\n" + b"\0" * 64


def inspect(files: dict[str, bytes], image: str | None = None, **config):
    artifact = pack_model_tar_gz(files)
    result = inspect_artifact(
        "s3://b/model.tar.gz",
        lambda: io.BytesIO(artifact),
        InspectConfig(**{"sample_input": SAMPLE, **config}),
        training_image=image,
    )
    return result, {c.name: c for c in result.checks}


# -- each framework by its content ----------------------------------------------------------------------------

RECOGNISED = {
    "torch-zip": ({"model.pth": TORCH_ZIP}, "PyTorch", "a torch.save zip (data.pkl)"),
    "torch-zip-any-name": ({"weights.bin": TORCH_ZIP}, "PyTorch", "a torch.save zip"),
    "torchscript": ({"model.pt": TORCHSCRIPT}, "PyTorch", "a TorchScript zip"),
    "torch-legacy": ({"model.pth": TORCH_LEGACY}, "PyTorch", "the legacy torch.save format"),
    "safetensors": ({"weights.safetensors": SAFETENSORS}, "PyTorch", "safetensors weights"),
    "hugging-face": ({"model.safetensors": SAFETENSORS, "config.json": HF_CONFIG}, "Hugging Face", "config.json"),
    # A config.json naming a "BertModel" is no XGBoost JSON snapshot, whatever words it holds.
    "hugging-face-base-model": (
        {"model.safetensors": SAFETENSORS, "config.json": json.dumps({"architectures": ["BertModel"]}).encode()},
        "Hugging Face",
        "config.json",
    ),
    "savedmodel": (
        {
            "1/saved_model.pb": b"\x08\x01\x12\x10\n\x0e",
            "1/variables/variables.index": b"\0" * 8,
            "1/variables/variables.data-00000-of-00001": b"\0" * 8,
        },
        "TensorFlow",
        "SavedModel",
    ),
    "tf-checkpoint": ({"ckpt.index": b"\0" * 8, "ckpt.data-00000-of-00001": b"\0"}, "TensorFlow", "checkpoint"),
    "keras-v3": (
        {"model.keras": zipped({"metadata.json": b"{}", "config.json": b"{}", "model.weights.h5": HDF5})},
        "Keras",
        "Keras v3 zip",
    ),
    "keras-h5": ({"model.h5": HDF5}, "Keras", "an HDF5 model"),
    "mxnet": (
        {"model-symbol.json": b'{"nodes": [], "arg_nodes": [], "heads": []}', "model-0000.params": NDARRAY},
        "MXNet",
        "MXNet",
    ),
    "pmml": (
        {"model.pmml": b'<?xml version="1.0"?>\n<PMML version="4.4" xmlns="http://www.dmg.org/PMML-4_4">'},
        "PMML",
        "<PMML>",
    ),
}


# Checkpoints are judged by the gate's own readers (tests/unit/test_checkpoints_*.py): recognised the same way.
JUDGED_CHECKPOINTS = {"PyTorch", "Hugging Face", "TensorFlow", "Keras"}


@pytest.mark.parametrize("case", [c for c in RECOGNISED if RECOGNISED[c][1] in JUDGED_CHECKPOINTS])
def test_each_checkpoint_is_recognised_by_its_content_and_judged(case: str):
    files, framework, evidence = RECOGNISED[case]
    result, checks = inspect({**files, "code/inference.py": b"def model_fn(d): ..."})
    assert result.recognition is not None
    assert (result.recognition.framework, result.recognition.judged) == (framework, True)
    model = result.recognition.files[0]
    assert model.framework == framework and evidence in model.evidence, result.recognition
    assert checks["load"].status != CheckStatus.SKIPPED, checks["load"]


@pytest.mark.parametrize("case", [c for c in RECOGNISED if RECOGNISED[c][1] not in JUDGED_CHECKPOINTS])
def test_each_framework_is_recognised_by_its_content_and_skipped_by_name(case: str):
    files, framework, evidence = RECOGNISED[case]
    result, checks = inspect({**files, "code/inference.py": b"def model_fn(d): ..."})
    assert result.verdict == "skip", result.checks
    assert checks["find_model"].status == CheckStatus.SKIPPED
    assert f"recognised {framework}" in checks["find_model"].detail
    assert evidence in checks["find_model"].detail
    assert result.recognition is not None
    assert (result.recognition.framework, result.recognition.judged) == (framework, False)


# The judged frameworks: recognised by their content, then their gate's own parser refuses a broken file by a named
# reason before any of their C loaders reads it (CatBoost's, which has no schema to check, refuses it itself).
JUDGED = {
    "xgboost-binf": ({"xgboost-model": b"binf\x00\x00\x00?\x03\x00\x00\x00"}, "XGBoost", "old binary", "TRUNCATED"),
    "xgboost-json": (
        {"model.json": b'{"learner": {"attributes": {}}, "version": [2, 1, 0]}'},
        "XGBoost",
        "JSON",
        "MALFORMED",
    ),
    "xgboost-ubjson": ({"model.ubj": b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{"}, "XGBoost", "UBJSON", "TRUNCATED"),
    "xgboost-pickle": ({"xgboost-model": BOOSTER_PICKLE}, "XGBoost", "a pickle", "PICKLE_SHAPE"),
    "lightgbm": ({"model.txt": b"tree\nversion=v4\nnum_class=1\n"}, "LightGBM", "a text model", "MALFORMED"),
    "catboost": ({"model.cbm": b"CBM1" + b"\0" * 32}, "CatBoost", "CBM1", "CatBoostError"),
    "onnx": ({"model.onnx": b"\x08\x08\x12\x07pytorch\x1a\x032.1"}, "ONNX", "ModelProto", "MALFORMED"),
}


@pytest.mark.parametrize("case", list(JUDGED))
def test_a_judged_framework_is_recognised_by_content_and_a_broken_file_refused_by_name(case: str):
    files, framework, evidence, reason = JUDGED[case]
    result, checks = inspect({**files, "code/inference.py": b"def model_fn(d): ..."})
    assert result.verdict == "reject", result.checks
    (model_file,) = files
    assert checks["find_model"].detail.startswith(f"model file {model_file} ({framework}; the only model file")
    assert (result.recognition.framework, result.recognition.judged) == (framework, True)
    assert evidence in result.recognition.files[0].evidence
    assert checks["load"].status == CheckStatus.FAIL and reason in checks["load"].detail
    if framework != "CatBoost":
        assert "no C loader read it" in checks["load"].detail
    assert checks["smoke_prediction"].status == CheckStatus.SKIPPED


def test_a_name_alone_is_weaker_evidence_and_says_so():
    result, checks = inspect({"xgboost-model": b"not any format"})
    assert result.verdict == "reject"
    evidence = result.recognition.files[0].evidence
    assert evidence == "named xgboost-model (its content matches no XGBoost format the gate knows)"
    assert "refused by the gate's XGBoost checks; no C loader read it" in checks["load"].detail


# -- SageMaker built-in algorithms: the training image tells -------------------------------------------------


@pytest.mark.parametrize(
    ("image", "algorithm", "files"),
    [
        ("382416733822.dkr.ecr.us-east-1.amazonaws.com/kmeans:1", "k-means", {"model_algo-1": NDARRAY}),
        ("382416733822.dkr.ecr.us-east-1.amazonaws.com/pca:1", "PCA", {"model_algo-1": NDARRAY}),
        (
            "382416733822.dkr.ecr.us-east-1.amazonaws.com/linear-learner:1",
            "linear learner",
            {"model_algo-1": zipped({"mx-mod-symbol.json": b"{}", "mx-mod-0000.params": NDARRAY})},
        ),
        ("811284229777.dkr.ecr.us-east-1.amazonaws.com/blazingtext:1", "BlazingText", {"vectors.bin": b"\0" * 8}),
    ],
    ids=["kmeans", "pca", "linear-learner", "blazingtext"],
)
def test_a_built_in_algorithm_is_recognised_from_the_training_image(image: str, algorithm: str, files):
    result, checks = inspect(files, image)
    assert result.verdict == "skip", result.checks
    assert f"the SageMaker built-in algorithm {algorithm}" in checks["find_model"].detail
    assert result.recognition.rule == f"training image: built-in algorithm {algorithm}"


def test_model_algo_1_without_the_image_is_still_recognised_by_its_bytes():
    result, checks = inspect({"model_algo-1": NDARRAY})
    assert result.verdict == "skip"
    assert "recognised MXNet in model_algo-1" in checks["find_model"].detail


# -- no model of any kind: a rejection for the owners -------------------------------------------------------


def test_an_artifact_with_no_model_of_any_kind_is_rejected_as_no_model_found():
    result, checks = inspect({"README.md": b"# my model", "evaluation.json": b'{"accuracy": 0.9}'})
    assert result.verdict == "reject"
    assert checks["find_model"].status == CheckStatus.FAIL
    assert checks["find_model"].detail.startswith("no model file of any kind: the artifact holds: README.md")
    policy = Policy(rules=[{"metric": "accuracy", "operator": ">", "threshold": 0.5}])
    decision = decide(
        policy,
        {"accuracy": MetricValue.from_raw("0.9", name="accuracy", original_name="accuracy", source="log")},
        result,
    )
    assert decision.outcome == "reject"
    assert decision.reason_codes == [ReasonCode.NO_MODEL_FOUND]


# -- precedence between candidates, and auxiliary files -------------------------------------------------------


def test_a_pytorch_model_beside_a_scaler_is_pytorch_and_the_scaler_is_auxiliary():
    result, checks = inspect({"model.pth": TORCH_ZIP, "scaler.pkl": SCALER})
    assert result.recognition.judged, result.checks
    assert "model file model.pth (PyTorch" in checks["find_model"].detail
    assert "auxiliary, loaded through the allowlist: scaler.pkl" in checks["find_model"].detail
    roles = {f.file: f.role for f in result.recognition.files}
    assert roles == {"model.pth": "model", "scaler.pkl": "auxiliary"}


def test_an_xgboost_job_with_a_label_encoder_is_xgboost():
    built_in = (NATIVE / "xgboost" / "1.7.6" / "binary.model").read_bytes()
    result, checks = inspect({"xgboost-model": built_in, "label_encoder.pkl": LABELS}, sample_input=[[0.0] * 5])
    assert result.verdict == "pass", result.checks
    assert checks["find_model"].detail.startswith("model file xgboost-model (XGBoost; ")
    assert "auxiliary, loaded through the allowlist: label_encoder.pkl" in checks["find_model"].detail
    assert {f.file: f.role for f in result.recognition.files}["label_encoder.pkl"] == "auxiliary"


class WritesFile:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("beside", ["xgboost", "sklearn"])
def test_a_hostile_auxiliary_pickle_rejects_whatever_the_model_is(tmp_path: Path, beside: str):
    target = tmp_path / "pwned"
    model = {"xgboost-model": b"binf\x00\x00\x00?"} if beside == "xgboost" else {"model.joblib": CLASSIFIER}
    result, checks = inspect({**model, "preprocess.pkl": pickle.dumps(WritesFile(str(target)))})
    assert result.verdict == "reject"
    assert checks["load"].status == CheckStatus.FAIL
    assert "could not load preprocess.pkl" in checks["load"].detail and "io.open" in checks["load"].detail
    assert not target.exists()


def test_another_frameworks_pickle_that_is_not_the_model_goes_through_the_allowlist():
    # A pickled Booster beside a scikit-learn model: not the model, so the loader reads it (serving code may
    # load it too): a state without its model is refused, a valid one is validated and loaded as auxiliary.
    result, checks = inspect({"model.joblib": CLASSIFIER, "booster.pkl": BOOSTER_PICKLE})
    assert result.verdict == "reject"
    assert "could not load booster.pkl" in checks["load"].detail
    assert "invalid Booster: handle is missing" in checks["load"].detail
    booster = (NATIVE / "xgboost" / "3.2.0" / "binary.pkl").read_bytes()
    result, checks = inspect({"model.joblib": CLASSIFIER, "booster.pkl": booster})
    assert result.verdict == "pass", result.checks
    assert result.recognition.model_file == "model.joblib"
    assert "also recognised, not judged: XGBoost booster.pkl" in checks["find_model"].detail


def test_a_corrupt_booster_beside_the_model_is_refused_by_the_gates_parser_before_xgboost_reads_it():
    document = json.loads((NATIVE / "xgboost" / "3.2.0" / "binary.json").read_bytes())
    document["learner"]["gradient_booster"]["model"]["trees"][0]["left_children"][0] = 99
    state = pickle.dumps({"handle": json.dumps(document).encode()}, protocol=2)[2:-1]
    booster = b"\x80\x02cxgboost.core\nBooster\n)\x81" + state + b"b."
    result, checks = inspect({"model.joblib": CLASSIFIER, "booster.pkl": booster})
    assert result.verdict == "reject"
    assert "CHILD_OUT_OF_RANGE" in checks["load"].detail, checks["load"]


def test_a_scikit_learn_predictor_beside_another_format_is_judged_and_the_other_named():
    result, checks = inspect({"model.joblib": CLASSIFIER, "model.onnx": b"\x08\x08\x12\x07skl2onnx"})
    assert result.verdict == "pass", result.checks
    assert checks["find_model"].status == CheckStatus.WARN
    assert checks["find_model"].detail.startswith("model file model.joblib (scikit-learn; a scikit-learn predictor")
    assert "also recognised, not judged: ONNX model.onnx" in checks["find_model"].detail
    assert result.recognition.judged and result.recognition.model_file == "model.joblib"


def test_the_training_image_decides_between_frameworks():
    image = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.1.0-cpu-py310"
    result, checks = inspect({"model.pth": TORCH_ZIP, "head.joblib": CLASSIFIER}, image)
    assert "model file model.pth (PyTorch" in checks["find_model"].detail
    assert result.recognition.judged, result.checks
    assert result.recognition.rule == "training image pytorch-training (PyTorch)"
    assert {f.file: f.role for f in result.recognition.files}["head.joblib"] == "auxiliary"


def test_model_file_picks_the_model_and_its_content_says_which_framework():
    onnx_model = (NATIVE / "onnx" / "regression-linear.onnx").read_bytes()
    result, checks = inspect(
        {"model.joblib": CLASSIFIER, "export.onnx": onnx_model}, model_file="*.onnx", sample_input=[[0.0] * 5]
    )
    assert result.verdict == "pass", result.checks
    assert checks["find_model"].detail.startswith("model file export.onnx (ONNX; model_file '*.onnx'")
    assert result.model.framework == "onnx"


def test_of_two_scikit_learn_predictors_the_one_named_model_is_judged():
    result, checks = inspect({"model.joblib": CLASSIFIER, "challenger.joblib": CLASSIFIER})
    assert result.verdict == "pass", result.checks
    assert checks["find_model"].detail.startswith("model file model.joblib")
    result, checks = inspect({"a.joblib": CLASSIFIER, "b.joblib": CLASSIFIER})
    assert "ambiguous: 2 scikit-learn model files: a.joblib, b.joblib; set model_file" in checks["find_model"].detail


def test_a_transformer_alone_is_the_model_and_is_smoke_tested_by_transform():
    result, checks = inspect({"model.joblib": SCALER})
    assert result.verdict == "pass", result.checks
    assert "transform on 1 row(s)" in checks["smoke_prediction"].detail


def test_a_pickle_without_a_pickle_name_is_found_by_its_bytes():
    result, checks = inspect({"model": pickle.dumps(LogisticRegression(max_iter=500).fit(X, Y), protocol=4)})
    assert result.verdict == "pass", result.checks
    assert checks["find_model"].detail.startswith("model file model (scikit-learn")


def test_a_legacy_torch_file_beside_a_judged_model_cannot_pass_unread():
    # Its first pickle is only a magic number: the allowlist would vouch for none of the pickles after it.
    result, checks = inspect({"model.joblib": CLASSIFIER, "extra.pth": TORCH_LEGACY})
    assert result.verdict == "reject"
    assert "could not load extra.pth: ValueError: a legacy torch.save file" in checks["load"].detail


def test_a_zip_whose_directory_claims_too_many_entries_is_recognised_by_its_first_entry_only(tmp_path: Path):
    from training_gate.inspector.frameworks import ZIP_NAMES_MAX, FileFacts

    data = bytearray(TORCH_ZIP)
    end = data.rfind(b"PK\x05\x06")
    data[end + 10 : end + 12] = (ZIP_NAMES_MAX + 1).to_bytes(2, "little")
    path = tmp_path / "model.pth"
    path.write_bytes(bytes(data))
    assert FileFacts("model.pth", len(data), bytes(data[:4096]), path).zip_names() == ["archive/data.pkl"]


# -- a scikit-learn pipeline ending in another framework's estimator ------------------------------------------


def _pipeline_ending_in(estimator: object) -> bytes:
    from sklearn.pipeline import make_pipeline

    return dump(make_pipeline(StandardScaler(), estimator).fit(X, Y))


def test_a_pipeline_ending_in_a_catboost_estimator_is_skipped_naming_its_class():
    # CatBoost's own __setstate__ hands the model's bytes to its C loader: the loader admits no CatBoost class,
    # so a pipeline ending in one is CatBoost's, and not judged (XGBoost's and LightGBM's are: test_inspector_native).
    catboost = pytest.importorskip("catboost")
    estimator = catboost.CatBoostClassifier(iterations=2, verbose=False, allow_writing_files=False, thread_count=1)
    result, checks = inspect({"model.joblib": _pipeline_ending_in(estimator)})
    assert result.verdict == "skip", result.checks
    detail = checks["find_model"].detail
    assert "recognised CatBoost in model.joblib" in detail
    assert "holding catboost.core.CatBoostClassifier" in detail
    assert "the gate does not judge CatBoost estimators inside scikit-learn pickles yet" in detail
    assert checks["load"].status == CheckStatus.SKIPPED
    assert not [c for c in result.checks if c.status == CheckStatus.FAIL]


class Placeholder(StandardScaler):
    """Stands in for a class the pickle names instead (its name is rewritten in the bytes)."""


class PlaceholderClassifier(LogisticRegression):
    """Stands in for another framework's classifier, wherever that framework is not installed."""


def _pipeline_naming(named: bytes) -> bytes:
    from sklearn.pipeline import make_pipeline

    buffer = io.BytesIO()
    pipeline = make_pipeline(StandardScaler(), PlaceholderClassifier(max_iter=500)).fit(X, Y)
    joblib.dump(pipeline, buffer, protocol=2)
    placeholder = f"c{__name__}\nPlaceholderClassifier\n".encode()
    assert placeholder in buffer.getvalue()
    return buffer.getvalue().replace(placeholder, b"c" + named + b"\n")


def test_a_pipeline_naming_a_catboost_estimator_is_skipped_whether_or_not_it_is_installed():
    result, checks = inspect({"model.joblib": _pipeline_naming(b"catboost.core\nCatBoostClassifier")})
    assert result.verdict == "skip", result.checks
    assert "recognised CatBoost in model.joblib" in checks["find_model"].detail
    assert "holding catboost.core.CatBoostClassifier" in checks["find_model"].detail


@pytest.mark.parametrize(
    "named", [b"xgboost.sklearn\nXGBClassifier", b"lightgbm.sklearn\nLGBMRegressor"], ids=["xgboost", "lightgbm"]
)
def test_a_pipeline_naming_an_xgboost_or_lightgbm_estimator_holds_it_to_the_states_its_library_writes(named):
    # Another class's state under the estimator's name: the loader knows the class by identity and refuses the
    # state, naming an attribute no version of the library writes.
    result, checks = inspect({"model.joblib": _pipeline_naming(named)})
    assert result.verdict == "reject", result.checks
    cls = named.decode().split("\n")[1]
    assert f"invalid {cls}" in checks["load"].detail and "is not an attribute the library writes" in (
        checks["load"].detail
    )


def test_another_class_of_the_same_package_inside_a_pipeline_stays_a_refusal():
    from sklearn.pipeline import make_pipeline

    buffer = io.BytesIO()
    joblib.dump(make_pipeline(Placeholder().fit(X), LogisticRegression(max_iter=500).fit(X, Y)), buffer, protocol=2)
    named = f"c{__name__}\nPlaceholder\n".encode()
    assert named in buffer.getvalue()
    data = buffer.getvalue().replace(named, b"cxgboost.tracker\nRabitTracker\n")
    result, checks = inspect({"model.joblib": data})
    assert result.verdict == "reject", result.checks
    assert "refused global 'xgboost.tracker.RabitTracker'" in checks["load"].detail


# -- named verdicts where the name would mislead -------------------------------------------------------------

OLD_XGBOOST_BINARY = (
    struct.pack("<fIiii", 0.5, 4, 0, 0, 0)
    + b"\0" * 116
    + struct.pack("<Q", 15)
    + b"binary:logistic"
    + struct.pack("<Q", 6)
    + b"gbtree"
)


@pytest.mark.parametrize(
    ("content", "framework", "evidence"),
    [
        (NDARRAY, "MXNet", "an MXNet NDArray file (.params), the name SageMaker's built-in algorithms give"),
        (
            zipped({"mx-mod-symbol.json": b'{"nodes": [], "heads": []}', "mx-mod-0000.params": NDARRAY}),
            "MXNet",
            "an MXNet module zip (-symbol.json graph, .params weights)",
        ),
    ],
    ids=["k-means", "linear-learner"],
)
def test_a_built_in_algorithms_model_algo_1_without_an_image_is_recognised_by_its_bytes(content, framework, evidence):
    result, checks = inspect({"model_algo-1": content})
    assert result.verdict == "skip", result.checks
    assert f"recognised {framework} in model_algo-1 ({evidence}" in checks["find_model"].detail


@pytest.mark.parametrize(
    ("content", "evidence", "verdict"),
    [
        ((NATIVE / "xgboost" / "1.7.6" / "binary.json").read_bytes(), "the only model file", "pass"),
        ((NATIVE / "xgboost" / "0.90" / "binary.pkl").read_bytes(), "the only model file", "pass"),
        ((NATIVE / "xgboost" / "0.90" / "binary.model").read_bytes(), "the only model file", "pass"),
        (b'{"learner": {"attributes": {}}, "version": [1, 7, 0]}', "the only model file", "reject"),
        (BOOSTER_PICKLE, "the only model file", "reject"),
        (OLD_XGBOOST_BINARY, "the only model file", "reject"),
    ],
    ids=["json", "pickle", "before-1.0", "json-stub", "pickle-stub", "before-1.0-stub"],
)
def test_a_model_algo_1_of_xgboosts_bytes_is_judged_as_xgboost_by_its_bytes(content, evidence, verdict):
    result, checks = inspect({"model_algo-1": content}, sample_input=None)
    assert f"model file model_algo-1 (XGBoost; {evidence})" in checks["find_model"].detail
    assert result.verdict == verdict, result.checks
    if verdict == "reject":  # a stub is no model: the gate's parser says why, before any reader
        assert "refused by the gate's XGBoost checks; no C loader read it" in checks["load"].detail


def test_a_model_algo_1_of_unknown_bytes_is_no_model_found_saying_what_its_name_suggests():
    result, checks = inspect({"model_algo-1": b"PK\x03\x04" + b"\0" * 200})
    assert result.verdict == "reject"
    assert checks["find_model"].detail == (
        "no model file of any kind: the artifact holds: model_algo-1 (model_algo-1: the name SageMaker's built-in "
        "algorithms give their model, in a format the gate does not recognise by its bytes; the job's training "
        "image names the algorithm)"
    )
    assert checks["load"].status == CheckStatus.SKIPPED


def test_a_torch_zip_named_like_a_pickle_is_pytorch_by_its_bytes():
    result, checks = inspect({"model.pkl": TORCH_ZIP})
    assert result.recognition.framework == "PyTorch" and result.recognition.judged, result.checks
    assert "model file model.pkl (PyTorch" in checks["find_model"].detail
    # Judged by the checkpoint reader, not the scikit-learn loader: its data.pkl is an empty dict.
    assert result.verdict == "reject" and "holds no tensors" in checks["load"].detail


@pytest.mark.parametrize("members", [{}, {"model/": None}], ids=["empty", "directories-only"])
def test_an_artifact_of_no_files_is_no_model_found_saying_the_job_saved_nothing(members):
    from tests.unit.test_inspector import info, tar_with

    artifact = tar_with([(info(name, b"5"), None) for name in members])
    result = inspect_artifact("s3://b/model.tar.gz", lambda: io.BytesIO(artifact), InspectConfig(sample_input=SAMPLE))
    checks = {c.name: c for c in result.checks}
    assert result.verdict == "reject"
    assert checks["unpack"].status == CheckStatus.PASS
    assert checks["find_model"].detail == (
        "no model file of any kind: the artifact holds: nothing (the training job saved no files to its model "
        "directory)"
    )
