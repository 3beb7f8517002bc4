"""What every `training-gate` subcommand shares: exit codes, the usage error, reading input files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3
_READ_CHUNK = 1 << 20


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr, exit 2."""


def read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise UsageError(f"{what} file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} file {path} is not UTF-8 text: {exc}") from exc
    if path.suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise UsageError(f"{what} file {path} is not valid YAML: {exc}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} file {path} is not valid JSON: {exc}") from exc


def iter_lines(path: Path) -> Iterator[str]:
    """A log file's lines, split on "\\n" only (as CloudWatch lines are), read in bounded chunks."""
    try:
        handle = open(path, encoding="utf-8", errors="replace", newline="")
    except OSError as exc:
        raise UsageError(f"cannot read log file {path}: {exc.strerror}") from exc
    with handle:
        rest = ""
        while chunk := handle.read(_READ_CHUNK):
            lines = (rest + chunk).split("\n")
            rest = lines.pop()
            yield from lines
        if rest:
            yield rest


def exit_code(outcome: str) -> int:
    """0 passed/registered, 1 rejected, 3 inconclusive or skipped (nothing was judged)."""
    return {"pass": EXIT_OK, "reject": EXIT_REJECTED}.get(outcome, EXIT_INCONCLUSIVE)
