"""The XGBoost, LightGBM, CatBoost and ONNX zoo through `training-gate inspect --json`: every fixture of every
version and format passes and reproduces its own library's predictions through the gate's reader; every hostile
or broken model is refused with a named reason before any payload runs.

The command runs in this process (its `main`, the inspection in the shared sandbox), so the zoo costs one zygote;
the first tests run the installed command itself once per framework."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.support.native_zoo import FRAMEWORK_NAMES, REFERENCE_TOLERANCE, ZooCase, benign, counts, hostile
from training_gate.domain.models import FRAMEWORK_FORMATS
from training_gate_cli.cli import main

BENIGN = benign()
HOSTILE_NAMES = [case.name for case in hostile("unused")]


def _write(tmp_path: Path, case: ZooCase) -> list[str]:
    artifact = tmp_path / "model.tar.gz"
    artifact.write_bytes(case.artifact())
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(case.sample or [[0.0] * 5]))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"reference_tolerance": REFERENCE_TOLERANCE}))
    return ["inspect", str(artifact), "--sample-input", str(sample), "--config", str(config), "--json"]


def inspect_json(tmp_path: Path, case: ZooCase) -> tuple[int, dict]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(_write(tmp_path, case))
    return code, json.loads(out.getvalue())


def _checks(document: dict) -> dict[str, dict]:
    return {c["name"]: c for c in document["checks"]}


def test_the_zoo_covers_each_framework_every_objective_family_and_every_format():
    table = counts(BENIGN)
    assert set(table) == {"xgboost", "lightgbm", "catboost", "onnx"}
    for case in BENIGN:
        assert case.report_format in FRAMEWORK_FORMATS[case.framework], case.name
    assert set(table["catboost"]) == {"cbm", "pickle"}
    for framework in ("xgboost", "lightgbm"):  # scikit-learn wrappers, pickled and dumped by joblib
        assert {"sklearn-pickle", "sklearn-joblib", "sklearn-joblib-compressed"} <= set(table[framework])
    families = {(c.framework, c.name.split("/")[-1].split("-")[0].split(".")[0]) for c in BENIGN}
    for framework in ("xgboost", "lightgbm", "catboost"):
        assert {(framework, f) for f in ("binary", "multiclass", "regression", "ranking")} <= families
    assert {"pickle-old-binary", "pickle-snapshot", "old-binary", "ubjson", "json"} <= set(table["xgboost"])
    hostile_frameworks = {case.framework for case in hostile("unused")}
    assert hostile_frameworks == set(table)


@pytest.mark.parametrize("framework", sorted(FRAMEWORK_NAMES))
def test_the_command_itself_judges_each_framework(tmp_path: Path, framework: str):
    case = next(c for c in BENIGN if c.framework == framework)
    command = [sys.executable, "-m", "training_gate_cli.cli", *_write(tmp_path, case)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["verdict"], document["model"]["framework"]) == ("pass", framework)


@pytest.mark.parametrize("case", BENIGN, ids=[c.name for c in BENIGN])
def test_every_benign_model_passes_and_reproduces_its_librarys_predictions(tmp_path: Path, case: ZooCase):
    code, document = inspect_json(tmp_path, case)
    checks = _checks(document)
    assert (code, document["verdict"]) == (0, "pass"), checks
    model = document["model"]
    assert (model["framework"], model["format"]) == (case.framework, case.report_format)
    assert model["reader_version"] and model["reader"]
    assert document["recognition"]["framework"] == FRAMEWORK_NAMES[case.framework]
    assert checks["smoke_prediction"]["status"] == "pass"
    assert checks["reference_predictions"]["status"] == "pass", checks["reference_predictions"]
    assert checks["reference_predictions"]["detail"].startswith("6 reference predictions reproduced")
    if case.framework == "catboost":
        assert model["bytes_validated"] is False and checks["load"]["status"] == "warn"
        assert "the bytes were not validated before its loader" in checks["load"]["detail"]
    else:
        assert model["bytes_validated"] is True and checks["load"]["status"] == "pass"
        assert "validated by the gate's own parser" in checks["load"]["detail"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_every_hostile_or_broken_model_is_refused_by_name_and_no_payload_runs(tmp_path: Path, name: str):
    marker = tmp_path / "owned"
    case = next(c for c in hostile(str(marker)) if c.name == name)
    code, document = inspect_json(tmp_path, case)
    checks = _checks(document)
    assert (code, document["verdict"]) == (1, "reject"), checks
    assert document["recognition"]["framework"] == (case.recognised or FRAMEWORK_NAMES[case.framework])
    assert checks["load"]["status"] == "fail"
    assert case.reason in checks["load"]["detail"], checks["load"]
    assert checks["smoke_prediction"]["status"] == "skipped"
    assert not marker.exists()
