# The inspector: the only function that carries scikit-learn. Its version is a deployment setting
# (sklearn_version in cdk.json) so that models load with the scikit-learn they were trained with.
ARG PYTHON_VERSION=3.11
FROM public.ecr.aws/lambda/python:${PYTHON_VERSION}

ARG SKLEARN_VERSION=1.4.2
RUN pip install --no-cache-dir \
      "scikit-learn==${SKLEARN_VERSION}" joblib skops pyarrow isal \
      "aws-lambda-powertools[tracer]>=3,<4" "pydantic>=2,<3"

COPY training_gate ${LAMBDA_TASK_ROOT}/training_gate
# Matching .pyc files keep the cold import of scikit-learn near one second.
RUN python -m compileall -q ${LAMBDA_TASK_ROOT}
# The handler is set by the function's ImageConfig (infra/gate.py), not by a CMD here.
