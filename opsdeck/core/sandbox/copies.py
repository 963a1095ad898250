"""Recovered copies of environments: where each lives, its ledger record, and its Terraform work dir.

A copy of ``ENV`` in region ``R`` is the environment's own root module applied in ``R``, in the same
account, under a state key of its own beside the environment's (``<key dir>/recover-R/<key name>``,
same bucket). Its work dir ``.opsdeck/recover/ENV@R/`` (git-ignored) is rebuilt from the environment's
files before every run, so the environment's module stays the one source of truth: local module
sources are pointed back at the deck's modules, a ``*_override.tf`` sets the default AWS provider's region
(always written: Terraform lets an override file set the default provider even where the module declares
none, and no reading of the module's HCL can miss a block), and the pin files pin the images copied into
``R``; before anything is applied the plan's own configuration must say the provider runs in ``R``
(``check_plan_region``). The ledger record of a copy is committed in the deck's
repository as ``recovered/ENV/R.json``, outside the environment's module (its saved plans stay valid).
"""

from __future__ import annotations

import asyncio
import calendar
import json
import os
import posixpath
import re
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from opsdeck.core.estate import installed
from opsdeck.core.estate.backend import Backend
from opsdeck.core.estate.deck import COPIES_DIR, Deck, copy_name
from opsdeck.core.estate.pins import ColorPin, pin_files, pin_spec, with_pin
from opsdeck.core.ports.factory import EnvTools
from opsdeck.core.safety.breakglass import BreakGlass
from opsdeck.errors import OpsdeckError, RefusedError

LEDGER_DIR = "recovered"
WORK_DIR = COPIES_DIR
# Last in name order, so it wins over any override file of the environments own (Terraform applies
# override files in lexical order).
OVERRIDE_FILE = "zz_opsdeck_recover_override.tf"
_SKIP = {".terraform", ".opsdeck", ".git"}
_LOCAL_SOURCE = re.compile(r'(?P<head>\bsource\s*=\s*")(?P<path>\.\.?/[^"]*)(?P<tail>")')

Pin = str | ColorPin


def check_region(region: str, known: list[str]) -> None:
    """A region name AWS knows (from botocore's endpoint data); a one-line error otherwise."""
    if region not in known:
        near = [r for r in known if r.split("-")[0] == region.split("-")[0]][:4] or known[:4]
        raise OpsdeckError(f"unknown region {region!r}: not an AWS region (for example {', '.join(near)})")


def check_target(deck: Deck, env: str, region: str, known: list[str]) -> None:
    """The environment exists, the region is a real one and not the environment's own."""
    deck.env(env)
    check_region(region, known)
    own = deck.config.region_of(env)
    if region == own:
        raise RefusedError(f"{env} runs in {own} already: recover it into another region")


def state_of_copy(deck: Deck, env: str, region: str) -> Backend:
    """Where the copy's Terraform state lives: the environment's bucket, a key of its own."""
    backend = deck.backend(env)
    if backend is None:
        raise RefusedError(f"{env} has no S3 backend in its root module: recover needs one for the copy's state")
    folder, name = posixpath.split(backend.key)
    key = posixpath.join(folder, f"recover-{region}", name or "terraform.tfstate")
    state = Backend(backend.bucket, key, backend.region)
    check_not_an_environment(deck, state)
    return state


def check_not_an_environment(deck: Deck, state: Backend) -> None:
    """A copy's state is never where an environment of the deck keeps its own."""
    for name in deck.config.env_names:
        own = deck.backend(name)
        if own is not None and (own.bucket, own.key) == (state.bucket, state.key):
            raise RefusedError(
                f"state s3://{state.bucket}/{state.key} is {name}'s own: refusing to touch it as a copy's"
            )


def backend_config(deck: Deck, env: str, state: Backend) -> dict[str, str]:
    """``terraform init -backend-config`` for a copy: the whole location (bucket, key and region), so
    nothing of the environment's backend block can point the copy's Terraform at another state."""
    region = state.region or deck.config.region_of(env)  # the bucket's region, as the environment's init sees it
    return {**deck.tools.backend_config(), "bucket": state.bucket, "key": state.key, "region": region}


@dataclass(frozen=True)
class RecoveredCopy:
    """One recovered copy, as its ledger record says."""

    env: str
    region: str
    account: str | None
    created: float  # epoch seconds (UTC), when the copy was first built
    updated: float  # when it was last recovered (built again or confirmed)
    images: dict[str, Pin]  # service -> the image (or blue/green pin) it runs in ``region``
    source_images: dict[str, Pin]  # service -> what the environment pinned then
    state: Backend
    healthy: bool = True
    by: str = ""
    audit: str = ""  # the hash of the audit record that wrote it
    error: str = ""

    @property
    def name(self) -> str:
        return copy_name(self.env, self.region)

    @property
    def state_key(self) -> str:
        return self.state.key

    def age_seconds(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.created

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.env,
            "region": self.region,
            "account": self.account,
            "created": _utc(self.created),
            "updated": _utc(self.updated),
            "images": {s: _pin_json(p) for s, p in self.images.items()},
            "source_images": {s: _pin_json(p) for s, p in self.source_images.items()},
            "state": {"bucket": self.state.bucket, "key": self.state.key, "region": self.state.region},
            "healthy": self.healthy,
            "by": self.by,
            "audit": self.audit,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> RecoveredCopy:
        try:
            state = data["state"]
            return cls(
                env=str(data["environment"]),
                region=str(data["region"]),
                account=data.get("account"),
                created=_epoch(data["created"]),
                updated=_epoch(data.get("updated") or data["created"]),
                images={s: _pin_of(v, where) for s, v in data["images"].items()},
                source_images={s: _pin_of(v, where) for s, v in (data.get("source_images") or {}).items()},
                state=Backend(str(state["bucket"]), str(state["key"]), state.get("region")),
                healthy=bool(data.get("healthy", True)),
                by=str(data.get("by", "")),
                audit=str(data.get("audit", "")),
                error=str(data.get("error", "")),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise OpsdeckError(f"{where}: not a recovered-copy record ({exc})") from None


def _utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _epoch(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


def _pin_json(pin: Pin) -> Any:
    return pin.to_json() if isinstance(pin, ColorPin) else pin


def _pin_of(value: Any, where: str) -> Pin:
    if isinstance(value, dict):
        return ColorPin.from_json(value, where)
    if not isinstance(value, str):
        raise ValueError(f"an image id or a blue/green pin, got {type(value).__name__}")
    return value


def record_rel(env: str, region: str) -> str:
    """The copy's ledger record, relative to the deck (a git path)."""
    return f"{LEDGER_DIR}/{env}/{region}.json"


def read_copy(deck: Deck, env: str, region: str) -> RecoveredCopy | None:
    rel = record_rel(env, region)
    path = deck.root / rel
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise OpsdeckError(f"{rel}: invalid JSON ({exc})") from None
    return RecoveredCopy.from_json(data, rel)


def write_copy(deck: Deck, copy: RecoveredCopy) -> str:
    rel = record_rel(copy.env, copy.region)
    path = deck.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(copy.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return rel


def recovered_copies(deck: Deck) -> list[RecoveredCopy]:
    """Every recovered copy the deck's ledger records, by environment then region. A damaged record is
    skipped (``opsdeck recover ENV --region R`` writes it again)."""
    folder = deck.root / LEDGER_DIR
    found: list[RecoveredCopy] = []
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*/*.json")):
        env, region = path.parent.name, path.stem
        try:
            copy = read_copy(deck, env, region)
        except OpsdeckError:
            continue
        if copy is not None:
            found.append(copy)
    return found


# -- the copy's pins ---------------------------------------------------------------------------------


def images_of(pin: Pin) -> list[str]:
    """Every image a pin names (both colors of a blue/green pin)."""
    if isinstance(pin, ColorPin):
        return [i for i in (pin.blue, pin.green) if i]
    return [pin]


def mapped(pin: Pin, images: dict[str, str]) -> Pin:
    """``pin`` with each image replaced by its counterpart in ``images``."""
    if isinstance(pin, ColorPin):
        return replace(
            pin,
            blue=images[pin.blue] if pin.blue else None,
            green=images[pin.green] if pin.green else None,
        )
    return images[pin]


def live_image(pin: Pin) -> str:
    return pin.live_image if isinstance(pin, ColorPin) else pin


# -- the work dir ------------------------------------------------------------------------------------


@dataclass
class WorkDir:
    """The copy's root module on disk."""

    path: Path
    pin_files: list[str] = field(default_factory=list)  # relative to ``path``


def work_dir(deck: Deck, env: str, region: str) -> Path:
    return deck.local_dir / WORK_DIR / copy_name(env, region)


def prepare(deck: Deck, env: str, region: str, pins: dict[str, Pin]) -> WorkDir:
    """Rebuild the copy's work dir from the environment's files (Terraform's own folder kept, so its
    providers are not installed again), pointing it at ``region`` and pinning ``pins``."""
    source = deck.env_dir(env)
    target = work_dir(deck, env, region)
    target.mkdir(parents=True, exist_ok=True)
    for child in target.iterdir():
        if child.name in _SKIP:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if any(part in _SKIP for part in rel.parts):
            continue
        if path.is_dir() or path.suffix == ".tfplan" or path.name.startswith("terraform.tfstate"):
            continue
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".tf":
            dest.write_text(_relocated_sources(path.read_text(encoding="utf-8"), path.parent, dest.parent), "utf-8")
        else:
            shutil.copy2(path, dest)
    (target / OVERRIDE_FILE).write_text(_override(region), encoding="utf-8")
    written: list[str] = []
    env_path = deck.config.env(env).path
    for deck_rel in pin_files(deck, env):
        local = posixpath.relpath(deck_rel, env_path)
        pin_path = target / local
        text = pin_path.read_text(encoding="utf-8") if pin_path.is_file() else None
        for service, pin in pins.items():
            spec = pin_spec(deck.config, service)
            if spec.file == local:
                text = with_pin(text, spec, pin.to_json() if isinstance(pin, ColorPin) else pin)
        if text is not None:
            pin_path.write_text(text, encoding="utf-8")
            written.append(local)
    return WorkDir(target, written)


def _relocated_sources(text: str, source_dir: Path, dest_dir: Path) -> str:
    """Local module sources (``./``, ``../``) rewritten to reach the same folders from ``dest_dir``."""

    def fix(match: re.Match[str]) -> str:
        absolute = (source_dir / match.group("path")).resolve()
        rel = os.path.relpath(absolute, dest_dir.resolve()).replace(os.sep, "/")
        if not rel.startswith("."):
            rel = f"./{rel}"
        return f"{match.group('head')}{rel}{match.group('tail')}"

    return _LOCAL_SOURCE.sub(fix, text)


def _override(region: str) -> str:
    """The Terraform override file setting the default AWS provider's region. Written whatever the module
    declares: Terraform merges it into the module's default ``provider "aws"`` block (nested blocks such as
    ``default_tags`` kept), or makes it that block when the module has none."""
    return (
        "# Written by opsdeck recover: this copy of the environment runs in another region.\n"
        f'provider "aws" {{\n  region = "{region}"\n}}\n'
    )


def _region_expression(config: dict[str, Any]) -> str:
    """What a provider configuration of a plan's JSON sets its region to, as words."""
    expression = (config.get("expressions") or {}).get("region")
    if not isinstance(expression, dict):
        return "no region (the environment variables' region)"
    if "constant_value" in expression:
        return repr(expression["constant_value"])
    return "an expression (" + ", ".join(str(r) for r in expression.get("references") or ()) + ")"


def check_plan_region(shown: dict[str, Any], region: str, name: str) -> None:
    """Refuse a copy's plan unless Terraform's own configuration runs it in ``region``: the default AWS
    provider of the root module set to ``region`` (a constant), and no module configuring an un-aliased
    AWS provider of its own to anything else (an override of the root module cannot move those)."""
    configs = (shown.get("configuration") or {}).get("provider_config") or {}
    root = configs.get("aws")
    found = (root.get("expressions") or {}).get("region") if isinstance(root, dict) else None
    if not isinstance(found, dict) or found.get("constant_value") != region:
        said = _region_expression(root) if isinstance(root, dict) else "no default aws provider"
        raise RefusedError(
            f"{name}: the plan's default aws provider has {said} for region, not {region!r}: nothing applied"
        )
    for _key, config in sorted(configs.items()):
        if not isinstance(config, dict) or config.get("name") != "aws" or config.get("alias"):
            continue
        module = config.get("module_address")
        expression = (config.get("expressions") or {}).get("region")
        if not module or expression is None:
            continue  # the root's (checked above), or a module's provider taking the copy's region
        if not isinstance(expression, dict) or expression.get("constant_value") != region:
            raise RefusedError(
                f"{name}: {module} configures its own aws provider with {_region_expression(config)} for "
                f"region, which recover cannot move to {region!r}: nothing applied"
            )


def known_regions() -> list[str]:
    return installed.outside().known_regions("ec2")


async def validate(deck: Deck, env: str, region: str) -> None:
    """Bad input, before anything runs: an unknown environment or region, or the environment's own."""
    check_target(deck, env, region, await asyncio.to_thread(known_regions))


def copy_tools(deck: Deck, env: str, region: str, glass: BreakGlass | None = None) -> EnvTools:
    credentials = glass.credentials if glass is not None and glass.env == env else None
    return deck.tools.env_copy(env, region, work_dir(deck, env, region), credentials)
