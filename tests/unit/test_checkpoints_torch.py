"""The weights-only pickle reader and torch's three layouts: what torch.save writes reads as data; every
other global, opcode, state or storage is refused by name, and nothing the file names ever runs.

Mutation tests for the published ways past `torch.load(weights_only=True)`: CVE-2025-32434 (TorchScript
ran under weights_only before torch 2.6) and CVE-2026-24747 (SETITEM on non-dicts and storages smaller
than their tensors corrupted memory before torch 2.10).
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support import torch_writer as tw
from training_gate.inspector.checkpoints import judge_artifact
from training_gate.inspector.checkpoints.dtypes import BY_NAME
from training_gate.inspector.checkpoints.errors import Reason, Refused
from training_gate.inspector.checkpoints.judge import read_torch, tar_header
from training_gate.inspector.checkpoints.pickle_weights import Profile, StateDict, Storage, read_pickle
from training_gate.inspector.checkpoints.torch_files import read_legacy, read_tar, read_zip

MAGIC = pickle.dumps(tw.LEGACY_MAGIC_NUMBER, protocol=2)  # what torch.save < 1.6 writes first


def weights() -> OrderedDict:
    return tw.state_dict({"fc.weight": tw.tensor(np.arange(12, dtype=np.float32).reshape(3, 4) / 10)})


class Call:
    """Pickles as REDUCE of a global the test names, with arguments: what a payload looks like."""

    def __init__(self, qualified: str, *args: Any) -> None:
        self.func = tw.g(qualified)
        self.args = args

    def __reduce__(self) -> Any:
        return (self.func, self.args)


def zip_file(tmp_path: Path, data_pkl: bytes, records: dict[str, bytes] | None = None, prefix: str = "archive") -> Path:
    writer = tw.ZipWriter(prefix)
    writer.record("data.pkl", data_pkl)
    for name, content in (records or {}).items():
        writer.record(name, content)
    writer.record("version", b"3\n")
    path = tmp_path / "model.pt"
    path.write_bytes(writer.finish())
    return path


def saved(tmp_path: Path, obj: Any) -> Path:
    path = tmp_path / "model.pt"
    path.write_bytes(tw.torch_zip(obj, "model"))
    return path


def refused(tmp_path: Path, obj_or_pickle: Any, records: dict[str, bytes] | None = None) -> Refused:
    if isinstance(obj_or_pickle, bytes):
        path = zip_file(tmp_path, obj_or_pickle, records)
    else:
        path = saved(tmp_path, obj_or_pickle)
    with pytest.raises(Refused) as caught:
        read_zip(path, "model.pt")
    return caught.value


# -- what torch.save writes ----------------------------------------------------------------------------------


def test_a_state_dict_reads_as_records_with_its_metadata(tmp_path: Path):
    torch = read_zip(saved(tmp_path, weights()), "model.pt")
    assert isinstance(torch.root, StateDict)
    assert torch.root.attributes == {"_metadata": {"": {"version": 1}, "fc": {"version": 1}}}
    ((name, tensor),) = torch.tensors
    assert (name, tensor.size, tensor.stride, tensor.dtype.name, tensor.storage.key) == (
        "fc.weight",
        (3, 4),
        (4, 1),
        "float32",
        "0",
    )
    assert torch.version == "3" and torch.format == "torch zip"


def test_parameters_sizes_devices_sets_bytes_and_counters_are_data(tmp_path: Path):
    obj = {
        "param": tw.tensor(np.ones(2, dtype=np.float32), parameter=True, requires_grad=True),
        "size": Call("torch.Size", (2, 3)),
        "device": Call("torch.device", "cuda", 0),
        "tags": Call("builtins.set", ["a", "b"]),
        "blob": b"\x00\xffraw",
        "counts": Call("collections.Counter", {"a": 2}),
        "z": Call("builtins.complex", 1.0, -2.0),
    }
    root = read_zip(saved(tmp_path, obj), "model.pt").root
    assert root["param"].parameter and root["param"].requires_grad
    assert root["size"] == (2, 3) and root["device"].spec == "cuda:0" and root["tags"] == {"a", "b"}
    assert root["blob"] == b"\x00\xffraw" and root["counts"] == {"a": 2} and root["z"] == complex(1, -2)


def test_sets_bytearrays_and_complex_numbers_read_as_protocol_2_spells_them(tmp_path: Path):
    # Python's own pickler at torch.save's protocol names them __builtin__.set, .bytearray, .complex; torch's
    # weights_only reader maps the Python 2 names back before its lookup, and so does the gate's.
    values = {"tags": {"a", "b"}, "raw": bytearray(b"\x00\xff"), "z": complex(1.0, -2.0), "blob": b"\x01"}
    data = pickle.dumps(values, protocol=2)
    assert b"c__builtin__\nset\n" in data and b"c__builtin__\ncomplex\n" in data
    result = read_pickle(data, lambda pid: None)
    assert result.root == {"tags": {"a", "b"}, "raw": b"\x00\xff", "z": complex(1, -2), "blob": b"\x01"}
    assert {"builtins.set", "builtins.bytearray", "builtins.complex"} <= result.globals
    # The mapping gives Python 3 names, which still meet the allowlist: __builtin__.eval is builtins.eval.
    with pytest.raises(Refused, match=r"builtins\.eval"):
        read_pickle(b"\x80\x02c__builtin__\neval\nX\x02\x00\x00\x001+\x85R.", lambda pid: None)


def test_a_global_is_identified_by_its_exact_name_never_a_near_one(tmp_path: Path):
    for spoof in (
        "torch._utils._rebuild_tensor_v2x",
        "torch._utils ._rebuild_tensor_v2",
        "Torch._utils._rebuild_tensor_v2",
    ):
        assert refused(tmp_path, {"w": Call(spoof, 1)}).reason in (Reason.PICKLE_GLOBAL_REFUSED, Reason.USER_CLASS)


def test_reduce_needs_an_allowed_global_on_the_stack_not_a_string_naming_one(tmp_path: Path):
    data = b"\x80\x02X\x1f\x00\x00\x00torch._utils._rebuild_tensor_v2)R."
    assert refused(tmp_path, data).reason is Reason.PICKLE_SHAPE


# -- payloads: refused by name, never run ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "qualified",
    [
        "os.system",
        "posix.system",
        "builtins.eval",
        "builtins.exec",
        "builtins.getattr",
        "subprocess.Popen",
        "numpy.load",
        "torch.load",
        "torch.jit.load",
        "runpy._run_code",
        "pickle.loads",
        "functools.partial",
    ],
)
def test_a_payload_is_refused_by_name_and_never_runs(tmp_path: Path, qualified: str):
    marker = tmp_path / "pwned"
    error = refused(tmp_path, {"w": Call(qualified, f"touch {marker}")})
    assert error.reason in (Reason.PICKLE_GLOBAL_REFUSED, Reason.USER_CLASS)
    assert qualified in str(error)
    assert not marker.exists()


@pytest.mark.parametrize("qualified", ["__main__.Net", "torch.nn.modules.linear.Linear", "mypackage.models.Classifier"])
def test_a_whole_model_pickle_names_its_class_and_the_fix(tmp_path: Path, qualified: str):
    error = refused(tmp_path, tw.Obj(qualified, {"training": True}))
    assert error.reason is Reason.USER_CLASS
    assert qualified in str(error) and "torch.save(model.state_dict(), path)" in str(error)


def test_cve_2025_32434_a_torchscript_archive_is_never_weights(tmp_path: Path):
    # Before torch 2.6, weights_only fell back to torch.jit.load for an archive with TorchScript records.
    modules = tw.ScriptModule("Net", {"training": False, "w": tw.tensor(np.ones(4, dtype=np.float32))})
    path = tmp_path / "model.pt"
    path.write_bytes(tw.torchscript_zip(modules))
    torch = read_zip(path, "model.pt")
    assert torch.torchscript and torch.format == "TorchScript zip" and torch.code_files
    judgement = judge_artifact("PyTorch", tmp_path, "model.pt", ["model.pt"], tmp_path)
    assert [code for code, _ in judgement.findings] == ["TORCHSCRIPT"] and not judgement.rejects


def test_cve_2025_32434_torchscript_classes_in_a_weights_archive_are_refused(tmp_path: Path):
    data, storages = tw.dumps(tw.ScriptModule("Net", {"w": tw.tensor(np.ones(4, dtype=np.float32))}))
    error = refused(tmp_path, data, {f"data/{k}": s.data for k, s in storages.items()})
    assert error.reason is Reason.PICKLE_GLOBAL_REFUSED and "__torch__.Net" in str(error)


def _tensor_then(opcodes: bytes) -> bytes:
    """A pickle that builds a real tensor record, then applies `opcodes` to it."""
    data, _ = tw.dumps(tw.tensor(np.ones(4, dtype=np.float32)))
    return data[:-1] + opcodes + b"."


def test_cve_2026_24747_setitem_on_a_tensor_is_refused(tmp_path: Path):
    data = _tensor_then(b"K\x00K\x07s")  # tensor[0] = 7
    error = refused(tmp_path, data, {"data/0": np.ones(4, dtype=np.float32).tobytes()})
    assert error.reason is Reason.PICKLE_SHAPE and "SETITEM on a Tensor" in str(error)


def test_cve_2026_24747_setitems_on_a_storage_is_refused():
    storage = b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQ"
    data = b"\x80\x02" + storage + b"(K\x00K\x01u."
    with pytest.raises(Refused, match="SETITEM on a Storage"):
        read_pickle(data, lambda pid: Storage("0", BY_NAME["float32"], "cpu", 4))


def test_cve_2026_24747_a_storage_smaller_than_its_size_claims_is_refused(tmp_path: Path):
    data, _ = tw.dumps(weights())
    error = refused(tmp_path, data, {"data/0": b"\0" * 8})  # 12 float32 claimed, 2 present
    assert error.reason is Reason.STORAGE_MISMATCH and "holds 8 bytes" in str(error)


def test_one_storage_named_with_two_sizes_is_refused(tmp_path: Path):
    storage = tw.Storage(np.ones(4, dtype=np.float32).tobytes(), "float32")
    a, b = tw.Tensor(storage, (4,)), tw.Tensor(storage, (2,))

    class Lying(tw.TorchPickler):
        calls = 0

        def persistent_id(self, obj: Any) -> Any:
            pid = super().persistent_id(obj)
            if pid is not None:
                Lying.calls += 1
                if Lying.calls == 2:
                    return (pid[0], tw.g("torch.DoubleStorage"), pid[2], pid[3], 2)
            return pid

    import io

    buffer = io.BytesIO()
    Lying(buffer).dump({"a": a, "b": b})
    error = refused(tmp_path, buffer.getvalue(), {"data/0": storage.data})
    assert error.reason is Reason.STORAGE_MISMATCH


@pytest.mark.parametrize(
    ("size", "stride", "offset"),
    [
        ((4, 4), (4, 1), 0),
        ((3, 4), (4, 1), 1),
        ((12,), (2,), 0),
        ((2, 2), (1, 100), 0),
        ((1,), (1,), 12),
        ((0, 1 << 40), (1 << 40, 1), 1 << 61),  # empty, but its data pointer lies far past the storage
    ],
)
def test_a_tensor_reading_past_its_storage_is_refused(tmp_path: Path, size, stride, offset):
    storage = tw.Storage(np.ones(12, dtype=np.float32).tobytes(), "float32")
    error = refused(tmp_path, {"w": tw.Tensor(storage, size, stride, offset)})
    assert error.reason is Reason.TENSOR_OUT_OF_BOUNDS


def test_an_empty_slice_at_the_end_of_its_storage_reads(tmp_path: Path):
    storage = tw.Storage(np.ones(12, dtype=np.float32).tobytes(), "float32")
    torch = read_zip(saved(tmp_path, {"w": tw.Tensor(storage, (12,)), "tail": tw.Tensor(storage, (0,), (1,), 12)}), "m")
    assert [n for n, _ in torch.tensors] == ["w", "tail"]


def test_negative_sizes_strides_and_offsets_are_refused(tmp_path: Path):
    storage = tw.Storage(np.ones(12, dtype=np.float32).tobytes(), "float32")
    for size, stride, offset in (((-1,), (1,), 0), ((3,), (-1,), 2), ((3,), (1,), -1)):
        assert refused(tmp_path, {"w": tw.Tensor(storage, size, stride, offset)}).reason is Reason.TENSOR_OUT_OF_BOUNDS


def test_build_on_a_tensor_and_newobj_of_an_allowed_class_are_refused(tmp_path: Path):
    data = _tensor_then(b"}b")
    assert "BUILD on a Tensor" in str(refused(tmp_path, data, {"data/0": np.ones(4, dtype=np.float32).tobytes()}))
    assert "NEWOBJ" in str(refused(tmp_path, b"\x80\x02ccollections\nOrderedDict\n)\x81."))


def test_append_to_a_dict_and_setitem_on_a_list_are_refused(tmp_path: Path):
    assert "APPEND to a dict" in str(refused(tmp_path, b"\x80\x02}K\x01a."))
    assert "SETITEM on a list" in str(refused(tmp_path, b"\x80\x02]K\x01K\x02s."))


def test_tensors_with_hooks_metadata_or_python_attributes_are_refused(tmp_path: Path):
    hooked = tw.tensor(np.ones(2, dtype=np.float32), extra_args=({"conj": True},))
    assert "metadata" in str(refused(tmp_path, {"w": hooked}))

    class WithState:
        def __reduce__(self) -> Any:
            inner = tw.tensor(np.ones(2, dtype=np.float32))
            return (
                tw.g("torch._tensor._rebuild_from_type_v2"),
                (
                    tw.g("torch._utils._rebuild_tensor_v2"),
                    tw.g("torch.Tensor"),
                    (inner.storage, 0, (2,), (1,), False, OrderedDict()),
                    {"__class__": 1},
                ),
            )

    assert "Python attributes" in str(refused(tmp_path, {"w": WithState()}))


@pytest.mark.parametrize(
    ("opcode", "name"),
    [(b"\x8c\x01a", "SHORT_BINUNICODE"), (b"\x95" + b"\0" * 8, "FRAME"), (b"\x93", "STACK_GLOBAL"), (b"i", "INST")],
)
def test_opcodes_torchs_weights_only_loader_does_not_read_are_refused(tmp_path: Path, opcode: bytes, name: str):
    assert refused(tmp_path, b"\x80\x04" + opcode + b".").reason is Reason.PICKLE_OPCODE_REFUSED


def test_the_memo_must_be_written_before_it_is_read(tmp_path: Path):
    assert "memo 5 is read before" in str(refused(tmp_path, b"\x80\x02h\x05."))


def test_a_storage_without_its_record_is_refused(tmp_path: Path):
    data, _ = tw.dumps(weights())
    assert "has no record data/0" in str(refused(tmp_path, data))


# -- the zip's layout ----------------------------------------------------------------------------------------


def test_records_outside_the_archive_directory_are_refused(tmp_path: Path):
    writer = tw.ZipWriter("archive")
    writer.record("data.pkl", b"\x80\x02}.")
    writer.prefix = "other"
    writer.record("version", b"3\n")
    path = tmp_path / "model.pt"
    path.write_bytes(writer.finish())
    with pytest.raises(Refused, match="outside the archive"):
        read_zip(path, "model.pt")


def test_a_big_endian_or_future_version_file_is_not_read(tmp_path: Path):
    data, storages = tw.dumps(weights())
    records = {f"data/{k}": s.data for k, s in storages.items()}
    assert refused(tmp_path, data, {**records, "byteorder": b"big"}).reason is Reason.UNSUPPORTED
    path = tmp_path / "m.pt"
    writer = tw.ZipWriter()
    writer.record("data.pkl", data)
    writer.record("data/0", records["data/0"])
    writer.record("version", b"99\n")
    path.write_bytes(writer.finish())
    with pytest.raises(Refused, match="version '99'"):
        read_zip(path, "m.pt")


# -- the legacy and tar layouts ------------------------------------------------------------------------------


def test_the_legacy_format_reads_its_pickles_and_size_prefixed_storages(tmp_path: Path):
    path = tmp_path / "model.pth"
    path.write_bytes(tw.torch_legacy(weights()))
    torch = read_legacy(path, "model.pth")
    ((name, tensor),) = torch.tensors
    assert (name, tensor.size, torch.format) == ("fc.weight", (3, 4), "torch legacy")


@pytest.mark.parametrize("damage", ["wrong-protocol", "truncated-storage", "trailing", "size-lies", "payload"])
def test_a_damaged_or_hostile_legacy_file_is_refused(tmp_path: Path, damage: str):
    data = bytearray(tw.torch_legacy(weights()))
    if damage == "wrong-protocol":
        data = data.replace(b"M\xe9\x03", b"M\xea\x03", 1)
    elif damage == "truncated-storage":
        data = data[:-4]
    elif damage == "trailing":
        data += b"\0"
    elif damage == "size-lies":
        data[-48 - 8 : -48] = struct.pack("<q", 13)
    else:
        data = bytearray(data.replace(b"ccollections\nOrderedDict\n", b"cposix\nsystem\n\x80\x02", 1))
    path = tmp_path / "model.pth"
    path.write_bytes(bytes(data))
    with pytest.raises(Refused):
        read_legacy(path, "model.pth")


def test_a_file_that_is_a_tar_is_read_as_a_tar_even_when_it_starts_like_a_legacy_file(tmp_path: Path):
    # torch.load tries tarfile.open before the magic number: a tar whose first member's name begins with the
    # legacy magic number is a tar to torch (its `storages` pickle then runs under weights_only=False), so it
    # must be a tar to the gate too, and is refused by the tar reader's rules.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT, encoding="latin-1") as tar:
        for name, content in (
            (MAGIC.decode("latin-1") + "x", b""),
            ("storages", b"\x80\x02cposix\nsystem\nX\x02\x00\x00\x00idq\x00\x85R."),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    data = buffer.getvalue()
    assert data.startswith(MAGIC)
    path = tmp_path / "model.pt"
    path.write_bytes(data)
    with tarfile.open(path, mode="r:", format=tarfile.PAX_FORMAT) as tar:  # what torch.load opens first
        assert "storages" in tar.getnames()
    with pytest.raises(Refused, match="tar member"):
        read_torch(path, "model.pt", tmp_path)
    judgement = judge_artifact("PyTorch", tmp_path, "model.pt", ["model.pt"], tmp_path)
    assert judgement.rejects and "tar member" in judgement.rejects[0]


def test_a_legacy_file_is_never_taken_for_a_tar(tmp_path: Path):
    path = tmp_path / "model.pth"
    path.write_bytes(tw.torch_legacy(weights()))
    assert not tar_header(path.read_bytes()[:512])
    assert read_torch(path, "model.pth", tmp_path).format == "torch legacy"


def test_the_oldest_tar_format_reads_and_says_modern_torch_refuses_it_under_weights_only(tmp_path: Path):
    parts = {"fc.weight": tw.tensor(np.ones((2, 3), dtype=np.float32))}
    path = tmp_path / "model.pt"
    path.write_bytes(tw.torch_tar(parts, {"fc.weight": tw.TensorKey("fc.weight")}))
    torch = read_tar(path, "model.pt", tmp_path)
    assert [(n, t.size) for n, t in torch.tensors] == [("fc.weight", (2, 3))]
    assert "weights_only=False" in torch.notes[0]


# -- auxiliary files: read by the same reader, hostile ones reject ------------------------------------------------


def _artifact(tmp_path: Path, files: dict[str, bytes]) -> Any:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return judge_artifact("PyTorch", tmp_path, "model.pt", sorted(files), tmp_path)


def test_training_arguments_are_scanned_as_data_and_a_payload_beside_them_rejects(tmp_path: Path):
    arguments = tw.Obj(
        "transformers.training_args.TrainingArguments",
        {"lr": 1e-4, "strategy": tw.EnumValue("transformers.trainer_utils.IntervalStrategy", "epoch")},
    )
    judgement = _artifact(tmp_path, {"model.pt": tw.torch_zip(weights()), "training_args.bin": tw.torch_zip(arguments)})
    assert not judgement.rejects and "training_args.bin (arguments" in judgement.notes[-1]
    hostile = tw.Obj("transformers.training_args.TrainingArguments", {"lr": Call("os.system", "id")})
    other = tmp_path / "hostile"
    other.mkdir()
    judgement = _artifact(other, {"model.pt": tw.torch_zip(weights()), "training_args.bin": tw.torch_zip(hostile)})
    assert judgement.rejects and "os.system" in judgement.rejects[0]


@pytest.mark.parametrize(
    "hostile",
    [
        tw.Obj("transformers.training_args.TrainingArguments", {"strategy": Call("transformers.Pipeline", "a", "b")}),
        tw.Obj("transformers.training_args.TrainingArguments", {"strategy": Call("transformers.Pipeline", ["a"])}),
    ],
    ids=["two-arguments", "a-list-argument"],
)
def test_training_arguments_call_a_class_only_as_an_enum_lookup(tmp_path: Path, hostile: Any):
    judgement = _artifact(tmp_path, {"model.pt": tw.torch_zip(weights()), "training_args.bin": tw.torch_zip(hostile)})
    assert judgement.rejects and "auxiliary training_args.bin refused" in judgement.rejects[0], judgement.rejects


def test_a_dataclass_in_training_arguments_is_built_only_from_its_state():
    data = b"\x80\x02ctransformers.training_args\nTrainingArguments\nX\x03\x00\x00\x00out\x85\x81}b."
    with pytest.raises(Refused, match=r"NEWOBJ of transformers\.training_args\.TrainingArguments with arguments"):
        read_pickle(data, lambda pid: None, Profile.SCAN)
    plain = b"\x80\x02ctransformers.training_args\nTrainingArguments\n)\x81}X\x04\x00\x00\x00seedK*sb."
    assert read_pickle(plain, lambda pid: None, Profile.SCAN).root.state == {"seed": 42}


TORCH_FIRST_PAYLOAD = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nq\x00cposix\nsystem\nX\x02\x00\x00\x00id\x85R."


@pytest.mark.parametrize("name", ["extra.pt", "training_args.bin", "notes.data"])
def test_a_plain_pickle_naming_torch_first_is_read_by_the_restricted_reader(tmp_path: Path, name: str):
    # Recognition leaves a pickle whose first global is torch's to the checkpoint readers (the scikit-learn
    # loader reads every other pickle): torch.load or pickle.load would unpickle it, so it is read here.
    judgement = _artifact(tmp_path, {"model.pt": tw.torch_zip(weights()), name: TORCH_FIRST_PAYLOAD})
    assert len(judgement.rejects) == 1 and judgement.rejects[0].startswith(f"{name} is a pickle that torch.load")
    assert "posix.system" in judgement.rejects[0]


def test_text_and_data_pickles_beside_the_model_are_not_taken_for_payloads(tmp_path: Path):
    files = {
        "model.pt": tw.torch_zip(weights()),
        "vocab.txt": b"cat\ndog\n",
        "blob.bin": bytes(range(256)) * 4,
        "shape.pt": tw.dumps({"shape": Call("torch.Size", (2, 3))})[0],  # names torch first: read, and data
    }
    judgement = _artifact(tmp_path, files)
    assert not judgement.rejects, judgement.rejects
    assert "shape.pt (a plain pickle of data, not a torch file)" in judgement.notes[-1]


def test_an_rng_state_may_hold_numpy_arrays_but_no_other_numpy_global(tmp_path: Path):
    state = np.random.RandomState(0).get_state()
    judgement = _artifact(
        tmp_path, {"model.pt": tw.torch_zip(weights()), "rng_state.pth": tw.torch_zip({"numpy": state})}
    )
    assert not judgement.rejects, judgement.rejects
    other = tmp_path / "o"
    other.mkdir()
    judgement = _artifact(
        other,
        {
            "model.pt": tw.torch_zip(weights()),
            "rng_state.pth": tw.torch_zip({"numpy": Call("numpy.load", "/etc/passwd")}),
        },
    )
    assert "numpy.load" in judgement.rejects[0]


def test_an_optimizer_file_holding_a_class_of_its_own_rejects_the_model(tmp_path: Path):
    judgement = _artifact(
        tmp_path,
        {"model.pt": tw.torch_zip(weights()), "optimizer.pt": tw.torch_zip(tw.Obj("__main__.MyOptimizer", {}))},
    )
    assert "auxiliary optimizer.pt refused" in judgement.rejects[0] and "__main__.MyOptimizer" in judgement.rejects[0]


def test_profiles_admit_only_their_own_extra_globals():
    data = pickle.dumps(np.zeros(2, dtype=np.uint32), protocol=2)
    with pytest.raises(Refused):
        read_pickle(data, lambda pid: None, Profile.WEIGHTS)
    array = read_pickle(data, lambda pid: None, Profile.RNG).root
    assert (array.dtype, array.shape) == ("u4", (2,))
