"""One checkpoint judged by its bytes: the model's files, every auxiliary pickle beside it, the numbers.

`judge` reads the model file the recogniser chose (and the files its format spans: a SavedModel's
`variables/`, a sharded checkpoint's shards, a Hugging Face directory's config.json), then every other
torch file in the artifact (optimizer, scheduler, RNG state, training arguments) with the restricted
reader, then each tensor's numbers. Nothing is imported from, or run by, the artifact.

The judgement says what it found as a report (framework, format, tensors, parameters, dtypes, bytes)
and as verdicts: rejections (hostile or broken bytes, NaN), inconclusive findings (code that runs at
load, content the gate does not read), warnings, and findings the policy weighs by code.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from training_gate.inspector.checkpoints import numeric
from training_gate.inspector.checkpoints.errors import Reason, Refused
from training_gate.inspector.checkpoints.pickle_weights import Profile, read_pickle
from training_gate.inspector.checkpoints.safetensors import check_shards, read_index, read_safetensors
from training_gate.inspector.checkpoints.torch_files import (
    LEGACY_MAGIC,
    TorchFile,
    read_legacy,
    read_tar,
    read_zip,
    tensors_of,
)
from training_gate.inspector.frameworks import HEAD_BYTES

# Codes of findings a policy weighs (artifact_checks): what the gate reports, the policy decides.
TORCHSCRIPT = "TORCHSCRIPT"
REMOTE_CODE = "REMOTE_CODE"
INFINITE_VALUES = "INFINITE_VALUES"
AUXILIARY_PROFILES = (
    (re.compile(r"training_args\.bin"), Profile.SCAN),
    (re.compile(r"rng_state(_\d+)?\.pth"), Profile.RNG),
)
SHARD = re.compile(r"(.+)-\d{5}-of-\d{5}\.(safetensors|bin)")
TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
MAX_PLAIN_PICKLE = 64 << 20


@dataclass
class Judgement:
    framework: str
    format: str = ""
    model_file: str = ""
    writer: str | None = None
    tensors: int = 0
    parameters: int = 0
    dtypes: dict[str, int] = field(default_factory=dict)
    tensor_bytes: int = 0
    files: list[str] = field(default_factory=list)
    rejects: list[str] = field(default_factory=list)
    inconclusive: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    findings: list[tuple[str, str]] = field(default_factory=list)
    serving_code: list[str] = field(default_factory=list)

    def refused(self, exc: Refused, file: str) -> None:
        sentence = f"{file}: {exc}" if exc.where != file and not str(exc).startswith(file) else str(exc)
        if exc.reason is Reason.UNSUPPORTED:
            self.inconclusive.append(f"{sentence} (the gate does not read this; a person must look)")
        else:
            self.rejects.append(sentence)

    def add_places(self, places: list[numeric.TensorPlace]) -> None:
        results = []
        for place in places:
            self.tensors += 1
            self.parameters += place.numel
            self.dtypes[place.dtype.name] = self.dtypes.get(place.dtype.name, 0) + place.numel
            self.tensor_bytes += place.numel * place.dtype.itemsize
            results.append((place, numeric.scan(place)))
        verdicts = numeric.judge(results)
        self.rejects += verdicts.rejects
        self.warnings += verdicts.warnings
        for infinite in verdicts.infinite:
            self.warnings.append(infinite)
            self.findings.append((INFINITE_VALUES, infinite))
        if verdicts.unread:
            self.notes.append(f"numbers not read for {len(verdicts.unread)} tensor(s) of types without a reading")

    def describe(self) -> dict[str, Any]:
        return {
            "framework": self.framework,
            "format": self.format,
            "writer": self.writer,
            "tensors": self.tensors,
            "parameters": self.parameters,
            "dtypes": dict(sorted(self.dtypes.items(), key=lambda kv: -kv[1])),
            "tensor_bytes": self.tensor_bytes,
            "files_read": self.files[:50],
            "serving_code": self.serving_code,
            "smoke_prediction": "not run: the model's code never runs in the gate",
        }

    def summary(self) -> str:
        dtypes = ", ".join(f"{name} {count:,}" for name, count in sorted(self.dtypes.items(), key=lambda kv: -kv[1]))
        return (
            f"{self.format} read by the gate's own reader, no framework code ran: {self.tensors} tensor(s), "
            f"{self.parameters:,} parameters ({dtypes or 'none'}), {self.tensor_bytes:,} bytes of weights"
        )


def is_torch_file(head: bytes, names_zip: list[str]) -> bool:
    return head.startswith(LEGACY_MAGIC) or any(n.endswith("/data.pkl") for n in names_zip)


def read_torch(path: Path, where: str, scratch: Path, profile: Profile = Profile.WEIGHTS) -> TorchFile:
    """The file read in torch.load's own order: a zip by its first four bytes; otherwise the tar format
    whenever the first block is a tar header (torch tries `tarfile.open` before anything else, so a file
    that is a tar and starts like a legacy file is a tar to torch); then the legacy magic number."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head.startswith(b"PK\x03\x04"):
        return read_zip(path, where, profile)
    if tar_header(head):
        return read_tar(path, where, scratch)
    if head.startswith(LEGACY_MAGIC):
        return read_legacy(path, where)
    raise Refused(Reason.MALFORMED, "neither a torch zip, the legacy format nor the tar format", where)


def tar_header(block: bytes) -> bool:
    """Whether `block` passes tarfile's test of a header, its checksum (`tarfile.calc_chksums`, the field
    read as `nti` reads it), leniently: any Python's tarfile that accepts it, torch reads as a tar."""
    if len(block) < 512 or block.count(0) == 512:
        return False
    field = block[148:156]
    if field[0] in (0o200, 0o377):  # base-256
        value = int.from_bytes(field[1:], "big") - (256**7 if field[0] == 0o377 else 0)
    else:
        try:
            value = int(field.split(b"\0", 1)[0].decode("ascii").strip() or "0", 8)
        except (UnicodeDecodeError, ValueError):
            return False
    unsigned = 256 + sum(block[:148]) + sum(block[156:512])
    signed = 256 + sum(struct.unpack_from("148b8x356b", block))
    return value in (unsigned, signed)


# -- PyTorch ---------------------------------------------------------------------------------------------------


def judge_torch(judgement: Judgement, workdir: Path, name: str, scratch: Path) -> TorchFile:
    path = workdir / name
    torch = read_torch(path, name, scratch)
    judgement.format = torch.format
    judgement.writer = f"torch file format {torch.version}" if torch.version else None
    judgement.files.append(name)
    judgement.notes += torch.notes
    if torch.torchscript:
        code = ", ".join(torch.code_files[:5]) or "constants.pkl"
        sentence = (
            f"{name} is a TorchScript archive: its code ({code}) runs when torch.jit.load reads it; the weights "
            "were read as data, the code was not run (inconclusive unless the policy's "
            "artifact_checks.torchscript is 'pass')"
        )
        judgement.warnings.append(sentence)
        judgement.findings.append((TORCHSCRIPT, sentence))
    judgement.add_places(torch.places)
    return torch


def judge_safetensors(judgement: Judgement, workdir: Path, name: str) -> dict[str, tuple[int, ...]]:
    read = read_safetensors(workdir / name, name)
    judgement.format = judgement.format or "safetensors"
    judgement.files.append(name)
    judgement.add_places(read.places)
    return {p.name: p.size for p in read.places}


def judge_index(judgement: Judgement, workdir: Path, name: str, scratch: Path) -> dict[str, tuple[int, ...]]:
    """A sharded checkpoint: the index, then every shard it names, then the two compared."""
    index = read_index(workdir / name, name)
    directory = PurePosixPath(name).parent
    held: dict[str, list[str]] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    judgement.files.append(name)
    for shard in index.shards:
        relative = str(directory / shard) if str(directory) != "." else shard
        if not (workdir / relative).is_file():
            raise Refused(Reason.SHARDS_INCONSISTENT, f"the index names {shard}, which is not in the artifact", name)
        if shard.endswith(".safetensors"):
            read = read_safetensors(workdir / relative, relative)
            places = read.places
        else:
            torch = read_torch(workdir / relative, relative, scratch)
            places = torch.places
        judgement.files.append(relative)
        held[shard] = [p.name for p in places]
        shapes.update({p.name: p.size for p in places})
        judgement.add_places(places)
    check_shards(index, held, name)
    kind = "safetensors" if index.shards and index.shards[0].endswith(".safetensors") else "torch"
    judgement.format = f"sharded {kind} ({len(index.shards)} shards)"
    total = judgement.tensor_bytes
    if index.total_size is not None and index.total_size != total:
        judgement.warnings.append(f"the index states total_size {index.total_size}, the shards hold {total} bytes")
    return shapes


# -- auxiliary torch files -------------------------------------------------------------------------------------


def scan_auxiliaries(judgement: Judgement, workdir: Path, names: list[str], spanned: set[str], scratch: Path) -> None:
    """Every torch file the model did not span (optimizer, scheduler, RNG, training arguments) is read by
    the restricted reader: reported, and deciding the verdict only when hostile or broken."""
    read = []
    for name in names:
        if name in spanned or name == judgement.model_file:
            continue
        path = workdir / name
        try:
            with open(path, "rb") as handle:
                head = handle.read(HEAD_BYTES)  # what recognition saw of it
        except OSError:
            continue
        is_zip = head.startswith(b"PK\x03\x04")
        torch_suffix = PurePosixPath(name).suffix.lower() in TORCH_SUFFIXES
        if not (
            head.startswith(LEGACY_MAGIC) or (is_zip and _zip_has_data_pkl(path)) or (torch_suffix and tar_header(head))
        ):
            _scan_plain_pickle(judgement, path, name, head, read)
            continue
        base = PurePosixPath(name).name
        profile = next((p for pattern, p in AUXILIARY_PROFILES if pattern.fullmatch(base)), Profile.WEIGHTS)
        try:
            torch = read_torch(path, name, scratch, profile)
        except Refused as exc:
            judgement.rejects.append(f"auxiliary {name} refused by the restricted reader: {exc}")
            continue
        tensors = len(list(tensors_of(torch.root)))
        what = "arguments (read as data, never loaded)" if profile is Profile.SCAN else f"{tensors} tensor(s)"
        read.append(f"{name} ({what})")
        if torch.torchscript:
            sentence = f"auxiliary {name} is a TorchScript archive (code that runs when loaded)"
            judgement.warnings.append(sentence)
            judgement.findings.append((TORCHSCRIPT, sentence))
    if read:
        shown = ", ".join(read[:6]) + (f" and {len(read) - 6} more" if len(read) > 6 else "")
        judgement.notes.append(f"auxiliary torch files read by the restricted reader: {shown}")


def _scan_plain_pickle(judgement: Judgement, path: Path, name: str, head: bytes, read: list[str]) -> None:
    """A pickle that is no torch container but names torch first: recognition leaves it to torch's reader
    (`recognise.classify` calls it foreign), and `torch.load` or `pickle.load` would unpickle it, so the
    restricted reader reads it here. The scikit-learn loader reads every other pickle, whatever its name."""
    from training_gate.inspector.recognise import classify

    content = classify(name, head, path.stat().st_size)
    if content.kind != "pickle" or (content.module or "").split(".")[0] != "torch":
        return
    base = PurePosixPath(name).name
    profile = next((p for pattern, p in AUXILIARY_PROFILES if pattern.fullmatch(base)), Profile.WEIGHTS)
    try:
        if path.stat().st_size > MAX_PLAIN_PICKLE:
            raise Refused(Reason.LIMIT, f"a pickle of more than {MAX_PLAIN_PICKLE} bytes", name)
        read_pickle(path.read_bytes(), _no_storage(name), profile, name)
    except Refused as exc:
        judgement.rejects.append(
            f"{name} is a pickle that torch.load or pickle.load would run, refused by the restricted reader: {exc}"
        )
        return
    read.append(f"{name} (a plain pickle of data, not a torch file)")


def _no_storage(where: str) -> Any:
    def refuse_storage(_pid: Any) -> Any:
        raise Refused(Reason.PICKLE_SHAPE, "a storage outside a torch file", where)

    return refuse_storage


def _zip_has_data_pkl(path: Path) -> bool:
    from training_gate.inspector.checkpoints.zipread import DEFLATED, STORED, ZipArchive

    try:
        archive = ZipArchive(path, str(path.name), frozenset({STORED, DEFLATED}))
    except Refused:
        return path.suffix in (".pt", ".pth", ".bin", ".ckpt")  # a broken torch file is still one to refuse
    return any(e.name.endswith("/data.pkl") for e in archive.entries)


def spanned_shards(names: list[str], model_file: str) -> set[str]:
    directory = PurePosixPath(model_file).parent
    return {n for n in names if PurePosixPath(n).parent == directory and SHARD.fullmatch(PurePosixPath(n).name)}
