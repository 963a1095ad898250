"""Saved plans between machines: through the environment's state bucket, encrypted at rest (SSE AES256),
under a key named by the plan's SHA-256, and checked against that SHA-256 after download.

A worker plans in its own clone; the caller that shows (or later applies) the plan gets the very bytes
Terraform wrote, or an error: never a plan that changed on the way.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.model import PlanResult
from opsdeck.core.plans.planning import plan_dir
from opsdeck.errors import OpsdeckError

PLANS_SUFFIX = ".opsdeck-plans"


@dataclass(frozen=True)
class ShippedPlan:
    """A saved plan in the state bucket."""

    bucket: str
    key: str
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> ShippedPlan:
        try:
            return cls(str(data["bucket"]), str(data["key"]), str(data["sha256"]), int(data["size"]))
        except (KeyError, TypeError, ValueError):
            raise OpsdeckError("a shipped plan needs bucket, key, sha256 and size") from None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def plan_key(state_key: str, env: str, sha256: str) -> str:
    """Beside the environment's state: ``<state key>.opsdeck-plans/<env>/<sha256>.tfplan``."""
    return f"{state_key}{PLANS_SUFFIX}/{env}/{sha256}.tfplan"


def upload(deck: Deck, env: str, planfile: Path) -> ShippedPlan:
    """Put ``planfile`` into ``env``'s state bucket (the environment's own credentials)."""
    backend = deck.backend(env)
    if backend is None:
        raise OpsdeckError(f"{env} has no S3 backend: its saved plans cannot travel to another machine")
    try:
        body = planfile.read_bytes()
    except OSError as exc:
        raise OpsdeckError(f"the saved plan of {env} cannot be read ({exc.strerror}): {planfile}") from None
    digest = hashlib.sha256(body).hexdigest()
    shipped = ShippedPlan(backend.bucket, plan_key(backend.key, env, digest), digest, len(body))
    deck.tools.env(env).cloud.put_object(shipped.bucket, shipped.key, body)
    return shipped


def download(deck: Deck, env: str, shipped: ShippedPlan, target: Path, *, remove: bool = False) -> Path:
    """Fetch a shipped plan into ``target`` once its SHA-256 is the one it was shipped with; ``remove``:
    delete the object once it is safely here."""
    cloud = deck.tools.env(env).cloud
    body = cloud.read_object(shipped.bucket, shipped.key)
    if body is None:
        raise OpsdeckError(f"the saved plan of {env} is gone from {shipped.url}")
    digest = hashlib.sha256(body).hexdigest()
    if digest != shipped.sha256:
        raise OpsdeckError(
            f"the saved plan of {env} at {shipped.url} does not match its SHA-256 "
            f"({digest[:12]}, expected {shipped.sha256[:12]}): not used"
        )
    tmp = target.with_name(f"{target.name}.{os.getpid()}.part")
    tmp.write_bytes(body)
    tmp.replace(target)
    if remove:
        cloud.delete_object(shipped.bucket, shipped.key)
    return target


def store_shipped(deck: Deck, env: str, plan: dict[str, Any], shipped: ShippedPlan, key: str) -> PlanResult:
    """Make a worker's plan this deck's saved plan of ``env``: its file fetched and checked, its record
    keyed by ``key`` (what the plan depends on, as this deck saw it when the job was sent)."""
    planfile = plan_dir(deck) / f"{env}.tfplan"
    download(deck, env, shipped, planfile, remove=True)
    result = PlanResult.from_json({**plan, "planfile": str(planfile), "key": key})
    path = plan_dir(deck) / f"{env}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result.to_json()), encoding="utf-8")
    tmp.replace(path)
    return result
