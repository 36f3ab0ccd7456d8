from pathlib import Path

from galcolor.app.cli_reference import render

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_docs_cli_reference_matches_the_cli_itself():
    assert REFERENCE.exists(), "docs/cli.md is missing: python -m galcolor.app.cli_reference > docs/cli.md"
    assert REFERENCE.read_text() == render(), "docs/cli.md is stale: python -m galcolor.app.cli_reference > docs/cli.md"


def test_reference_covers_every_subcommand():
    text = render()
    for command in ("demo", "colorize", "train", "evaluate", "bench", "serve", "data", "data download"):
        assert f"## galcolor {command}" in text
