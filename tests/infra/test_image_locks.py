"""The inspector image's locks, read offline. That each lock really resolves for its image is proven outside
pytest (it needs the package index): `scripts/lock_inspector_image.py --check`, a step of `make test`."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_

from infra import inspector_image
from infra.config import ConfigError, GateConfig, load_config, read_context
from infra.inspector_image import (
    BASE_DIGESTS_FILE,
    BASE_IMAGES,
    BUILD_CONTEXT,
    DIGEST_PATTERN,
    DOCKERFILE,
    LOCK_DIR,
    SUPPORTED_PAIRS,
    base_digests,
    build_args,
    image_pair,
    inspector_image_code,
)

REPO = Path(__file__).resolve().parents[2]
ENTRY = re.compile(
    r"^(?P<name>[a-z0-9-]+)==(?P<version>\S+) \\\n    --hash=sha256:[0-9a-f]{64}\n    # (?P<wheel>\S+)$", re.M
)
PAIR_IDS = [f"py{p.python_version}-sklearn-{p.sklearn_version}" for p in SUPPORTED_PAIRS]


def _entries(lock: Path) -> dict[str, tuple[str, str]]:
    return {m["name"]: (m["version"], m["wheel"]) for m in ENTRY.finditer(lock.read_text())}


def _glibc_of(tag: str) -> tuple[int, int] | None:
    legacy = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
    if match := re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", tag):
        return int(match[1]), int(match[2])
    return legacy.get(tag.removesuffix("_x86_64")) if tag.endswith("_x86_64") else None


@pytest.mark.parametrize("pair", SUPPORTED_PAIRS, ids=PAIR_IDS)
def test_every_requirement_of_a_lock_is_pinned_with_a_hash(pair):
    text = pair.lock_path.read_text()
    requirement_lines = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    entries = _entries(pair.lock_path)
    assert len(entries) == len(requirement_lines) > 10, "every requirement: name==version, one sha256, its wheel"
    assert entries["scikit-learn"][0] == pair.sklearn_version


@pytest.mark.parametrize("pair", SUPPORTED_PAIRS, ids=PAIR_IDS)
def test_every_locked_wheel_loads_on_the_base_image(pair):
    """Each wheel's tags admit the image's CPython and glibc: nothing can fall back to a source build."""
    cp = f"cp{pair.python_version.replace('.', '')}"
    for name, (_, wheel) in _entries(pair.lock_path).items():
        assert wheel.endswith(".whl"), name
        python, abi, platforms = wheel.removesuffix(".whl").split("-")[-3:]
        pythons = python.split(".")
        assert cp in pythons or any(t.startswith("py3") for t in pythons) or abi == "abi3", wheel
        if platforms == "any":
            continue
        glibcs = [_glibc_of(tag) for tag in platforms.split(".")]
        assert any(g is not None and g <= pair.base.glibc for g in glibcs), f"{wheel} needs a newer glibc"


def test_amazon_linux_2_locks_keep_numpy_at_most_2_2_6_and_have_manylinux2014_wheels():
    al2 = [p for p in SUPPORTED_PAIRS if p.base.os_name == "Amazon Linux 2"]
    assert {p.sklearn_version for p in al2} == {"1.2.1"}  # the only release with no wheels for a supported base
    for pair in al2:
        entries = _entries(pair.lock_path)
        numpy = tuple(int(part) for part in entries["numpy"][0].split("."))
        assert numpy <= (2, 2, 6), pair.lock_name
        for name in ("numpy", "scipy", "pyarrow", "scikit-learn"):
            assert "manylinux2014_x86_64" in entries[name][1] or "manylinux_2_17_x86_64" in entries[name][1]


def test_platform_tags_list_every_manylinux_up_to_the_base_glibc():
    al2, al2023 = BASE_IMAGES["3.11"].platform_tags(), BASE_IMAGES["3.12"].platform_tags()
    assert {f"manylinux_2_{m}_x86_64" for m in range(17, 27)} <= set(al2)
    assert "manylinux_2_27_x86_64" not in al2 and "manylinux_2_28_x86_64" not in al2
    assert "manylinux2014_x86_64" in al2
    assert {f"manylinux_2_{m}_x86_64" for m in range(17, 35)} <= set(al2023)
    assert "manylinux_2_35_x86_64" not in al2023


def test_the_image_shares_the_projects_pins():
    project = dict(re.findall(r"^([a-z0-9-]+)(?:\[[^\]]*\])?==(\S+)", (REPO / "requirements.txt").read_text(), re.M))
    for pair in SUPPORTED_PAIRS:
        entries = _entries(pair.lock_path)
        for name in ("aws-lambda-powertools", "pydantic", "boto3", "joblib", "isal"):
            assert entries[name][0] == project[name], (pair.lock_name, name)


def test_no_lock_without_a_pair():
    assert {p.name for p in (BUILD_CONTEXT / LOCK_DIR).glob("*.txt")} == {p.lock_name for p in SUPPORTED_PAIRS}


def test_the_python_follows_the_sklearn_version():
    # scikit-learn 1.2 has no Python 3.12 wheels: it alone stays on Amazon Linux 2 / Python 3.11.
    assert image_pair("1.2.1").python_version == "3.11"
    assert image_pair("1.4.2").python_version == "3.12"
    assert all(p.python_version >= "3.12" for p in SUPPORTED_PAIRS if p.sklearn_version != "1.2.1")
    assert {p.sagemaker_framework_version for p in SUPPORTED_PAIRS} >= {"1.2-1", "1.4-2"}


def test_the_default_pair_runs_on_a_supported_runtime_and_the_old_one_says_when_support_ended():
    config = load_config(read_context())
    assert (config.sklearn_version, config.inspector_python_version) == (read_context()["sklearn_version"], "3.12")
    default = image_pair(GateConfig.model_fields["sklearn_version"].default)
    assert default.base.supported_until is None and default.support_warning() is None
    assert image_pair(config.sklearn_version).support_warning() is None
    warning = image_pair("1.2.1").support_warning()
    assert warning and "ended on 2026-06-30" in warning and "1.4.2" in warning


def test_an_unsupported_sklearn_version_fails_naming_the_supported_ones():
    with pytest.raises(ConfigError, match=r"training-gate\.sklearn_version") as failure:
        load_config({**read_context(), "sklearn_version": "1.3.2"})
    for pair in SUPPORTED_PAIRS:
        assert pair.sklearn_version in str(failure.value)


def test_a_python_that_is_not_the_pairs_fails_naming_the_key():
    with pytest.raises(ConfigError, match=r"training-gate\.inspector_python_version: .*Python 3\.12 .*not 3\.11"):
        load_config({**read_context(), "sklearn_version": "1.9.1", "inspector_python_version": "3.11"})
    assert load_config({**read_context(), "sklearn_version": "1.9.1"}).inspector_python_version == "3.12"


def test_the_dockerfile_installs_the_lock_binary_only_with_hashes_and_defaults_to_the_shipped_pair():
    dockerfile = (BUILD_CONTEXT / DOCKERFILE).read_text()
    assert re.search(r"pip install .*--require-hashes --only-binary=:all: -r", dockerfile)
    defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", dockerfile, re.M))
    pair = image_pair(read_context()["sklearn_version"])
    assert defaults == {**build_args(pair), "BASE_IMAGE": pair.base.image}  # a manual build names the tag


def test_the_image_asset_is_built_for_linux_amd64_from_its_pairs_lock(tmp_path: Path):
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "ImageOnly")
    config = load_config({**read_context(), "sklearn_version": "1.2.1"})
    lambda_.DockerImageFunction(
        stack,
        "Inspector",
        code=inspector_image_code(config.sklearn_version, config.inspector_python_version, cmd=["handler.handler"]),
    )
    app.synth()
    (image,) = json.loads((tmp_path / "ImageOnly.assets.json").read_text())["dockerImages"].values()
    source = image["source"]
    assert source["platform"] == "linux/amd64"
    assert source["dockerFile"] == DOCKERFILE
    assert source["dockerBuildArgs"] == {
        "BASE_IMAGE": BASE_IMAGES["3.11"].reference,
        "LOCK_FILE": "inspector-image/requirements-3.11-sklearn-1.2.1.txt",
        "SKLEARN_VERSION": "1.2.1",
        "PYTHON_VERSION": "3.11",
    }
    staged = tmp_path / source["directory"]
    # Only this pair's lock is in the build context: relocking another pair leaves this image's hash alone.
    assert [p.name for p in (staged / LOCK_DIR).iterdir()] == ["requirements-3.11-sklearn-1.2.1.txt"]
    assert (staged / "training_gate" / "inspector" / "loader.py").exists()


# -- the base image, pinned by digest ---------------------------------------------------------------


def test_every_base_image_is_recorded_and_each_pin_is_a_sha256_digest():
    recorded = json.loads(BASE_DIGESTS_FILE.read_text())
    assert set(recorded) == {p.base.image for p in SUPPORTED_PAIRS}
    for image, digest in recorded.items():
        assert digest is None or DIGEST_PATTERN.fullmatch(digest), (image, digest)


@pytest.mark.parametrize("digest", ["sha256:abc", "sha512:" + "a" * 128, "latest", "SHA256:" + "A" * 64])
def test_a_pin_that_is_not_a_sha256_digest_is_refused(tmp_path: Path, digest: str):
    path = tmp_path / "base-images.json"
    path.write_text(json.dumps({"public.ecr.aws/lambda/python:3.12": digest}))
    with pytest.raises(ValueError, match="not sha256:<64 hex digits>"):
        base_digests(path)


def test_a_pinned_base_is_built_from_its_digest(monkeypatch: pytest.MonkeyPatch):
    digest = "sha256:" + "0123456789abcdef" * 4
    pair = image_pair("1.4.2")
    monkeypatch.setattr(inspector_image, "base_digests", lambda: {pair.base.image: digest})
    assert build_args(pair)["BASE_IMAGE"] == f"public.ecr.aws/lambda/python:3.12@{digest}"


def _lock_script():
    spec = importlib.util.spec_from_file_location("lock_inspector_image", REPO / "scripts" / "lock_inspector_image.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_refresh_dry_run_names_the_registry_command_per_base_and_writes_nothing():
    before = BASE_DIGESTS_FILE.read_bytes()
    result = subprocess.run(
        [sys.executable, "scripts/lock_inspector_image.py", "--base-digests", "--dry-run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for image in {p.base.image for p in SUPPORTED_PAIRS}:
        assert f"would run: docker buildx imagetools inspect {image} --format '{{{{json .Manifest}}}}'" in result.stdout
    assert BASE_DIGESTS_FILE.read_bytes() == before


def test_the_refresh_records_the_digest_of_each_tags_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    script = _lock_script()
    target = tmp_path / "base-images.json"
    monkeypatch.setattr(script, "BASE_DIGESTS_FILE", target)
    monkeypatch.setattr(script, "REPO", tmp_path)
    digests = {
        image: "sha256:" + f"{n:064x}" for n, image in enumerate(sorted({p.base.image for p in SUPPORTED_PAIRS}))
    }
    ran = []

    def registry(command, **kwargs):
        ran.append(command)
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digests[command[4]],
            "size": 1609,
            "manifests": [{"digest": "sha256:" + "f" * 64, "platform": {"architecture": "amd64", "os": "linux"}}],
        }
        return subprocess.CompletedProcess(command, 0, stdout=json.dumps(index), stderr="")

    assert script.refresh_base_digests(dry_run=False, run=registry) == 0
    assert [c[:4] for c in ran] == [["docker", "buildx", "imagetools", "inspect"]] * len(digests)
    assert json.loads(target.read_text()) == digests
    assert base_digests(target) == digests


def test_synthesis_warns_with_the_end_of_support_when_the_pair_is_on_an_unsupported_runtime():
    from aws_cdk.assertions import Annotations, Match

    from infra.stack import TrainingGateStack

    message = Match.string_like_regexp("Lambda support ended on 2026-06-30")
    old = TrainingGateStack(App(), "Old", config=load_config({**read_context(), "sklearn_version": "1.2.1"}))
    Annotations.from_stack(old).has_warning("*", message)
    shipped = TrainingGateStack(App(), "Shipped", config=load_config(read_context()))
    assert Annotations.from_stack(shipped).find_warning("*", message) == []


# -- the framework readers each image carries ----------------------------------------------------------------


def _dev_pins() -> dict[str, str]:
    return dict(re.findall(r"^([a-z0-9-]+)==(\S+)", (REPO / "requirements-dev.txt").read_text(), re.M))


@pytest.mark.parametrize("pair", SUPPORTED_PAIRS, ids=PAIR_IDS)
def test_every_lock_carries_its_pairs_readers_and_none_of_what_they_never_import(pair):
    entries = _entries(pair.lock_path)
    assert set(pair.reader_versions()) == set(inspector_image.READER_PACKAGES), pair.lock_name
    for requirement in pair.readers:
        name, version = requirement.split("==")
        assert entries[name][0] == version, (pair.lock_name, name)
    assert not {"matplotlib", "plotly", "graphviz"} & set(entries)  # CatBoost's plotting, left out


def test_amazon_linux_2023_images_read_with_the_versions_the_tests_run():
    dev = _dev_pins()
    for requirement in inspector_image.READERS_AL2023:
        name, version = requirement.split("==")
        assert dev[name] == version, name


def test_amazon_linux_2_gets_the_last_readers_built_for_its_glibc():
    (al2,) = [p for p in SUPPORTED_PAIRS if p.base.os_name == "Amazon Linux 2"]
    assert al2.reader_versions() == {
        "xgboost": "3.0.5",
        "lightgbm": "3.3.5",
        "catboost": "1.2.10",
        "onnx": "1.19.1",
        "onnxruntime": "1.16.3",
    }
    entries = _entries(al2.lock_path)
    for name in ("xgboost-cpu", "lightgbm", "catboost", "onnx", "onnxruntime"):
        wheel = entries[name][1]
        assert any(tag in wheel for tag in ("manylinux2014", "manylinux_2_17", "manylinux1")), wheel


def _item(name: str, *requires: str) -> dict:
    return {"metadata": {"name": name, "version": "1", "requires_dist": list(requires)}}


def test_the_lock_keeps_what_the_roots_need_and_drops_what_only_unused_dependencies_need():
    script = _lock_script()
    pair = image_pair("1.9.1")
    report = {
        "install": [
            _item("catboost", "numpy", "matplotlib", "plotly", "graphviz"),
            _item("numpy"),
            _item("matplotlib", "pillow", "numpy"),
            _item("pillow"),
            _item("plotly", "narwhals"),
            _item("narwhals"),
            _item("graphviz"),
            _item("tomli; python_version < '3.11'"),
            _item("aws-lambda-powertools", "aws-xray-sdk; extra == 'tracer'", "boto3; extra == 'aws-sdk'"),
            _item("aws-xray-sdk"),
        ]
    }
    roots = {"catboost": set(), "aws-lambda-powertools": {"tracer"}}
    needed = script.needed_closure(report, pair, roots)
    assert needed == {"catboost", "numpy", "aws-lambda-powertools", "aws-xray-sdk"}
    # A dependency the report lacks is reached all the same: the check names it as missing.
    report["install"] = [i for i in report["install"] if i["metadata"]["name"] != "numpy"]
    assert "numpy" in script.needed_closure(report, pair, roots)


def test_the_dockerfile_installs_exactly_the_lock():
    assert re.search(
        r"pip install [^\n]*--no-deps --require-hashes --only-binary=:all: -r", (BUILD_CONTEXT / DOCKERFILE).read_text()
    )
