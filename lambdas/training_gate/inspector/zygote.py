"""Inside the sandbox: the zygote, one supervisor per inspection, and the child it watches.

- The zygote is a fresh interpreter (started with exec by `sandbox.Sandbox`) that imports everything
  an inspection needs once, checks it is single-threaded, then only forks supervisors. It ends when
  its control socket closes (the parent is gone) and, started from the parent's main thread, with
  the parent (PR_SET_PDEATHSIG follows the thread that started a process, not the process).
- A supervisor forks the child, enforces the wall clock, kills the child's process group however
  the session ends, and reports how the child ended. It dies with the zygote.
- The child: its own process group, contained (`containment`: a lifeline to the supervisor, the
  parent-death signal, its own descriptors only, limits, namespaces and a syscall filter where the
  kernel allows them), then the work in `child.run_child`. Its first message lists the protections;
  anything that goes wrong before it is the gate's failure, never the model's.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from training_gate.inspector import containment
from training_gate.inspector.containment import Protection, SetupFailed

TEST_HOOKS_VARIABLE = "TRAINING_GATE_SANDBOX_TEST_HOOKS"
MAIN_THREAD_VARIABLE = "TRAINING_GATE_SANDBOX_FROM_MAIN_THREAD"
EXIT_OK = 0
EXIT_ERROR = 70
EXIT_MEMORY = 71  # MemoryError escaped, or the RSS watch fired
EXIT_SETUP = 72  # the child could not be contained: the gate's failure


def thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # not Linux: threading sees the Python threads, which is what forking can hurt
        return threading.active_count()


def vm_size_kib() -> int:
    """The address space in use (VmSize): RLIMIT_AS counts this, not the resident size."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def zygote_main(control_fd: int) -> None:
    """Import everything an inspection needs, then fork one supervisor per request, forever."""
    control = socket.socket(fileno=control_fd)
    protections = [containment.not_dumpable("zygote")]
    if os.environ.pop(MAIN_THREAD_VARIABLE, None) == str(os.getppid()):
        protections.append(containment.parent_death_signal(signal.SIGKILL, os.getppid(), "zygote_parent_death"))
    else:
        protections.append(
            Protection(
                "zygote_parent_death",
                containment.IN_FORCE,
                "ends when its control socket closes (started from a worker thread: no parent-death signal)",
            )
        )
    from training_gate.inspector import child
    from training_gate.inspector.loader import default_allowlist

    default_allowlist()
    _warm_up(child)
    hooks = os.environ.get(TEST_HOOKS_VARIABLE)
    if hooks:
        child.HOOKS.update(json.loads(hooks))
    import gc

    gc.collect()
    gc.freeze()  # the imported objects stay in pages the children share, untouched by their collector
    # The kernel reaps the supervisors; each supervisor restores SIGCHLD to wait for its own child.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    hello = {"threads": thread_count(), "vm_kib": vm_size_kib(), "protections": [p.as_dict() for p in protections]}
    control.sendall(json.dumps(hello).encode())
    zygote = os.getpid()
    while True:
        try:
            message, fds, _flags, _address = socket.recv_fds(control, 16, 4)
        except OSError:
            os._exit(0)
        if not message:
            os._exit(0)  # the parent is gone
        pid = os.fork()
        if pid == 0:
            control.close()
            try:
                _supervise(fds, zygote)
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)


def _warm_up(child: Any) -> None:
    """One inspection of a model built here (not an artifact), before any fork: every child would
    otherwise pay the first-call costs (lazy imports, caches) that a warm process pays once."""
    import io
    import shutil
    import tarfile
    import tempfile

    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    # Fitted, not assembled by hand: the loader admits only the states scikit-learn itself writes.
    features = np.array([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0]])
    model = LogisticRegression().fit(features, np.array([0, 1, 0, 1]))
    pickled = io.BytesIO()
    joblib.dump(model, pickled)
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as archive:
        info = tarfile.TarInfo("model.joblib")
        info.size = pickled.getbuffer().nbytes
        pickled.seek(0)
        archive.addfile(info, pickled)
    packed.seek(0)
    workdir = tempfile.mkdtemp(prefix="training-gate-warm-")
    try:
        request = {"workdir": workdir, "config": {"sample_input": [[0.0] * 4]}, "uri": "warm-up", "budgets": False}
        child.run_child(request, packed, lambda _message: None)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # Imported on first use; once here, not in every child: skops (~0.25 s), pandas (DataFrame inputs).
    for module in ("skops.io", "pandas"):
        with contextlib.suppress(ImportError):
            __import__(module)


def _read_line(sock: socket.socket) -> bytes:
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _supervise(fds: list[int], zygote: int) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    containment.parent_death_signal(signal.SIGKILL, zygote)
    session = socket.socket(fileno=fds[0])
    result_fd = fds[1]
    data_fd = fds[2] if len(fds) > 2 else -1
    line = _read_line(session)
    if not line:
        return
    envelope = json.loads(line)
    limits = envelope["limits"]
    lifeline_r, lifeline_w = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        session.close()
        os.close(lifeline_w)
        _child_main(envelope["request"], limits, data_fd, result_fd, lifeline_r, os.getppid())
    os.close(lifeline_r)
    os.close(result_fd)
    if data_fd >= 0:
        os.close(data_fd)
    deadline = started + float(limits["time_s"])
    killed_for_time = False
    status = None
    try:  # wakes the moment the child exits; without it (old kernels, macOS) poll every 20 ms
        exited: list[Any] = [os.pidfd_open(pid)]
        poll = None
    except (AttributeError, OSError):
        exited, poll = [], 0.02
    while status is None:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = raw
            break
        now = time.monotonic()
        if now >= deadline:
            _kill_group(pid)
            killed_for_time = True
            status = os.waitpid(pid, 0)[1]
            break
        wait = deadline - now if poll is None else min(poll, deadline - now)
        readable, _, _ = select.select([session, *exited], [], [], wait)
        if session in readable and not session.recv(1, socket.MSG_PEEK):
            _kill_group(pid)  # the parent gave up (or died): the child must not outlive the session
            status = os.waitpid(pid, 0)[1]
            break
    for fd in exited:
        os.close(fd)
    _kill_group(pid)  # anything the child started is ended with it
    os.close(lifeline_w)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = {
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "killed_for_time": killed_for_time,
        "elapsed_s": time.monotonic() - started,
        # ru_maxrss is KiB on Linux and bytes on macOS
        "peak_rss_kib": usage.ru_maxrss // (1024 if sys.platform == "darwin" else 1),
    }
    with contextlib.suppress(OSError):
        session.sendall(json.dumps(report).encode() + b"\n")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# -- inside the child ------------------------------------------------------------------------------


def _child_main(
    request: dict[str, Any], limits: dict[str, Any], data_fd: int, result_fd: int, lifeline: int, supervisor: int
) -> None:
    code = EXIT_ERROR
    emit = _emitter(result_fd)
    try:
        try:
            keep = {0, 1, 2, data_fd, result_fd, lifeline} - {-1}
            contained = _contain(request, limits, keep, lifeline, supervisor)
        except Exception as exc:  # noqa: BLE001 - nothing of the model has run: the gate's own failure
            emit({"environment_error": f"the inspection child could not be contained: {type(exc).__name__}: {exc}"})
            code = EXIT_SETUP
            return
        emit(contained)
        from training_gate.inspector.child import run_child

        data = os.fdopen(data_fd, "rb", buffering=0) if data_fd >= 0 else None
        try:
            run_child(request, data, emit)
            code = EXIT_OK
        except MemoryError:
            code = EXIT_MEMORY
        except BaseException as exc:  # noqa: BLE001 - reported by name, the parent decides the verdict
            with contextlib.suppress(BaseException):
                emit({"error": f"{type(exc).__name__}: {str(exc)[:300]}"})
    except MemoryError:
        code = EXIT_MEMORY
    finally:
        os._exit(code)


def _contain(
    request: dict[str, Any], limits: dict[str, Any], keep: set[int], lifeline: int, supervisor: int
) -> dict[str, Any]:
    """Set up every protection; the list says which are in force. Order matters: the lifeline and the
    descriptors first; namespaces before the parent-death signal and dumpable flag, which a change of
    credentials (entering a user namespace) resets; the syscall filter last."""
    os.setpgid(0, 0)
    os.dup2(2, 1)  # joblib's progress lines and any print of the model's go to stderr
    sys.stdout = sys.stderr
    protections = [containment.arm_lifeline(lifeline), containment.close_inherited_fds(keep)]
    limit_protections, memory = _set_limits(limits)
    protections += limit_protections
    workdir, tmp = request["workdir"], request["tmpdir"]
    os.environ["TMPDIR"] = tmp
    import tempfile

    tempfile.tempdir = tmp
    os.chdir(workdir)
    protections.append(_environment_protection())
    if limits.get("namespaces", True):
        protections.append(containment.namespaces())
    protections.append(containment.parent_death_signal(signal.SIGKILL, supervisor))
    protections.append(containment.not_dumpable("child"))
    if limits.get("syscall_filter", True):
        protections.append(containment.syscall_filter())
    return {"protections": [p.as_dict() for p in protections], "memory": memory}


def _environment_protection() -> Protection:
    exposed = sorted(k for k in os.environ if k.startswith("AWS_") or k.startswith("_X_AMZN"))
    if exposed:
        raise SetupFailed(f"the child's environment holds {', '.join(exposed)}")
    return Protection("environment", containment.IN_FORCE, "no AWS credentials, no Lambda Runtime API address")


# Less room than this beyond the imports, and no model could load: the environment's limit is the culprit.
MIN_MEMORY_MIB = 64


def _set_limits(limits: dict[str, Any]) -> tuple[list[Protection], dict[str, Any]]:
    """The child's limits, and its memory budget as set: what a breach names."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    file_bytes = int(limits["file_bytes"])
    _, fsize = containment.lower_limit(resource.RLIMIT_FSIZE, "RLIMIT_FSIZE", file_bytes, "max_member_bytes")
    protections = [fsize, containment.cpu_backstop(float(limits["time_s"]))]
    wanted = int(limits["memory_mib"])
    if limits["memory_watch"] != "rlimit":
        _watch_resident_size(wanted << 20)
        protections.append(
            Protection("RLIMIT_AS", containment.NOT_AVAILABLE, "not enforced here: resident size watched")
        )
        return protections, {"mib": wanted, "environment": False}
    # Address space, not resident size: the imports alone reserve far more than they touch.
    in_use = vm_size_kib() * 1024
    ceiling, _ = containment.lower_limit(resource.RLIMIT_AS, "RLIMIT_AS", in_use + (wanted << 20), "memory_limit_mib")
    room = max(0, ceiling - in_use) >> 20
    lowered = room < wanted
    if room < MIN_MEMORY_MIB:
        raise SetupFailed(
            f"the environment's hard address-space limit ({ceiling} bytes) leaves {room} MiB beyond the "
            f"inspector's imports: no model can load; raise it (ulimit -v / prlimit --as) or run elsewhere"
        )
    detail = f"{room} MiB beyond the imports (memory_limit_mib)"
    if lowered:
        detail = (
            f"{room} MiB beyond the imports: the environment's hard limit of {ceiling} bytes, kept as it is "
            f"(below memory_limit_mib={wanted})"
        )
    protections.append(Protection("RLIMIT_AS", containment.IN_FORCE, detail))
    return protections, {"mib": room, "environment": lowered}


def _watch_resident_size(budget: int) -> None:
    """Where RLIMIT_AS is not enforced (macOS): end the child once its resident size passes the
    budget above what it had at the start."""
    start = _current_rss_bytes()

    def watch() -> None:
        while True:
            if _current_rss_bytes() - start > budget:
                os._exit(EXIT_MEMORY)
            time.sleep(0.01)

    threading.Thread(target=watch, daemon=True, name="rss-watch").start()


def _current_rss_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # macOS: the peak is what getrusage offers, in bytes
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _emitter(fd: int) -> Callable[[dict[str, Any]], None]:
    def emit(message: dict[str, Any]) -> None:
        data = memoryview(json.dumps(message).encode() + b"\n")
        while data:
            try:
                data = data[os.write(fd, data) :]
            except InterruptedError:
                continue
            except OSError as exc:
                if exc.errno == errno.EPIPE:
                    os._exit(EXIT_ERROR)  # the parent is gone
                raise

    return emit
