"""Packer's machine-readable lines: escaping, artifacts and errors."""

from __future__ import annotations

from opsdeck.adapters.packer import _first_error, parse_line
from opsdeck.core.types.tools import BuildResult


def test_parse_ui_line_with_escaped_comma_and_newline() -> None:
    line = parse_line("1795338069,,ui,say,No volumes to clean up%!(PACKER_COMMA) skipping\\nnext")
    assert line is not None
    assert line.type == "ui" and line.text == "No volumes to clean up, skipping\nnext"


def test_artifact_id_gives_the_image() -> None:
    line = parse_line("1795338069,amazon-ebs,artifact,0,id,us-east-1:ami-5b12f4de43d0cdd9a")
    assert line is not None and line.target == "amazon-ebs"
    result = BuildResult(artifacts=[line.data[2], "us-east-1:ami-5b12f4de43d0cdd9a"])
    assert result.image_ids == ["ami-5b12f4de43d0cdd9a"]


def test_not_a_machine_readable_line() -> None:
    assert parse_line("==> amazon-ebs: hello") is None


def test_first_error_is_packers_own_words() -> None:
    errors = [
        "Build 'amazon-ebs' errored after 78 milliseconds 44 microseconds: The provided source AMI has an "
        "invalid root device type.\nExpected 'ebs', got 'standard'.",
        "\n==> Some builds didn't complete successfully and had errors:",
    ]
    assert _first_error(errors, "") == "The provided source AMI has an invalid root device type."
    assert _first_error([], "a\nlast words\n") == "last words"
