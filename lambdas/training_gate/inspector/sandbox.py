"""A disposable, limited child process for the dangerous half of an inspection: the parent's side.

Loading a model runs C and Cython code on data the artifact chose: it can crash, hang or eat
memory, and an allowlisted class can still be mutated. So each inspection runs in a fresh child
(`zygote`: a zygote that imported scikit-learn once, a supervisor per inspection, the contained
child), and the parent only ever reads JSON from it.

multiprocessing's Queue and Pool need /dev/shm, which Lambda lacks; pipes, Unix sockets and fork
work there. Artifact bytes go to the child through a pipe (the parent reads S3 and hashes), results
come back as JSON lines through another.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from training_gate.inspector.errors import InspectorEnvironmentError
from training_gate.inspector.zygote import (
    EXIT_MEMORY,
    EXIT_SETUP,
    MAIN_THREAD_VARIABLE,
    TEST_HOOKS_VARIABLE,
)

# Environment the zygote (and so every child) gets: nothing that grants access. Credentials, the
# Lambda Runtime API and X-Ray's daemon address stay with the parent.
_KEPT_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "LD_LIBRARY_PATH", "HOME")
# One thread per process: the zygote must not hold a BLAS thread pool when it forks, and a child
# on a one- or two-core function gains nothing from more. joblib never starts worker processes
# (n_jobs=-1 in a model's predict runs sequentially): the child may not create processes.
_ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "JOBLIB_MULTIPROCESSING": "0",
    # pyarrow (imported with pandas) bundles jemalloc, whose background thread would make the zygote two.
    "JE_ARROW_MALLOC_CONF": "background_thread:false",
    "PYTHONUNBUFFERED": "1",
}
_PIPE_SIZE = 1 << 20
_MAX_RESULT_BYTES = 8 << 20
_STARTUP_TIMEOUT_S = 300.0
_REPORT_GRACE_S = 10.0
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
# Phases that read the artifact's bytes as they arrive: a budget breached there while the child sat
# idle waiting for them is the source's slowness, not the model's.
_READING_PHASES = ("unpack", "load")


@dataclass(frozen=True)
class ChildLimits:
    memory_mib: int
    time_s: float
    file_bytes: int
    memory_watch: str  # "rlimit" or "rss"
    time_key: str = "time_limit_s"
    namespaces: bool = True
    syscall_filter: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {
            "memory_mib": self.memory_mib,
            "time_s": self.time_s,
            "file_bytes": self.file_bytes,
            "memory_watch": self.memory_watch,
            "namespaces": self.namespaces,
            "syscall_filter": self.syscall_filter,
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
    zygote_protections: list[dict[str, str]] = field(default_factory=list)

    @property
    def contained(self) -> dict[str, Any] | None:
        """The child's first message: its protections and memory budget (None: it never got there)."""
        return next((m for m in self.messages if "protections" in m), None)

    @property
    def protections(self) -> list[dict[str, str]]:
        contained = self.contained
        return self.zygote_protections + (contained["protections"] if contained else [])

    @property
    def last_phase(self) -> dict[str, Any] | None:
        phases = [m for m in self.messages if "phase" in m]
        return phases[-1] if phases else None

    @property
    def phase(self) -> str | None:
        last = self.last_phase
        return last["phase"] if last else None

    @property
    def budget_breached(self) -> bool:
        return self.signal == signal.SIGALRM and self.last_phase is not None and "budget_s" in self.last_phase

    @property
    def starved(self) -> bool:
        """Killed for time while still waiting for the artifact's bytes, mostly idle: the source (S3)
        was too slow, which is the gate's problem, not the model's."""
        waiting = self.killed_for_time or (self.budget_breached and self.phase in _READING_PHASES)
        return waiting and not self.fed_everything and self.cpu_s < 0.5 * self.elapsed_s

    @property
    def done(self) -> bool:
        return any(m.get("done") for m in self.messages)

    def environment_failure(self) -> str | None:
        """The child could not be contained (or died before it was): the gate's failure, for operations."""
        errors = [m["environment_error"] for m in self.messages if "environment_error" in m]
        if errors:
            return str(errors[-1])
        if self.contained is None and not self.killed_for_time:
            how = f"signal {self.signal}" if self.signal is not None else f"status {self.exit_code}"
            return f"the inspection child ended ({how}) before it was contained; no model code had run"
        if self.exit_code == EXIT_SETUP:
            return "the inspection child could not be contained"
        return None

    def failure(self, limits: ChildLimits) -> str | None:
        """How the child ended, named, or None when it finished its work."""
        if self.killed_for_time:
            return (
                f"killed after {limits.time_s:g} s (time limit; raise {limits.time_key} if the model is "
                "legitimately this slow)"
            )
        if self.budget_breached:
            last = self.last_phase or {}
            return (
                f"stopped after its budget of {float(last['budget_s']):g} s ({last.get('budget_key')}; raise it if "
                "the model is legitimately this slow)"
            )
        if self.exit_code == EXIT_MEMORY:
            return self._memory_failure(limits)
        if self.signal is not None:
            name = signal.Signals(self.signal).name if self.signal in signal.valid_signals() else str(self.signal)
            if self.signal == signal.SIGXFSZ:
                return "file size limit exceeded (SIGXFSZ); raise max_member_bytes"
            if self.signal == signal.SIGXCPU:
                return f"CPU time limit exceeded ({name}: the RLIMIT_CPU backstop; raise {limits.time_key})"
            return f"crashed with {name}"
        if self.done:
            return None
        errors = [m["error"] for m in self.messages if "error" in m]
        if errors:
            return f"failed: {errors[-1]}"
        return f"exited with status {self.exit_code} before finishing"

    def _memory_failure(self, limits: ChildLimits) -> str:
        memory = (self.contained or {}).get("memory") or {"mib": limits.memory_mib, "environment": False}
        if memory.get("environment"):
            return (
                f"memory limit {memory['mib']} MiB exceeded (the environment's hard address-space limit, below "
                f"memory_limit_mib={limits.memory_mib}: raise that limit where the gate runs)"
            )
        watched = ""
        if limits.memory_watch == "rss":
            watched = " (watched as resident size: RLIMIT_AS is not enforced here)"
        return f"memory limit {memory['mib']} MiB exceeded{watched}; raise memory_limit_mib"


def _clean_environment(extra: dict[str, str]) -> dict[str, str]:
    env = {key: os.environ[key] for key in _KEPT_ENVIRONMENT if key in os.environ}
    env.update(_ONE_THREAD)
    # The zygote must import this package wherever it is installed (Lambda's task root, a venv).
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    env.update(extra)
    return env


class Sandbox:
    """The zygote and the sessions run through it. One per process is enough; it is thread-safe."""

    def __init__(self, test_hooks: dict[str, str] | None = None):
        self._extra = {TEST_HOOKS_VARIABLE: json.dumps(test_hooks)} if test_hooks else {}
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self.vm_after_imports_kib = 0
        self.protections: list[dict[str, str]] = []
        # What the host process set for itself (the function's parent not dumpable), reported with the rest.
        self.host_protections: list[dict[str, str]] = []

    # -- zygote ------------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            self._ensure_started()

    def _ensure_started(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self._close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        code = f"from training_gate.inspector.zygote import zygote_main; zygote_main({theirs.fileno()})"
        extra = dict(self._extra)
        if threading.current_thread() is threading.main_thread():
            # The zygote may die with this process: PR_SET_PDEATHSIG follows the thread that starts it.
            extra[MAIN_THREAD_VARIABLE] = str(os.getpid())
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", code],
                stdin=subprocess.DEVNULL,
                stdout=2,  # the model's prints never reach the caller's stdout
                pass_fds=(theirs.fileno(),),
                env=_clean_environment(extra),
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
        self.protections = list(hello.get("protections", []))

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
        outcome = ChildOutcome(
            vm_after_imports_kib=self.vm_after_imports_kib, zygote_protections=self.host_protections + self.protections
        )
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


_DEFAULT: Sandbox | None = None
_DEFAULT_LOCK = threading.Lock()


def default_sandbox() -> Sandbox:
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Sandbox()
        return _DEFAULT
