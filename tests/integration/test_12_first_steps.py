"""A new user's first steps through the real command line, on the session's local cloud: a deck of their
own before its state bucket exists, and commands run from a directory that is not a deck after `opsdeck
demo` made one."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path

import boto3
import pytest

from tests.helpers import ROOT, opsdeck

pytestmark = pytest.mark.integration

NEVER_MADE = "opsdeck-first-steps-never-made"
DUMMY = {"aws_access_key_id": "first-steps", "aws_secret_access_key": "first-steps"}


def _own_deck(tmp_path: Path) -> Path:
    """The conventions deck (not the demo: no marker), its state in a bucket nobody made."""
    deck = tmp_path / "deck"
    shutil.copytree(ROOT / "tests" / "decks" / "conventions", deck, ignore=shutil.ignore_patterns(".terraform"))
    for main in deck.glob("envs/*/main.tf"):
        text = main.read_text(encoding="utf-8")
        assert '"opsdeck-conventions-tfstate"' in text, main
        main.write_text(text.replace('"opsdeck-conventions-tfstate"', f'"{NEVER_MADE}"'), encoding="utf-8")
    return deck


def test_a_deck_whose_state_bucket_was_never_made_names_it_and_says_how_to_make_it(
    demo_deck: Path, tmp_path: Path
) -> None:
    endpoint = json.loads(opsdeck("cloud", "status", "--json", check=True).stdout)["endpoint"]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **DUMMY)
    try:
        assert NEVER_MADE not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
    finally:
        s3.close()
    deck = _own_deck(tmp_path)
    said = (
        f"the state bucket {NEVER_MADE} of qa and live does not exist on the local cloud (account 123456789012, "
        "us-east-1): never applied there, or the cloud was restarted since (it keeps everything in memory); "
        f"create it with that account's credentials (`aws s3api create-bucket --bucket {NEVER_MADE} "
        f"--region us-east-1 --endpoint-url {endpoint}`), then apply qa and live (`opsdeck apply ENV`)"
    )

    plan = opsdeck("plan", "qa", deck=deck, timeout=120)
    assert plan.returncode == 1, (plan.stdout, plan.stderr)
    assert plan.stderr.splitlines() == [f"opsdeck: {said}"], plan.stderr

    status = opsdeck("status", "--json", deck=deck, timeout=120)
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)["environments"]
    assert [row["error"] for row in rows] == [said, said], rows

    text = opsdeck("status", deck=deck, timeout=120).stdout
    assert NEVER_MADE in text and "demo --reset" not in text, text


def test_a_command_run_where_there_is_no_deck_says_how_to_run_it_on_the_demo_deck(
    demo_deck: Path, tmp_path: Path
) -> None:
    # As from the checkout after `make demo`: the current directory holds no opsdeck.toml.
    result = opsdeck("status", "--json", cwd=tmp_path, env={k: v for k, v in os.environ.items() if k != "OPSDECK_DECK"})
    assert result.returncode == 1 and result.stdout == "", (result.stdout, result.stderr)
    (line,) = result.stderr.splitlines()
    advice = f"opsdeck --deck {demo_deck} status --json"
    assert line == (
        f"opsdeck: no opsdeck.toml in {tmp_path.resolve()} (pass --deck DIR or set OPSDECK_DECK); the demo deck "
        f"is at {demo_deck}: `{advice}`, or `export OPSDECK_DECK={demo_deck}`"
    ), line
    # The command it shows works as shown.
    shown = opsdeck(*shlex.split(advice)[1:], cwd=tmp_path, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["deck"] == "shop"
