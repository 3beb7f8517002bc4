"""The inspection child is contained: it dies with its supervisor and its budget, each phase has a budget a
hostile slow model cannot outlast, an environment's own lower limit is kept and named, a protection the
kernel refuses is reported, and only the gate's own machinery failing is a gate error."""

from __future__ import annotations

import ctypes
import io
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from training_gate.domain.models import CheckStatus
from training_gate.inspector import containment
from training_gate.inspector.inspect import InspectConfig, inspect_artifact
from training_gate.inspector.sandbox import Sandbox
from training_gate_cli.artifacts import pack_model_tar_gz

X, Y = load_iris(return_X_y=True)
SAMPLE = [[5.1, 3.5, 1.4, 0.2]]
REPO = Path(__file__).resolve().parents[2]


def dump(obj: object) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def colliding_dict_pickle(keys: int) -> bytes:
    """A dict whose integer keys all hash alike (multiples of 2**61 - 1): building it is quadratic. Written
    opcode by opcode, since building the dict here would cost what loading it costs."""
    parts = [b"\x80\x02}(" + b"".join(_long(k * (2**61 - 1)) + b"K\x00" for k in range(keys)) + b"u."]
    return b"".join(parts)


def _long(value: int) -> bytes:
    data = pickle.encode_long(value)
    return b"\x8a" + bytes([len(data)]) + data


def enormous_forest() -> bytes:
    """A forest of 400,000 trees that are one tree pickled once: small to load, long to predict with."""
    forest = RandomForestClassifier(n_estimators=1, random_state=0).fit(X, Y)
    forest.estimators_ = forest.estimators_ * 400_000
    forest.n_estimators = len(forest.estimators_)
    return dump(forest)


def inspect(artifact: bytes, tmp_path: Path, sandbox=None, uri: str = "s3://t/model.tar.gz", **config):
    result = inspect_artifact(
        uri,
        lambda: io.BytesIO(artifact),
        InspectConfig(**{"sample_input": SAMPLE, **config}),
        sandbox=sandbox,
        work_root=tmp_path,
    )
    return result, {c.name: c for c in result.checks}


# -- budgets per phase -------------------------------------------------------------------------------------


def test_a_dict_of_colliding_hashes_is_stopped_at_the_load_budget(tmp_path: Path):
    artifact = pack_model_tar_gz({"model.pkl": colliding_dict_pickle(200_000)})
    result, checks = inspect(artifact, tmp_path, load_time_s=1.0, load_time_s_per_mib=0.0)
    assert result.verdict == "reject"
    assert checks["load"].status == CheckStatus.FAIL
    assert "load: stopped after its budget of 1 s (load_time_s 1 + load_time_s_per_mib 0 x" in checks["load"].detail
    assert checks["smoke_prediction"].status == CheckStatus.SKIPPED


def test_an_enormous_forest_is_stopped_at_the_smoke_budget(tmp_path: Path):
    artifact = pack_model_tar_gz({"model.joblib": enormous_forest()})
    result, checks = inspect(artifact, tmp_path, smoke_time_s=1.0)
    assert result.verdict == "reject"
    assert checks["load"].status == CheckStatus.PASS
    assert checks["smoke_prediction"].detail.startswith(
        "smoke_prediction: stopped after its budget of 1 s (smoke_time_s; raise it"
    )


def test_a_load_budget_grows_with_the_files_size():
    config = InspectConfig(load_time_s=2.0, load_time_s_per_mib=0.5)
    assert config.load_budget(0)[0] == 2.0
    assert config.load_budget(10 << 20) == (7.0, "load_time_s 2 + load_time_s_per_mib 0.5 x 10.0 MiB")


@pytest.fixture(scope="module")
def hooked() -> Sandbox:
    sandbox = Sandbox(test_hooks={"s3://t/spin-unpack.tar.gz": "unpack:spin", "s3://t/cpu.tar.gz": "load:spin"})
    yield sandbox
    sandbox.close()


def test_a_phase_busy_in_c_code_is_stopped_by_the_kernel_timer(tmp_path: Path, hooked: Sandbox):
    # The regular expression holds the interpreter; no Python-level timeout could interrupt it.
    benign = pack_model_tar_gz({"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y))})
    result, checks = inspect(benign, tmp_path, hooked, "s3://t/spin-unpack.tar.gz", unpack_time_s=1.0)
    assert result.verdict == "reject"
    assert checks["unpack"].detail.startswith("unpack: stopped after its budget of 1 s (unpack_time_s")


def test_the_cpu_backstop_ends_a_child_whose_wall_clock_no_one_watches(tmp_path: Path, hooked: Sandbox):
    # Time limit above the CPU backstop would be: the CPU rlimit is what ends it (SIGXCPU), not the supervisor.
    benign = pack_model_tar_gz({"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y))})
    original = containment.CPU_BACKSTOP_MARGIN_S
    result, checks = inspect(benign, tmp_path, hooked, "s3://t/cpu.tar.gz", time_limit_s=4.0, load_time_s=60.0)
    assert original == containment.CPU_BACKSTOP_MARGIN_S
    # Either end names its limit; the supervisor's clock (4 s) fires before the CPU backstop (4 + 1 + 5 s).
    assert "killed after 4 s (time limit" in checks["load"].detail
    protections = {p.name: p for p in result.protections}
    assert protections["RLIMIT_CPU"].detail.startswith("SIGXCPU at 10 s of CPU")


# -- the child dies with its supervisor: no orphan when the command's process group is killed ----------------


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killing_the_commands_process_group_leaves_no_inspection_process(tmp_path: Path):
    artifact = tmp_path / "slow.tar.gz"
    artifact.write_bytes(pack_model_tar_gz({"model.pkl": colliding_dict_pickle(300_000)}))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"load_time_s": 600, "time_limit_s": 600}))
    command = [sys.executable, "-m", "training_gate_cli.cli", "inspect", str(artifact), "--config", str(config)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "lambdas"), str(REPO)])}
    cli = subprocess.Popen(command, start_new_session=True, env=environment, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        tree: list[int] = []
        while time.monotonic() < deadline and len(tree) < 3:  # zygote, supervisor, child
            time.sleep(0.2)
            tree = _descendants(cli.pid)
        assert len(tree) >= 3, f"the inspection child never started: {tree}"
        time.sleep(1.0)  # the child is loading the dict
        os.killpg(cli.pid, signal.SIGKILL)
        cli.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in tree):
            time.sleep(0.1)
        assert [pid for pid in tree if _alive(pid)] == []
    finally:
        for pid in _descendants(cli.pid):
            with_suppressed_kill(pid)
        with_suppressed_kill(cli.pid)


def with_suppressed_kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# -- the right culprit ---------------------------------------------------------------------------------------------

PRLIMIT_SCRIPT = textwrap.dedent(
    """
    import io, json, joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from training_gate.inspector.inspect import InspectConfig, inspect_artifact
    from training_gate.inspector.sandbox import Sandbox
    from training_gate_cli.artifacts import pack_model_tar_gz

    X, Y = load_iris(return_X_y=True)
    buffer = io.BytesIO()
    joblib.dump(LogisticRegression(max_iter=500).fit(X, Y), buffer)
    artifact = pack_model_tar_gz({"model.joblib": buffer.getvalue()})
    sandbox = Sandbox(test_hooks={"s3://t/hog.tar.gz": "smoke_prediction:allocate"})
    out = {}
    config = InspectConfig(sample_input=[[5.1, 3.5, 1.4, 0.2]], smoke_time_s=300)
    for uri in ("s3://t/benign.tar.gz", "s3://t/hog.tar.gz"):
        result = inspect_artifact(uri, lambda: io.BytesIO(artifact), config, sandbox=sandbox)
        out[uri] = {"verdict": result.verdict, "checks": {c.name: c.detail for c in result.checks},
                    "protections": {p.name: p.detail for p in result.protections}}
    sandbox.close()
    print(json.dumps(out))
    """
)


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="util-linux prlimit is not installed")
def test_an_existing_lower_address_space_limit_is_kept_and_named(tmp_path: Path):
    # GIVEN an environment whose hard RLIMIT_AS (4 GB) is below the child's imports plus the default 4096 MiB
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "lambdas"), str(REPO)])}
    done = subprocess.run(
        ["prlimit", "--as=4000000000", sys.executable, "-c", PRLIMIT_SCRIPT],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    benign, hog = out["s3://t/benign.tar.gz"], out["s3://t/hog.tar.gz"]
    # THEN a benign model still passes, and the report says the environment's limit was kept
    assert benign["verdict"] == "pass", benign["checks"]
    assert "the environment's hard limit of 4000000000 bytes, kept as it is" in benign["protections"]["RLIMIT_AS"]
    # AND a model that eats memory is rejected naming that limit, not memory_limit_mib alone
    assert hog["verdict"] == "reject"
    assert (
        "the environment's hard address-space limit, below memory_limit_mib=4096" in hog["checks"]["smoke_prediction"]
    )


TOO_LOW_SCRIPT = textwrap.dedent(
    """
    import io, json, sys
    from training_gate.inspector.errors import InspectorEnvironmentError
    from training_gate.inspector.inspect import InspectConfig, inspect_artifact

    artifact = open(sys.argv[1], "rb").read()
    try:
        result = inspect_artifact("s3://t/m.tar.gz", lambda: io.BytesIO(artifact), InspectConfig())
        print(json.dumps({"verdict": result.verdict}))
    except InspectorEnvironmentError as exc:
        print(json.dumps({"gate_error": str(exc)}))
    """
)


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="util-linux prlimit is not installed")
def test_an_environment_limit_too_low_for_any_model_is_a_gate_error_not_a_rejection(tmp_path: Path):
    # GIVEN a hard address-space limit just above what the inspector's own imports reserve
    sandbox = Sandbox()
    try:
        sandbox.start()
        imports = sandbox.vm_after_imports_kib * 1024
    finally:
        sandbox.close()
    path = tmp_path / "model.tar.gz"
    path.write_bytes(pack_model_tar_gz({"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y))}))
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "lambdas"), str(REPO)])}
    done = subprocess.run(
        ["prlimit", f"--as={imports + (48 << 20)}", sys.executable, "-c", TOO_LOW_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )
    # THEN the inspection is the gate's error for operations (the sandbox, or the child's setup, names the
    # environment's limit), never a rejection of the model
    assert done.stdout.strip(), done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert "verdict" not in out, out
    assert "address-space limit" in out["gate_error"] or "did not start" in out["gate_error"], out


# -- each protection, and its report ------------------------------------------------------------------------------


def test_every_inspection_reports_its_protections(tmp_path: Path):
    artifact = pack_model_tar_gz({"model.joblib": dump(LogisticRegression(max_iter=500).fit(X, Y))})
    result, _ = inspect(artifact, tmp_path)
    names = {p.name: p.status for p in result.protections}
    mandatory = ("lifeline", "file_descriptors", "RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_FSIZE", "environment")
    assert all(names[n] == "in force" for n in mandatory), names
    for best_effort in ("parent_death_signal", "namespaces", "syscall_filter", "child_not_dumpable"):
        assert names[best_effort] in ("in force", "not available")


class _RefusingLibc:
    """Stands for a kernel (Lambda's) whose own sandbox refuses prctl and unshare."""

    def prctl(self, *args):
        ctypes.set_errno(1)
        return -1

    unshare = prctl


def test_a_protection_the_kernel_refuses_is_reported_as_not_available(monkeypatch):
    monkeypatch.setattr(containment, "_LIBC", _RefusingLibc())
    for protection in (
        containment.parent_death_signal(signal.SIGKILL, os.getppid()),
        containment.namespaces(),
        containment.syscall_filter(),
        containment.not_dumpable("child"),
    ):
        assert protection.status == "not available"
        assert "Operation not permitted" in protection.detail


def _in_a_fork(body) -> dict:
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(reader)
        try:
            result = body(writer)
        except BaseException as exc:  # noqa: BLE001
            result = {"error": repr(exc)}
        os.write(writer, json.dumps(result).encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def test_the_syscall_filter_refuses_sockets_exec_processes_and_signals_to_others():
    def body(_writer: int):
        status = containment.syscall_filter().status
        outcomes = {"status": status}
        attempts = {
            "socket": lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM),
            "exec": lambda: os.execv("/bin/true", ["true"]),
            "fork": os.fork,
            "kill-parent": lambda: os.kill(os.getppid(), 0),
            "setsid": os.setsid,
        }
        for name, attempt in attempts.items():
            try:
                attempt()
                outcomes[name] = "allowed"
            except PermissionError:
                outcomes[name] = "refused"
        import threading

        done = []
        thread = threading.Thread(target=lambda: done.append(True))
        thread.start()
        thread.join()
        outcomes["thread"] = "allowed" if done else "refused"
        os.kill(os.getpid(), 0)  # signals to itself still work
        return outcomes

    outcomes = _in_a_fork(body)
    if outcomes.get("status") != "in force":
        pytest.skip(f"seccomp is not available on this kernel: {outcomes}")
    assert outcomes == {
        "status": "in force",
        "socket": "refused",
        "exec": "refused",
        "fork": "refused",
        "kill-parent": "refused",
        "setsid": "refused",
        "thread": "allowed",
    }


def test_only_the_childs_own_descriptors_stay_open():
    def body(writer: int):
        extra = os.open("/dev/null", os.O_RDONLY)
        containment.close_inherited_fds({0, 1, 2, writer})
        still = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
        return {"open": still, "extra": extra, "writer": writer}

    outcome = _in_a_fork(body)
    assert outcome["extra"] not in outcome["open"]
    # what is left: stdio, the one kept pipe, and the descriptor listdir itself held while listing
    assert len(set(outcome["open"]) - {0, 1, 2, outcome["writer"]}) <= 1


def test_the_lifeline_alone_kills_the_childs_group_when_its_supervisor_dies():
    # Without prctl (Lambda's sandbox refuses it), the lifeline is what ties the child to its supervisor.
    pids_r, pids_w = os.pipe()
    supervisor = os.fork()
    if supervisor == 0:
        lifeline_r, lifeline_w = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(lifeline_w)
            os.setpgid(0, 0)
            if containment.arm_lifeline(lifeline_r).status != "in force":
                os._exit(1)
            grandchild = os.fork()
            if grandchild == 0:
                while True:
                    time.sleep(1)
            os.write(pids_w, f"{os.getpid()} {grandchild}\n".encode())
            while True:
                time.sleep(1)
        os.close(lifeline_r)
        time.sleep(0.5)
        os._exit(0)  # the supervisor dies; nobody kills the child's group but the kernel
    os.close(pids_w)
    with os.fdopen(pids_r) as reader:
        pids = [int(p) for p in reader.readline().split()]
    os.waitpid(supervisor, 0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.05)
    assert len(pids) == 2 and [pid for pid in pids if _alive(pid)] == []
