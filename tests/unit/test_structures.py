"""The audit of what the gate builds, and what its checks prevent.

Every object a model file can name is on one table (the allowlist) with the role the gate gives it; every
Cython class on it has state invariants (the C code that trusts the state sees none before they pass);
every Python class on it has a schema (the states scikit-learn writes). Unvalidated, the broken objects
the invariants refuse crash or hang the child: the sandbox tests at the end show it."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.tree import DecisionTreeClassifier

from tests.unit.zoo_catalogue import estimator_classes
from tests.unit.zoo_data import X, Y
from training_gate.domain.models import CheckStatus
from training_gate.inspector.inspect import InspectConfig, inspect_artifact
from training_gate.inspector.invariants import rows
from training_gate.inspector.loader import InvalidStructure, default_allowlist, load_model_stream
from training_gate.inspector.restricted.environment import environment
from training_gate.inspector.restricted.sklearn_builders import instance_allowed
from training_gate.inspector.sandbox import Sandbox
from training_gate.inspector.schema import available_versions, version_schema
from training_gate_cli.artifacts import pack_model_tar_gz

HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: classes defined in Python; C and Cython types lack it


def _classes_with_state_rows() -> set[int]:
    table = environment().table
    return {
        id(cls) for row in rows() if row.level == "state" for cls in map(table.lookup, row.classes) if cls is not None
    }


def test_every_cython_class_the_gate_builds_has_state_invariants():
    env = environment()
    with_rows = _classes_with_state_rows()
    for name in default_allowlist():
        obj = env.table.lookup(name)
        role = env.table.role_of(obj)
        if isinstance(obj, type) and role.new is not None and not obj.__flags__ & HEAP_TYPE:
            assert id(obj) in with_rows or obj.__module__.startswith("joblib"), name


def test_every_python_class_the_gate_builds_has_a_schema_and_no_unreviewed_code():
    env = environment()
    for name, spec in env.runtime.classes.items():
        cls = env.table.lookup(name)
        if cls is None:  # a class of another scipy of the same scikit-learn (the image's or this one's)
            assert not name.startswith("sklearn.") and not spec.estimator, name
            continue
        assert isinstance(cls, type) and cls.__flags__ & HEAP_TYPE, name
        assert instance_allowed(cls) is None, name
        assert env.table.role_of(cls).estimator == spec.estimator, name


def test_every_estimator_of_this_scikit_learn_has_a_schema():
    known = set(environment().runtime.classes)
    missing = [name for name, cls in estimator_classes() if f"{cls.__module__}.{cls.__qualname__}" not in known]
    assert missing == []


def test_every_callable_on_the_allowlist_is_a_class_a_rule_or_a_reference_the_schema_names():
    env = environment()
    referenced = set(env.runtime.references)
    for name in default_allowlist():
        obj = env.table.lookup(name)
        role = env.table.role_of(obj)
        if callable(obj) and not isinstance(obj, type) and role.call is None:
            assert role.name in referenced or name == "sklearn.utils.validation.check_array", name


def test_the_allowlist_names_objects_exactly_never_a_whole_module():
    allowed = default_allowlist()
    assert "sklearn.tree._tree.DepthFirstTreeBuilder" not in allowed  # same module as Tree, never pickled
    assert "sklearn.metrics._dist_metrics.PyFuncDistance64" not in allowed  # calls back into Python
    assert "sklearn.neighbors._kd_tree.NodeHeap" not in allowed
    assert "scipy.stats._continuous_distns.uniform_gen" not in allowed  # its __setstate__ runs exec
    assert not any(name.startswith(("os.", "subprocess.", "builtins.eval", "builtins.getattr")) for name in allowed)


def test_the_schema_of_this_version_was_learned_here():
    schema = version_schema(sklearn.__version__)
    assert schema is not None and sklearn.__version__ in available_versions()
    dtc = schema.classes["sklearn.tree._classes.DecisionTreeClassifier"]
    assert {"n_features_in_", "tree_", "classes_", "n_outputs_"} <= dtc.fitted
    assert "feature_names_in_" in dtc.attributes and "feature_names_in_" not in dtc.fitted
    assert "predict_proba" not in dtc.attributes


def test_a_version_without_a_schema_refuses_every_model(monkeypatch):
    from training_gate.inspector import loader

    env = environment()
    monkeypatch.setattr(env, "runtime", None)
    buffer = io.BytesIO()
    joblib.dump(DecisionTreeClassifier().fit(X, Y), buffer)
    with pytest.raises(InvalidStructure, match="has no state schema"):
        loader.load_model_stream(io.BytesIO(buffer.getvalue()), "model.joblib")


def test_a_state_written_by_another_supported_version_is_held_to_that_versions_schema(monkeypatch):
    model = DecisionTreeClassifier().fit(X, Y)
    env = environment()
    other = version_schema(sklearn.__version__)
    monkeypatch.setitem(env.schemas, "0.0.1", other)
    state = model.__getstate__()
    cls = type(model)
    assert env.class_schema(cls, "0.0.1") is other.classes["sklearn.tree._classes.DecisionTreeClassifier"]
    assert env.class_schema(cls, "9.9.9") is env.runtime.classes["sklearn.tree._classes.DecisionTreeClassifier"]
    assert state["_sklearn_version"] == sklearn.__version__


def test_a_model_written_by_this_version_records_it():
    buffer = io.BytesIO()
    joblib.dump(DecisionTreeClassifier().fit(X, Y), buffer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_model_stream(io.BytesIO(buffer.getvalue()), "model.joblib")
    assert not loaded.version_skew and loaded.version_warnings == []


# -- what the invariants prevent: the same objects, unvalidated, crash or hang the child -------------------


def _joblib(obj: object) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def _broken_tree(edit) -> DecisionTreeClassifier:
    """The Tree's node array edited in place (setting state copies it; nothing traverses it here)."""
    model = DecisionTreeClassifier(random_state=0).fit(X, Y)
    state = model.tree_.__getstate__()
    nodes = state["nodes"].copy()
    edit(nodes)
    model.tree_.__setstate__({**state, "nodes": nodes})
    return model


@pytest.fixture(scope="module")
def unvalidated() -> Sandbox:
    hooks = {"s3://t/segv.tar.gz": "unpack:no-validation", "s3://t/loop.tar.gz": "unpack:no-validation"}
    sandbox = Sandbox(test_hooks=hooks)
    yield sandbox
    sandbox.close()


def _inspect(artifact: bytes, uri: str, tmp_path: Path, sandbox: Sandbox | None = None, **config):
    result = inspect_artifact(
        uri,
        lambda: io.BytesIO(artifact),
        InspectConfig(sample_input=[[0.0, 0.0, 0.0, 0.0]], **config),
        sandbox=sandbox,
        work_root=tmp_path,
    )
    return result, {c.name: c for c in result.checks}


def test_a_tree_child_out_of_range_is_refused_and_unvalidated_it_segfaults(tmp_path: Path, unvalidated):
    def far_child(nodes):
        nodes["left_child"][0] = nodes["right_child"][0] = 10**12

    artifact = pack_model_tar_gz({"model.joblib": _joblib(_broken_tree(far_child))})
    result, checks = _inspect(artifact, "s3://t/segv.tar.gz", tmp_path)
    assert checks["load"].status == CheckStatus.FAIL and "invalid Tree: left of node 0" in checks["load"].detail
    result, checks = _inspect(artifact, "s3://t/segv.tar.gz", tmp_path, unvalidated)
    assert result.verdict == "reject"
    assert checks["smoke_prediction"].detail == "smoke_prediction: crashed with SIGSEGV"
    assert list(tmp_path.iterdir()) == []


def test_a_self_looping_tree_is_refused_and_unvalidated_it_hangs_until_killed(tmp_path: Path, unvalidated):
    artifact = pack_model_tar_gz({"model.joblib": _joblib(_broken_tree(lambda n: n["left_child"].__setitem__(0, 0)))})
    result, checks = _inspect(artifact, "s3://t/loop.tar.gz", tmp_path)
    assert "invalid Tree: left of node 0" in checks["load"].detail
    result, checks = _inspect(artifact, "s3://t/loop.tar.gz", tmp_path, unvalidated, time_limit_s=2)
    assert result.verdict == "reject"
    assert checks["smoke_prediction"].detail.startswith("smoke_prediction: killed after 2 s (time limit")
    assert list(tmp_path.iterdir()) == []


def test_every_row_names_classes_by_allowlisted_names():
    table = environment().table
    for row in rows():
        if row.level != "construction":
            assert any(table.lookup(name) is not None for name in row.classes), row.id
    assert np.all([row.id.islower() for row in rows()])
