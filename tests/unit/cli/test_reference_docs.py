from pathlib import Path

from inferplane.cli import reference

DOC = Path(__file__).parents[3] / "docs" / "reference" / "cli.md"


def test_the_cli_reference_is_up_to_date() -> None:
    expected = reference.render()
    assert DOC.read_text() == expected, (
        "docs/reference/cli.md is stale: run "
        "`python -m inferplane.cli.reference > docs/reference/cli.md`"
    )


def test_every_command_and_option_has_help() -> None:
    text = reference.render()
    for command in ("apply", "diff", "get", "describe", "delete", "scale", "explain", "events"):
        assert f"## `inferplane {command}`" in text
    assert "|  |" not in text, "an option without help text"
