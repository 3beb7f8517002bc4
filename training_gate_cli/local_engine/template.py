"""Reading the synthesized CloudFormation template."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from training_gate_cli.local_engine.constants import LocalEngineError


def load_template(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == resource_type}


def substitute(definition: str, values: dict[str, str]) -> str:
    """Apply DefinitionSubstitutions exactly as Step Functions does: `${Name}` -> value."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise LocalEngineError(f"DefinitionString uses ${{{name}}} but the template does not substitute it")
        return values[name]

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", replace, definition)


def apply_input_transformer(transformer: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """EventBridge InputTransformer: resolve InputPathsMap against the event, fill InputTemplate."""
    values = {}
    for key, path in transformer.get("InputPathsMap", {}).items():
        node: Any = event
        for part in path.removeprefix("$.").split("."):
            node = node.get(part) if isinstance(node, dict) else None
        values[key] = node
    template = transformer["InputTemplate"]

    def fill(match: re.Match[str]) -> str:
        return json.dumps(values.get(match.group(1)))

    return json.loads(re.sub(r"<([A-Za-z0-9_.\-]+)>", fill, template))


def rule_matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    from moto.events.models import EventPattern  # hook: test_event_pattern_matcher

    return bool(EventPattern.load(json.dumps(pattern)).matches_event(event))
