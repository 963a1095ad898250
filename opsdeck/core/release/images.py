"""Images: the deck's AMIs (app and base layers), their versions, and baking new ones with Packer."""

from __future__ import annotations

import asyncio
import getpass
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opsdeck.adapters.aws import Image
from opsdeck.adapters.packer import PackerLine
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.errors import ConfigError, OpsdeckError, RefusedError

VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
REVOKED_TAG = "revoked"


def version_key(version: str) -> tuple[int, ...]:
    match = VERSION.match(version)
    return tuple(int(p) for p in match.groups()) if match else (-1,)


def next_patch(versions: list[str], first: str = "1.0.0") -> str:
    valid = [v for v in versions if VERSION.match(v)]
    if not valid:
        return first
    major, minor, patch = version_key(max(valid, key=version_key))
    return f"{major}.{minor}.{patch + 1}"


def app_images(deck: Deck) -> list[Image]:
    """The deck's application images, oldest first."""
    return [i for i in deck.aws().images(app=deck.config.image.app) if i.tags.get("role", "app") != "base"]


def base_images(deck: Deck) -> list[Image]:
    return deck.aws().images(role="base")


def is_revoked(image: Image | None) -> bool:
    return bool(image and image.tags.get(REVOKED_TAG))


def find_image(images: list[Image], ref: str) -> Image | None:
    """An image by id or by version."""
    for image in images:
        if ref in (image.id, image.version):
            return image
    return None


@dataclass(frozen=True)
class BakeResult:
    id: str
    version: str
    git_sha: str
    seconds: float
    layer: str = "app"
    base_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "version": self.version, "git_sha": self.git_sha}
        data["seconds"] = round(self.seconds, 3)
        data["layer"] = self.layer
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


def _builder(deck: Deck) -> str:
    try:
        return deck.git.identity()
    except OpsdeckError:
        return getpass.getuser()


async def bake(deck: Deck, rep: Reporter, *, version: str | None = None, base: bool = False) -> BakeResult:
    """Run the deck's Packer recipe (or its base recipe) and return the new image; audited."""
    from opsdeck.core.safety import audit

    run = audit.AuditedRun(deck, "bake", None, {"layer": "base" if base else "app", "version": version or ""}).open()
    try:
        result = await _bake(deck, rep, version=version, base=base)
    except BaseException as exc:
        run.close(audit.outcome(exc), error=str(exc), phases=rep.phase_list())
        raise
    run.close("ok", phases=rep.phase_list(), to=result.id, version=result.version, git_sha=result.git_sha)
    return result


async def _bake(deck: Deck, rep: Reporter, *, version: str | None, base: bool) -> BakeResult:
    started = time.monotonic()
    recipe = deck.config.image.base_recipe if base else deck.config.image.recipe
    layer = "base" if base else "app"
    if recipe is None:
        raise ConfigError("opsdeck.toml: image.base_recipe: not set, so there is no base layer to bake")
    template = deck.root / recipe
    with rep.phase("prepare"):
        existing = await asyncio.to_thread(base_images if base else app_images, deck)
        if version is None:
            version = next_patch([i.version for i in existing])
        elif not VERSION.match(version):
            raise ConfigError(f"--version: expected MAJOR.MINOR.PATCH such as 1.4.2, got {version!r}")
        clash = find_image(existing, version)
        if clash is not None:
            raise RefusedError(f"{layer} image version {version} already exists ({clash.id}); pick another --version")
        base_id = None
        if not base and deck.config.image.base_recipe:
            bases = await asyncio.to_thread(base_images, deck)
            if not bases:
                raise RefusedError("there is no base image yet: bake one first with `opsdeck bake --base`")
            base_id = bases[-1].id
        sha = await asyncio.to_thread(deck.git.head)
        offered = {
            "region": deck.config.aws.region,
            "ec2_endpoint": deck.endpoint() or "",
            "app": deck.config.image.app,
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

        result = await deck.packer().build(template, variables, on_line)
    image_id = result.image_ids[0]
    with rep.phase("verify"):
        image = await asyncio.to_thread(deck.aws().image, image_id)
        if image is None:
            raise OpsdeckError(f"packer reported {image_id} but the cloud does not know it")
        recorded_base = image.tags.get("base_ami")
        if base_id and recorded_base and recorded_base != base_id:
            rep.log(f"recipe built on {recorded_base}, not the newest base {base_id}", "warning")
    return BakeResult(
        id=image_id,
        version=version,
        git_sha=sha[:12],
        seconds=time.monotonic() - started,
        layer=layer,
        base_id=recorded_base or base_id,
    )


def catalog(deck: Deck) -> list[dict[str, Any]]:
    """Every image of the deck (base layer first): where it is pinned and runs, revoked, outdated base."""
    pins: dict[str, str] = {}
    for env in deck.config.env_names:
        try:
            pins[env] = deck.git.pin(deck.pin_rel(env))
        except OpsdeckError:  # a broken pin shows as no environment
            continue
    running = {
        env: {i.image_id for g in deck.aws().groups(env) for i in g.instances if i.state == "running"}
        for env in deck.config.env_names
    }
    return describe_images(deck.aws().images(), deck.config.image.app, pins, running)


def describe_images(
    images: list[Image], app: str, pins: dict[str, str], running: dict[str, set[str]]
) -> list[dict[str, Any]]:
    """The catalog rows, from images and what each environment pins (env -> image) and runs (env -> images)."""
    bases = [i for i in images if i.tags.get("role") == "base"]
    apps = [i for i in images if i.tags.get("app") == app and i.tags.get("role", "app") != "base"]
    newest_base = bases[-1].id if bases else None
    out = []
    for image in [*bases, *apps]:
        layer = image.tags.get("role", "app")
        base_id = image.tags.get("base_ami")
        out.append(
            {
                "id": image.id,
                "name": image.name,
                "layer": layer,
                "version": image.version,
                "git_sha": image.tags.get("git_sha", ""),
                "created": image.created,
                "built_by": image.tags.get("built_by", ""),
                "environments": [env for env, pin in pins.items() if pin == image.id],
                "running_in": sorted(env for env, ids in running.items() if image.id in ids),
                "revoked": is_revoked(image),
                "revoked_reason": image.tags.get("revoked", "") or None,
                "base": base_id if layer == "app" else None,
                "base_outdated": bool(layer == "app" and base_id and newest_base and base_id != newest_base),
            }
        )
    return out


def revoke(deck: Deck, ref: str, reason: str) -> Image:
    """Mark an image revoked (AMI tags); promote and rollback refuse it from then on."""
    from opsdeck.core.safety import audit

    if not reason.strip():
        raise RefusedError("revoke needs a reason (--reason TEXT)")
    images = app_images(deck)
    image = find_image(images, ref)
    if image is None:
        raise RefusedError(f"{ref!r} is not an image id or version of this deck")
    who = audit.who(deck)
    deck.aws().tag_image(
        image.id,
        {
            "revoked": reason.strip(),
            "revoked_by": who.get("git") or who["user"],
            "revoked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    audit.append(
        deck,
        action="revoke",
        environment=None,
        result="ok",
        to=image.id,
        version=image.version,
        reason=reason.strip(),
        who=who,
    )
    return image
