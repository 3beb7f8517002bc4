"""Test-wide guards: fake AWS credentials, and no request may leave the machine."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "TrainingGate",
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
)
for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(variable, None)


class NetworkAccessError(RuntimeError):
    pass


_real_connect = socket.socket.connect


def _is_local(address: object) -> bool:
    if isinstance(address, (str, bytes)):
        return True  # AF_UNIX: the jsii runtime talks to node over pipes
    host = address[0] if isinstance(address, tuple) else None
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback  # type: ignore[arg-type]
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_local(address):
        raise NetworkAccessError(f"test tried to reach {address!r}: only loopback is allowed")
    return _real_connect(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gate synthesized once per session with the local overrides (no poll wait)."""
    from training_gate_cli.synth import synthesize

    outdir = tmp_path_factory.mktemp("cdk.out")
    return synthesize(outdir=outdir, force=True)


@pytest.fixture(scope="session")
def template(synthesized: Path) -> dict:
    import json

    return json.loads(synthesized.read_text())


def pytest_report_header() -> list[str]:
    return [f"python {sys.version.split()[0]}; network: loopback only"]


# The IAM calls the scenarios checked (tests/scenarios/iam_totals.py), added up over the xdist workers.
def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.scenarios import iam_totals

    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[iam_totals.WORKER_OUTPUT_KEY] = iam_totals.dumps()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    import json

    from tests.scenarios import iam_totals

    output = getattr(node, "workeroutput", {}).get(iam_totals.WORKER_OUTPUT_KEY)
    if output:
        iam_totals.add(json.loads(output))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    from tests.scenarios import iam_totals

    for line in iam_totals.lines():
        terminalreporter.write_line(line)
