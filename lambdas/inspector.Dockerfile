# The inspector: the only function that carries scikit-learn. Its version is a deployment setting
# (sklearn_version in cdk.json) so that models load with the scikit-learn they were trained with.
# infra/inspector_image.py chooses the base image and the lock for that version and passes them as build
# arguments, with platform linux/amd64; the defaults below are the 1.4.2 pair, for a manual `docker build`.
# BASE_IMAGE is the tag pinned to its digest (tag@sha256:...) once lambdas/inspector-image/base-images.json
# records one.
ARG BASE_IMAGE=public.ecr.aws/lambda/python:3.12
FROM ${BASE_IMAGE}

ARG LOCK_FILE=inspector-image/requirements-3.12-sklearn-1.4.2.txt
ARG SKLEARN_VERSION=1.4.2
ARG PYTHON_VERSION=3.12

# Every wheel is pinned by hash and resolved for this base's glibc (scripts/lock_inspector_image.py), and
# --only-binary makes a missing wheel an error here instead of a source build. --no-deps installs exactly the
# lock, which the lock script proves complete (it leaves out what a reader declares and never imports).
COPY ${LOCK_FILE} /tmp/requirements.txt
RUN pip install --no-cache-dir --no-deps --require-hashes --only-binary=:all: -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt \
    && python -c "import sys, sklearn; \
v = f'{sys.version_info.major}.{sys.version_info.minor}'; \
assert (v, sklearn.__version__) == ('${PYTHON_VERSION}', '${SKLEARN_VERSION}'), (v, sklearn.__version__)"

COPY training_gate ${LAMBDA_TASK_ROOT}/training_gate
# Matching .pyc files keep the cold import of scikit-learn near one second.
RUN python -m compileall -q ${LAMBDA_TASK_ROOT}
# The handler is set by the function's ImageConfig (infra/gate.py), not by a CMD here.
