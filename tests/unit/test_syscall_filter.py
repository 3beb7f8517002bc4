"""The syscall filter keeps the child's signals to itself: for every route by which a Linux process can signal
another one it names (kill, tkill, tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo, pidfd_send_signal, a descriptor's
owner through fcntl), a child under the filter fails to kill its parent, and the same child without the filter
succeeds (so each route is a real one on this kernel). Syscall numbers are written here from the kernel's tables,
not taken from the code under test."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import signal
import time
from collections.abc import Callable

import pytest

from training_gate.inspector import containment

NUMBERS = {
    "x86_64": {
        "kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297,
        "pidfd_send_signal": 424, "pidfd_open": 434, "pidfd_getfd": 438, "fcntl": 72, "ioctl": 16,
    },
    "aarch64": {
        "kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240,
        "pidfd_send_signal": 424, "pidfd_open": 434, "pidfd_getfd": 438, "fcntl": 25, "ioctl": 29,
    },
}  # fmt: skip
MACHINE = platform.machine()
pytestmark = pytest.mark.skipif(MACHINE not in NUMBERS, reason=f"no syscall table here for {MACHINE}")
NR = NUMBERS.get(MACHINE, {})
LIBC = ctypes.CDLL(None, use_errno=True)
F_SETSIG, F_SETOWN, F_SETOWN_EX, F_OWNER_PID = 10, 8, 15, 1
SI_QUEUE = -1


class SigInfo(ctypes.Structure):
    _fields_ = [("si_signo", ctypes.c_int), ("si_errno", ctypes.c_int), ("si_code", ctypes.c_int),
                ("pad", ctypes.c_byte * 116)]  # fmt: skip


class OwnerEx(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("pid", ctypes.c_int)]


def _syscall(name: str, *args: object) -> int:
    return LIBC.syscall(NR[name], *args)


def _queued() -> ctypes.Structure:
    return ctypes.byref(SigInfo(si_signo=signal.SIGKILL, si_code=SI_QUEUE, si_errno=0))


def _through_a_descriptors_owner(target: int, extended: bool) -> int:
    """Make `target` the owner of a pipe's reading end, with SIGKILL as its signal, then make it readable."""
    reader, writer = os.pipe()
    if extended:
        owned = LIBC.fcntl(reader, F_SETOWN_EX, ctypes.byref(OwnerEx(F_OWNER_PID, target)))
    else:
        owned = LIBC.fcntl(reader, F_SETOWN, target)
    if owned != 0:
        return owned
    fcntl.fcntl(reader, F_SETSIG, signal.SIGKILL)
    fcntl.fcntl(reader, fcntl.F_SETFL, fcntl.fcntl(reader, fcntl.F_GETFL) | os.O_ASYNC)
    os.write(writer, b"x")
    return 0


def _through_a_proc_pidfd(target: int) -> int:
    fd = os.open(f"/proc/{target}", os.O_RDONLY | os.O_DIRECTORY)
    return _syscall("pidfd_send_signal", fd, signal.SIGKILL, None, 0)


def _through_pidfd_open(target: int) -> int:
    fd = _syscall("pidfd_open", target, 0)
    return fd if fd < 0 else _syscall("pidfd_send_signal", fd, signal.SIGKILL, None, 0)


ROUTES: dict[str, Callable[[int], int]] = {
    "kill": lambda target: _syscall("kill", target, signal.SIGKILL),
    "tkill": lambda target: _syscall("tkill", target, signal.SIGKILL),
    "tgkill": lambda target: _syscall("tgkill", target, target, signal.SIGKILL),
    "rt_sigqueueinfo": lambda target: _syscall("rt_sigqueueinfo", target, signal.SIGKILL, _queued()),
    "rt_tgsigqueueinfo": lambda target: _syscall("rt_tgsigqueueinfo", target, target, signal.SIGKILL, _queued()),
    "pidfd_send_signal-proc": _through_a_proc_pidfd,
    "pidfd_open": _through_pidfd_open,
    "fcntl-F_SETOWN": lambda target: _through_a_descriptors_owner(target, extended=False),
    "fcntl-F_SETOWN_EX": lambda target: _through_a_descriptors_owner(target, extended=True),
}

FILTER_MISSING = 2


def _child_signals_its_parent(route: str, filtered: bool) -> tuple[int | None, bool]:
    """A parent forks a child that (under the filter or not) tries to SIGKILL the parent through `route`.
    Returns the child's exit code as the parent saw it (None when the parent did not live to see it) and
    whether the parent was killed."""
    reader, writer = os.pipe()
    parent = os.fork()
    if parent == 0:
        os.close(reader)
        try:
            child = os.fork()
            if child == 0:
                code = 3
                try:
                    if filtered and containment.syscall_filter().status != containment.IN_FORCE:
                        code = FILTER_MISSING
                    else:
                        code = 0 if ROUTES[route](os.getppid()) == 0 else 1
                finally:
                    os._exit(code)
            _, status = os.waitpid(child, 0)
            time.sleep(0.3)  # a signal the kernel sends on a descriptor's readiness arrives
            os.write(writer, str(os.waitstatus_to_exitcode(status)).encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        seen = pipe.read()
    _, status = os.waitpid(parent, 0)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    return (int(seen) if seen else None), killed


@pytest.mark.parametrize("route", list(ROUTES))
def test_the_filtered_child_cannot_kill_its_parent_through_any_signal_route(route: str):
    code, killed = _child_signals_its_parent(route, filtered=False)
    if not killed:
        pytest.skip(f"{route} does not reach another process on this kernel even unfiltered (child exit {code})")
    code, killed = _child_signals_its_parent(route, filtered=True)
    if code == FILTER_MISSING:
        pytest.skip("seccomp is not available on this kernel")
    assert not killed, f"the parent was killed through {route} under the filter"
    assert code == 1, f"{route} under the filter: child exit {code}"


def test_the_filtered_child_still_signals_itself_through_each_self_route():
    def body() -> int:
        if containment.syscall_filter().status != containment.IN_FORCE:
            return FILTER_MISSING
        signal.signal(signal.SIGUSR1, lambda *_: None)
        me = os.getpid()
        results = [
            _syscall("kill", me, signal.SIGUSR1),
            _syscall("tkill", me, signal.SIGUSR1),
            _syscall("tgkill", me, me, signal.SIGUSR1),
            _syscall("rt_sigqueueinfo", me, signal.SIGUSR1, ctypes.byref(SigInfo(signal.SIGUSR1, 0, SI_QUEUE))),
        ]
        return 0 if results == [0, 0, 0, 0] else 1

    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            code = body()
        finally:
            os._exit(code)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code == FILTER_MISSING:
        pytest.skip("seccomp is not available on this kernel")
    assert code == 0


@pytest.mark.parametrize(("command", "name"), [(0x8901, "FIOSETOWN"), (0x8902, "SIOCSPGRP")])
def test_the_ioctls_that_make_a_descriptor_signal_its_owner_are_refused(command: int, name: str):
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            if containment.syscall_filter().status != containment.IN_FORCE:
                code = FILTER_MISSING
            else:
                reader, _ = os.pipe()
                owner = ctypes.c_int(os.getppid())
                result = _syscall("ioctl", reader, command, ctypes.byref(owner))
                code = 0 if result == -1 and ctypes.get_errno() == errno.EPERM else 1
        finally:
            os._exit(code)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code == FILTER_MISSING:
        pytest.skip("seccomp is not available on this kernel")
    assert code == 0, f"{name} was not refused with EPERM"


def test_pidfd_getfd_cannot_take_a_descriptor_of_another_process():
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            if containment.syscall_filter().status != containment.IN_FORCE:
                code = FILTER_MISSING
            else:
                proc = os.open(f"/proc/{os.getppid()}", os.O_RDONLY | os.O_DIRECTORY)
                result = _syscall("pidfd_getfd", proc, 0, 0)
                code = 0 if result == -1 and ctypes.get_errno() == errno.EPERM else 1
        finally:
            os._exit(code)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    if code == FILTER_MISSING:
        pytest.skip("seccomp is not available on this kernel")
    assert code == 0
