"""A sample estate on the fake tools: the shop deck (three services, four environments, three accounts,
two regions), baked, distributed, pinned, committed and applied, in milliseconds."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import write_pins
from opsdeck.core.events import Reporter
from opsdeck.core.plans import planning
from opsdeck.core.release import rollout
from opsdeck.core.release.bake import bake
from opsdeck.core.release.distribute import make_usable
from opsdeck.core.release.images import load_catalog
from opsdeck.shipped import copy_tree, shipped
from tests.fakes import World, fake_tools

SERVICES = ["web", "api", "worker"]
BUCKETS = [
    "opsdeck-demo-tfstate-111111111111",
    "opsdeck-demo-tfstate-222222222222",
    "opsdeck-demo-tfstate-333333333333",
]


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


def make_estate(
    root: Path, world: World | None = None, *, approvals: bool = False, conventions: dict[str, str] | None = None
) -> tuple[Deck, World]:
    """The shop deck at ``root`` on ``world``: every environment applied on its 1.0.0 images. Without
    ``approvals`` the sample's approvals are dropped (changes to staging and prod run at once);
    ``conventions`` are added to its [conventions] table. The fake root modules are red/black ones
    (no load balancer), so dev rolls out by replacement here; its blue/green releases run against the
    real stack (tests/integration/test_70_blue_green.py)."""
    world = world or World()
    copy_tree(shipped("sample_envs"), root)
    toml = root / "opsdeck.toml"
    text = re.sub(
        r"^(rollout|standby_minutes|smoke|smoke_timeout|health_timeout) = .*\n", "", toml.read_text(), flags=re.M
    )
    if not approvals:
        text = re.sub(r"^approvals = \d+\n", "", text, flags=re.M)
    for key, value in (conventions or {}).items():
        text = text.replace("[conventions]\n", f"[conventions]\n{key} = {json.dumps(value)}\n", 1)
    toml.write_text(text)
    pins = root / "envs" / "dev" / "images.auto.tfvars.json"
    pins.write_text(json.dumps({"images": {s: "ami-00000000000000000" for s in SERVICES}}, indent=2) + "\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Unit Tester")
    git(root, "config", "user.email", "unit@example.com")
    git(root, "add", "-A")
    git(root, "reset", "-q", "--", *[str(p.relative_to(root)) for p in root.glob("envs/*/*.auto.tfvars.json")])
    git(root, "commit", "-qm", "the shop deck")
    world.buckets.update(BUCKETS)
    deck = Deck.open(root, tools=fake_tools(world))
    asyncio.run(_setup(deck))
    return deck, world


async def _setup(deck: Deck) -> None:
    rep = Reporter("setup")
    await bake(deck, rep, base=True, version="1.0.0")
    baked = await bake(deck, rep, version="1.0.0")
    catalog = load_catalog(deck)
    files = []
    for env in deck.config.env_names:
        pins = {}
        for image in baked:
            assert image.service is not None
            made = await make_usable(deck, catalog, catalog.by_id[image.id], env, rep)
            pins[image.service] = made.usable_id
            catalog = load_catalog(deck)
        files += write_pins(deck, env, pins)
    deck.tools.git.commit(files, "pin web 1.0.0, api 1.0.0, worker 1.0.0 in every environment")
    for env in deck.config.env_names:
        plan = await planning.plan(deck, env, rep, reuse=False)
        await rollout.apply_plan(deck, env, plan, rep)
        planning.forget_plan(deck, env)
