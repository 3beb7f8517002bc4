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
import io
import signal
import tarfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from training_gate.archive import RATIO_FLOOR, UnsafeArchive, WorkSpaceExhausted, unpack_stream
from training_gate.domain.models import (
    NO_SMOKE_PREDICTION_DETAIL,
    NOT_A_SKLEARN_MODEL_DETAIL,
    READER_NOT_INSTALLED_DETAIL,
    CheckStatus,
    HoldoutConfig,
)
from training_gate.inspector import pickles
from training_gate.inspector.config import CHECK_ORDER, WORK_SPACE_ADVICE, InspectConfig
from training_gate.inspector.frameworks import HEAD_BYTES, REGISTRY, SCIKIT_LEARN, FileFacts, ReaderMissing
from training_gate.inspector.holdout import holdout_check
from training_gate.inspector.native.errors import NativeRefusal
from training_gate.inspector.recognise import (
    PICKLE_SUFFIXES,
    Content,
    Decision,
    classify,
    decide,
    framework_of_refusal,
)
from training_gate.inspector.smoke import failure, has_method, reference_check, smoke_prediction
from training_gate.logic.evaluation_files import read_evaluation_files

__all__ = ["has_method", "run_child", "smoke_prediction"]
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)

Emit = Callable[[dict[str, Any]], None]


class EnvironmentFailure(Exception):
    """The child's environment failed (the disk filled): the parent raises it as a gate error."""


class _Budgets:
    """One kernel timer for the phase in progress: a load inside the unpack pauses the unpack's clock.

    Every phase starts with a budget (there is no way to start one without): a hostile slow model costs
    the budget of the phase it is in, named by its setting, never the whole time limit."""

    def __init__(self, emit: Emit, enabled: bool):
        self.emit = emit
        self.enabled = enabled
        self.paused: list[tuple[str, float, str]] = []
        self.current: tuple[str, float, str] | None = None
        self.started = 0.0

    def start(self, phase: str, seconds: float, key: str) -> None:
        self.emit({"phase": phase, "budget_s": round(seconds, 3), "budget_key": key})
        if self.enabled:
            signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.001))
        self.current = (phase, seconds, key)
        self.started = time.monotonic()

    def extend(self, seconds: float, key: str) -> None:
        """The phase in progress is now known to need `seconds` from its start (its rows were counted)."""
        assert self.current is not None
        left = seconds - (time.monotonic() - self.started)
        self.emit({"phase": self.current[0], "budget_s": round(seconds, 3), "budget_key": key})
        if self.enabled:
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001))
        self.current = (self.current[0], seconds, key)

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
        else:
            self.stop()

    def stop(self) -> None:
        if self.enabled:
            signal.setitimer(signal.ITIMER_REAL, 0.0)
        self.current = None


# A zip or tar inside another is followed this deep (torch.save inside a .zip); deeper, it cannot be vouched for.
CONTAINER_DEPTH_MAX = 2
# A zip or tar inside another is read into memory to be opened: at most this large.
NESTED_CONTAINER_MAX_BYTES = 64 << 20


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
        self.contents: dict[str, Content] = {}
        self.loaded: dict[str, Any] = {}  # file -> LoadedModel, or the exception that refused it
        # Pickles inside the artifact's zips (torch.save's data.pkl, .npz object arrays): (zip, entry) -> outcome.
        self.contained: dict[tuple[str, str], Any] = {}
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

        # Recognition reads heads and zip directories; the pickles not read while they streamed are read
        # here, each under its own load budget.
        self.budgets.start("find_model", self.config.load_time_s, "load_time_s")
        self._read_pickles(names)
        decision = decide(
            [self.files[n] for n in names], self.loaded, self.request.get("training_image"), self.config.model_file
        )
        checkpoint = decision.judged and bool(getattr(decision.framework, "checkpoint", False))
        for name in decision.load_later:
            if checkpoint and _read_as_checkpoint(self.files[name]):
                continue  # the checkpoint's restricted reader reads it, with torch's weights-only rules
            self._load_from_disk(name)
        if decision.status != CheckStatus.FAIL:
            self._read_containers(names, decision, checkpoint)
        self.emit({"recognition": decision.recognition()})
        self.check("find_model", decision.status, decision.detail)
        if decision.status == CheckStatus.FAIL:
            self.stop("find_model")
            return
        refused, left = self._refusals(decision)
        if checkpoint:
            self._judge_checkpoint(decision, refused)
            return
        if decision.framework is not SCIKIT_LEARN or not decision.judged:
            if decision.judged and decision.framework is not None and decision.model_file:
                self._judge_native(decision, refused, names)
            else:
                self._not_judged(refused, left)
            return

        self.budgets.start("load", self.config.load_time_s, "load_time_s")
        model_file = decision.model_file or ""
        if refused or model_file not in self.loaded:
            name, why = refused[0] if refused else (model_file, "the model file was not loaded")
            self.check("load", CheckStatus.FAIL, f"could not load {name}: {why}")
            self.stop("load")
            return
        loaded = self.loaded[model_file]
        model = loaded.model
        self.emit({"model": {**SCIKIT_LEARN.describe(loaded), "format": sklearn_format(self.files[model_file])}})
        auxiliary = len(self.loaded) + len(self.contained) - 1
        others = f" (and {auxiliary} auxiliary pickle(s))" if auxiliary else ""
        self.check("load", CheckStatus.PASS, f"loaded {type(model).__name__} through the allowlist{others}")
        self._version(loaded)

        self.budgets.start("smoke_prediction", self.config.smoke_time_s, "smoke_time_s")
        hook("smoke_prediction")
        self.check("smoke_prediction", *SCIKIT_LEARN.predict(model, self.config))

        self._reference(model, names)
        self._holdout(model)
        self.budgets.stop()

    def _judge_native(self, decision: Decision, refused: list[tuple[str, str]], names: list[str]) -> None:
        """Another framework the gate judges: its plug-in validates the bytes with the gate's own parser,
        then its reader loads exactly what was validated; the same checks follow as for scikit-learn."""
        framework, facts = decision.framework, self.files[decision.model_file or ""]
        assert framework is not None
        if refused:  # an auxiliary pickle the allowlist refused: serving code would load it too
            name, why = refused[0]
            self.check("load", CheckStatus.FAIL, f"could not load {name}: {why}")
            self.stop("load")
            return
        seconds, key = self.config.load_budget(facts.size)
        self.budgets.start("load", seconds, key)
        hook("load")
        try:
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
        self._reference(estimator, names)
        self._holdout(estimator)
        self.budgets.stop()

    # -- the verdict of the pickles that are not the model ---------------------------------------------------

    def _refusals(self, decision: Decision) -> tuple[list[tuple[str, str]], list[str]]:
        """(file, why) for each refused pickle that rejects the artifact, the model's own first; and the
        pickles left to a framework's own reader. When nothing is judged (another framework's model), the
        pickles of the files recognised as that framework's are its reader's to read, and so is any pickle
        the loader refused at one of an unjudged framework's classes; beside a judged model, every refusal
        rejects: serving code loads auxiliary files too, and the gate cannot vouch for what it could not read."""
        model_file = decision.model_file or ""
        checkpoint = decision.judged and bool(getattr(decision.framework, "checkpoint", False))
        theirs = {c.file for c in decision.candidates if c.framework is decision.framework}
        # Files of a framework that is not the judged one: an unjudged framework's, or a checkpoint's beside
        # another framework's model (the checkpoint readers judge only the model's own framework's files).
        unjudged = {
            c.file: c.framework
            for c in decision.candidates
            if not c.judged or (c.framework is not decision.framework and getattr(c.framework, "checkpoint", False))
        }
        outcomes = [(name, name, o) for name, o in self.loaded.items()]
        outcomes += [((z, e), f"{z} (its {e})" if e else z, o) for (z, e), o in self.contained.items()]
        refused: list[tuple[str, str]] = []
        left: list[str] = []
        for key, label, outcome in outcomes:
            if not isinstance(outcome, BaseException):
                continue
            owner = key[0] if isinstance(key, tuple) else key
            if checkpoint and (owner == model_file or _read_as_checkpoint(self.files[owner])):
                continue  # the checkpoint's readers read it as its own reader does (a zip, not raw bytes)
            holding = framework_of_refusal(outcome)
            if not decision.judged and (owner == model_file or owner in theirs or holding is not None):
                left.append(label)
                continue
            why = failure(outcome, self._memory())
            framework = holding[0] if holding is not None else unjudged.get(owner)
            if framework is None and owner in self.files and _read_as_checkpoint(self.files[owner]):
                torch = next(f for f in REGISTRY if f.name == "PyTorch")  # an optimizer.pt is named by no candidate
                framework = torch if decision.framework is not torch else None
            if framework is not None:
                model = (
                    f"the {decision.framework.name} model"
                    if decision.framework is not None and not decision.judged
                    else "the judged model"
                    if decision.judged
                    else "the model"
                )
                reads = (
                    f"the gate reads {framework.name} files by their bytes only beside a {framework.name} model"
                    if getattr(framework, "checkpoint", False)
                    else f"the gate does not read {framework.name} pickles yet"
                )
                why += (
                    f": a {framework.name} file beside {model}; {reads}, so it cannot vouch for this file, which "
                    "serving code may load too (remove it from the artifact)"
                )
            refused.append((label, why))
        refused.sort(key=lambda item: item[0] != model_file)
        return refused, left

    def _judge_checkpoint(self, decision: Decision, refused: list[tuple[str, str]]) -> None:
        """A checkpoint (PyTorch, Hugging Face, TensorFlow, Keras): judged by the gate's own readers, its
        code never run; the load check carries the verdict, nothing predicts."""
        framework, facts = decision.framework, self.files[decision.model_file or ""]
        assert framework is not None
        if refused:  # a pickle the allowlist refused: serving code would load it too
            name, why = refused[0]
            self.check("load", CheckStatus.FAIL, f"could not load {name}: {why}")
            self.stop("load")
            return
        # The model spans files (shards, variables/): its budget counts every byte of the artifact.
        seconds, key = self.config.load_budget(sum(f.size for f in self.files.values()))
        self.budgets.start("load", seconds, key)
        hook("load")
        try:
            judgement = framework.load(None, facts, self.config)  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - a file the readers choke on is the load check's verdict
            self.check("load", CheckStatus.FAIL, f"could not read {facts.name}: {failure(exc, self._memory())}")
            self.stop("load")
            return
        self.emit({"model": framework.describe(judgement)})
        status, detail = framework.loaded_detail(judgement)
        findings = [{"code": code, "check": "load", "detail": text} for code, text in judgement.findings]
        self.check("load", status, detail)
        if status == CheckStatus.FAIL:
            self.emit({"findings": findings})
            self.stop("load")
            return
        self.check("version_skew", *framework.version_check(judgement))
        smoke_status, smoke_detail = framework.predict(judgement, self.config)
        findings.append({"code": "NO_SMOKE_PREDICTION", "check": "smoke_prediction", "detail": smoke_detail})
        self.emit({"findings": findings})
        self.check("smoke_prediction", smoke_status, smoke_detail)
        self.check("reference_predictions", CheckStatus.SKIPPED, f"{NO_SMOKE_PREDICTION_DETAIL}: nothing predicts")
        holdout = "a holdout set is configured but" if self.config.holdout else "no holdout set configured;"
        self.check("holdout", CheckStatus.SKIPPED, f"{holdout} a checkpoint is never run by the gate")
        self.budgets.stop()

    def _not_judged(self, refused: list[tuple[str, str]], left: list[str]) -> None:
        """Another framework's model: nothing to judge, but a refused auxiliary pickle still rejects."""
        if refused:
            name, why = refused[0]
            self.check("load", CheckStatus.FAIL, f"could not load {name}: {why}")
            self.stop("load")
            return
        read = len(self.loaded) + len(self.contained) - len(left)
        parts = [f"{read} auxiliary pickle(s) loaded through the allowlist"] if read else []
        if left:
            parts.append(f"left to their framework's own reader: {', '.join(left[:5])}")
        aside = f"; {'; '.join(parts)}" if parts else ""
        self.check("load", CheckStatus.SKIPPED, f"not run: {NOT_A_SKLEARN_MODEL_DETAIL}{aside}")
        self.stop("load", f"not run: {NOT_A_SKLEARN_MODEL_DETAIL}")

    def _memory(self) -> int | None:
        return self.request.get("limits", {}).get("memory_mib")

    # -- reading pickles --------------------------------------------------------------------------------------

    def _load(
        self,
        stream: Any,
        facts: FileFacts,
        into: dict[Any, Any] | None = None,
        key: Any = None,
        sequence: bool = True,
    ) -> None:
        """Load a pickle through the loader under its own budget; `sequence`: the file's raw bytes are the
        pickle, so every pickle after the first is loaded too (torch.load's legacy format reads several
        from one file, and so does code that calls pickle.load twice)."""
        seconds, budget = self.config.load_budget(facts.size)
        self.budgets.nested("load", seconds, budget)  # a crash from here on is the load's
        hook("load")
        try:
            outcome: Any = SCIKIT_LEARN.load(stream, facts, self.config)
            count = 1
            while sequence and _left(stream, facts.size):
                count += 1
                try:
                    SCIKIT_LEARN.load(stream, facts, self.config)
                except UnsafeArchive:
                    raise
                except Exception as exc:  # named as the file's refusal
                    raise FollowingPickle(count, exc) from exc
        except UnsafeArchive:
            raise  # the archive itself broke (truncated, bomb): that is the unpack check's verdict
        except Exception as exc:  # noqa: BLE001 - a refused or corrupt file is the load check's verdict
            outcome = exc
        (self.loaded if into is None else into)[facts.name if key is None else key] = outcome
        self.budgets.resume()

    def _load_from_disk(self, name: str) -> None:
        facts = self.files[name]
        if facts.head.startswith(pickles.TORCH_LEGACY_MAGIC):
            # torch.save < 1.6: a magic number, then pickles read with a persistent_load the loader does
            # not have. Beside the model it judges, the gate cannot let it through unread.
            self.loaded[name] = ValueError(
                "a legacy torch.save file: the gate cannot read its pickles, so it cannot vouch for it"
            )
            return
        content = self.contents.get(name)
        with open(self.workdir / name, "rb") as stream:
            self._load(stream, facts, sequence=content is None or content.kind == "pickle")

    def _read_pickles(self, names: list[str]) -> None:
        """Every file that is or may hold a pickle and was not read as it streamed: compressed as joblib
        compresses, a .npy of objects, one whose head did not decide, one that is two things at once, one
        only its name calls a pickle. A pickle another framework's module opens is left to recognition
        (`decide`); containers wait for it (`_read_containers`)."""
        every = frozenset(names)
        for name in names:
            content = self.contents.get(name)
            if name in self.loaded or content is None:
                continue
            facts = self.files[name]
            if content.kind in ("pickle", "skops"):
                if not content.foreign:
                    self._load_from_disk(name)  # files the parent copied: none was read as it streamed
            elif content.kind in ("compressed", "npy", "undecided", "ambiguous"):
                self._examine(name, content)
            elif content.kind == "other" and facts.suffix in PICKLE_SUFFIXES and not _recognised(facts, every):
                self._load_from_disk(name)  # named as a pickle, no format's content: the loader says why

    def _read_containers(self, names: list[str], decision: Decision, checkpoint: bool = False) -> None:
        """The pickles inside the artifact's zips and tars, but those of a model the gate does not judge
        (its framework's reader will), and beside a judged checkpoint those of torch's own files (its
        restricted reader reads them, with torch's weights-only rules)."""
        for name in names:
            content = self.contents.get(name)
            if content is None or content.kind not in ("zip", "tar", "skops"):
                continue
            if name == decision.model_file and not decision.judged:
                continue
            if checkpoint and _read_as_checkpoint(self.files[name]):
                continue
            # A skops file was loaded as one; its zip may hold more than skops reads.
            self._examine(name, Content("zip", detail=content.detail) if content.kind == "skops" else content)

    def _examine(self, name: str, content: Content) -> None:
        """Whether a file holds a pickle, proven under its own load budget; a file that cannot be read to
        prove it holds none is refused by name, as a pickle would be."""
        facts = self.files[name]
        seconds, key = self.config.load_budget(facts.size)
        self.budgets.nested("load", seconds, key)
        try:
            found = self._judge(name, lambda: open(self.workdir / name, "rb"), facts.size, content, None, 0)
        except pickles.CannotRead as exc:
            if content.kind in ("zip", "tar", "skops"):
                self.contained[(name, "")] = exc
            else:
                self.loaded[name] = exc
        else:
            if found is not None:  # a top-level pickle another framework's module opens: recognition's
                facts.pickle_module = found
        self.budgets.resume()

    def _judge(
        self, label: str, opener: Callable[[], Any], size: int, content: Content, inside: str | None, depth: int
    ) -> str | None:
        """Read `label` (a file, or an entry of the artifact's container `inside`) as each loader would and
        load every pickle it holds through the allowlist. Returns the module of a top-level pickle that is
        another framework's (left to recognition)."""
        contained = inside is not None
        if content.kind == "ambiguous":
            raise pickles.CannotRead(f"{content.detail}: two readers would read two different things")
        if content.kind == "undecided":
            with opener() as stream:
                reading = pickles.read_pickle(stream, persistent=contained)
            if not reading.is_pickle:
                return None
            content = Content("pickle", reading.module, reading.reason)
        if content.kind in ("pickle", "skops"):
            if not contained and content.foreign:
                return content.module
            self._load_at(label, opener, size, 0, inside, sequence=content.kind == "pickle")
        if content.compressor is not None:  # compressed, or a tar whose first bytes are a compressor's too
            with opener() as raw:
                reading = pickles.read_compressed(raw, content.compressor, *self._caps())
            if reading.is_pickle:
                if not contained and Content("pickle", reading.module).foreign:
                    return reading.module
                self._load_at(label, opener, size, 0, inside, sequence=False)
        if content.kind == "npy":
            with opener() as raw:
                offset = pickles.npy_pickle_offset(raw)
            if offset is not None:  # numpy.load(allow_pickle=True) unpickles what follows the header
                self._load_at(label, opener, size, offset, inside, sequence=False)
        elif content.kind == "zip":
            self._judge_zip(label, opener, size, depth, inside or label)
        elif content.kind == "tar":
            self._judge_tar(label, opener, size, depth, inside or label)
        return None

    def _caps(self) -> tuple[int, int, int]:
        return self.config.max_member_bytes, self.config.max_ratio, RATIO_FLOOR

    def _container(self, opener: Callable[[], Any], size: int, depth: int) -> Any:
        """The container to open: the file itself, or, inside another container, its bytes in memory."""
        if depth >= CONTAINER_DEPTH_MAX:
            raise pickles.CannotRead(
                f"a container nested {depth + 1} deep: the gate follows zips and tars {CONTAINER_DEPTH_MAX} deep"
            )
        if not depth:
            return opener()
        if size > NESTED_CONTAINER_MAX_BYTES:
            raise pickles.CannotRead(f"a zip or tar inside another larger than {NESTED_CONTAINER_MAX_BYTES} bytes")
        with opener() as raw:
            return io.BytesIO(raw.read(size))

    def _judge_zip(self, label: str, opener: Callable[[], Any], size: int, depth: int, top: str) -> None:
        """Every entry of a zip (torch.save's data.pkl, an .npz's arrays), classified and judged like a file.
        An entry that cannot be read is refused by name; a zip that cannot be read at all raises."""
        with self._container(opener, size, depth) as source:
            try:
                archive = zipfile.ZipFile(source)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise pickles.CannotRead(f"a zip that cannot be read: {exc}") from exc
            with archive:
                for info in pickles.zip_entries(archive, self.config.max_container_entries, *self._caps()):
                    name = info.filename if depth == 0 else f"{label}/{info.filename}"

                    def entry(info: zipfile.ZipInfo = info) -> pickles.Window:
                        return pickles.Window(archive.open(info), info.file_size)

                    self._judge_entry(name, entry, info.file_size, depth, top)

    def _judge_tar(self, label: str, opener: Callable[[], Any], size: int, depth: int, top: str) -> None:
        """Every member of a tar inside the artifact (torch.load reads its oldest format from one)."""
        with self._container(opener, size, depth) as source:
            for member, member_opener in pickles.tar_members(
                source, self.config.max_container_entries, self.config.max_member_bytes
            ):
                name = member.name if depth == 0 else f"{label}/{member.name}"
                self._judge_entry(name, member_opener, member.size, depth, top)

    def _judge_entry(self, name: str, opener: Callable[[], Any], size: int, depth: int, top: str) -> None:
        try:
            with opener() as stream:
                head = stream.read(HEAD_BYTES)
            inner = classify(name, head, size, contained=True)
            if inner.kind != "other":
                self._judge(name, opener, size, inner, top, depth + 1)
        except pickles.CannotRead as exc:
            self.contained[(top, name)] = exc
        except (zipfile.BadZipFile, tarfile.TarError, NotImplementedError, RuntimeError, OSError, EOFError) as exc:
            self.contained[(top, name)] = pickles.CannotRead(f"it cannot be read: {type(exc).__name__}: {exc}")

    def _load_at(
        self, name: str, opener: Callable[[], Any], size: int, offset: int, inside: str | None, sequence: bool
    ) -> None:
        """Load the pickle(s) that start `offset` bytes into `name` through the allowlist."""
        facts = FileFacts(name, size - offset, b"")
        with opener() as stream:
            if offset:
                stream.read(offset)
            reader = stream if inside is None and not offset else pickles.Window(stream, size - offset)
            if inside is None:
                self._load(reader, facts, sequence=sequence)
            else:
                self._load(reader, facts, self.contained, (inside, name), sequence=sequence)

    # -- unpacking ---------------------------------------------------------------------------------------------

    def _unpack(self, data: BinaryIO | None) -> list[str] | None:
        self.budgets.start("unpack", self.config.unpack_time_s, "unpack_time_s")
        if data is None:  # the parent copied the files (an uncompressed artifact under a prefix)
            return self._copied(list(self.request["files"]))

        def claim(name: str, head: bytes, size: int) -> Callable[[BinaryIO], None] | None:
            content = classify(name, head, size)
            facts = FileFacts(name, size, head[:HEAD_BYTES], self.workdir / name, _module_of(content))
            self.files[name] = facts
            self.contents[name] = content
            if content.kind == "pickle" and not content.foreign:
                # Read as it streams, never written. A skops file is written: its zip's other entries are
                # read too (`_read_containers`).
                facts.path = None
                return lambda stream: self._load(stream, facts)
            return None

        limits = self.config.limits()
        if self.request.get("max_written_bytes") is not None:
            limits = limits.with_written(int(self.request["max_written_bytes"]))
        try:
            hook("unpack")
            unpacked = unpack_stream(data, self.workdir, limits, claim, digest=False, head_bytes=HEAD_BYTES)
        except WorkSpaceExhausted as exc:
            raise EnvironmentFailure(f"{exc} {WORK_SPACE_ADVICE}") from exc
        except UnsafeArchive as exc:
            self.check("unpack", CheckStatus.FAIL, f"{exc.check}: {exc.detail}")
            self.stop("unpack")
            return None
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                raise EnvironmentFailure(
                    f"ENOSPC: no space left in the work directory while unpacking ({exc.strerror}). {WORK_SPACE_ADVICE}"
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
            size = path.stat().st_size
            content = classify(name, head, size)
            self.files[name] = FileFacts(name, size, head, path, _module_of(content))
            self.contents[name] = content
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

    # -- the checks after the smoke prediction ----------------------------------------------------------------

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

    def _rows_budget(self, phase: str, base: float, base_key: str) -> Callable[[int], None]:
        """Once a phase has counted its rows, its budget grows with them: base + per 1,000 rows."""

        def counted(rows: int) -> None:
            seconds, key = self.config.rows_budget(base, base_key, rows)
            self.budgets.extend(seconds, key)
            hook(f"{phase}_rows")

        return counted

    def _reference(self, model: Any, names: list[str]) -> None:
        self.budgets.start("reference_predictions", self.config.reference_time_s, "reference_time_s")
        hook("reference_predictions")
        counted = self._rows_budget("reference_predictions", self.config.reference_time_s, "reference_time_s")
        try:
            status, detail = reference_check(
                model,
                self.workdir,
                names,
                self.config.reference_tolerance,
                max_rows=self.config.max_reference_rows,
                on_rows=counted,
            )
        except Exception as exc:  # noqa: BLE001
            status, detail = CheckStatus.FAIL, f"reference check raised {failure(exc, self._memory())}"
        self.check("reference_predictions", status, detail)

    def _holdout(self, model: Any) -> None:
        self.budgets.start("holdout", self.config.holdout_time_s, "holdout_time_s")
        hook("holdout")
        holdout: HoldoutConfig | None = self.config.holdout
        if holdout is None:
            self.check("holdout", CheckStatus.SKIPPED, "no holdout set configured")
            return
        prepared = self.request.get("holdout") or {}
        if "error" in prepared:
            self.check("holdout", CheckStatus.FAIL, prepared["error"])
            return
        path = Path(prepared["path"])
        counted = self._rows_budget("holdout", self.config.holdout_time_s, "holdout_time_s")
        status, detail, scored = holdout_check(model, holdout, lambda _uri: open(path, "rb"), on_rows=counted)
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


class FollowingPickle(ValueError):
    """A pickle after the first in one file was refused: serving code that reads on would meet it."""

    def __init__(self, number: int, cause: BaseException):
        super().__init__(f"its pickle #{number} (after the first): {type(cause).__name__}: {cause}")
        self.cause = cause


def _read_as_checkpoint(facts: FileFacts) -> bool:
    """A torch file the checkpoint readers read (`checkpoints.judge.scan_auxiliaries`): the legacy format,
    a torch.save zip, a pickle naming torch first, the oldest tar under a torch name."""
    from training_gate.inspector.checkpoints.judge import TORCH_SUFFIXES, tar_header

    if facts.head.startswith(pickles.TORCH_LEGACY_MAGIC) or (facts.pickle_module or "").split(".")[0] == "torch":
        return True
    if any(entry.endswith("/data.pkl") for entry in facts.zip_names()):
        return True
    return facts.suffix in TORCH_SUFFIXES and tar_header(facts.head[:512])


def _left(stream: Any, size: int) -> int:
    """Bytes of the file after what the loader read."""
    remaining = getattr(stream, "remaining", None)
    if remaining is not None:
        return int(remaining)
    return size - stream.tell()


def _module_of(content: Content) -> str | None:
    """The first global of a pickle, for recognition: what a framework's `modules` match."""
    return content.module if content.kind == "pickle" else None


def _recognised(facts: FileFacts, names: frozenset[str]) -> bool:
    """Whether another framework recognises the file by its content (not by its name alone)."""
    for framework in REGISTRY[1:]:
        if framework.recognise(facts, names) and not framework.by_name_only(facts):
            return True
    return False


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
