"""The team fixture of the unit tests: two clones (alice's and bob's) of a bare remote, on the fake tools
with real git and real SSH keys made by ssh-keygen (alice, bob and carol in allowed_signers; mallory not)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from opsdeck.adapters import sshsig
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.release.bake import bake
from opsdeck.core.release.promote import deploy_newest, promote
from opsdeck.core.team import requests
from tests.fakes import World, fake_tools
from tests.unit.estate import git, make_estate


@dataclass
class Team:
    a: Deck  # alice's clone (the requester)
    b: Deck  # bob's clone
    world: World
    remote: Path
    keys: dict[str, Path]


def rep() -> Reporter:
    return Reporter("test")


def _member(root: Path, name: str, key: Path) -> None:
    git(root, "config", "user.name", name.title())
    git(root, "config", "user.email", f"{name}@shop.example")
    git(root, "config", "user.signingkey", str(key))


@pytest.fixture()
def team(tmp_path: Path) -> Iterator[Team]:
    world = World()
    deck_a, _ = make_estate(tmp_path / "alice", world, approvals=True)
    keys = {}
    for name in ("alice", "bob", "carol", "mallory"):
        keys[name] = tmp_path / "keys" / name
        sshsig.new_key(keys[name], f"{name}@shop.example")
    signers = [f"{n}@shop.example {sshsig.public_key(str(keys[n]))}" for n in ("alice", "bob", "carol")]
    (deck_a.root / "allowed_signers").write_text("\n".join(signers) + "\n")
    _member(deck_a.root, "alice", keys["alice"])
    git(deck_a.root, "commit", "-qm", "the team's signers", "--", "allowed_signers")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    git(deck_a.root, "remote", "add", "origin", str(remote))
    git(deck_a.root, "push", "-q", "--set-upstream", "origin", "main")
    subprocess.run(["git", "clone", "-q", str(remote), str(tmp_path / "bob")], check=True)
    _member(tmp_path / "bob", "bob", keys["bob"])
    deck_a = Deck.open(deck_a.root, tools=fake_tools(world))
    deck_b = Deck.open(tmp_path / "bob", tools=fake_tools(world))
    yield Team(deck_a, deck_b, world, remote, keys)
    for deck in (deck_a, deck_b):
        deck.tools.git.close()  # type: ignore[attr-defined]


def bake_one(deck: Deck, service: str) -> str:
    (result,) = asyncio.run(bake(deck, rep(), services=[service]))
    return result.id


def file_request(team: Team) -> requests.Request:
    asyncio.run(deploy_newest(team.a, "dev", rep(), services=["web"]))
    made = asyncio.run(promote(team.a, "dev", "staging", rep(), services=["web"], reason="release 7"))
    assert isinstance(made, requests.Request)
    return made
