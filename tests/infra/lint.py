"""cfn-lint over synthesized templates, as the infrastructure tests run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CFN_LINT = Path(sys.executable).parent / "cfn-lint"


def cfn_lint(templates: list[Path], regions: list[str]) -> list[str]:
    """Every finding but W3005 (CDK's explicit DependsOn) for the templates in the regions, as text."""
    command = [str(CFN_LINT), "--format", "json", "--ignore-checks", "W3005", "--regions", *regions, "--"]
    result = subprocess.run([*command, *map(str, templates)], capture_output=True, text=True, timeout=600)
    try:
        reported = json.loads(result.stdout or "[]")
    except json.JSONDecodeError as exc:
        raise AssertionError(f"cfn-lint did not run (exit {result.returncode}): {result.stderr}") from exc
    findings: list[dict] = reported
    return [
        f"{f['Rule']['Id']} {f['Message']} ({f['Filename']}:{f['Location']['Start']['LineNumber']})" for f in findings
    ]
