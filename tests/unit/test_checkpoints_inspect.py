"""Checkpoints through the whole inspection: packed as SageMaker packs /opt/ml/model, streamed into the
contained child, judged there by the gate's readers; and through `training-gate inspect --json`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from training_gate.domain.models import NO_SMOKE_PREDICTION_DETAIL, CheckStatus
from training_gate.domain.report import model_facts
from training_gate.inspector.inspect import InspectConfig, inspect_artifact
from training_gate_cli import cli
from training_gate_cli.artifacts import pack_model_tar_gz

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "checkpoints"
MANIFEST = {m["name"]: m for m in json.loads((FIXTURES / "manifest.json").read_text())}


def artifact(name: str, under: str = "") -> bytes:
    return pack_model_tar_gz({under + f: (FIXTURES / name / f).read_bytes() for f in MANIFEST[name]["files"]})


def inspect(data: bytes, **config):
    result = inspect_artifact("s3://b/model.tar.gz", lambda: io.BytesIO(data), InspectConfig(**config))
    return result, {c.name: c for c in result.checks}


def test_a_pytorch_state_dict_passes_without_running_anything(tmp_path: Path):
    result, checks = inspect(artifact("torch-state-dict"))
    assert result.verdict == "pass", result.checks
    assert checks["find_model"].detail.startswith("model file model.pt (PyTorch")
    assert (
        checks["load"].status == CheckStatus.PASS and "4 tensor(s), 67 parameters (float32 67)" in checks["load"].detail
    )
    assert checks["version_skew"].status == CheckStatus.SKIPPED
    assert checks["smoke_prediction"].status == CheckStatus.SKIPPED
    assert checks["smoke_prediction"].detail.startswith(NO_SMOKE_PREDICTION_DETAIL)
    assert {c.name for c in checks.values() if c.status == CheckStatus.SKIPPED} == {
        "version_skew",
        "smoke_prediction",
        "reference_predictions",
        "holdout",
    }
    assert [f.code for f in result.findings] == ["NO_SMOKE_PREDICTION"]
    assert result.recognition.judged


def test_what_the_model_is_goes_to_the_report_in_numbers():
    result, _ = inspect(artifact("torch-state-dict"))
    model = result.model
    assert (model.framework, model.format, model.reader, model.bytes_validated) == (
        "pytorch",
        "torch-zip",
        "training-gate",
        True,
    )
    assert model.details["tensors"] == 4 and model.details["parameters"] == 67
    assert model.details["dtypes"] == "float32=67" and model.details["tensor_bytes"] == 67 * 4
    assert str(model.details["smoke_prediction"]).startswith(NO_SMOKE_PREDICTION_DETAIL)
    facts = model_facts(result)
    assert facts is not None and (facts["parameters"], facts["dtypes"], facts["tensor_bytes"]) == (
        67,
        "float32=67",
        268,
    )


def test_sagemakers_serving_hook_in_the_archive_is_named_not_run(tmp_path: Path):
    marker = tmp_path / "ran"
    files = {"model.pt": (FIXTURES / "torch-state-dict" / "model.pt").read_bytes()}
    files["code/inference.py"] = f"open({str(marker)!r}, 'w')\ndef model_fn(model_dir): ...\n".encode()
    files["code/requirements.txt"] = b"transformers==4.57.1\n"
    result, checks = inspect(pack_model_tar_gz(files))
    assert result.verdict == "pass", checks["load"].detail
    assert "code/inference.py is SageMaker's serving hook" in checks["load"].detail
    assert "code/requirements.txt" in checks["load"].detail and "neither ran nor judged it" in checks["load"].detail
    assert "code/inference.py" in str(result.model.details["serving_code"])
    assert not marker.exists()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("optimizer.pt", b"cposix\nsystem\n(S'id'\ntR."),  # protocol 0: no header names it a pickle
        ("extra.pt", b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00cposix\nsystem\nX\x02\x00\x00\x00id\x85R."),
    ],
)
def test_a_payload_pickle_beside_a_pytorch_model_rejects_the_artifact(name: str, data: bytes):
    files = {"model.pt": (FIXTURES / "torch-state-dict" / "model.pt").read_bytes(), name: data}
    result, checks = inspect(pack_model_tar_gz(files))
    assert result.verdict == "reject", checks["load"].detail
    assert name in checks["load"].detail and "posix.system" in checks["load"].detail


def test_a_whole_model_pickle_is_rejected_naming_its_class_and_the_fix():
    result, checks = inspect(artifact("torch-whole-model"))
    assert result.verdict == "reject"
    assert checks["load"].status == CheckStatus.FAIL and "__main__.Net" in checks["load"].detail
    assert "state_dict()" in checks["load"].detail
    assert checks["smoke_prediction"].detail == "not run: load failed"


def test_torchscript_is_inconclusive_by_default():
    result, checks = inspect(artifact("torchscript"))
    assert result.verdict == "inconclusive"
    assert checks["load"].status == CheckStatus.WARN and "TorchScript archive" in checks["load"].detail
    assert "TORCHSCRIPT" in [f.code for f in result.findings]


def test_a_hugging_face_training_output_under_a_directory_is_judged_with_its_auxiliaries():
    result, checks = inspect(artifact("hf-bert", "model/"))
    assert result.verdict == "pass", checks["load"].detail
    assert checks["find_model"].detail.startswith("model file model/model.safetensors (Hugging Face")
    assert "model/training_args.bin (arguments" in checks["load"].detail


def test_a_sagemaker_tensorflow_savedmodel_under_its_version_directory_is_judged():
    result, checks = inspect(artifact("tf-keras3-export", "1/"))
    assert result.verdict == "pass", checks["load"].detail
    assert checks["find_model"].detail.startswith("model file 1/saved_model.pb (TensorFlow")
    hostile, checks = inspect(artifact("tf-read-file", "1/"))
    assert hostile.verdict == "reject" and "ReadFile is a file op" in checks["load"].detail


def test_a_keras_lambda_is_rejected_by_name():
    result, checks = inspect(artifact("tf-keras-lambda-h5"))
    assert result.verdict == "reject" and "Lambda layer" in checks["load"].detail


def test_a_legacy_torch_file_beside_a_pytorch_model_is_read_by_the_checkpoint_reader_not_refused_unread():
    files = {"model.pt": (FIXTURES / "torch-state-dict" / "model.pt").read_bytes()}
    files["ema.pth"] = (FIXTURES / "torch-legacy" / "model.pth").read_bytes()
    result, checks = inspect(pack_model_tar_gz(files))
    assert result.verdict == "pass", checks["load"].detail
    assert "ema.pth (4 tensor(s))" in checks["load"].detail


@pytest.mark.parametrize(("name", "code"), [("torch-state-dict", 0), ("torch-nan", 1), ("torchscript", 3)])
def test_the_cli_inspects_a_checkpoint_and_exits_by_its_verdict(tmp_path: Path, capsys, name: str, code: int):
    path = tmp_path / "model.tar.gz"
    path.write_bytes(artifact(name))
    assert cli.main(["inspect", str(path), "--json"]) == code
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == MANIFEST[name]["expect"]
    assert "findings" in report and report["recognition"]["framework"] == "PyTorch"
