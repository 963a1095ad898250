"""Plan an environment: `terraform init` when needed, `plan -out`, `show -json`, and the plan cache.

A saved plan is reused while nothing it depends on has changed: the environment's files and the
modules it calls (content hashes), and the state object in the backend (its ETag changes with every
serial). Refreshing an unchanged environment then costs a hash and one HEAD request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.pins import read_pin
from opsdeck.core.events import Reporter
from opsdeck.core.model import PlanResult, PlanSummary
from opsdeck.core.plans.shown import parse_plan
from opsdeck.core.ports.tools import TerraformPort
from opsdeck.core.types.cloud import Credentials
from opsdeck.errors import OpsdeckError
from opsdeck.files import write_atomic

SKIP_DIRS = {".terraform", ".opsdeck", ".git"}
T = TypeVar("T")


def hash_tree(digest: Any, root: Path) -> None:
    """Feed every file under ``root`` (path and content; Terraform's and opsdeck's own folders and plan
    files left out) to ``digest``."""
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS for part in rel.parts) or not path.is_file() or path.suffix == ".tfplan":
            continue
        digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")


def _module_dirs(env_dir: Path) -> list[Path]:
    """The local module directories `terraform init` recorded for the environment."""
    try:
        data = json.loads((env_dir / ".terraform" / "modules" / "modules.json").read_text("utf-8"))
    except (OSError, ValueError):
        return []
    dirs = []
    for module in data.get("Modules", []):
        rel = module.get("Dir")
        if module.get("Key") and rel:
            dirs.append((env_dir / rel).resolve())
    return sorted(set(dirs))


def _init_key(deck: Deck, env: str, terraform: TerraformPort) -> str:
    digest = hashlib.sha256()
    env_dir = deck.env_dir(env)
    for path in sorted(env_dir.glob("*.tf")):
        digest.update(path.name.encode() + path.read_bytes())
    for key in ("AWS_ENDPOINT_URL", "TF_CLI_CONFIG_FILE", "AWS_REGION"):
        digest.update(f"{key}={terraform.env.get(key, '')}".encode())
    digest.update(json.dumps(deck.tools.backend_config(), sort_keys=True).encode())
    return digest.hexdigest()


async def ensure_init(deck: Deck, env: str, rep: Reporter, credentials: Credentials | None = None) -> None:
    """Run `terraform init` when the environment was never initialised here or its setup changed."""
    marker = deck.env_dir(env) / ".terraform" / "opsdeck-init.json"
    terraform = (await asyncio.to_thread(deck.tools.env, env, credentials)).terraform
    key = _init_key(deck, env, terraform)
    try:
        if json.loads(marker.read_text("utf-8")).get("key") == key:
            return
    except (OSError, ValueError):
        pass
    with rep.phase("init"):
        await terraform.init(deck.tools.backend_config(), reconfigure=True)
    marker.parent.mkdir(exist_ok=True)
    marker.write_text(json.dumps({"key": key, "at": time.time()}), encoding="utf-8")


def inputs_key(deck: Deck, env: str) -> str:
    """What a plan of ``env`` depends on: its files, its modules' files and the state's ETag."""
    digest = hashlib.sha256()
    env_dir = deck.env_dir(env)
    hash_tree(digest, env_dir)
    for module_dir in _module_dirs(env_dir):
        digest.update(str(module_dir).encode())
        hash_tree(digest, module_dir)
    location = deck.state_location(env)
    etag = deck.tools.env(env).cloud.object_etag(*location) if location else None
    digest.update(f"state={etag}".encode())
    digest.update(f"endpoint={deck.tools.endpoint() or ''}".encode())
    return digest.hexdigest()


def plan_dir(deck: Deck) -> Path:
    path = deck.local_dir / "plans"
    path.mkdir(exist_ok=True)
    return path


def scratch_planfile(deck: Deck, env: str, label: str) -> Path:
    """A plan file of this run only: two Terraform runs in one environment (a refresh beside an
    explicit plan, two processes) must never write the same -out path at once."""
    return plan_dir(deck) / f"{env}.{label}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tfplan"


def drop_scratch(deck: Deck, env: str, label: str) -> None:
    """Remove this process's scratch plan files of ``env`` labelled ``label`` (what a failed step left)."""
    for path in plan_dir(deck).glob(f"{env}.{label}.{os.getpid()}.*.tfplan"):
        path.unlink(missing_ok=True)


def stored_plan(deck: Deck, env: str) -> PlanResult | None:
    """The last plan saved for ``env`` (fresh or not)."""
    try:
        data = json.loads((plan_dir(deck) / f"{env}.json").read_text("utf-8"))
        result = PlanResult.from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return result if Path(result.planfile).is_file() else None


def forget_plan(deck: Deck, env: str) -> None:
    for suffix in (".json", ".tfplan"):
        (plan_dir(deck) / f"{env}{suffix}").unlink(missing_ok=True)


async def fresh_plan(deck: Deck, env: str) -> PlanResult | None:
    """The stored plan if nothing it depends on has changed since."""
    stored = stored_plan(deck, env)
    if stored is None or not stored.key:
        return None
    key = await asyncio.to_thread(inputs_key, deck, env)
    return stored if key == stored.key else None


async def plan(
    deck: Deck, env: str, rep: Reporter, *, reuse: bool = True, credentials: Credentials | None = None
) -> PlanResult:
    """Plan ``env`` (reusing the saved plan when it is still fresh) and store the result; with the
    environment's own credentials, or ``credentials`` (break-glass) instead."""
    deck.env(env)  # unknown environment: a clear error before anything runs
    await ensure_init(deck, env, rep, credentials)
    if reuse:
        cached = await fresh_plan(deck, env)
        if cached is not None:
            rep.log(f"plan of {env} unchanged since {time.strftime('%H:%M:%S', time.localtime(cached.created_at))}")
            return cached
    tf = (await asyncio.to_thread(deck.tools.env, env, credentials)).terraform
    planfile = plan_dir(deck) / f"{env}.tfplan"
    tmp = scratch_planfile(deck, env, "new")
    with rep.phase("plan"):
        # The key (file hashes, the state's ETag) is taken while Terraform starts, off its critical
        # path. Should the state move in between, Terraform itself refuses to apply the stale plan.
        key_task = asyncio.ensure_future(asyncio.to_thread(inputs_key, deck, env))
        refreshed = 0
        summary: dict[str, Any] = {}

        def on_event(event: dict[str, Any]) -> None:
            nonlocal refreshed
            kind = event.get("type")
            if kind == "refresh_complete":
                refreshed += 1
                rep.progress(f"refreshed {refreshed} resources")
            elif kind in ("planned_change", "change_summary"):
                rep.progress(event.get("@message", ""))
                if kind == "change_summary":
                    summary.update(event.get("changes") or {})

        try:
            await tf.plan(tmp, on_event=on_event)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            key_before = await key_task
    tmp.replace(planfile)
    extra: dict[str, Any] = {
        "key": key_before,
        "planfile": str(planfile),
        "pins": _pinned(deck, env),
        "created_at": time.time(),
    }
    if summary and not any(summary.get(k) for k in ("add", "change", "remove", "import")):
        # Nothing to do: the streamed summary says all there is, and `show -json` (which loads every
        # provider schema again, ~2 s with the AWS provider) would only confirm it.
        return _stored(deck, PlanResult(env, PlanSummary(), (), **extra))
    with rep.phase("show"):
        shown = await tf.show_json(planfile)
    await asyncio.to_thread(keep_shown, deck, planfile, shown)  # what the policy gate reads
    result = parse_plan(env, shown, **extra)
    return _stored(deck, result)


async def plan_into(
    deck: Deck,
    env: str,
    planfile: Path,
    rep: Reporter,
    *,
    credentials: Credentials | None = None,
    var_files: tuple[Path, ...] = (),
    refresh: bool = True,
) -> PlanResult:
    """Plan ``env`` into ``planfile``, shown and parsed, but not kept as the environment's pending plan: a
    step inside an operation (a traffic switch), or a plan of other pins (``var_files``: pin files as they
    would be, outside the working tree), not what the deck shows as waiting. ``refresh=False``: against
    the state as the operation's own apply left it (nothing read back from the cloud)."""
    await ensure_init(deck, env, rep, credentials)
    tf = (await asyncio.to_thread(deck.tools.env, env, credentials)).terraform
    summary: dict[str, Any] = {}

    def on_event(event: dict[str, Any]) -> None:
        if event.get("type") in ("planned_change", "change_summary"):
            rep.progress(event.get("@message", ""))
            if event.get("type") == "change_summary":
                summary.update(event.get("changes") or {})

    await tf.plan(planfile, on_event=on_event, var_files=var_files, refresh=refresh)
    extra: dict[str, Any] = {"planfile": str(planfile), "pins": _pinned(deck, env), "created_at": time.time()}
    if summary and not any(summary.get(k) for k in ("add", "change", "remove", "import")):
        return PlanResult(env, PlanSummary(), (), **extra)
    shown = await tf.show_json(planfile)
    await asyncio.to_thread(keep_shown, deck, planfile, shown)
    return parse_plan(env, shown, **extra)


async def checked(deck: Deck, work: Awaitable[T]) -> T:
    """Run ``work`` while checking, beside it, that the cloud still holds the deck's state."""
    task = asyncio.ensure_future(work)
    check = asyncio.ensure_future(asyncio.to_thread(deck.check_cloud))
    try:
        await check
    except BaseException:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    return await task


def _pinned(deck: Deck, env: str) -> dict[str, str]:
    pins = {}
    for service in deck.config.service_names:
        try:
            pins[service] = read_pin(deck, env, service)
        except OpsdeckError:
            continue
    return pins


def _stored(deck: Deck, result: PlanResult) -> PlanResult:
    path = plan_dir(deck) / f"{result.environment}.json"
    write_atomic(path, json.dumps(result.to_json()))
    return result


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shown_dir(deck: Deck) -> Path:
    path = deck.local_dir / "plans" / "shown"
    path.mkdir(parents=True, exist_ok=True)
    return path


def keep_shown(deck: Deck, planfile: Path, shown: dict[str, Any]) -> None:
    """Keep `terraform show -json` of a saved plan for the policy gate (named by the plan's hash)."""
    target = shown_dir(deck) / f"{sha256_of(planfile)}.json"
    write_atomic(target, json.dumps(shown))
    cutoff = time.time() - 86400
    for old in shown_dir(deck).glob("*.json"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)


def shown_of(deck: Deck, plan: PlanResult) -> dict[str, Any] | None:
    """`terraform show -json` of a saved plan, as kept when it was made (None: no changes, none kept)."""
    if not plan.planfile or not Path(plan.planfile).is_file():
        return None
    try:
        data = json.loads((shown_dir(deck) / f"{sha256_of(Path(plan.planfile))}.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
