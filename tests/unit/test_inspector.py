"""The artifact inspection against benign and hostile artifacts built here."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import re
import tarfile
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from training_gate.archive import ArchiveLimits, UnsafeArchive, unpack_stream
from training_gate.dal.s3 import ArtifactNotFound
from training_gate.domain.models import CheckStatus
from training_gate.inspector.child import smoke_prediction
from training_gate.inspector.inspect import InspectConfig, inspect_artifact
from training_gate_cli.artifacts import pack_model_tar_gz

X, Y = load_iris(return_X_y=True)
SAMPLE = InspectConfig(sample_input=[[5.1, 3.5, 1.4, 0.2]])


def dump(obj: object, compress: int = 0) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=compress)
    return buffer.getvalue()


def run(artifact: bytes, config: InspectConfig = SAMPLE):
    result = inspect_artifact("s3://bucket/model.tar.gz", lambda: io.BytesIO(artifact), config)
    return result, {c.name: c for c in result.checks}


class WritesFile:
    """A payload: unpickling it would create the file named in `path`."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def tar_with(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def info(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.size = size
    member.linkname = linkname
    return member


@pytest.mark.parametrize(
    "model",
    [LogisticRegression(max_iter=500), RandomForestClassifier(n_estimators=5, random_state=0)],
    ids=["logistic", "forest"],
)
@pytest.mark.parametrize("compress", [0, 3], ids=["plain", "compressed"])
def test_benign_models_pass_every_check(model, compress):
    artifact = pack_model_tar_gz({"model.joblib": dump(model.fit(X, Y), compress)})
    result, checks = run(artifact)
    assert result.verdict == "pass", result.checks
    assert {c.name for c in result.checks if c.status != CheckStatus.PASS} == {"reference_predictions", "holdout"}
    assert checks["holdout"].detail == "no holdout set configured"
    assert result.artifact.bytes == len(artifact)
    assert result.model.class_name == type(model).__name__


def test_digest_is_the_sha256_of_the_compressed_object():
    import hashlib

    artifact = pack_model_tar_gz({"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y))})
    result, _ = run(artifact)
    assert result.artifact.sha256 == hashlib.sha256(artifact).hexdigest()


def test_nested_model_path_is_found():
    artifact = pack_model_tar_gz({"model/model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y))})
    result, checks = run(artifact)
    assert checks["find_model"].detail == "model file model/model.joblib (scikit-learn; the only model file)"
    assert result.verdict == "pass"


def test_sample_is_derived_from_n_features_when_not_configured():
    artifact = pack_model_tar_gz({"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y))})
    _, checks = run(artifact, InspectConfig())
    assert checks["smoke_prediction"].status == CheckStatus.PASS
    assert "derived sample" in checks["smoke_prediction"].detail


@pytest.mark.parametrize("compress", [0, 3], ids=["plain", "compressed"])
@pytest.mark.parametrize("after_arrays", [False, True], ids=["first", "after-arrays"])
def test_reduce_payload_is_refused_and_never_runs(tmp_path: Path, compress: int, after_arrays: bool):
    target = tmp_path / "pwned"
    payload = WritesFile(str(target))
    obj = {"weights": np.arange(1000.0), "x": payload} if after_arrays else payload
    artifact = pack_model_tar_gz({"model.joblib": dump(obj, compress)})
    result, checks = run(artifact)
    assert result.verdict == "reject"
    assert checks["load"].status == CheckStatus.FAIL
    # Python 3.11 pickles open as io.open, 3.12 as _io.open
    assert re.search(r"refused global '_?io\.open'", checks["load"].detail), checks["load"].detail
    assert not target.exists()


def test_payload_calling_a_library_function_that_writes_is_refused(tmp_path: Path):
    target = tmp_path / "saved.npy"

    class SavesArray:
        def __reduce__(self):
            return (np.save, (str(target), np.zeros(3)))

    _result, checks = run(pack_model_tar_gz({"model.pkl": pickle.dumps(SavesArray())}))
    assert checks["load"].status == CheckStatus.FAIL
    assert "numpy" in checks["load"].detail
    assert not target.exists()


@pytest.mark.parametrize(
    ("members", "check"),
    [
        ([(info("../escape.joblib", size=1), b"x")], "member_names"),
        ([(info("/abs/model.joblib", size=1), b"x")], "member_names"),
        ([(info("link.joblib", tarfile.SYMTYPE, linkname="/etc/passwd"), None)], "member_types"),
        ([(info("hard.joblib", tarfile.LNKTYPE, linkname="../x"), None)], "member_types"),
        ([(info("dev", tarfile.CHRTYPE), None)], "member_types"),
        ([(info("fifo", tarfile.FIFOTYPE), None)], "member_types"),
    ],
    ids=["dotdot", "absolute", "symlink", "hardlink", "device", "fifo"],
)
def test_unsafe_members_are_refused_before_writing(tmp_path: Path, members, check):
    with pytest.raises(UnsafeArchive) as refused:
        unpack_stream(io.BytesIO(tar_with(members)), tmp_path / "work")
    assert refused.value.check == check
    assert not (tmp_path / "escape.joblib").exists()


def test_member_count_bomb_is_refused(tmp_path: Path):
    members = [(info(f"f{i}", size=1), b"x") for i in range(50)]
    with pytest.raises(UnsafeArchive, match="more than 10 members"):
        unpack_stream(io.BytesIO(tar_with(members)), tmp_path, ArchiveLimits(max_members=10))
    assert len(list(tmp_path.iterdir())) == 10


def test_huge_member_is_refused_from_its_header(tmp_path: Path):
    artifact = tar_with([(info("model.joblib", size=5_000_000), b"\0" * 5_000_000)])
    with pytest.raises(UnsafeArchive, match="over the cap"):
        unpack_stream(io.BytesIO(artifact), tmp_path, ArchiveLimits(max_member_bytes=1_000_000))


def test_inflation_bomb_stops_at_the_total_cap(tmp_path: Path):
    artifact = tar_with([(info(f"f{i}", size=400_000), b"\0" * 400_000) for i in range(10)])
    assert len(artifact) < 50_000  # highly compressible: the classic bomb shape
    with pytest.raises(UnsafeArchive, match="possible bomb"):
        unpack_stream(io.BytesIO(artifact), tmp_path, ArchiveLimits(max_total_bytes=1_000_000))


@pytest.mark.parametrize(
    ("artifact", "detail"),
    [
        (pack_model_tar_gz({"model.joblib": b"x" * 10_000})[:-40], "truncated"),
        (b"PK\x03\x04 not a gzip", "not valid gzip"),
        (gzip.compress(b""), "empty"),
    ],
    ids=["truncated", "not-gzip", "empty-tar"],
)
def test_broken_archives_fail_the_unpack_check(artifact: bytes, detail: str):
    _result, checks = run(artifact)
    assert checks["unpack"].status == CheckStatus.FAIL
    assert detail in checks["unpack"].detail
    assert checks["load"].status == CheckStatus.SKIPPED


def test_no_sklearn_model_file_is_a_skip_that_lists_what_is_there():
    # Another framework's artifact the gate does not judge (a PMML document): not a rejection, nothing to judge.
    pmml = b'<?xml version="1.0"?>\n<PMML version="4.4">'
    result, checks = run(pack_model_tar_gz({"model.pmml": pmml, "code/train.py": b"print()"}))
    assert result.verdict == "skip"
    assert checks["find_model"].status == CheckStatus.SKIPPED
    assert checks["find_model"].detail.startswith("no scikit-learn model: recognised PMML in model.pmml")
    assert {checks[name].status for name in ("load", "smoke_prediction", "holdout")} == {CheckStatus.SKIPPED}
    assert not result.failed_checks


def test_a_configured_model_file_that_is_missing_still_fails():
    # model_file names the scikit-learn model the job should have written: its absence is the job's fault.
    config = InspectConfig(sample_input=SAMPLE.sample_input, model_file="model.joblib")
    result, checks = run(pack_model_tar_gz({"README.txt": b"hi"}), config)
    assert result.verdict == "reject"
    assert checks["find_model"].status == CheckStatus.FAIL
    assert "README.txt" in checks["find_model"].detail


def test_two_model_files_are_ambiguous():
    data = dump(LogisticRegression(max_iter=500).fit(X, Y))
    _, checks = run(pack_model_tar_gz({"a.joblib": data, "b.pkl": data}))
    assert "ambiguous" in checks["find_model"].detail


def test_non_estimator_object_fails_the_smoke_prediction():
    _, checks = run(pack_model_tar_gz({"model.joblib": dump({"weights": np.ones(3)})}))
    assert checks["smoke_prediction"].status == CheckStatus.FAIL
    assert "no predict method" in checks["smoke_prediction"].detail


def test_estimator_whose_predict_raises_is_rejected():
    # An unfitted estimator loads fine and raises on predict.
    _, checks = run(pack_model_tar_gz({"model.joblib": dump(LogisticRegression())}))
    assert checks["smoke_prediction"].status == CheckStatus.FAIL
    assert "NotFittedError" in checks["smoke_prediction"].detail


def test_wrong_sample_width_is_reported_not_crashed():
    artifact = pack_model_tar_gz({"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y))})
    _, checks = run(artifact, InspectConfig(sample_input=[[1.0, 2.0]]))
    assert checks["smoke_prediction"].status == CheckStatus.FAIL


@pytest.mark.parametrize(
    ("sample", "detail"),
    [
        ([[float("nan"), 1.0, 1.0, 1.0]], "finite number"),
        ([[float("inf"), 1.0, 1.0, 1.0]], "finite number"),
        ([[1.0, 2.0, 3.0, 4.0], [1.0]], "the sample's rows must be equally wide; they have [1, 4] cells"),
        ({"csv": "f0,f1\n1,inf\n"}, "row 1 of the CSV sample holds an infinite number in column 'f1'"),
    ],
    ids=["nan", "inf", "ragged", "csv-inf"],
)
def test_an_unusable_sample_is_the_configurations_mistake_refused_before_any_model_runs(sample, detail):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as refused:
        InspectConfig(sample_input=sample)
    assert detail in str(refused.value)


def test_a_missing_value_is_given_to_the_model_which_says_whether_it_takes_one():
    takes = HistGradientBoostingClassifier(max_iter=5).fit(np.where(X > 5, np.nan, X), Y)
    refuses = LogisticRegression(max_iter=500).fit(X, Y)
    sample = InspectConfig(sample_input=[[5.1, None, 1.4, 0.2]])
    _, checks = run(pack_model_tar_gz({"model.joblib": dump(takes)}), sample)
    assert checks["smoke_prediction"].status == CheckStatus.PASS, checks["smoke_prediction"].detail
    _, checks = run(pack_model_tar_gz({"model.joblib": dump(refuses)}), sample)
    assert checks["smoke_prediction"].status == CheckStatus.FAIL
    assert "Input X contains NaN" in checks["smoke_prediction"].detail


def test_a_model_without_n_features_and_no_sample_is_told_to_configure_one():
    status, detail = smoke_prediction(_NoWidth(), InspectConfig())
    assert status == CheckStatus.FAIL
    assert "no sample input is configured" in detail


class _NoWidth:
    def predict(self, rows):
        return [0] * len(rows)


def test_version_skew_fails_by_default_and_can_be_a_warning(monkeypatch):
    import sklearn.base

    # GIVEN a model pickled by another scikit-learn version than the one the gate's child runs
    monkeypatch.setattr(sklearn.base, "__version__", "99.0.0")
    artifact = pack_model_tar_gz({"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y))})
    monkeypatch.undo()
    _, checks = run(artifact)
    assert checks["version_skew"].status == CheckStatus.FAIL
    assert "99.0.0" in checks["version_skew"].detail
    _, checks = run(artifact, InspectConfig(sample_input=SAMPLE.sample_input, version_skew="warn"))
    assert checks["version_skew"].status == CheckStatus.WARN


def test_missing_artifact_fails_locate_with_the_uri():
    def missing():
        raise ArtifactNotFound("artifact not found at s3://bucket/model.tar.gz")

    result = inspect_artifact("s3://bucket/model.tar.gz", missing, SAMPLE)
    assert result.checks[0].name == "locate" and result.checks[0].status == CheckStatus.FAIL
    assert "s3://bucket/model.tar.gz" in result.checks[0].detail


# -- uncompressed artifacts, skops, reference predictions, holdout ---------------------------------

from training_gate.domain.models import HoldoutConfig  # noqa: E402
from training_gate.inspector.inspect import PrefixSource  # noqa: E402


def prefix_source(files: dict[str, bytes]) -> PrefixSource:
    return PrefixSource(lambda: [(k, len(v)) for k, v in files.items()], lambda key: io.BytesIO(files[key]))


def test_uncompressed_prefix_artifact_is_copied_and_inspected():
    files = {"model/model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y)), "code/inference.py": b"x"}
    result = inspect_artifact("s3://b/job/output/model/", prefix_source(files), SAMPLE)
    assert result.verdict == "pass", result.checks
    assert result.artifact.bytes == sum(len(v) for v in files.values())


@pytest.mark.parametrize("key", ["../escape.joblib", "/abs.joblib"])
def test_prefix_keys_that_escape_are_refused(key: str):
    result = inspect_artifact("s3://b/p/", prefix_source({key: b"x"}), SAMPLE)
    assert {c.name: c.status for c in result.checks}["unpack"] == CheckStatus.FAIL


def test_prefix_caps_apply_before_any_download():
    opened = []

    def open_object(key):
        opened.append(key)
        return io.BytesIO(b"x")

    source = PrefixSource(lambda: [(f"f{i}", 1) for i in range(20)], open_object)
    result = inspect_artifact("s3://b/p/", source, InspectConfig(max_members=5))
    assert "more than 5 objects" in {c.name: c.detail for c in result.checks}["unpack"]
    assert opened == []


def test_skops_model_loads_through_its_trusted_type_check(tmp_path: Path):
    import skops.io

    data = skops.io.dumps(RandomForestClassifier(n_estimators=3, random_state=0).fit(X, Y))
    result, checks = run(pack_model_tar_gz({"model.skops": data}))
    assert result.verdict == "pass", result.checks
    assert checks["load"].detail == "loaded RandomForestClassifier through the allowlist"


def test_skops_file_with_an_untrusted_type_is_refused():
    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    data = skops.io.dumps(FunctionTransformer(func=os.getcwd))
    _, checks = run(pack_model_tar_gz({"model.skops": data}))
    assert checks["load"].status == CheckStatus.FAIL
    assert "untrusted types" in checks["load"].detail and "getcwd" in checks["load"].detail


def test_reference_predictions_are_reproduced():
    model = LogisticRegression(max_iter=500).fit(X, Y)
    reference = {
        "inputs": X[:10].tolist(),
        "predictions": model.predict(X[:10]).tolist(),
        "probabilities": model.predict_proba(X[:10]).tolist(),
    }
    artifact = pack_model_tar_gz(
        {"model.joblib": dump(model), "reference_predictions.json": json.dumps(reference).encode()}
    )
    _, checks = run(artifact)
    assert checks["reference_predictions"].status == CheckStatus.PASS


def test_reference_predictions_that_differ_reject_the_model():
    model = LogisticRegression(max_iter=500).fit(X, Y)
    wrong = ((model.predict(X[:10]) + 1) % 3).tolist()
    reference = {"inputs": X[:10].tolist(), "predictions": wrong}
    artifact = pack_model_tar_gz(
        {"model.joblib": dump(model), "reference_predictions.json": json.dumps(reference).encode()}
    )
    result, checks = run(artifact)
    assert result.verdict == "reject"
    assert checks["reference_predictions"].detail.startswith("10 of 10 reference predictions differ")


def test_only_the_first_max_reference_rows_are_compared_and_the_budget_hears_their_count(tmp_path: Path):
    from training_gate.inspector.smoke import reference_check

    model = LogisticRegression(max_iter=500).fit(X, Y)
    reference = {"inputs": X[:10].tolist(), "predictions": model.predict(X[:10]).tolist()}
    (tmp_path / "reference_predictions.json").write_text(json.dumps(reference))
    heard: list[int] = []
    status, detail = reference_check(
        model, tmp_path, ["reference_predictions.json"], 1e-6, max_rows=4, on_rows=heard.append
    )
    assert (status, heard) == (CheckStatus.PASS, [4])
    assert detail == "4 reference predictions reproduced (the first 4 of 10: max_reference_rows) (tolerance 1e-06)"
    (tmp_path / "reference_predictions.json").write_text(json.dumps({**reference, "predictions": [0]}))
    status, detail = reference_check(model, tmp_path, ["reference_predictions.json"], 1e-6, on_rows=heard.append)
    assert status == CheckStatus.FAIL and "one prediction per input row (10 rows)" in detail
    assert heard == [4], "nothing is predicted, so no budget is granted, for a file that does not add up"


def _holdout_csv(features: np.ndarray, labels: np.ndarray) -> bytes:
    header = ",".join([*(f"f{i}" for i in range(features.shape[1])), "label"])
    rows = [",".join([*(repr(float(v)) for v in row), str(label)]) for row, label in zip(features, labels, strict=True)]
    return ("\n".join([header, *rows]) + "\n").encode()


def test_holdout_metrics_are_recomputed_for_a_multiclass_model():
    model = LogisticRegression(max_iter=500).fit(X, Y)
    holdout = HoldoutConfig(uri="s3://data/holdout.csv", label_column="label", average="macro")
    artifact = pack_model_tar_gz({"model.joblib": dump(model)})
    data = _holdout_csv(X, Y)
    result = inspect_artifact(
        "s3://b/m.tar.gz", lambda: io.BytesIO(artifact), InspectConfig(holdout=holdout), lambda uri: io.BytesIO(data)
    )
    scored = {m.name: m.value for m in result.metrics if m.source == "holdout"}
    from sklearn.metrics import accuracy_score, f1_score

    assert scored["accuracy"] == pytest.approx(accuracy_score(Y, model.predict(X)))
    assert scored["f1"] == pytest.approx(f1_score(Y, model.predict(X), average="macro"))
    assert 0.9 < scored["auc"] <= 1.0


def test_holdout_binary_parquet():
    import pyarrow as pa
    import pyarrow.parquet as pq

    binary = Y < 2
    model = LogisticRegression(max_iter=500).fit(X[binary], Y[binary])
    table = pa.table(
        {"a": X[binary][:, 0], "b": X[binary][:, 1], "c": X[binary][:, 2], "d": X[binary][:, 3], "label": Y[binary]}
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    holdout = HoldoutConfig(uri="s3://data/holdout.parquet", label_column="label")
    artifact = pack_model_tar_gz({"model.joblib": dump(model)})
    result = inspect_artifact(
        "s3://b/m.tar.gz",
        lambda: io.BytesIO(artifact),
        InspectConfig(holdout=holdout),
        lambda uri: io.BytesIO(buffer.getvalue()),
    )
    scored = {m.name: m.value for m in result.metrics if m.source == "holdout"}
    assert scored["accuracy"] == 1.0 and scored["auc"] == 1.0


def test_holdout_without_the_label_column_fails_naming_it():
    holdout = HoldoutConfig(uri="s3://data/h.csv", label_column="target")
    artifact = pack_model_tar_gz({"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y))})
    result = inspect_artifact(
        "s3://b/m.tar.gz",
        lambda: io.BytesIO(artifact),
        InspectConfig(holdout=holdout),
        lambda uri: io.BytesIO(_holdout_csv(X, Y)),
    )
    detail = {c.name: c.detail for c in result.checks}["holdout"]
    assert "label column 'target' is not in the holdout set" in detail
    assert result.verdict == "reject"


@pytest.mark.parametrize("cut", [8, 30, 200])
def test_a_gzip_cut_short_after_the_tar_end_is_still_caught(cut: int):
    # tarfile stops at the end-of-archive blocks; the gzip trailer (CRC, size) after them must be read too.
    artifact = pack_model_tar_gz({"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y))})
    _, checks = run(artifact[:-cut])
    assert checks["unpack"].status == CheckStatus.FAIL
    assert "truncated" in checks["unpack"].detail
