"""The whole zoo through the gate's construction: every specimen of zoo_catalogue.py (every estimator, its
data and parameter variants, the composites) is saved, loaded through the loader and must predict exactly
as the model it was saved from. And the committed schema must admit every state this environment's
scikit-learn writes for them: what scripts/generate_inspector_schema.py would learn here adds nothing.

Each specimen is saved in skops and in one pickle format of a rotation over plain pickle and joblib
(protocols 2 to 5, uncompressed, zlib and lzma), so every format meets many estimators of every kind.
"""

from __future__ import annotations

import importlib
import io
import pickle
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
import pytest
import scipy.sparse
import sklearn

from tests.unit.zoo_catalogue import Specimen, all_specimens, fit
from training_gate.inspector.loader import load_model_stream
from training_gate.inspector.schema import path_for

ROTATION = (
    *(f"pickle-{p}" for p in (2, 3, 4, 5)),
    *(f"joblib-{p}-{c}" for c in ("none", "zlib", "lzma") for p in (2, 3, 4, 5)),
)
METHODS = ("predict", "transform", "decision_function", "score_samples")


def save(model: Any, form: str) -> tuple[str, bytes]:
    if form == "skops":
        import skops.io

        return "model.skops", skops.io.dumps(model)
    kind, protocol, *compressor = form.split("-")
    if kind == "pickle":
        return "model.pkl", pickle.dumps(model, protocol=int(protocol))
    buffer = io.BytesIO()
    compress: Any = (compressor[0], 3) if compressor[0] != "none" else 0
    joblib.dump(model, buffer, protocol=int(protocol), compress=compress)
    return "model.joblib", buffer.getvalue()


def _rows(specimen: Specimen) -> Any:
    return specimen.data()[0][:5]


def _same(left: Any, right: Any) -> bool:
    if scipy.sparse.issparse(left):
        return scipy.sparse.issparse(right) and (left != right).nnz == 0
    if hasattr(left, "to_numpy"):
        left, right = left.to_numpy(), right.to_numpy()
    left, right = np.asarray(left), np.asarray(right)
    if left.dtype.kind in "fc":
        return left.shape == right.shape and np.allclose(left, right, equal_nan=True)
    return left.shape == right.shape and (left == right).all()


@dataclass
class Outcome:
    specimen: Specimen
    forms: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass
class ZooLoads:
    outcomes: list[Outcome]
    not_fitted: dict[str, str]
    learner: Any  # the schema generator's learner, given every model as fitted (before any predict)
    seconds: float
    cpu_seconds: float


def _check(specimen: Specimen, model: Any, form: str, outcome: Outcome) -> None:
    try:
        name, data = save(model, form)
    except Exception as exc:  # noqa: BLE001 - a format the library cannot write: reported, not a gate failure
        if form != "skops":
            outcome.failures.append(f"{form}: could not be saved: {type(exc).__name__}: {exc}")
        return
    outcome.forms.append(form)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = load_model_stream(io.BytesIO(data), name).model
    except Exception as exc:  # noqa: BLE001 - the failure is the finding
        outcome.failures.append(f"{form}: {type(exc).__name__}: {exc}")
        return
    method = next((m for m in METHODS if hasattr(model, m)), None)
    if method is None or (not specimen.rows_input and specimen.how != "composite"):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = getattr(model, method)(_rows(specimen))
        except Exception:  # noqa: BLE001 - the original cannot do it either (transductive, one-off)
            return
        got = getattr(loaded, method)(_rows(specimen))
    if not _same(expected, got):
        outcome.failures.append(f"{form}: {method} differs after loading")


@pytest.fixture(scope="module")
def zoo() -> Iterator[ZooLoads]:
    from threadpoolctl import threadpool_limits

    started, cpu_started = time.monotonic(), time.process_time()
    outcomes, not_fitted = [], {}
    learner = importlib.import_module("scripts.generate_inspector_schema").Learner()
    with threadpool_limits(limits=1):
        for position, specimen in enumerate(all_specimens()):
            try:
                model = fit(specimen)
            except Exception as exc:  # noqa: BLE001 - a variant the estimator does not take
                not_fitted[specimen.name] = f"{type(exc).__name__}: {str(exc)[:120]}"
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                learner.record_model(model, specimen.name)  # as saved: predicting may add state
            outcome = Outcome(specimen)
            outcomes.append(outcome)
            for form in (ROTATION[position % len(ROTATION)], "skops"):
                _check(specimen, model, form, outcome)
    yield ZooLoads(outcomes, not_fitted, learner, time.monotonic() - started, time.process_time() - cpu_started)


def test_every_specimen_loads_and_predicts_as_it_was_saved(zoo: ZooLoads, capsys):
    failures = [f"  {o.specimen.name}: {f}" for o in zoo.outcomes for f in o.failures]
    kinds: dict[str, int] = {}
    for outcome in zoo.outcomes:
        kinds[outcome.specimen.how] = kinds.get(outcome.specimen.how, 0) + 1
    with capsys.disabled():
        print(
            f"\nzoo through the loader on scikit-learn {sklearn.__version__}: {len(zoo.outcomes)} specimens "
            f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), "
            f"{sum(len(o.forms) for o in zoo.outcomes)} loads in {zoo.seconds:.1f} s ({zoo.cpu_seconds:.1f} s of CPU); "
            f"{len(zoo.not_fitted)} variants an estimator does not take"
        )
    assert not failures, "\n".join(failures)


def test_every_format_meets_many_specimens(zoo: ZooLoads):
    seen: dict[str, int] = {}
    for outcome in zoo.outcomes:
        for form in outcome.forms:
            seen[form] = seen.get(form, 0) + 1
    assert min(seen.get(form, 0) for form in ROTATION) >= 50
    assert seen["skops"] >= 0.9 * len(zoo.outcomes)


def test_the_committed_schema_admits_every_state_this_environment_writes(zoo: ZooLoads):
    generator = importlib.import_module("scripts.generate_inspector_schema")
    learner = zoo.learner
    assert learner.unknown == {}
    committed = generator.json.loads(path_for(sklearn.__version__).read_text())
    learned = {"classes": learner.finish(), "references": sorted(learner.references), "environments": [{}]}
    merged = generator.merge_files(committed, learned)

    def shape(spec: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if spec is None else {k: v for k, v in spec.items() if k != "seen"}

    def first_difference(name: str) -> str:
        old, new = committed["classes"].get(name) or {}, merged["classes"][name]
        for key in ("always", "fitted", "unfitted", "params", "items", "tuple"):
            if old.get(key) != new.get(key):
                return f"{name}.{key}: {old.get(key)} -> {new.get(key)}"
        attribute = next(a for a in new["attributes"] if new["attributes"][a] != old.get("attributes", {}).get(a))
        return f"{name}.{attribute}: {old.get('attributes', {}).get(attribute)} -> {new['attributes'][attribute]}"

    stale = [name for name, spec in merged["classes"].items() if shape(spec) != shape(committed["classes"].get(name))]
    assert stale == [], "regenerate the schema (scripts/generate_inspector_schema.py --merge): " + "; ".join(
        first_difference(name) for name in stale[:3]
    )
