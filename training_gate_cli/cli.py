"""The `training-gate` command.

Exit codes for every subcommand: 0 passed/registered, 1 rejected, 2 usage or input error
(message on stderr), 3 inconclusive. `--json` prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_OK, EXIT_REJECTED, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"training-gate: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="training-gate", description="A quality gate for Amazon SageMaker training jobs.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    demo = commands.add_parser("demo", help="run three jobs through the gate on the embedded local engine")
    demo.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    demo.add_argument("--no-color", action="store_true", help="plain output")
    return parser


def main(argv: list[str] | None = None) -> int:
    # Node 20 is what this platform offers; the CDK's end-of-life banner says nothing about the gate.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from training_gate_cli.demo import run_demo

        color = not args.no_color and sys.stdout.isatty() and "NO_COLOR" not in os.environ
        return run_demo(color=color, as_json=args.json)
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
