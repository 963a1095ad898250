"""The command line's parsing: every subcommand, at any depth, takes --deck after it; credentials
JSON in the shapes people have at hand."""

from __future__ import annotations

import argparse

import pytest

from opsdeck.cli import build_parser
from opsdeck.commands.admin import parse_credentials_json
from opsdeck.errors import OpsdeckError


def _leaf_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        return [prefix]
    leaves: list[tuple[str, ...]] = []
    for name, child in actions[0].choices.items():
        leaves += _leaf_commands(child, (*prefix, name))
    return leaves


LEAVES = _leaf_commands(build_parser())
POSITIONALS = {"ENV": "dev", "SRC": "dev", "DST": "staging", "IMAGE": "ami-0123", "DIR": "/tmp/x"}


def _argv(parser: argparse.ArgumentParser, leaf: tuple[str, ...]) -> list[str]:
    """The leaf's required positionals and required options, filled with plausible values."""
    node = parser
    for name in leaf:
        sub = next(a for a in node._actions if isinstance(a, argparse._SubParsersAction))
        node = sub.choices[name]
    argv = list(leaf)
    for action in node._actions:
        if not action.option_strings and action.nargs not in ("?", "*") and action.dest != "help":
            choices = list(action.choices or ())
            argv.append(str(choices[0]) if choices else POSITIONALS.get(str(action.metavar), "x"))
        elif action.option_strings and action.required:
            argv += [action.option_strings[0], "x"]
    return argv


def test_the_parser_has_nested_commands() -> None:
    assert ("secrets", "status") in LEAVES and ("cloud", "start") in LEAVES and ("status",) in LEAVES


@pytest.mark.parametrize("leaf", LEAVES, ids=" ".join)
def test_deck_is_taken_after_every_subcommand(leaf: tuple[str, ...]) -> None:
    parser = build_parser()
    args = parser.parse_args([*_argv(parser, leaf), "--deck", "/some/deck"])
    assert args.deck == "/some/deck"


def test_deck_before_the_command_still_works() -> None:
    args = build_parser().parse_args(["--deck", "/a", "secrets", "status"])
    assert args.deck == "/a"


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"access_key_id": "AKIA1", "secret_access_key": "s1"}', ("AKIA1", "s1", None)),
        (
            '{"Credentials": {"AccessKeyId": "ASIA2", "SecretAccessKey": "s2", "SessionToken": "t2",'
            ' "Expiration": "2026-11-23T10:00:00Z"}, "AssumedRoleUser": {"Arn": "arn:aws:sts::1:assumed-role/x"}}',
            ("ASIA2", "s2", "t2"),
        ),
        ('{"Version": 1, "AccessKeyId": "AKIA3", "SecretAccessKey": "s3"}', ("AKIA3", "s3", None)),
    ],
    ids=["opsdeck", "sts assume-role", "export-credentials"],
)
def test_credentials_json_shapes(text: str, expected: tuple[str, str, str | None]) -> None:
    assert parse_credentials_json(text) == expected


@pytest.mark.parametrize("text", ["", "[]", "{}", '{"AccessKeyId": "A"}', '{"Credentials": "x"}', "not json"])
def test_credentials_json_mistakes_are_one_clear_error(text: str) -> None:
    with pytest.raises(OpsdeckError, match=r"^stdin: expected JSON "):
        parse_credentials_json(text)
