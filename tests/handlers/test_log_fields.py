"""A handler's `extra` logging field named like a LogRecord attribute raises KeyError at INFO level,
after the use case ran (a registration would be made and then reported as failed)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

HANDLERS = Path(__file__).resolve().parents[2] / "lambdas" / "training_gate" / "handlers"
RESERVED = set(vars(logging.LogRecord("n", logging.INFO, "p", 1, "m", None, None))) | {"message", "asctime"}


def test_no_handler_logs_a_field_named_like_a_log_record_attribute():
    clashes = []
    for path in sorted(HANDLERS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "extra" and isinstance(node.value, ast.Dict):
                keys = {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
                clashes += [f"{path.name}: {key}" for key in sorted(keys & RESERVED)]
    assert not clashes, clashes
