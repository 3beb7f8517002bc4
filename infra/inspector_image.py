"""The inspector's container image: which (Python, scikit-learn) pairs it can be built for, the hashed lock
each pair installs, the base image and the platform.

Kept free of aws_cdk at import time: `infra.config` validates `sklearn_version` against this table, and the
command line validates configurations without loading the CDK.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_cdk import aws_lambda as lambda_


REPO_ROOT = Path(__file__).resolve().parent.parent
# The Docker build context: the image copies training_gate/ and its lock from here.
BUILD_CONTEXT = REPO_ROOT / "lambdas"
DOCKERFILE = "inspector.Dockerfile"
LOCK_DIR = "inspector-image"
# The function is x86_64 (Lambda's default). Without an explicit platform, Docker builds for the build
# machine, and an arm64 image built on Apple Silicon fails in an x86_64 function with "exec format error".
PLATFORM = "linux/amd64"
ARCHITECTURE = "x86_64"
# The digest each base image tag pointed at when it was last refreshed (scripts/lock_inspector_image.py
# --base-digests, which needs Docker and the registry). A pinned base makes every later build start from the
# same image; an unpinned one warns at synth.
BASE_DIGESTS_FILE = BUILD_CONTEXT / LOCK_DIR / "base-images.json"
DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class BaseImage:
    python_version: str
    image: str
    os_name: str
    glibc: tuple[int, int]
    # The last day AWS Lambda supports this runtime (https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html).
    supported_until: date | None = None

    @property
    def digest(self) -> str | None:
        """The pinned digest of this tag, if the maintainers have recorded one."""
        return base_digests().get(self.image)

    @property
    def reference(self) -> str:
        """What the Dockerfile builds FROM: the tag pinned to its digest when there is one."""
        return f"{self.image}@{self.digest}" if self.digest else self.image

    def platform_tags(self) -> list[str]:
        """Every wheel platform tag the base's glibc can load, newest first.

        pip's --platform takes each tag literally (it does not expand manylinux_2_26 to the older ones), so
        listing them all is what lets pip pick a manylinux2014 wheel for an image whose glibc is 2.26."""
        major, minor = self.glibc
        tags = [f"manylinux_{major}_{m}_{ARCHITECTURE}" for m in range(minor, 4, -1)]
        # Legacy aliases: older wheels carry only these names (2014 = 2.17, 2010 = 2.12, 1 = 2.5).
        return [*tags, f"manylinux2014_{ARCHITECTURE}", f"manylinux2010_{ARCHITECTURE}", f"manylinux1_{ARCHITECTURE}"]


# Lambda's Python 3.11 image is Amazon Linux 2 (glibc 2.26); 3.12 and later are Amazon Linux 2023 (glibc 2.34).
# Python 3.11 and Amazon Linux 2 reached the end of Lambda support on 2026-06-30.
BASE_IMAGES: dict[str, BaseImage] = {
    "3.11": BaseImage("3.11", "public.ecr.aws/lambda/python:3.11", "Amazon Linux 2", (2, 26), date(2026, 6, 30)),
    "3.12": BaseImage("3.12", "public.ecr.aws/lambda/python:3.12", "Amazon Linux 2023", (2, 34)),
}


def base_digests(path: Path | None = None) -> dict[str, str]:
    """Base image tag -> its pinned digest (tags not yet pinned are absent)."""
    path = path or BASE_DIGESTS_FILE
    if not path.exists():
        return {}
    recorded = json.loads(path.read_text())
    pinned = {image: digest for image, digest in recorded.items() if digest}
    for image, digest in pinned.items():
        if not DIGEST_PATTERN.fullmatch(digest):
            raise ValueError(f"{path.name}: {image} is pinned to {digest!r}, not sha256:<64 hex digits>")
    return pinned


@dataclass(frozen=True)
class ImagePair:
    """One supported image: a scikit-learn release and the Python it is installed on."""

    sklearn_version: str
    python_version: str
    sagemaker_framework_version: str | None
    # Extra bounds for the resolver, each with its reason in SUPPORTED_PAIRS' comments.
    constraints: tuple[str, ...] = ()
    # The framework readers this image carries (pinned): the C loaders the inspection child runs on what the
    # gate's own parsers validated. A framework whose reader is absent is `skipped`, naming why.
    readers: tuple[str, ...] = ()

    @property
    def base(self) -> BaseImage:
        return BASE_IMAGES[self.python_version]

    @property
    def lock_name(self) -> str:
        return f"requirements-{self.python_version}-sklearn-{self.sklearn_version}.txt"

    @property
    def lock_path(self) -> Path:
        return BUILD_CONTEXT / LOCK_DIR / self.lock_name

    def describe(self) -> str:
        sagemaker = f"SageMaker {self.sagemaker_framework_version}, " if self.sagemaker_framework_version else ""
        return f"{self.sklearn_version} ({sagemaker}Python {self.python_version}, {self.base.os_name})"

    def reader_versions(self) -> dict[str, str]:
        """Framework -> the version of its reader in this image (the frameworks without one are absent)."""
        pins = dict(requirement.split("==", 1) for requirement in self.readers)
        return {framework: pins[package] for framework, package in READER_PACKAGES.items() if package in pins}

    def support_warning(self) -> str | None:
        """Why this pair should be left behind, when its base runtime is past Lambda's support."""
        until = self.base.supported_until
        if until is None:
            return None
        return (
            f"the inspector for scikit-learn {self.sklearn_version} builds on {self.base.image} ({self.base.os_name}, "
            f"Python {self.python_version}), whose Lambda support ended on {until.isoformat()}: no security patches, "
            "and Lambda may block updating the function. Retrain with a supported scikit-learn (1.4.2 or later "
            "runs on Python 3.12, Amazon Linux 2023) and set sklearn_version to it"
        )


# The package that reads each judged framework's models in the inspection child (import name -> PyPI name).
# xgboost-cpu is xgboost without the CUDA libraries (the full wheel pulls ~470 MB of nvidia-* packages).
READER_PACKAGES = {
    "xgboost": "xgboost-cpu",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
}
# Amazon Linux 2023 (glibc 2.34) takes the current readers, the versions the project's tests run
# (requirements-dev.txt). Every one has a wheel for it: xgboost-cpu and onnxruntime are manylinux_2_28,
# lightgbm and onnx manylinux_2_27/2_28, catboost manylinux2014.
READERS_AL2023 = (
    "xgboost-cpu==3.2.0",
    "lightgbm==4.6.0",
    "catboost==1.2.10",
    "onnx==1.23.2",
    "onnxruntime==1.32.0",
)
# Amazon Linux 2 (glibc 2.26) cannot load those wheels: the newest release of each reader with a manylinux2014
# (or older) wheel for CPython 3.11. xgboost 3.0.5 is the last manylinux2014 build (3.1 needs glibc 2.28),
# LightGBM 3.3.5 the last manylinux1 (4.x needs 2.28; it reads LightGBM 4 text models, linear trees
# included), onnx 1.19.1 and onnxruntime 1.16.3 the last manylinux_2_17 builds (onnxruntime 1.16 runs
# opsets up to 19 and IR version 9; a newer model is refused by its checker, naming the version).
READERS_AL2 = (
    "xgboost-cpu==3.0.5",
    "lightgbm==3.3.5",
    "catboost==1.2.10",
    "onnx==1.19.1",
    "onnxruntime==1.16.3",
)

# Each bound keeps numpy and scipy near what SageMaker's scikit-learn container of that version ships (its
# requirements.txt), so that a model loads with the numpy it was pickled with or a close one, and an old
# scikit-learn never meets a scipy that removed what it calls.
SUPPORTED_PAIRS: tuple[ImagePair, ...] = (
    # SageMaker 1.2-1 ships numpy 1.24.1 and scipy 1.9.3. scikit-learn 1.2 has no Python 3.12 wheels and is built
    # against numpy 1.x; numpy 1.26 (which loads 1.24 pickles) is what the project's skops pin needs.
    ImagePair("1.2.1", "3.11", "1.2-1", constraints=("numpy<2", "scipy<1.12"), readers=READERS_AL2),
    # SageMaker 1.4-2: numpy 2.1.0; scikit-learn 1.4.2 publishes cp312 wheels, so it runs on Amazon Linux 2023.
    ImagePair("1.4.2", "3.12", "1.4-2", constraints=("numpy<2.2", "scipy<1.15"), readers=READERS_AL2023),
    ImagePair("1.5.2", "3.12", "1.5-2", constraints=("numpy<2.2", "scipy<1.15"), readers=READERS_AL2023),
    # SageMaker's current container: scikit-learn 1.9.0, numpy 2.5.1, scipy 1.18.0.
    ImagePair("1.9.0", "3.12", None, readers=READERS_AL2023),
    # The version the project's own tests run (requirements.txt).
    ImagePair("1.9.1", "3.12", None, readers=READERS_AL2023),
)
SUPPORTED_BY_SKLEARN: dict[str, ImagePair] = {p.sklearn_version: p for p in SUPPORTED_PAIRS}


def supported_versions() -> str:
    """The supported sklearn_version values, for error messages."""
    return "; ".join(pair.describe() for pair in SUPPORTED_PAIRS)


def image_pair(sklearn_version: str, python_version: str | None = None) -> ImagePair:
    """The pair for a configured sklearn_version (and optionally a Python, which must be the pair's).

    Raises ValueError naming the supported versions."""
    pair = SUPPORTED_BY_SKLEARN.get(sklearn_version)
    if pair is None:
        raise ValueError(
            f"no inspector image for scikit-learn {sklearn_version}; supported sklearn_version values: "
            f"{supported_versions()}"
        )
    if python_version is not None and python_version != pair.python_version:
        raise ValueError(
            f"scikit-learn {sklearn_version} runs on Python {pair.python_version} in the inspector image, "
            f"not {python_version}; leave inspector_python_version out (it follows sklearn_version)"
        )
    return pair


def pip_environment() -> dict[str, str]:
    """The environment for pip when it resolves or installs a lock's packages: the machine's, without local
    wheel directories, extra indexes or config files. The hashes must be those of the files the image's own
    pip downloads from the package index, and a local copy may be a different build of the same version."""
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX")}
    env.pop("PIP_CONSTRAINT", None)
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def build_args(pair: ImagePair) -> dict[str, str]:
    """The inspector.Dockerfile build arguments for a pair (they also key the CDK asset hash)."""
    return {
        "BASE_IMAGE": pair.base.reference,
        "LOCK_FILE": f"{LOCK_DIR}/{pair.lock_name}",
        "SKLEARN_VERSION": pair.sklearn_version,
        "PYTHON_VERSION": pair.python_version,
    }


def inspector_image_code(
    sklearn_version: str, python_version: str | None, cmd: Sequence[str]
) -> lambda_.DockerImageCode:
    """The inspector function's code: the image for the configured sklearn_version, built for linux/amd64."""
    from aws_cdk import aws_ecr_assets as ecr_assets
    from aws_cdk import aws_lambda as lambda_

    pair = image_pair(sklearn_version, python_version)
    return lambda_.DockerImageCode.from_image_asset(
        str(BUILD_CONTEXT),
        file=DOCKERFILE,
        cmd=list(cmd),
        build_args=build_args(pair),
        platform=ecr_assets.Platform.LINUX_AMD64,
        # Only this pair's lock enters the build context, so relocking another pair does not rebuild this image.
        exclude=["*.egg-info", "**/__pycache__", "*.pyc", f"{LOCK_DIR}/*", f"!{LOCK_DIR}/{pair.lock_name}"],
    )
