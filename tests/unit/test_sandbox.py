"""The inspection's child process: limits, named failures, clean temp dirs, no credentials, no
state carried between inspections, and safe under many concurrent callers."""

from __future__ import annotations

import io
import json
import os
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from training_gate.domain.models import CheckStatus, HoldoutConfig
from training_gate.inspector.inspect import InspectConfig, inspect_artifact
from training_gate.inspector.sandbox import Sandbox, _clean_environment, default_sandbox
from training_gate_cli.artifacts import pack_model_tar_gz

X, Y = load_iris(return_X_y=True)
SAMPLE = [[5.1, 3.5, 1.4, 0.2]]


def dump(obj: object) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


BENIGN = pack_model_tar_gz({"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y))})

# Each hook fires only for the artifact URI it is keyed by, so one hooked sandbox serves every test.
HOOKS = {
    "s3://t/sleep-load.tar.gz": "load:sleep",
    "s3://t/sleep-smoke.tar.gz": "smoke_prediction:sleep",
    "s3://t/segfault.tar.gz": "load:segfault",
    "s3://t/allocate.tar.gz": "smoke_prediction:allocate",
    "s3://t/sleep-reference.tar.gz": "reference_predictions:sleep",
    "s3://t/spin-reference.tar.gz": "reference_predictions_rows:spin",
    "s3://t/sleep-holdout.tar.gz": "holdout_rows:sleep",
}


@pytest.fixture(scope="module")
def hooked() -> Sandbox:
    sandbox = Sandbox(test_hooks=HOOKS)
    yield sandbox
    sandbox.close()


def inspect(artifact: bytes, tmp_path: Path, uri: str = "s3://t/model.tar.gz", sandbox=None, **config):
    settings = {"sample_input": SAMPLE, **config}
    result = inspect_artifact(
        uri, lambda: io.BytesIO(artifact), InspectConfig(**settings), sandbox=sandbox, work_root=tmp_path
    )
    return result, {c.name: c for c in result.checks}


def assert_rejected_cleanly(result, checks, tmp_path: Path, step: str, detail: str) -> None:
    assert result.verdict == "reject"
    assert checks[step].status == CheckStatus.FAIL
    assert detail in checks[step].detail, checks[step].detail
    later = [c for c in result.checks if list(checks).index(c.name) > list(checks).index(step)]
    assert all(c.status == CheckStatus.SKIPPED for c in later)
    assert list(tmp_path.iterdir()) == [], "the work directory is removed even when the child is killed"


def test_a_benign_model_passes_in_the_child_and_leaves_nothing_behind(tmp_path: Path):
    result, checks = inspect(BENIGN, tmp_path)
    assert result.verdict == "pass", result.checks
    assert checks["load"].detail == "loaded LogisticRegression through the allowlist"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("uri", "step"), [("s3://t/sleep-load.tar.gz", "load"), ("s3://t/sleep-smoke.tar.gz", "smoke_prediction")]
)
def test_a_hang_is_killed_at_the_time_limit_and_named(tmp_path: Path, hooked: Sandbox, uri: str, step: str):
    result, checks = inspect(BENIGN, tmp_path, uri, hooked, time_limit_s=1.5)
    assert_rejected_cleanly(
        result, checks, tmp_path, step, f"{step}: killed after 1.5 s (time limit; raise time_limit_s"
    )


# A model that predicts one row within smoke_time_s and then hangs on the rows the artifact or the holdout set
# supplies costs its phase's budget, never the whole time limit.
WITH_REFERENCE = pack_model_tar_gz(
    {
        "model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y)),
        "reference_predictions.json": json.dumps({"inputs": X[:3].tolist(), "predictions": Y[:3].tolist()}).encode(),
    }
)


def test_reference_predictions_run_under_their_own_budget(tmp_path: Path, hooked: Sandbox):
    result, checks = inspect(
        WITH_REFERENCE, tmp_path, "s3://t/sleep-reference.tar.gz", hooked, time_limit_s=60, reference_time_s=1
    )
    assert_rejected_cleanly(
        result,
        checks,
        tmp_path,
        "reference_predictions",
        "reference_predictions: stopped after its budget of 1 s (reference_time_s; raise it",
    )
    assert checks["smoke_prediction"].status == CheckStatus.PASS


def test_the_reference_budget_grows_with_its_rows_and_stops_a_model_busy_in_c(tmp_path: Path, hooked: Sandbox):
    result, checks = inspect(
        WITH_REFERENCE,
        tmp_path,
        "s3://t/spin-reference.tar.gz",
        hooked,
        time_limit_s=60,
        reference_time_s=1,
        prediction_time_s_per_1k_rows=100,
    )
    assert_rejected_cleanly(
        result,
        checks,
        tmp_path,
        "reference_predictions",
        "stopped after its budget of 1.3 s (reference_time_s 1 + prediction_time_s_per_1k_rows 100 x 0.003k rows",
    )


def test_holdout_scoring_runs_under_its_own_budget(tmp_path: Path, hooked: Sandbox):
    holdout = HoldoutConfig(uri="s3://data/holdout.csv", label_column="label")
    data = "f0,f1,f2,f3,label\n" + "".join(f"{','.join(map(str, x))},{y}\n" for x, y in zip(X, Y, strict=True))
    result = inspect_artifact(
        "s3://t/sleep-holdout.tar.gz",
        lambda: io.BytesIO(BENIGN),
        InspectConfig(sample_input=SAMPLE, holdout=holdout, time_limit_s=60, holdout_time_s=1),
        lambda _uri: io.BytesIO(data.encode()),
        sandbox=hooked,
        work_root=tmp_path,
    )
    checks = {c.name: c for c in result.checks}
    assert_rejected_cleanly(
        result,
        checks,
        tmp_path,
        "holdout",
        "holdout: stopped after its budget of 1.075 s (holdout_time_s 1 + prediction_time_s_per_1k_rows 0.5 x 0.15k",
    )


def test_a_crash_is_named_by_its_signal(tmp_path: Path, hooked: Sandbox):
    result, checks = inspect(BENIGN, tmp_path, "s3://t/segfault.tar.gz", hooked)
    assert_rejected_cleanly(result, checks, tmp_path, "load", "load: crashed with SIGSEGV")


@pytest.mark.parametrize("watch", ["rlimit", "rss"])
def test_memory_past_the_limit_is_named_with_its_key(tmp_path: Path, hooked: Sandbox, watch: str):
    result, checks = inspect(
        BENIGN, tmp_path, "s3://t/allocate.tar.gz", hooked, memory_limit_mib=300, memory_watch=watch
    )
    assert_rejected_cleanly(result, checks, tmp_path, "smoke_prediction", "memory limit 300 MiB exceeded")
    assert "memory_limit_mib" in checks["smoke_prediction"].detail
    assert ("RLIMIT_AS is not enforced" in checks["smoke_prediction"].detail) == (watch == "rss")
    # the output says how memory was bounded even where nothing breached it
    assert ("watched as resident size" in checks["load"].detail) == (watch == "rss")


def test_a_memory_error_from_the_models_own_allocation_fails_its_check(tmp_path: Path):
    # A model claiming 10^10 features: the derived sample row alone would be 80 GB.
    model = LogisticRegression(max_iter=500).fit(X, Y)
    model.n_features_in_ = 10**10
    artifact = pack_model_tar_gz({"model.joblib": dump(model)})
    result = inspect_artifact(
        "s3://t/m.tar.gz",
        lambda: io.BytesIO(artifact),
        InspectConfig(memory_limit_mib=256, max_sample_features=10**11),
        work_root=tmp_path,
    )
    detail = {c.name: c.detail for c in result.checks}["smoke_prediction"]
    assert result.verdict == "reject"
    assert "MemoryError: memory limit 256 MiB exceeded" in detail


def test_the_child_environment_has_no_credentials_and_no_runtime_api(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
    monkeypatch.setenv("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
    monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.2/creds")
    assert not any(key.startswith("AWS_") for key in _clean_environment({}))
    sandbox = Sandbox()
    try:
        sandbox.start()
        with open(f"/proc/{sandbox.zygote_pid}/environ", "rb") as environ:
            names = {entry.split(b"=", 1)[0].decode() for entry in environ.read().split(b"\0") if entry}
        assert not {n for n in names if n.startswith("AWS_")}, names
        result, _ = inspect(BENIGN, tmp_path, sandbox=sandbox)
        assert result.verdict == "pass"
    finally:
        sandbox.close()


def test_the_zygote_is_single_threaded(tmp_path: Path):
    sandbox = default_sandbox()
    sandbox.start()
    assert len(os.listdir(f"/proc/{sandbox.zygote_pid}/task")) == 1


def test_twenty_concurrent_inspections_from_threads_all_get_their_own_verdict(tmp_path: Path):
    # The local engine runs executions in threads; their inspections share one zygote.
    hostile = pack_model_tar_gz({"model.pkl": pickle.dumps(_WritesFile(str(tmp_path / "pwned")))})
    background = threading.Thread(target=lambda: threading.Event().wait(5), daemon=True)
    background.start()  # the calling process is threaded, as the engine's is

    def one(index: int) -> str:
        artifact = hostile if index % 4 == 3 else BENIGN
        work = tmp_path / f"w{index}"
        work.mkdir()
        result, _ = inspect(artifact, work)
        assert list(work.iterdir()) == []
        return result.verdict

    with ThreadPoolExecutor(max_workers=20) as pool:
        verdicts = list(pool.map(one, range(20)))
    assert verdicts == ["reject" if i % 4 == 3 else "pass" for i in range(20)]
    assert not (tmp_path / "pwned").exists()


class _WritesFile:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_model_prints_never_reach_stdout(tmp_path: Path, capfd):
    # joblib writes Parallel progress to stdout once verbose > 50.
    forest = RandomForestClassifier(n_estimators=3, random_state=0, verbose=100).fit(X, Y)
    capfd.readouterr()
    sandbox = Sandbox()  # started under capfd: its stderr is the captured one
    try:
        result, _ = inspect(pack_model_tar_gz({"model.joblib": dump(forest)}), tmp_path, sandbox=sandbox)
    finally:
        sandbox.close()
    out, err = capfd.readouterr()
    assert result.verdict == "pass", result.checks
    assert out == ""
    assert "Parallel" in err


class _MutatesClass:
    """Pickles as a BUILD whose target is the LogisticRegression class itself: setting `predict`
    on the class would change every later model in a process that shared it."""

    def __reduce__(self):
        return (getattr, (LogisticRegression, "__class__")), None

    @staticmethod
    def payload() -> bytes:
        # GLOBAL sklearn.linear_model._logistic LogisticRegression; {"predict": None}; BUILD; STOP
        state = pickle.dumps({"predict": None}, protocol=2)[2:-1]  # the dict, without PROTO and STOP
        return b"\x80\x02csklearn.linear_model._logistic\nLogisticRegression\n" + state + b"b."


def test_a_build_on_a_class_is_refused_and_the_next_inspection_is_unaffected(tmp_path: Path):
    hostile = pack_model_tar_gz({"model.pkl": _MutatesClass.payload()})
    result, checks = inspect(hostile, tmp_path)
    assert result.verdict == "reject"
    assert "BUILD" in checks["load"].detail and "LogisticRegression" in checks["load"].detail
    result, checks = inspect(BENIGN, tmp_path)  # the same warm process, the same zygote
    assert result.verdict == "pass", result.checks
    assert checks["smoke_prediction"].status == CheckStatus.PASS
    assert callable(LogisticRegression.predict)


def test_a_class_mutated_in_one_child_is_not_seen_by_the_next(tmp_path: Path, hooked: Sandbox):
    # Even a mutation the loader did not refuse would die with the child: here one that a model's
    # own code makes while predicting (the hook stands in for it) is absent from the next child.
    hostile = pack_model_tar_gz({"model.joblib": dump(_Predictor())})
    result, _ = inspect(hostile, tmp_path, extra_allowed_globals=[f"{__name__}._Predictor"])
    assert result.verdict == "pass", result.checks
    result, _ = inspect(BENIGN, tmp_path)
    assert result.verdict == "pass", result.checks


class _Predictor:
    """An allowlisted (by test config) class whose predict mutates a shared class."""

    def predict(self, rows):
        LogisticRegression.predict = None  # type: ignore[assignment]  # only ever in the child
        return np.zeros(len(rows))


def test_work_directories_left_by_a_killed_function_are_swept(tmp_path: Path):
    from training_gate.inspector.inspect import sweep_stale_workdirs

    (tmp_path / "training-gate-abc123" / "artifact").mkdir(parents=True)
    (tmp_path / "training-gate-abc123" / "artifact" / "model.joblib").write_bytes(b"x")
    (tmp_path / "unrelated").mkdir()
    assert sweep_stale_workdirs(tmp_path) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["unrelated"]


def test_the_zygotes_warm_up_model_passes_every_check(monkeypatch):
    """The warm-up inspection is the first any zygote runs: a model the loader refuses would leave every
    child to pay its first-call costs, and nobody would see why."""
    from training_gate.inspector import zygote

    messages: list[dict] = []

    class Recorder:
        @staticmethod
        def run_child(request, data, _emit):
            from training_gate.inspector import child

            child.run_child(request, data, messages.append)

    zygote._warm_up(Recorder)
    checks = [m["check"] for m in messages if "check" in m]
    assert checks, messages
    failed = [c for c in checks if c["status"] not in (CheckStatus.PASS.value, CheckStatus.SKIPPED.value)]
    assert not failed, failed
    assert {"load", "smoke_prediction"} <= {c["name"] for c in checks if c["status"] == CheckStatus.PASS.value}
    assert messages[-1] == {"done": True}
