"""What each handler module loads at a Lambda cold start: what is never called is never imported.

(Powertools imports the top-level `botocore` package for its user agent; a client module is what costs.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# The variables Lambda itself sets that change what the X-Ray SDK and Powertools do at import.
LAMBDA_ENVIRONMENT = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "AWS_LAMBDA_FUNCTION_NAME": "training-gate-test",
    "AWS_REGION": "us-east-1",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.14",
    "POWERTOOLS_SERVICE_NAME": "training-gate-test",
}


def loaded_at_import(handler: str) -> dict:
    code = (
        "import json, sys\n"
        f"import training_gate.handlers.{handler}\n"
        "botocore = sys.modules.get('botocore.client')\n"
        "call = botocore and botocore.BaseClient._make_api_call\n"
        "print(json.dumps({'botocore': 'botocore.client' in sys.modules, 'requests': 'requests' in sys.modules,\n"
        "                  'sqlite3': 'sqlite3' in sys.modules, 'traced': hasattr(call, '__wrapped__')}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "AWS_LAMBDA"))}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**env, **LAMBDA_ENVIRONMENT}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "handler", ["collect_metrics", "evaluate_policy", "register_model", "describe_failure", "notify_owners"]
)
def test_handlers_that_call_aws_trace_boto_and_patch_nothing_else(handler):
    assert loaded_at_import(handler) == {"botocore": True, "requests": False, "sqlite3": False, "traced": True}


@pytest.mark.parametrize("handler", ["validate_input"])
def test_handlers_that_never_call_aws_do_not_load_boto(handler):
    assert loaded_at_import(handler) == {"botocore": False, "requests": False, "sqlite3": False, "traced": False}
