"""What keeps the inspection child contained, each protection set up best effort and reported.

Every protection is tried; each one's outcome is a `Protection` (in force, or not available and why),
so an inspection says which held where it ran. Only the limits the gate cannot do without (file
size, core files, the CPU backstop, the address space where it is the memory watch) make setting
up fail, and then as the gate's own failure, never the model's: a hard limit the environment
already set lower than the configured one is kept as it is and named.

Linux only, through ctypes: no native dependency. AWS Lambda's own sandbox is reported to refuse
prctl (PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP) and user namespaces; the lifeline (a
pipe whose writer is the supervisor, armed with O_ASYNC so the kernel sends SIGKILL to the child's
process group when the writer goes) needs neither, and works there too.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import resource
import select
import signal
import struct
from dataclasses import asdict, dataclass
from typing import Any

IN_FORCE = "in force"
NOT_AVAILABLE = "not available"

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_SECCOMP = 22
PR_SET_NO_NEW_PRIVS = 38
SECCOMP_MODE_FILTER = 2
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWIPC = 0x08000000
CLONE_THREAD = 0x00010000
# The same values on x86_64 and aarch64 (asm-generic/fcntl.h, asm-generic/sockios.h).
F_SETOWN = 8
F_SETOWN_EX = 15
FIOSETOWN = 0x8901
SIOCSPGRP = 0x8902

# Seconds of CPU the child may use beyond its wall-clock budget before the kernel ends it (SIGXCPU,
# then SIGKILL at the hard limit): a backstop for a child whose supervisor is gone.
CPU_BACKSTOP_MARGIN_S = 5


@dataclass(frozen=True)
class Protection:
    name: str
    status: str  # IN_FORCE or NOT_AVAILABLE
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class SetupFailed(Exception):
    """The child could not be contained: a failure of the gate's environment, not of the model."""


_LIBC: Any = None


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


def _prctl(option: int, arg2: int | ctypes.c_void_p = 0) -> None:
    if _libc().prctl(option, arg2, 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def parent_death_signal(signum: int, expected_parent: int, name: str = "parent_death_signal") -> Protection:
    """PR_SET_PDEATHSIG, then the race closed: a parent that died before it was set is seen by getppid."""
    try:
        _prctl(PR_SET_PDEATHSIG, signum)
    except (OSError, AttributeError) as exc:
        return Protection(name, NOT_AVAILABLE, f"prctl(PR_SET_PDEATHSIG) refused: {exc}")
    if os.getppid() != expected_parent:
        os.kill(os.getpid(), signum)  # the parent is already gone: act as the signal would have
    return Protection(name, IN_FORCE, f"{signal.Signals(signum).name} when the parent dies")


def not_dumpable(whom: str) -> Protection:
    """A process that is not dumpable cannot be ptrace-attached and its /proc files (environ, mem) are
    unreadable by other processes of the same user: the child cannot read the credentials or patch
    the code of the processes above it."""
    try:
        _prctl(PR_SET_DUMPABLE, 0)
    except (OSError, AttributeError) as exc:
        return Protection(f"{whom}_not_dumpable", NOT_AVAILABLE, f"prctl(PR_SET_DUMPABLE) refused: {exc}")
    return Protection(f"{whom}_not_dumpable", IN_FORCE, f"the {whom} cannot be traced or read through /proc")


def arm_lifeline(fd: int) -> Protection:
    """SIGKILL to this process group when the supervisor, the only writer of the pipe, is gone."""
    try:
        fcntl.fcntl(fd, fcntl.F_SETOWN, -os.getpgid(0))
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGKILL)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC | os.O_NONBLOCK)
    except (OSError, AttributeError) as exc:
        return Protection("lifeline", NOT_AVAILABLE, f"O_ASYNC on the supervisor's pipe refused: {exc}")
    readable, _, _ = select.select([fd], [], [], 0)
    if readable:  # the writer closed before the pipe was armed
        os.killpg(0, signal.SIGKILL)
    return Protection("lifeline", IN_FORCE, "SIGKILL to the child's process group when its supervisor ends")


def close_inherited_fds(keep: set[int]) -> Protection:
    """Every descriptor but `keep` (stdio and the child's own pipes) is closed: nothing the zygote or
    the supervisor held, the control socket included, reaches model code. The open ones are listed
    from /proc, so the cost does not depend on how high a descriptor could be."""
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        open_fds = list(range(resource.getrlimit(resource.RLIMIT_NOFILE)[0]))
    for fd in open_fds:
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the directory listing's own descriptor, already closed
    return Protection("file_descriptors", IN_FORCE, f"only its own: {', '.join(map(str, sorted(keep)))}")


def lower_limit(which: int, name: str, wanted: int, setting: str) -> tuple[int, Protection]:
    """Set a limit to `wanted`, or keep an existing hard limit that is already lower, and say which."""
    soft, hard = resource.getrlimit(which)
    effective = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    try:
        resource.setrlimit(which, (effective, effective))
    except (OSError, ValueError) as exc:
        raise SetupFailed(f"setrlimit({name}, {effective}) failed: {exc} (soft {soft}, hard {hard})") from exc
    if effective < wanted:
        return effective, Protection(
            name, IN_FORCE, f"{effective}: the environment's hard limit, kept as it is (below {setting}={wanted})"
        )
    return effective, Protection(name, IN_FORCE, f"{effective} ({setting})")


def cpu_backstop(wall_s: float) -> Protection:
    seconds = int(wall_s) + 1 + CPU_BACKSTOP_MARGIN_S
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY and hard < seconds:
        soft_new, hard_new = hard, hard
        note = f"the environment's hard limit of {hard} s, kept as it is (below {seconds} s)"
    else:
        soft_new, hard_new = seconds, seconds + CPU_BACKSTOP_MARGIN_S
        if hard != resource.RLIM_INFINITY:
            hard_new = min(hard_new, hard)
        note = f"SIGXCPU at {soft_new} s of CPU, SIGKILL at {hard_new} s (time_limit_s + margin)"
    try:
        resource.setrlimit(resource.RLIMIT_CPU, (soft_new, hard_new))
    except (OSError, ValueError) as exc:
        raise SetupFailed(f"setrlimit(RLIMIT_CPU) failed: {exc} (soft {soft}, hard {hard})") from exc
    return Protection("RLIMIT_CPU", IN_FORCE, note)


def namespaces() -> Protection:
    """A new user and network namespace: no route to anything, 127.0.0.1 (the Lambda Runtime API)
    included. Needs a single-threaded caller and unprivileged user namespaces."""
    try:
        if _libc().unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
    except (OSError, AttributeError) as exc:
        return Protection("namespaces", NOT_AVAILABLE, f"unshare(user, network, IPC) refused: {exc}")
    return Protection("namespaces", IN_FORCE, "own user, network (no interface up) and IPC namespaces")


# -- the syscall filter ----------------------------------------------------------------------------------

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
# Denied outright (EPERM): no new sockets, no exec, no tracing or reading other processes' memory, no
# leaving the process group, no new namespaces, and the kernel interfaces sandboxes close (io_uring can
# open sockets without the socket syscall; userfaultfd, bpf, perf and keyrings serve exploits).
_DENIED = {
    "x86_64": {
        "socket": 41, "connect": 42, "socketpair": 53, "execve": 59, "execveat": 322, "ptrace": 101,
        "process_vm_readv": 310, "process_vm_writev": 311, "setsid": 112, "setpgid": 109, "unshare": 272,
        "setns": 308, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "userfaultfd": 323, "bpf": 321, "perf_event_open": 298, "keyctl": 250, "add_key": 248,
        "request_key": 249, "fork": 57, "vfork": 58,
        # A pidfd names any process: signals through it, or its descriptors and memory, cannot be kept to itself.
        "pidfd_send_signal": 424, "pidfd_open": 434, "pidfd_getfd": 438, "process_madvise": 440,
        "process_mrelease": 448,
    },
    "aarch64": {
        "socket": 198, "connect": 203, "socketpair": 199, "execve": 221, "execveat": 281, "ptrace": 117,
        "process_vm_readv": 270, "process_vm_writev": 271, "setsid": 157, "setpgid": 154, "unshare": 97,
        "setns": 268, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
        "userfaultfd": 282, "bpf": 280, "perf_event_open": 241, "keyctl": 219, "add_key": 217,
        "request_key": 218, "pidfd_send_signal": 424, "pidfd_open": 434, "pidfd_getfd": 438,
        "process_madvise": 440, "process_mrelease": 448,
    },
}  # fmt: skip
# Every syscall that sends a signal to a process it names (x86_64 and aarch64 tables): only to itself, its
# first argument the child's own pid (a thread id for tkill, the thread group's for the others: the kernel
# refuses a tid outside the group named). pidfd_send_signal names its target by a descriptor: denied above.
_SELF_ONLY = {
    "x86_64": {"kill": 62, "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297},
    "aarch64": {"kill": 129, "tkill": 130, "tgkill": 131, "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240},
}
# Commands that make the kernel signal a process the caller names later (SIGIO, or any signal F_SETSIG
# chose, when a descriptor becomes ready): the owner of a descriptor. Refused by (syscall, second argument).
# The lifeline sets its owner before the filter is in force.
_OWNER_COMMANDS = {
    "x86_64": {72: (F_SETOWN, F_SETOWN_EX), 16: (FIOSETOWN, SIOCSPGRP)},  # fcntl, ioctl
    "aarch64": {25: (F_SETOWN, F_SETOWN_EX), 29: (FIOSETOWN, SIOCSPGRP)},
}
_CLONE = {"x86_64": 56, "aarch64": 220}
_CLONE3 = 435  # glibc falls back to clone on ENOSYS, where the flags can be checked

_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_ALLOW, _KILL, _ERRNO = 0x7FFF0000, 0x80000000, 0x00050000
_NR, _ARCH, _ARG0, _ARG1 = 0, 4, 16, 24  # offsets in struct seccomp_data (args are little-endian 64-bit)


def seccomp_program(machine: str, own_pid: int) -> list[tuple[int, int, int, int]]:
    """The BPF program: (code, jt, jf, k) per instruction."""
    arch = _AUDIT_ARCH[machine]
    program = [(_LD_W_ABS, 0, 0, _ARCH), (_JEQ, 1, 0, arch), (_RET, 0, 0, _KILL), (_LD_W_ABS, 0, 0, _NR)]
    if machine == "x86_64":  # the x32 ABI numbers its syscalls from 2**30: none is allowed
        program += [(_JGE, 0, 1, 0x40000000), (_RET, 0, 0, _KILL)]
    deny = (_RET, 0, 0, _ERRNO | errno.EPERM)
    for number in sorted(_DENIED[machine].values()):
        program += [(_JEQ, 0, 1, number), deny]
    for number in sorted(_SELF_ONLY[machine].values()):
        program += [(_JEQ, 0, 4, number), (_LD_W_ABS, 0, 0, _ARG0), (_JEQ, 0, 1, own_pid), (_RET, 0, 0, _ALLOW)]
        program += [deny, (_LD_W_ABS, 0, 0, _NR)]
    for number, commands in sorted(_OWNER_COMMANDS[machine].items()):
        # The commands are 32-bit (unsigned int cmd): the low word of the argument is all the kernel reads.
        program += [(_JEQ, 0, 2 * len(commands) + 2, number), (_LD_W_ABS, 0, 0, _ARG1)]
        for command in commands:
            program += [(_JEQ, 0, 1, command), deny]
        program.append((_RET, 0, 0, _ALLOW))
    program += [(_JEQ, 0, 4, _CLONE[machine]), (_LD_W_ABS, 0, 0, _ARG0), (_JSET, 1, 0, CLONE_THREAD), deny]
    program += [(_RET, 0, 0, _ALLOW), (_JEQ, 0, 1, _CLONE3), (_RET, 0, 0, _ERRNO | errno.ENOSYS)]
    program.append((_RET, 0, 0, _ALLOW))
    return program


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def syscall_filter() -> Protection:
    machine = platform.machine()
    if machine not in _AUDIT_ARCH:
        return Protection("syscall_filter", NOT_AVAILABLE, f"no filter for the {machine} architecture")
    program = seccomp_program(machine, os.getpid())
    raw = b"".join(struct.pack("=HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(raw, len(raw))
    fprog = _SockFprog(len(program), ctypes.cast(buffer, ctypes.c_void_p))
    try:
        _prctl(PR_SET_NO_NEW_PRIVS, 1)
        if _libc().prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
    except (OSError, AttributeError) as exc:
        return Protection("syscall_filter", NOT_AVAILABLE, f"seccomp refused: {exc}")
    return Protection(
        "syscall_filter",
        IN_FORCE,
        "seccomp: no socket, exec, ptrace, new process, session or namespace; signals to itself only",
    )
