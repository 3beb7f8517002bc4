"""Reading what a synthesized gate deploys besides its template."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from training_gate.domain.settings import SETTINGS_SHA256_VARIABLE, SETTINGS_VARIABLE
from training_gate_cli.local_engine import resources_of


def settings_document(template_path: Path) -> dict[str, str]:
    """The settings document the functions of a synthesized gate read (infra/settings.py), from its asset."""
    template = json.loads(template_path.read_text())
    variables = [
        f["Properties"]["Environment"]["Variables"]
        for f in resources_of(template, "AWS::Lambda::Function").values()
        if SETTINGS_VARIABLE in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    (digest,) = {v[SETTINGS_SHA256_VARIABLE] for v in variables}
    (uri,) = {json.dumps(v[SETTINGS_VARIABLE]) for v in variables}
    manifest = json.loads(template_path.with_name(template_path.name.replace(".template.", ".assets.")).read_text())
    (asset,) = [
        a for a in manifest["files"].values() if any(f'/{d["objectKey"]}"' in uri for d in a["destinations"].values())
    ]
    content = (template_path.parent / asset["source"]["path"]).read_bytes()
    assert hashlib.sha256(content).hexdigest() == digest, "the functions name another document"
    document: dict[str, Any] = json.loads(content)
    return document


def function_variables(template_path: Path, logical_prefix: str) -> dict[str, str]:
    """A function's variables as its handler sees them: its environment over the settings document it names."""
    template = json.loads(template_path.read_text())
    (function,) = [
        f for k, f in resources_of(template, "AWS::Lambda::Function").items() if k.startswith(logical_prefix)
    ]
    own = function["Properties"].get("Environment", {}).get("Variables", {})
    return {**(settings_document(template_path) if SETTINGS_VARIABLE in own else {}), **own}
