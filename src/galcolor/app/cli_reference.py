"""Render the CLI reference (docs/cli.md) from the argparse parser itself, so it cannot drift.

Regenerate with: python -m galcolor.app.cli_reference > docs/cli.md
"""

from __future__ import annotations

import argparse
import os

from .arguments import build_parser


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse exposes subcommands only through its actions
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def render() -> str:
    # A fixed width keeps the text identical on every terminal.
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        parser = build_parser()
        parts = [
            "# galcolor command-line reference",
            "",
            "Generated from the CLI's own help by `python -m galcolor.app.cli_reference > docs/cli.md`;",
            "a test fails when this file and the CLI disagree.",
            "",
            "Exit codes: 0 success; 1 an error, or some files could not be coloured; 2 a usage error; 130 interrupted (Ctrl-C); 143 terminated (SIGTERM).",
            "",
            "```text",
            parser.format_help().rstrip(),
            "```",
        ]
        for name, sub in _subparsers(parser).items():
            parts += ["", f"## galcolor {name}", "", "```text", sub.format_help().rstrip(), "```"]
            for action, nested in _subparsers(sub).items():
                parts += ["", f"### galcolor {name} {action}", "", "```text", nested.format_help().rstrip(), "```"]
        return "\n".join(parts) + "\n"
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


if __name__ == "__main__":  # pragma: no cover
    print(render(), end="")
