"""The dangerous half of an inspection, run only inside the sandbox's disposable child.

Unpack (from the pipe the parent feeds; every pickle is loaded through the allowlist as it inflates),
recognise what the artifact is (`recognise`), load, version check, smoke prediction, reference
predictions and holdout scoring. Each step reports its check as soon as it is decided, so a child
that dies later still leaves the earlier verdicts behind, and the parent knows which step it died in.
Each phase runs under its own budget (a kernel timer: SIGALRM ends the child, whatever holds the
interpreter), so a hostile slow model costs seconds. Any exception raised by the artifact's content
fails the step that raised it (fail closed).
"""

from __future__ import annotations

import errno
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from training_gate.archive import UnsafeArchive, unpack_stream
from training_gate.domain.models import (
    NOT_A_SKLEARN_MODEL_DETAIL,
    READER_NOT_INSTALLED_DETAIL,
    CheckStatus,
    HoldoutConfig,
)
from training_gate.inspector.config import CHECK_ORDER, InspectConfig
from training_gate.inspector.frameworks import HEAD_BYTES, SCIKIT_LEARN, FileFacts, PyTorch, ReaderMissing
from training_gate.inspector.holdout import holdout_check
from training_gate.inspector.native.errors import NativeRefusal
from training_gate.inspector.recognise import Decision, decide, pickle_head
from training_gate.inspector.smoke import failure, has_method, reference_check, smoke_prediction
from training_gate.logic.evaluation_files import read_evaluation_files

__all__ = ["has_method", "run_child", "smoke_prediction"]
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)

Emit = Callable[[dict[str, Any]], None]


class EnvironmentFailure(Exception):
    """The child's environment failed (the disk filled): the parent raises it as a gate error."""


class _Budgets:
    """One kernel timer for the phase in progress: a load inside the unpack pauses the unpack's clock."""

    def __init__(self, emit: Emit, enabled: bool):
        self.emit = emit
        self.enabled = enabled
        self.paused: list[tuple[str, float, str]] = []
        self.current: tuple[str, float, str] | None = None

    def start(self, phase: str, seconds: float | None = None, key: str = "") -> None:
        message: dict[str, Any] = {"phase": phase}
        if seconds is not None:
            message.update(budget_s=round(seconds, 3), budget_key=key)
        self.emit(message)
        if self.enabled:
            signal.setitimer(signal.ITIMER_REAL, seconds or 0.0)
        self.current = (phase, seconds or 0.0, key) if seconds is not None else None

    def nested(self, phase: str, seconds: float, key: str) -> None:
        if self.current is not None:
            left = signal.getitimer(signal.ITIMER_REAL)[0] if self.enabled else self.current[1]
            self.paused.append((self.current[0], left, self.current[2]))
        else:
            self.paused.append(("", 0.0, ""))
        self.start(phase, seconds, key)

    def resume(self) -> None:
        phase, left, key = self.paused.pop()
        if phase:
            self.start(phase, max(left, 0.001), key)
        else:  # a load outside any phase (the files an uncompressed artifact's parent copied)
            self.stop()

    def stop(self) -> None:
        if self.enabled:
            signal.setitimer(signal.ITIMER_REAL, 0.0)
        self.current = None


class _Run:
    """One inspection inside the child: checks are emitted in order as they are decided."""

    ORDER = CHECK_ORDER[CHECK_ORDER.index("unpack") :]

    def __init__(self, request: dict[str, Any], emit: Emit):
        self.request = request
        self.emit = emit
        self.config = InspectConfig.model_validate(request["config"])
        self.workdir = Path(request["workdir"])
        self.metrics: list[Any] = []
        self.files: dict[str, FileFacts] = {}
        self.loaded: dict[str, Any] = {}  # file -> LoadedModel, or the exception that refused it
        self.budgets = _Budgets(emit, bool(request.get("budgets", True)))

    def check(self, name: str, status: CheckStatus, detail: str) -> None:
        self.emit({"check": {"name": name, "status": status.value, "detail": detail}})

    def stop(self, after: str, why: str = "") -> None:
        for name in self.ORDER[self.ORDER.index(after) + 1 :]:
            self.check(name, CheckStatus.SKIPPED, why or f"not run: {after} failed")

    def run(self, data: BinaryIO | None) -> None:
        names = self._unpack(data)
        if names is None:
            return
        self.emit({"metrics": [m.model_dump(mode="json") for m in self.metrics]})

        # Recognition reads heads and zip directories only; bounded like a load all the same.
        self.budgets.start("find_model", self.config.load_time_s, "load_time_s")
        decision = decide(
            [self.files[n] for n in names], self.loaded, self.request.get("training_image"), self.config.model_file
        )
        for name in decision.load_later:
            self._load_from_disk(name)
        self.emit({"recognition": decision.recognition()})
        self.check("find_model", decision.status, decision.detail)
        if decision.status == CheckStatus.FAIL:
            self.stop("find_model")
            return
        refused = [(n, o) for n, o in self.loaded.items() if isinstance(o, BaseException)]
        if decision.framework is not SCIKIT_LEARN:
            if decision.framework is not None and decision.framework.judged and decision.model_file:
                self._judge(decision, refused, names)
            else:
                self._not_judged(decision, refused)
            return

        self.budgets.start("load")
        model_file = decision.model_file or ""
        refused.sort(key=lambda item: item[0] != model_file)  # the model's own refusal first
        if refused or model_file not in self.loaded:
            name, exc = refused[0] if refused else (model_file, RuntimeError("the model file was not loaded"))
            self.check("load", CheckStatus.FAIL, f"could not load {name}: {failure(exc, self._memory())}")
            self.stop("load")
            return
        loaded = self.loaded[model_file]
        model = loaded.model
        self.emit({"model": {**SCIKIT_LEARN.describe(loaded), "format": sklearn_format(self.files[model_file])}})
        auxiliary = len(self.loaded) - 1
        others = f" (and {auxiliary} auxiliary file(s))" if auxiliary else ""
        self.check("load", CheckStatus.PASS, f"loaded {type(model).__name__} through the allowlist{others}")
        self._version(loaded)

        self.budgets.start("smoke_prediction", self.config.smoke_time_s, "smoke_time_s")
        hook("smoke_prediction")
        self.check("smoke_prediction", *SCIKIT_LEARN.predict(model, self.config))

        self.budgets.start("reference_predictions")
        try:
            status, detail = reference_check(model, self.workdir, names, self.config.reference_tolerance)
        except Exception as exc:  # noqa: BLE001
            status, detail = CheckStatus.FAIL, f"reference check raised {failure(exc, self._memory())}"
        self.check("reference_predictions", status, detail)

        self.budgets.start("holdout")
        self._holdout(model)
        self.budgets.stop()

    def _judge(self, decision: Decision, refused: list[tuple[str, BaseException]], names: list[str]) -> None:
        """Another framework the gate judges: its plug-in validates the bytes with the gate's own parser,
        then its reader loads exactly what was validated; the same checks follow as for scikit-learn."""
        framework, facts = decision.framework, self.files[decision.model_file or ""]
        assert framework is not None
        if refused:  # an auxiliary pickle the allowlist refused: serving code would load it too
            name, exc = refused[0]
            self.check("load", CheckStatus.FAIL, f"could not load {name}: {failure(exc, self._memory())}")
            self.stop("load")
            return
        seconds, key = self.config.load_budget(facts.size)
        self.budgets.start("load", seconds, key)
        hook("load")
        try:
            if facts.name in self.loaded:  # a pickle the gate's loader read as it streamed
                model = framework.adopt(self.loaded[facts.name], facts, self.config)
            else:
                with open(self.workdir / facts.name, "rb") as stream:
                    model = framework.load(stream, facts, self.config)
        except ReaderMissing as exc:
            self.check("load", CheckStatus.SKIPPED, f"{READER_NOT_INSTALLED_DETAIL}: {exc}")
            self.stop("load", f"not run: {READER_NOT_INSTALLED_DETAIL}")
            return
        except NativeRefusal as exc:
            before = "; no C loader read it" if getattr(exc, "before_reader", False) else ""
            detail = f"{facts.name} refused by the gate's {framework.name} checks{before}: {exc}"
            self.check("load", CheckStatus.FAIL, detail)
            self.stop("load")
            return
        except Exception as exc:  # noqa: BLE001 - a file the reader chokes on is the load check's verdict
            self.check("load", CheckStatus.FAIL, f"could not load {facts.name}: {failure(exc, self._memory())}")
            self.stop("load")
            return
        self.emit({"model": framework.describe(model)})
        self.check("load", *framework.loaded_detail(model))
        self.check("version_skew", *framework.version_check(model))

        self.budgets.start("smoke_prediction", self.config.smoke_time_s, "smoke_time_s")
        hook("smoke_prediction")
        self.check("smoke_prediction", *framework.predict(model, self.config))

        estimator = framework.estimator(model)
        self.budgets.start("reference_predictions")
        try:
            status, detail = reference_check(estimator, self.workdir, names, self.config.reference_tolerance)
        except Exception as exc:  # noqa: BLE001
            status, detail = CheckStatus.FAIL, f"reference check raised {failure(exc, self._memory())}"
        self.check("reference_predictions", status, detail)

        self.budgets.start("holdout")
        self._holdout(estimator)
        self.budgets.stop()

    def _not_judged(self, decision: Decision, refused: list[tuple[str, BaseException]]) -> None:
        """Another framework's model: nothing to judge, but a refused auxiliary pickle still rejects."""
        if refused:
            name, exc = refused[0]
            self.check("load", CheckStatus.FAIL, f"could not load {name}: {failure(exc, self._memory())}")
            self.stop("load")
            return
        read = f"; {len(self.loaded)} auxiliary pickle(s) loaded through the allowlist" if self.loaded else ""
        self.check("load", CheckStatus.SKIPPED, f"not run: {NOT_A_SKLEARN_MODEL_DETAIL}{read}")
        self.stop("load", f"not run: {NOT_A_SKLEARN_MODEL_DETAIL}")

    def _memory(self) -> int | None:
        return self.request.get("limits", {}).get("memory_mib")

    def _load(self, stream: BinaryIO, facts: FileFacts) -> None:
        seconds, key = self.config.load_budget(facts.size)
        self.budgets.nested("load", seconds, key)  # a crash from here on is the load's
        hook("load")
        try:
            self.loaded[facts.name] = SCIKIT_LEARN.load(stream, facts, self.config)
        except UnsafeArchive:
            raise  # the archive itself broke (truncated, bomb): that is the unpack check's verdict
        except Exception as exc:  # noqa: BLE001 - a refused or corrupt file is the load check's verdict
            self.loaded[facts.name] = exc
        self.budgets.resume()

    def _load_from_disk(self, name: str) -> None:
        facts = self.files[name]
        if facts.head.startswith(PyTorch.LEGACY_MAGIC):
            # A sequence of pickles: the loader would read the first (a magic number) and vouch for none of
            # the rest. Beside the model it judges, the gate cannot let it through unread.
            self.loaded[name] = ValueError(
                "a legacy torch.save file (a sequence of pickles) beside the model: the allowlist cannot read it"
            )
            return
        with open(self.workdir / name, "rb") as stream:
            self._load(stream, facts)

    def _unpack(self, data: BinaryIO | None) -> list[str] | None:
        if data is None:  # the parent copied the files (an uncompressed artifact under a prefix)
            return self._copied(list(self.request["files"]))
        self.budgets.start("unpack", self.config.unpack_time_s, "unpack_time_s")

        def claim(name: str, head: bytes, size: int) -> Callable[[BinaryIO], None] | None:
            is_pickle, module = pickle_head(name, head)
            facts = FileFacts(name, size, head[:HEAD_BYTES], self.workdir / name, module)
            self.files[name] = facts
            if not is_pickle:
                return None
            facts.path = None
            return lambda stream: self._load(stream, facts)

        limits = self.config.limits()
        if self.request.get("max_written_bytes") is not None:
            limits = limits.with_written(int(self.request["max_written_bytes"]))
        try:
            hook("unpack")
            unpacked = unpack_stream(data, self.workdir, limits, claim, digest=False, head_bytes=HEAD_BYTES)
        except UnsafeArchive as exc:
            self.check("unpack", CheckStatus.FAIL, f"{exc.check}: {exc.detail}")
            self.stop("unpack")
            return None
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                raise EnvironmentFailure(
                    f"ENOSPC: no space left in the work directory while unpacking ({exc.strerror}); the caps "
                    "should have refused first: check EphemeralStorage against max_total_bytes"
                ) from exc
            if exc.errno == errno.EFBIG:
                self.check("unpack", CheckStatus.FAIL, "file size limit exceeded (raise max_member_bytes)")
                self.stop("unpack")
                return None
            raise
        if not self._evaluation_files(unpacked.files):
            return None
        self.check(
            "unpack", CheckStatus.PASS, f"{len(unpacked.files)} file(s), {unpacked.unpacked_bytes} bytes unpacked"
        )
        return unpacked.files

    def _copied(self, names: list[str]) -> list[str] | None:
        for name in names:
            path = self.workdir / name
            with open(path, "rb") as handle:
                head = handle.read(HEAD_BYTES)
            is_pickle, module = pickle_head(name, head)
            self.files[name] = FileFacts(name, path.stat().st_size, head, path, module)
            if is_pickle:
                self._load_from_disk(name)
        return names if self._evaluation_files(names) else None

    def _evaluation_files(self, files: list[str]) -> bool:
        """Metrics from the evaluation files; one the parser chokes on (nesting deep enough for a
        RecursionError) fails the unpack check like any other unusable content."""
        try:
            self.metrics = read_evaluation_files(self.workdir, files, "model artifact")
        except Exception as exc:  # noqa: BLE001 - content of the artifact: a verdict, fail closed
            self.check("unpack", CheckStatus.FAIL, f"an evaluation file is unreadable: {failure(exc)}")
            self.stop("unpack")
            return False
        return True

    def _version(self, loaded: Any) -> None:
        if loaded.version_skew:
            status = CheckStatus.FAIL if self.config.version_skew == "fail" else CheckStatus.WARN
            self.check(
                "version_skew",
                status,
                f"model pickled with scikit-learn {loaded.sklearn_version}, gate runs "
                f"{loaded.runtime_sklearn_version}: set sklearn_version in the gate config to "
                f"{loaded.sklearn_version} or retrain with {loaded.runtime_sklearn_version}",
            )
        else:
            self.check("version_skew", CheckStatus.PASS, f"scikit-learn {loaded.sklearn_version} on both sides")

    def _holdout(self, model: Any) -> None:
        holdout: HoldoutConfig | None = self.config.holdout
        if holdout is None:
            self.check("holdout", CheckStatus.SKIPPED, "no holdout set configured")
            return
        prepared = self.request.get("holdout") or {}
        if "error" in prepared:
            self.check("holdout", CheckStatus.FAIL, prepared["error"])
            return
        path = Path(prepared["path"])
        status, detail, scored = holdout_check(model, holdout, lambda _uri: open(path, "rb"))
        self.emit({"metrics": [m.model_dump(mode="json") for m in scored]})
        self.check("holdout", status, detail)


# joblib's compressed files start with their compressor's magic (joblib/compressor.py).
_COMPRESSED = (b"ZF", b"\x78", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x5d\x00\x00", b"\x04\x22\x4d\x18")


def sklearn_format(facts: FileFacts) -> str:
    """How a scikit-learn model was saved: skops, joblib (compressed or not) or pickle."""
    if facts.suffix == ".skops":
        return "skops"
    if facts.head.startswith(_COMPRESSED):
        return "joblib-compressed"
    return "joblib" if facts.suffix == ".joblib" else "pickle"


def run_child(request: dict[str, Any], data: BinaryIO | None, emit: Emit) -> None:
    """Entry point inside the child; the sandbox turns what escapes into a named failure."""
    _HOOK_TARGET[0] = str(request.get("uri", ""))
    run = _Run(request, emit)
    try:
        run.run(data)
    except EnvironmentFailure as exc:
        emit({"environment_error": str(exc)})
        return
    finally:
        run.budgets.stop()
    emit({"done": True})


# -- test-only hooks -------------------------------------------------------------------------------
# The sandbox sets these from the zygote's environment, which only a test gives it (Sandbox(test_hooks=
# {uri: "phase:action"})): they stand in for model code that hangs, crashes or eats memory in a step.
HOOKS: dict[str, str] = {}
_HOOK_TARGET = [""]


def hook(phase: str) -> None:
    wanted_phase, _, action = HOOKS.get(_HOOK_TARGET[0], "").partition(":")
    if wanted_phase != phase:
        return
    if action == "sleep":
        import time

        time.sleep(3600)
    elif action == "spin":  # busy in C, holding the interpreter: only a kernel timer or signal ends it
        import re

        re.match(r"(a+)+$", "a" * 64 + "b")
    elif action == "segfault":
        import ctypes

        ctypes.string_at(0)
    elif action == "no-validation":
        from training_gate.inspector.structures import disable_for_tests

        disable_for_tests()
    elif action == "enospc":
        raise OSError(errno.ENOSPC, "No space left on device")
    elif action == "missing":  # an image without this framework's reader
        raise ImportError("No module named the reader (removed for this test)")
    elif action == "allocate":
        blocks = []
        while True:
            blocks.append(np.ones(1 << 24))  # touched pages: RSS grows, not just address space
