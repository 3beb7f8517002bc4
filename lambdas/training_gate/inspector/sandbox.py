"""A disposable, limited child process for the dangerous half of an inspection.

Loading a model runs C and Cython code on data the artifact chose: it can crash, hang or eat
memory, and an allowlisted class can still be mutated. So each inspection runs in a fresh child,
and the parent only ever reads JSON from it.

Processes:
- the zygote: a fresh interpreter (started with exec, so it inherits no thread and no held lock
  from the caller, whose local engine runs executions in threads) that imports scikit-learn once,
  builds the allowlist, checks that it is single-threaded, and then only forks;
- per inspection, a supervisor forked from the zygote, which forks the child, enforces the wall
  clock, and reports how the child ended;
- the child: own process group, stdout sent to stderr, no AWS credentials or Lambda Runtime API in
  its environment, RLIMIT_AS / RLIMIT_FSIZE / no core files, then the work in `child.run_child`.

multiprocessing's Queue and Pool need /dev/shm, which Lambda lacks; pipes, Unix sockets and fork
work there. Artifact bytes go to the child through a pipe (the parent reads S3 and hashes), results
come back as JSON lines through another.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from training_gate.inspector.errors import InspectorEnvironmentError

# Environment the zygote (and so every child) gets: nothing that grants access. Credentials, the
# Lambda Runtime API and X-Ray's daemon address stay with the parent.
_KEPT_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH", "HOME")
# One thread per process: the zygote must not hold a BLAS thread pool when it forks, and a child
# on a one- or two-core function gains nothing from more.
_ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "PYTHONUNBUFFERED": "1",
}
TEST_HOOKS_VARIABLE = "TRAINING_GATE_SANDBOX_TEST_HOOKS"
EXIT_OK = 0
EXIT_ERROR = 70
EXIT_MEMORY = 71  # MemoryError escaped, or the RSS watch fired
_PIPE_SIZE = 1 << 20
_MAX_RESULT_BYTES = 8 << 20
_STARTUP_TIMEOUT_S = 300.0
_REPORT_GRACE_S = 10.0
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


@dataclass(frozen=True)
class ChildLimits:
    memory_mib: int
    time_s: float
    file_bytes: int
    memory_watch: str  # "rlimit" or "rss"
    time_key: str = "time_limit_s"

    def as_dict(self) -> dict[str, Any]:
        return {
            "memory_mib": self.memory_mib,
            "time_s": self.time_s,
            "file_bytes": self.file_bytes,
            "memory_watch": self.memory_watch,
        }


@dataclass
class ChildOutcome:
    """What came back: the child's messages, and how it ended."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    signal: int | None = None
    killed_for_time: bool = False
    elapsed_s: float = 0.0
    peak_rss_kib: int = 0
    vm_after_imports_kib: int = 0
    cpu_s: float = 0.0
    fed_everything: bool = True

    @property
    def starved(self) -> bool:
        """Killed at the time limit while still waiting for the artifact's bytes, mostly idle: the
        source (S3) was too slow, which is the gate's problem, not the model's."""
        return self.killed_for_time and not self.fed_everything and self.cpu_s < 0.5 * self.elapsed_s

    @property
    def phase(self) -> str | None:
        phases = [m["phase"] for m in self.messages if "phase" in m]
        return phases[-1] if phases else None

    @property
    def done(self) -> bool:
        return any(m.get("done") for m in self.messages)

    def failure(self, limits: ChildLimits) -> str | None:
        """How the child ended, named, or None when it finished its work."""
        if self.killed_for_time:
            return (
                f"killed after {limits.time_s:g} s (time limit; raise {limits.time_key} if the model is "
                "legitimately this slow)"
            )
        if self.exit_code == EXIT_MEMORY:
            watched = ""
            if limits.memory_watch == "rss":
                watched = " (watched as resident size: RLIMIT_AS is not enforced here)"
            return f"memory limit {limits.memory_mib} MiB exceeded{watched}; raise memory_limit_mib"
        if self.signal is not None:
            name = signal.Signals(self.signal).name if self.signal in signal.valid_signals() else str(self.signal)
            if self.signal == signal.SIGXFSZ:
                return "file size limit exceeded (SIGXFSZ); raise max_member_bytes"
            return f"crashed with {name}"
        if self.done:
            return None
        errors = [m["error"] for m in self.messages if "error" in m]
        if errors:
            return f"failed: {errors[-1]}"
        return f"exited with status {self.exit_code} before finishing"


def _clean_environment(extra: dict[str, str]) -> dict[str, str]:
    env = {key: os.environ[key] for key in _KEPT_ENVIRONMENT if key in os.environ}
    env.update(_ONE_THREAD)
    # The zygote must import this package wherever it is installed (Lambda's task root, a venv).
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    env.update(extra)
    return env


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # not Linux: threading sees the Python threads, which is what forking can hurt
        return threading.active_count()


def _vm_size_kib() -> int:
    """The address space in use (VmSize): RLIMIT_AS counts this, not the resident size."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sandbox:
    """The zygote and the sessions run through it. One per process is enough; it is thread-safe."""

    def __init__(self, test_hooks: dict[str, str] | None = None):
        self._extra = {TEST_HOOKS_VARIABLE: json.dumps(test_hooks)} if test_hooks else {}
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self.vm_after_imports_kib = 0

    # -- zygote ------------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            self._ensure_started()

    def _ensure_started(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self._close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        code = f"from training_gate.inspector.sandbox import zygote_main; zygote_main({theirs.fileno()})"
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", code],
                stdin=subprocess.DEVNULL,
                stdout=2,  # the model's prints never reach the caller's stdout
                pass_fds=(theirs.fileno(),),
                env=_clean_environment(self._extra),
                close_fds=True,
            )
        except OSError as exc:
            raise InspectorEnvironmentError(f"the inspection sandbox could not start: {exc}") from exc
        finally:
            theirs.close()
        self._control = ours
        ours.settimeout(_STARTUP_TIMEOUT_S)
        try:
            ready = ours.recv(4096)
        except OSError as exc:
            ready = b""
            reason = str(exc)
        else:
            reason = "it exited during its imports"
        ours.settimeout(None)
        if not ready.startswith(b"{"):
            self._close()
            raise InspectorEnvironmentError(f"the inspection sandbox did not start: {reason}")
        hello = json.loads(ready)
        if hello.get("threads") != 1:
            self._close()
            raise InspectorEnvironmentError(f"the zygote runs {hello.get('threads')} threads: forking it is unsafe")
        self.vm_after_imports_kib = int(hello.get("vm_kib", 0))

    def _close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._process = None

    def close(self) -> None:
        with self._lock:
            self._close()

    @property
    def zygote_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _spawn(self, fds: list[int]) -> None:
        with self._lock:
            for attempt in (1, 2):
                self._ensure_started()
                assert self._control is not None
                try:
                    socket.send_fds(self._control, [b"s"], fds)
                    return
                except OSError:
                    if attempt == 2:
                        raise
                    self._close()  # the zygote died (killed, out of memory): start a new one

    # -- one inspection ----------------------------------------------------------------------------

    def run(self, request: dict[str, Any], limits: ChildLimits, data: Iterator[bytes] | None) -> ChildOutcome:
        """Run `child.run_child(request)` in a fresh child; `data` is pumped into its stdin pipe."""
        session, session_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        result_r, result_w = os.pipe()
        data_r, data_w = os.pipe() if data is not None else (-1, -1)
        if data is not None:
            with contextlib.suppress(OSError):  # fewer, larger writes; the default is 64 KiB
                fcntl.fcntl(data_w, F_SETPIPE_SZ, _PIPE_SIZE)
        try:
            fds = [session_theirs.fileno(), result_w] + ([data_r] if data is not None else [])
            self._spawn(fds)
        except OSError as exc:
            for fd in (result_r, result_w, data_r, data_w):
                if fd >= 0:
                    os.close(fd)
            session.close()
            raise InspectorEnvironmentError(f"the inspection sandbox is unavailable: {exc}") from exc
        finally:
            session_theirs.close()
        os.close(result_w)
        if data is not None:
            os.close(data_r)
        outcome = ChildOutcome(vm_after_imports_kib=self.vm_after_imports_kib)
        exchange = _Exchange(session, result_r, data_w, data, outcome, limits)
        try:
            session.sendall(json.dumps({"request": request, "limits": limits.as_dict()}).encode() + b"\n")
            exchange.run()
        finally:
            session.close()  # the supervisor kills the child when this closes early
            os.close(result_r)
            exchange.close_data()  # once: a second close could hit another thread's descriptor
        return outcome


class _Exchange:
    """The parent's side of a session, single-threaded: feed the data pipe, read the result pipe and
    the supervisor's report, all under one deadline."""

    def __init__(
        self,
        session: socket.socket,
        result_fd: int,
        data_fd: int,
        data: Iterator[bytes] | None,
        outcome: ChildOutcome,
        limits: ChildLimits,
    ):
        self.session = session
        self.result_fd = result_fd
        self.data_fd = data_fd
        self.data = data
        self.outcome = outcome
        self.deadline = time.monotonic() + limits.time_s + _REPORT_GRACE_S
        self.pending = memoryview(b"")
        self.result = bytearray()
        self.report = bytearray()
        self.result_open = True
        self.report_done = False
        self.fed_everything = False

    def run(self) -> None:
        if self.data_fd >= 0:
            os.set_blocking(self.data_fd, False)
        while self.result_open or not self.report_done:
            readers = [fd for fd, open_ in ((self.result_fd, self.result_open),) if open_]
            if not self.report_done:
                readers.append(self.session.fileno())
            writers = [self.data_fd] if self.data_fd >= 0 else []
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise InspectorEnvironmentError("the inspection sandbox did not report in time")
            readable, writable, _ = select.select(readers, writers, [], remaining)
            if writable:
                self._feed()
            for fd in readable:
                if fd == self.result_fd:
                    self._read_result()
                else:
                    self._read_report()
        self._parse()

    def _feed(self) -> None:
        """Write what the pipe takes now; the source is read only when the last piece is gone.
        The source's own errors (S3 read failures) propagate: they are the gate's, not the model's."""
        if not self.pending:
            piece = next(self.data, b"") if self.data is not None else b""
            if not piece:
                self.fed_everything = True
                self.close_data()
                return
            self.pending = memoryview(piece)
        try:
            written = os.write(self.data_fd, self.pending)
        except BlockingIOError:
            return
        except BrokenPipeError:  # the child stopped reading (a refusal, or it died): stop feeding
            self.close_data()
            return
        self.pending = self.pending[written:]

    def close_data(self) -> None:
        if self.data_fd >= 0:
            os.close(self.data_fd)
            self.data_fd = -1
        self.pending = memoryview(b"")

    def _read_result(self) -> None:
        chunk = os.read(self.result_fd, 1 << 16)
        if not chunk:
            self.result_open = False
            return
        self.result += chunk
        if len(self.result) > _MAX_RESULT_BYTES:
            raise InspectorEnvironmentError("the inspection child sent more than the result cap")

    def _read_report(self) -> None:
        chunk = self.session.recv(1 << 16)
        self.report += chunk
        if not chunk or self.report.endswith(b"\n"):
            self.report_done = True

    def _parse(self) -> None:
        for line in bytes(self.result).splitlines():
            try:
                message = json.loads(line)
            except ValueError:
                continue  # a line cut by the child's death
            if isinstance(message, dict):
                self.outcome.messages.append(message)
        if not self.report.strip():
            raise InspectorEnvironmentError("the inspection supervisor ended without a report")
        report = json.loads(self.report)
        self.outcome.exit_code = report.get("exit_code")
        self.outcome.signal = report.get("signal")
        self.outcome.killed_for_time = bool(report.get("killed_for_time"))
        self.outcome.elapsed_s = float(report.get("elapsed_s", 0.0))
        self.outcome.peak_rss_kib = int(report.get("peak_rss_kib", 0))
        self.outcome.cpu_s = float(report.get("cpu_s", 0.0))
        self.outcome.fed_everything = self.data is None or self.fed_everything


# -- inside the zygote -------------------------------------------------------------------------------


def zygote_main(control_fd: int) -> None:
    """Import everything an inspection needs, then fork one supervisor per request, forever."""
    control = socket.socket(fileno=control_fd)
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
    control.sendall(json.dumps({"threads": _thread_count(), "vm_kib": _vm_size_kib()}).encode())
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
                _supervise(fds)
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

    model = LogisticRegression()
    model.coef_, model.intercept_ = np.zeros((2, 4)), np.zeros(2)
    model.classes_, model.n_features_in_ = np.arange(2), 4
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
        request = {"workdir": workdir, "config": {"sample_input": [[0.0] * 4]}, "uri": "warm-up"}
        child.run_child(request, packed, lambda _message: None)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    # skops is imported on first use; once here, not in every child that loads a .skops file (~0.25 s).
    with contextlib.suppress(ImportError):
        import skops.io  # noqa: F401


def _read_line(sock: socket.socket) -> bytes:
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def _supervise(fds: list[int]) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    session = socket.socket(fileno=fds[0])
    result_fd = fds[1]
    data_fd = fds[2] if len(fds) > 2 else -1
    line = _read_line(session)
    if not line:
        return
    envelope = json.loads(line)
    limits = envelope["limits"]
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        session.close()
        _child_main(envelope["request"], limits, data_fd, result_fd)
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


def _child_main(request: dict[str, Any], limits: dict[str, Any], data_fd: int, result_fd: int) -> None:
    code = EXIT_ERROR
    try:
        os.setpgid(0, 0)
        os.dup2(2, 1)  # joblib's progress lines and any print of the model's go to stderr
        sys.stdout = sys.stderr
        _set_limits(limits)
        workdir = request["workdir"]
        tmp = request["tmpdir"]
        os.environ["TMPDIR"] = tmp
        import tempfile

        tempfile.tempdir = tmp
        os.chdir(workdir)
        emit = _emitter(result_fd)
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


def _set_limits(limits: dict[str, Any]) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    file_bytes = int(limits["file_bytes"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    budget = int(limits["memory_mib"]) << 20
    if limits["memory_watch"] == "rlimit":
        # Address space, not resident size: the imports alone reserve far more than they touch.
        ceiling = _vm_size_kib() * 1024 + budget
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    else:
        _watch_resident_size(budget)


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


_DEFAULT: Sandbox | None = None
_DEFAULT_LOCK = threading.Lock()


def default_sandbox() -> Sandbox:
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Sandbox()
        return _DEFAULT
