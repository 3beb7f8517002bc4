"""The estimator zoo: every scikit-learn estimator, fitted on a small dataset, passes the inspection.

What is tried: the base zoo of zoo_catalogue.py (every class `sklearn.utils.all_estimators()` lists,
with default parameters or the catalogue's arguments, fitted on 60 iris rows scaled to [0, 1], and the
composites a real training job ships). `EXCLUDED` lists the estimators not inspected here, with why
(their input is not rows of numbers: test_structures_zoo.py loads them through the gate);
`EXPECTED_REJECTIONS` the ones the smoke check rightly rejects (a defect of that scikit-learn), and
`SKOPS_CANNOT_SAVE` the ones skops itself cannot write. The data and parameter variants of each
estimator are loaded in-process by test_structures_zoo.py, not inspected here.

How each is saved: joblib at protocol 5 uncompressed and skops, for every model. Then, so that every
pickle protocol (2 to 5) and every joblib compressor (none, zlib, lzma) is covered by many estimators
without multiplying the cost by twelve, each estimator gets one more format from a rotation over the
other eleven (protocol x compressor) pairs, and each composite two.

How each is inspected: the whole inspection (tar.gz, unpack, allowlisted load, structural validation,
smoke check) in the sandbox's disposable child, forked from one shared zygote (which imports skops
too): a fork costs ~20-40 ms, where a fresh interpreter would cost ~2 s a model. The smoke check must
pass (predictors, transformers) or warn (neither predict nor transform).
The test prints how many were tried and passed, the exclusions and their reasons.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import joblib
import pytest
import sklearn
from sklearn.utils import all_estimators

from tests.unit.zoo_catalogue import ARGUMENTS, INPUTS, NOT_ROWS, PARAMETERS, Specimen, base_specimens, fit
from tests.unit.zoo_data import X, Y
from training_gate.domain.models import CheckStatus
from training_gate.inspector.inspect import InspectConfig, inspect_artifact
from training_gate.inspector.sandbox import Sandbox
from training_gate_cli.artifacts import pack_model_tar_gz

# Not inspected here, and why: the gate's smoke sample (configured `sample_input`, a list of rows of
# floats, or the derived row of zeros) cannot be given to them. Their schema is learned all the same, and
# test_structures_zoo.py loads them through the gate.
EXCLUDED: dict[str, str] = {
    name: f"{why}; the gate's smoke sample is rows of numbers" for name, (why, _data) in NOT_ROWS.items()
}

# Tried, and rejected by the smoke check for a defect of the estimator itself: name -> (the check's
# detail, why). The inspection must end exactly so (or pass, on a scikit-learn without the defect).
EXPECTED_REJECTIONS: dict[str, tuple[str, str]] = {
    name: (
        "transform returned (4,) for 1 rows",
        "scikit-learn 1.9's transform drops the row dimension of a one-row input (ridge_regression squeezes a "
        "single target): an endpoint sending one row at a time would get a 1-D array",
    )
    for name in ("SparsePCA", "MiniBatchSparsePCA")
}

# skops cannot save these (UnsupportedTypeException): they are inspected in every joblib format only.
SKOPS_CANNOT_SAVE: dict[str, str] = {
    "Birch": "skops 0.16 refuses to save Birch (its _CFNode tree is not a supported type)",
}

# -- formats -------------------------------------------------------------------------------------------------

PROTOCOLS = (2, 3, 4, 5)
COMPRESSORS = (None, "zlib", "lzma")
BASE_FORMATS = ("joblib-protocol-5", "skops")
# Every (protocol, compressor) pair but the base one, handed out in turn (module docstring).
ROTATION = tuple(
    f"joblib-protocol-{p}" + (f"-{c}" if c else "") for c in COMPRESSORS for p in PROTOCOLS if (p, c) != (5, None)
)


def dump(model: Any, form: str) -> tuple[str, bytes]:
    """The model file as a training job would write it: its name and bytes."""
    if form == "skops":
        import skops.io

        return "model.skops", skops.io.dumps(model)
    parts = form.split("-")
    protocol = int(parts[2])
    compress: Any = (parts[3], 3) if len(parts) > 3 else 0
    buffer = io.BytesIO()
    joblib.dump(model, buffer, protocol=protocol, compress=compress)
    return "model.joblib", buffer.getvalue()


# -- building and inspecting the zoo -------------------------------------------------------------------------


@dataclass
class Outcome:
    entry: Specimen
    failures: list[str] = field(default_factory=list)
    smoke: dict[str, tuple[str, str]] = field(default_factory=dict)  # format -> (status, detail)
    rejected_as_expected: bool = False

    @property
    def passed(self) -> bool:
        return not self.failures and not self.rejected_as_expected


def zoo_entries() -> tuple[list[tuple[Specimen, tuple[str, ...]]], dict[str, str]]:
    """Every estimator of this scikit-learn, tried or excluded, then the composites, each with its formats."""
    entries: list[tuple[Specimen, tuple[str, ...]]] = []
    excluded: dict[str, str] = {}
    for specimen in base_specimens():
        if specimen.name in EXCLUDED:
            excluded[specimen.name] = EXCLUDED[specimen.name]
            continue
        rotating = ROTATION[len(entries) % len(ROTATION)]
        base = ("joblib-protocol-5",) if specimen.name in SKOPS_CANNOT_SAVE else BASE_FORMATS
        if specimen.how == "composite":  # they pickle the most varied objects: one more format each
            entries.append((specimen, (*base, rotating, ROTATION[(len(entries) + 5) % len(ROTATION)])))
        else:
            entries.append((specimen, (*base, rotating)))
    return entries, excluded


def _inspect(sandbox: Sandbox, entry: Specimen, model: Any, form: str, outcome: Outcome, cpu: list[float]) -> None:
    try:
        filename, data = dump(model, form)
    except Exception as exc:  # noqa: BLE001 - reported as this format's failure
        outcome.failures.append(f"{form}: could not be saved: {type(exc).__name__}: {exc}")
        return
    artifact = pack_model_tar_gz({filename: data})
    uri = f"s3://zoo/{entry.name}/{form}/model.tar.gz"
    config = InspectConfig(sample_input=entry.sample)
    result = inspect_artifact(
        uri,
        lambda: io.BytesIO(artifact),
        config,
        sandbox=sandbox,
        on_child=lambda child, _limits: cpu.append(child.cpu_s),
    )
    checks = {c.name: c for c in result.checks}
    smoke = checks["smoke_prediction"]
    outcome.smoke[form] = (smoke.status.value, smoke.detail)
    expected = EXPECTED_REJECTIONS.get(entry.name)
    if result.verdict != "pass":
        failed = next(c for c in result.checks if c.status == CheckStatus.FAIL)
        if expected is None or failed.name != "smoke_prediction" or expected[0] not in failed.detail:
            outcome.failures.append(f"{form}: {failed.name}: {failed.detail}")
        else:
            outcome.rejected_as_expected = True
    elif smoke.status not in (CheckStatus.PASS, CheckStatus.WARN):
        outcome.failures.append(f"{form}: smoke_prediction {smoke.status.value}: {smoke.detail}")


@dataclass
class ZooRun:
    outcomes: list[Outcome]
    excluded: dict[str, str]
    seconds: float
    cpu_seconds: float  # this process (fitting, saving, the parent's half) and every inspection child

    def __iter__(self) -> Iterator[Outcome]:
        return iter(self.outcomes)

    def by_name(self, name: str) -> Outcome:
        return next(o for o in self.outcomes if o.entry.name == name)

    def report(self) -> str:
        single = [o for o in self.outcomes if o.entry.how != "composite"]
        composites = [o for o in self.outcomes if o.entry.how == "composite"]
        kinds = Counter(o.entry.how for o in single)
        inspections = sum(len(o.smoke) for o in self.outcomes)
        warned = sorted(o.entry.name for o in single if any(s == "warn" for s, _ in o.smoke.values()))
        lines = [
            f"estimator zoo on scikit-learn {sklearn.__version__}: {len(single) + len(self.excluded)} estimators, "
            f"{len(single)} tried ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), "
            f"{sum(o.passed for o in single)} passed; {len(composites)} composites, "
            f"{sum(o.passed for o in composites)} passed; {inspections} inspections in {self.seconds:.1f} s "
            f"({self.cpu_seconds:.1f} s of CPU)",
            f"loaded only, with a warning (neither predict nor transform): {', '.join(warned) or 'none'}",
            f"excluded ({len(self.excluded)}):",
            *(f"  {name}: {reason}" for name, reason in sorted(self.excluded.items())),
            *(
                f"rejected as expected: {o.entry.name}: {EXPECTED_REJECTIONS[o.entry.name][1]}"
                for o in self.outcomes
                if o.rejected_as_expected
            ),
            *(
                f"not saved with skops: {name}: {why}"
                for name, why in SKOPS_CANNOT_SAVE.items()
                if name in self.names()
            ),
            *(f"changed: {name}: {PARAMETERS[name][1]}" for name in sorted(PARAMETERS) if name in self.names()),
        ]
        failures = [f"  {o.entry.name}: {failure}" for o in self.outcomes for failure in o.failures]
        if failures:
            lines += [f"FAILED ({len(failures)}):", *failures]
        return "\n".join(lines)

    def names(self) -> set[str]:
        return {o.entry.name for o in self.outcomes}


@pytest.fixture(scope="module")
def zoo() -> Iterator[ZooRun]:
    from threadpoolctl import threadpool_limits

    sandbox = Sandbox()  # one zygote: every inspection is a fork of it
    started, cpu_started = time.monotonic(), time.process_time()
    entries, excluded = zoo_entries()
    outcomes = []
    child_cpu: list[float] = []
    try:
        # One BLAS/OpenMP thread, as in the children: on 60 rows more threads cost more than they give.
        with threadpool_limits(limits=1):
            for entry, formats in entries:
                outcome = Outcome(entry)
                outcomes.append(outcome)
                try:
                    model = fit(entry)
                except Exception as exc:  # noqa: BLE001 - an estimator that does not fit is a failure, listed
                    outcome.failures.append(f"fit: {type(exc).__name__}: {str(exc)[:200]}")
                    continue
                for form in formats:
                    _inspect(sandbox, entry, model, form, outcome, child_cpu)
        cpu = time.process_time() - cpu_started + sum(child_cpu)
        yield ZooRun(outcomes, excluded, time.monotonic() - started, cpu)
    finally:
        sandbox.close()


# -- the tests -------------------------------------------------------------------------------------------------


def test_every_estimator_and_composite_passes_the_inspection_in_every_format(zoo: ZooRun, capsys):
    report = zoo.report()
    with capsys.disabled():  # the counts and the exclusions are the point: shown even when it passes
        print("\n" + report)
    assert not [o for o in zoo if o.failures], report


def test_every_estimator_is_tried_or_excluded_with_a_reason(zoo: ZooRun):
    listed = {name for name, _ in all_estimators()}
    assert zoo.names() | set(zoo.excluded) >= listed
    assert not zoo.names() & set(zoo.excluded)
    assert all(reason for reason in zoo.excluded.values())
    # Every table names estimators of some supported scikit-learn: a typo would silently do nothing.
    tables = set(EXCLUDED) | set(INPUTS) | set(ARGUMENTS) | set(PARAMETERS)
    newer_only = {"FrozenEstimator", "FixedThresholdClassifier", "TunedThresholdClassifierCV", "ClassicalMDS"}
    assert tables - listed <= newer_only


def test_every_protocol_and_compressor_is_covered_by_many_estimators(zoo: ZooRun):
    seen = Counter(form for o in zoo for form in o.smoke)
    for protocol in PROTOCOLS:
        assert sum(n for form, n in seen.items() if f"protocol-{protocol}" in form) >= 40, protocol
    for compressor in ("zlib", "lzma"):
        assert sum(n for form, n in seen.items() if form.endswith(compressor)) >= 60, compressor
    assert min(seen[form] for form in ROTATION) >= 15
    assert seen["joblib-protocol-5"] == len(zoo.outcomes)
    assert seen["skops"] == len(zoo.outcomes) - len(set(SKOPS_CANNOT_SAVE) & zoo.names())


def test_what_skops_cannot_save_is_still_refused_by_skops():
    import skops.io

    for name, cls in all_estimators():
        if name in SKOPS_CANNOT_SAVE:
            with pytest.raises(skops.io.exceptions.UnsupportedTypeException):
                skops.io.dumps(cls().fit(X, Y))


@pytest.mark.parametrize(
    ("name", "status", "detail"),
    [
        ("LogisticRegression", "pass", "predict_proba rows sum to 1"),
        ("KNeighborsRegressor", "pass", "predict on 1 row(s)"),
        ("PCA", "pass", "transform on 1 row(s)"),
        ("OneHotEncoder", "pass", "-> sparse 1 x"),
        ("DBSCAN", "warn", "neither predict nor transform"),
        ("TSNE", "warn", "loaded only"),
        ("multi-output-forest", "pass", "predict_proba rows sum to 1 for each of 2 outputs"),
        ("one-vs-rest-multilabel", "pass", "one probability per label"),
        ("MultiTaskLasso", "pass", "predict on 1 row(s)"),
    ],
)
def test_the_smoke_check_fits_the_estimators_kind(zoo: ZooRun, name: str, status: str, detail: str):
    outcome = zoo.by_name(name)
    for form, (got_status, got_detail) in outcome.smoke.items():
        assert got_status == status, (form, got_detail)
        assert detail in got_detail, (form, got_detail)
