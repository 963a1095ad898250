"""Bake images with Packer in the build account: each service's recipe, or the shared base layer.

A service's image builds on the newest base image; its version is the next patch after that service's
newest (or the one asked for). Services bake side by side, each audited on its own. Whatever the recipe
tags, the image leaves with the deck's own service and version tags (``[conventions]``), so the
catalog finds it as it finds a pipeline's.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.release.images import VERSION, find_image, load_catalog, next_patch
from opsdeck.core.safety.operation import audited
from opsdeck.core.tasks import every_one
from opsdeck.core.types.cloud import Image
from opsdeck.core.types.tools import PackerLine
from opsdeck.errors import ConfigError, OpsdeckError, RefusedError


@dataclass(frozen=True)
class BakeResult:
    id: str
    version: str
    git_sha: str
    seconds: float
    service: str | None = None  # None: the base layer
    base_id: str | None = None

    @property
    def layer(self) -> str:
        return "base" if self.service is None else "app"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "service": self.service,
            "version": self.version,
            "git_sha": self.git_sha,
            "seconds": round(self.seconds, 3),
            "layer": self.layer,
        }
        if self.base_id:
            data["base_id"] = self.base_id
        return data


def _declared_variables(template: Path) -> set[str] | None:
    """Variables a JSON template declares (Packer refuses -var for undeclared ones); None for HCL."""
    if template.suffix != ".json":
        return None
    try:
        data = json.loads(template.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{template.name}: not a readable Packer JSON template ({exc})") from None
    variables = data.get("variables") if isinstance(data, dict) else None
    return set(variables) if isinstance(variables, dict) else set()


async def bake(
    deck: Deck,
    rep: Reporter,
    *,
    services: list[str] | None = None,
    version: str | None = None,
    base: bool = False,
) -> list[BakeResult]:
    """Bake the base layer (``base``) or each service's image (default: every service); audited."""
    if version is not None and not VERSION.match(version):
        raise ConfigError(f"--version: expected MAJOR.MINOR.PATCH such as 1.4.2, got {version!r}")
    if base:
        if deck.config.base_recipe is None:
            raise ConfigError("opsdeck.toml: base.recipe: not set, so there is no base layer to bake")
        return [await _audited_bake(deck, rep, None, version)]
    names = deck.config.services_named(services)
    if len(names) == 1:
        return [await _audited_bake(deck, rep, names[0], version)]
    return list(await every_one(*(_audited_bake(deck, rep.child(op=f"bake {name}"), name, version) for name in names)))


async def _audited_bake(deck: Deck, rep: Reporter, service: str | None, version: str | None) -> BakeResult:
    fields = {"layer": "base" if service is None else "app", "service": service, "version": version or ""}
    async with audited(deck, "bake", None, rep, fields=fields) as run:
        result = await _bake(deck, rep, service, version)
        run.note(to=result.id, version=result.version, git_sha=result.git_sha)
    return result


async def _bake(deck: Deck, rep: Reporter, service: str | None, version: str | None) -> BakeResult:
    started = time.monotonic()
    if service is None:
        recipe = deck.config.base_recipe
        assert recipe is not None
    else:
        recipe = deck.config.service(service).recipe
    template = deck.root / recipe
    label = "base" if service is None else service
    with rep.phase("prepare"):
        catalog = await asyncio.to_thread(load_catalog, deck, [deck.config.build_region])
        existing = catalog.bases() if service is None else catalog.service_images(service)
        if version is None:
            version = next_patch([i.version for i in existing])
        clash = find_image(existing, version)
        if clash is not None:
            raise RefusedError(f"{label} image version {version} already exists ({clash.id}); pick another --version")
        base_id = None
        if service is not None and deck.config.base_recipe:
            bases = catalog.bases()
            if not bases:
                raise RefusedError("there is no base image yet: bake one first with `opsdeck bake --base`")
            base_id = bases[-1].id
        sha = await asyncio.to_thread(deck.tools.git.head)
        offered = {
            "region": deck.config.build_region,
            "ec2_endpoint": deck.tools.endpoint() or "",
            "app": label,
            "service": label,
            "version": version,
            "git_sha": sha[:12],
            "built_by": await asyncio.to_thread(_builder, deck),
        }
        declared = _declared_variables(template)
        variables = {k: v for k, v in offered.items() if declared is None or k in declared}
    with rep.phase("packer build"):
        steps = 0

        def on_line(line: PackerLine) -> None:
            nonlocal steps
            if line.type == "ui" and line.data and line.data[0] == "say":
                steps += 1
                rep.progress(line.text.strip().lstrip("=> ").strip(), steps)
            elif line.type == "ui" and line.data and line.data[0] in ("message", "error"):
                rep.log(line.text.strip(), "error" if line.data[0] == "error" else "info")

        packer = await asyncio.to_thread(deck.tools.packer)
        result = await packer.build(template, variables, on_line)
    image_id = result.image_ids[0]
    with rep.phase("verify"):
        image = await asyncio.to_thread(deck.tools.build().image, image_id)
        if image is None:
            raise OpsdeckError(f"packer reported {image_id} but the build account does not know it")
        await asyncio.to_thread(_tag_the_decks_way, deck, image, recipe, service, version)
        recorded_base = image.tags.get("base_ami")
        if base_id and recorded_base and recorded_base != base_id:
            rep.log(f"recipe built on {recorded_base}, not the newest base {base_id}", "warning")
    return BakeResult(
        id=image_id,
        version=version,
        git_sha=sha[:12],
        seconds=time.monotonic() - started,
        service=service,
        base_id=recorded_base or base_id,
    )


def _tag_the_decks_way(deck: Deck, image: Image, recipe: str, service: str | None, version: str) -> None:
    """Give the baked image the deck's service and version tags (and a base image its role), whatever
    names its recipe uses; a recipe that tags another service's name is a mistake, and said so."""
    conventions = deck.config.conventions
    wanted = {conventions.image_version_tag: version}
    if service is None:
        wanted["role"] = "base"
    else:
        tagged = image.tags.get(conventions.image_service_tag)
        if tagged not in (None, "", service):
            raise OpsdeckError(
                f"{recipe} tagged its image {conventions.image_service_tag} = {tagged!r}, not {service!r}: "
                "opsdeck finds a service's images by that tag"
            )
        wanted[conventions.image_service_tag] = service
    missing = {k: v for k, v in wanted.items() if image.tags.get(k) != v}
    if missing:
        deck.tools.build().tag_image(image.id, missing)


def _builder(deck: Deck) -> str:
    """Who bakes: a pipeline's run (GitHub Actions, GitLab CI), else the git identity or the OS user."""
    if os.environ.get("GITHUB_ACTIONS") == "true":
        repo, run = os.environ.get("GITHUB_REPOSITORY", ""), os.environ.get("GITHUB_RUN_ID", "")
        return f"github-actions {repo} run {run}".strip()
    if os.environ.get("GITLAB_CI") == "true":
        project, pipeline = os.environ.get("CI_PROJECT_PATH", ""), os.environ.get("CI_PIPELINE_ID", "")
        return f"gitlab-ci {project} pipeline {pipeline}".strip()
    try:
        return deck.tools.git.identity()
    except OpsdeckError:
        return getpass.getuser()
