"""The invariant table, row by row: each row has its check, and a mutation that breaks exactly that row is
refused on every path a model file can take (joblib, plain pickle, skops), while the same model unmutated
loads. The mutations are in invariant_mutations.py."""

from __future__ import annotations

import contextlib
import io
import pickle
import warnings

import joblib
import pytest

from tests.unit.invariant_edits import RawFile
from tests.unit.invariant_mutations import ALL_PATHS, Mutation, forged, mutations
from training_gate.inspector import invariants
from training_gate.inspector.loader import load_model_stream
from training_gate.inspector.restricted.environment import environment

MUTATIONS = mutations()
CASES = [(m, path) for m in MUTATIONS for path in m.paths]


def save(obj: object, path: str) -> tuple[str, bytes]:
    if isinstance(obj, RawFile):
        return {"joblib": "model.joblib", "pickle": "model.pkl"}[path], bytes(obj)
    if path == "joblib":
        buffer = io.BytesIO()
        joblib.dump(obj, buffer)
        return "model.joblib", buffer.getvalue()
    if path == "pickle":
        return "model.pkl", pickle.dumps(obj, protocol=4)
    import skops.io

    return "model.skops", skops.io.dumps(obj)


def load(name: str, data: bytes) -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_model_stream(io.BytesIO(data), name).model


def test_every_row_has_a_check_and_every_check_a_row():
    invariants._register_all()
    ids = [row.id for row in invariants.rows()]
    assert len(ids) == len(set(ids))
    assert set(ids) == set(invariants.CHECKS)


def test_every_row_is_active_here_and_has_a_mutation():
    active = {row.id for row in environment().invariants.active}
    assert active == {row.id for row in invariants.rows()}, "a row names no class of this scikit-learn"
    assert {m.row for m in MUTATIONS} == active


def test_every_row_says_what_it_holds_and_what_relies_on_it():
    for row in invariants.rows():
        assert row.level in ("construction", "state", "model"), row.id
        assert row.classes and row.rule and row.indexed_by, row.id


@pytest.mark.parametrize(("mutation", "path"), CASES, ids=[f"{m.row}-{p}" for m, p in CASES])
def test_a_file_breaking_exactly_one_invariant_is_refused(mutation: Mutation, path: str):
    context = forged(*mutation.forge) if mutation.forge else contextlib.nullcontext()
    with context:
        name, data = save(mutation.build(), path)
    with pytest.raises((ValueError, pickle.UnpicklingError), match=mutation.expect):
        load(name, data)


@pytest.mark.parametrize("mutation", [m for m in MUTATIONS if m.benign], ids=lambda m: m.row)
def test_the_same_model_unmutated_loads_on_every_path(mutation: Mutation):
    model = mutation.benign()
    for path in mutation.paths:
        loaded = load(*save(model, path))
        assert type(loaded) is type(model), path


def test_paths_left_out_say_why():
    for mutation in MUTATIONS:
        if set(mutation.paths) != set(ALL_PATHS):
            assert mutation.note or mutation.row.startswith(("numpy-", "joblib-", "cython-")), mutation.row
