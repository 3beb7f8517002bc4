"""Benign models that were once rejected pass, and every failure is a verdict or a gate error."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

# -- benign models that must pass, and every failure a verdict or a gate error -----------------------------
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.gaussian_process import GaussianProcessClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.multioutput import MultiOutputClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from tests.unit.test_inspector import SAMPLE, X, Y, dump, run
from training_gate.archive import ArchiveLimits, UnsafeArchive, WorkSpaceExhausted, unpack_stream
from training_gate.domain.models import CheckStatus
from training_gate.inspector.errors import ArtifactAccessDenied, InspectorEnvironmentError
from training_gate.inspector.inspect import InspectConfig, inspect_artifact
from training_gate_cli.artifacts import pack_model_tar_gz

BENIGN_MODELS = {
    "one-hot-pipeline": lambda: make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression(max_iter=300)),
    "ordinal-pipeline": lambda: make_pipeline(OrdinalEncoder(), LogisticRegression(max_iter=300)),
    "mlp": lambda: MLPClassifier(max_iter=300, random_state=0),
    "grid-search": lambda: GridSearchCV(LogisticRegression(max_iter=300), {"C": [0.1, 1.0]}, cv=2),
    "calibrated": lambda: CalibratedClassifierCV(LogisticRegression(max_iter=300), cv=2),
    "gaussian-process": lambda: GaussianProcessClassifier(random_state=0),
    "multi-output": lambda: MultiOutputClassifier(LogisticRegression(max_iter=300)),
    "column-transformer": lambda: make_pipeline(
        ColumnTransformer([("scaled", StandardScaler(), [0, 1]), ("imputed", SimpleImputer(), [2, 3])]),
        LogisticRegression(max_iter=300),
    ),
}


@pytest.mark.parametrize("name", list(BENIGN_MODELS))
@pytest.mark.parametrize("how", ["joblib", "pickle-protocol-2"])
def test_benign_models_that_were_once_rejected_pass(name: str, how: str):
    import warnings

    labels = np.c_[Y, Y % 2] if name == "multi-output" else Y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings of the small fits
        model = BENIGN_MODELS[name]().fit(X, labels)
    files = {"model.joblib": dump(model)} if how == "joblib" else {"model.pkl": pickle.dumps(model, protocol=2)}
    result, checks = run(pack_model_tar_gz(files))
    assert result.verdict == "pass", result.checks
    assert checks["smoke_prediction"].status == CheckStatus.PASS


def test_a_reference_file_nested_too_deep_fails_its_check_by_exception_type():
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    model = LogisticRegression(max_iter=500).fit(X, Y)
    result, checks = run(pack_model_tar_gz({"model.joblib": dump(model), "reference_predictions.json": deep}))
    assert result.verdict == "reject"
    assert "RecursionError" in checks["reference_predictions"].detail


def test_an_evaluation_file_nested_too_deep_fails_unpack_by_exception_type():
    deep = ('{"accuracy": ' + "[" * 100_000 + "]" * 100_000 + "}").encode()
    model = LogisticRegression(max_iter=500).fit(X, Y)
    result, checks = run(pack_model_tar_gz({"model.joblib": dump(model), "evaluation.json": deep}))
    assert result.verdict == "reject"
    assert "RecursionError" in checks["unpack"].detail


def _client_error(code: str):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": code}}, "GetObject")


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        ("AccessDenied", ArtifactAccessDenied),
        ("KMS.AccessDeniedException", ArtifactAccessDenied),
        ("SlowDown", InspectorEnvironmentError),
        ("ThrottlingException", InspectorEnvironmentError),
    ],
)
def test_denied_or_throttled_reads_are_gate_errors_not_rejections(code: str, error_type: type):
    from training_gate.dal.s3 import ArtifactStore

    class DeniedS3:
        def get_object(self, **_kwargs):
            raise _client_error(code)

    store = ArtifactStore(s3=DeniedS3())
    with pytest.raises(error_type) as raised:
        inspect_artifact("s3://b/model.tar.gz", lambda: store.open("s3://b/model.tar.gz"), SAMPLE)
    assert type(raised.value) is error_type  # a throttled read is not reported as a denial


def test_a_read_failing_midway_is_a_gate_error():
    from botocore.exceptions import ReadTimeoutError

    artifact = pack_model_tar_gz({"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y))})

    class Flaky(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 100:
                raise ReadTimeoutError(endpoint_url="https://s3")
            return super().read(min(size, 50) if size and size > 0 else 50)

    with pytest.raises(InspectorEnvironmentError, match="reading the artifact failed: ReadTimeoutError"):
        inspect_artifact("s3://b/model.tar.gz", lambda: Flaky(artifact), SAMPLE)


def test_a_full_disk_is_named_enospc_and_is_a_gate_error(tmp_path: Path):
    from training_gate.inspector.sandbox import Sandbox

    sandbox = Sandbox(test_hooks={"s3://t/full.tar.gz": "unpack:enospc"})
    artifact = pack_model_tar_gz({"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y))})
    try:
        with pytest.raises(InspectorEnvironmentError, match="ENOSPC"):
            inspect_artifact(
                "s3://t/full.tar.gz", lambda: io.BytesIO(artifact), SAMPLE, sandbox=sandbox, work_root=tmp_path
            )
    finally:
        sandbox.close()
    assert list(tmp_path.iterdir()) == []


def test_the_written_bytes_cap_refuses_before_the_disk_fills_as_the_work_spaces_limit(tmp_path: Path):
    # The free space of the work directory is the environment's limit: not an UnsafeArchive (a model's reject).
    artifact = pack_model_tar_gz({"model.joblib": b"m", "data.bin": b"x" * 5000})
    with pytest.raises(WorkSpaceExhausted, match="4096 bytes free in the gate's work directory"):
        unpack_stream(io.BytesIO(artifact), tmp_path, ArchiveLimits().with_written(4096))
    assert not (tmp_path / "data.bin").exists() or (tmp_path / "data.bin").stat().st_size == 0


def test_a_model_larger_than_the_gates_work_space_is_a_gate_error_naming_the_setting(tmp_path: Path, monkeypatch):
    # GIVEN a legitimate 3 MB weights file and a work directory with 1 MB free (a 512 MB ephemeral storage and a
    # larger model, scaled down)
    import shutil

    from training_gate.inspector import inspect as inspect_module

    real = shutil.disk_usage
    monkeypatch.setattr(
        inspect_module.shutil,
        "disk_usage",
        lambda path: real(path)._replace(free=inspect_module.DISK_RESERVE_BYTES + (1 << 20)),
    )
    artifact = pack_model_tar_gz(
        {"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y)), "w.bin": b"\1" * (3 << 20)}
    )
    # WHEN it is inspected THEN the gate's own limit is an error for operations, naming the setting, not a reject
    with pytest.raises(InspectorEnvironmentError, match="inspector_ephemeral_storage_mb") as error:
        inspect_artifact("s3://t/big.tar.gz", lambda: io.BytesIO(artifact), InspectConfig(), work_root=tmp_path)
    assert "not the model's" in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_inspect_json_prints_exactly_one_json_object_on_stdout(tmp_path: Path, capfd, monkeypatch):
    from training_gate.inspector import inspect as inspect_module
    from training_gate_cli.cli import main

    forest = RandomForestClassifier(n_estimators=3, random_state=0, verbose=100).fit(X, Y)
    path = tmp_path / "model.tar.gz"
    path.write_bytes(pack_model_tar_gz({"model.joblib": dump(forest)}))
    capfd.readouterr()
    assert main(["inspect", str(path), "--json"]) == 0
    out, _err = capfd.readouterr()
    assert json.loads(out)["verdict"] == "pass"  # one object: anything else on stdout breaks the parse

    def unavailable(*_args, **_kwargs):
        raise InspectorEnvironmentError("the inspection sandbox could not start")

    monkeypatch.setattr(inspect_module, "inspect_artifact", unavailable)
    assert main(["inspect", str(path), "--json"]) == 3
    out, _err = capfd.readouterr()
    assert json.loads(out)["error"]["type"] == "InspectorEnvironmentError"


def test_a_source_too_slow_for_the_time_limit_is_a_gate_error_not_a_rejection():
    import time as clock

    artifact = pack_model_tar_gz({"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y))})

    class Slow(io.BytesIO):
        def read(self, size=-1):
            clock.sleep(0.5)  # a throttled network read: the child waits, idle, for each piece
            return super().read(100)

    config = InspectConfig(sample_input=SAMPLE.sample_input, time_limit_s=1.0)
    with pytest.raises(InspectorEnvironmentError, match="did not arrive within the 1 s time limit"):
        inspect_artifact("s3://b/model.tar.gz", lambda: Slow(artifact), config)


def test_an_artifact_over_its_own_caps_is_the_models_fault_even_where_the_work_space_is_short(tmp_path: Path):
    # GIVEN a work space too small for the artifact, whose last member also inflates past max_ratio
    artifact = pack_model_tar_gz({"model.joblib": b"m", "data.bin": b"x" * 5000, "zeros.bin": b"\0" * (80 << 20)})
    limits = ArchiveLimits(max_ratio=100).with_written(4096)
    # WHEN it is unpacked THEN the artifact's own cap is what refuses it: a rejection, not the gate's limit
    with pytest.raises(UnsafeArchive, match="max_ratio") as refused:
        unpack_stream(io.BytesIO(artifact), tmp_path, limits)
    assert refused.value.check == "unpack_limits"
    # and over max_total_bytes likewise
    limits = ArchiveLimits(max_total_bytes=6 << 20).with_written(4096)
    with pytest.raises(UnsafeArchive, match="max_total_bytes"):
        unpack_stream(io.BytesIO(artifact), tmp_path / "again", limits)


def test_an_uncompressed_artifact_larger_than_the_work_space_is_a_gate_error_naming_the_setting(
    tmp_path: Path, monkeypatch
):
    import shutil

    from training_gate.inspector import inspect as inspect_module
    from training_gate.inspector.inspect import PrefixSource

    real = shutil.disk_usage
    monkeypatch.setattr(
        inspect_module.shutil,
        "disk_usage",
        lambda path: real(path)._replace(free=inspect_module.DISK_RESERVE_BYTES + (1 << 20)),
    )
    files = {"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y)), "w.bin": b"\1" * (2 << 20)}
    source = PrefixSource(lambda: [(k, len(v)) for k, v in files.items()], lambda key: io.BytesIO(files[key]))
    with pytest.raises(InspectorEnvironmentError, match="inspector_ephemeral_storage_mb") as error:
        inspect_artifact("s3://t/model/", source, InspectConfig(), work_root=tmp_path)
    assert "over the 1048576 bytes free in the gate's work directory" in str(error.value)
    # within its own caps first: the same artifact over max_total_bytes is the model's rejection
    result = inspect_artifact("s3://t/model/", source, InspectConfig(max_total_bytes=1 << 20), work_root=tmp_path)
    assert result.verdict == "reject"
    assert "max_total_bytes" in {c.name: c.detail for c in result.checks}["unpack"]
