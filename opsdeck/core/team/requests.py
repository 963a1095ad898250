"""Approvals: a change to an environment that needs them becomes a request; allowed signers other than
the requester approve that exact saved plan; only then is it applied, exactly as approved.

A request is planned like any change, then stopped short of applying: its saved plan goes to the
environment's state bucket (encrypted at rest) and the request (the plan's SHA-256, the pins it
writes and the ones it found, the state's ETag, the diff, who asked and why) is committed to the
ledger and pushed, so every clone sees it. The requester signs the whole record as they file it, and
an approval is an SSH signature over the whole record too (core/team/covers.py): an edit of any of
its fields after that voids them, and the refusal names the fields. ``execute`` runs a request with
enough valid approvals from distinct allowed signers (never the requester): it refuses a request
whose pins or state moved on since (stale: plan and approve again), a saved plan whose hash changed,
and a record that does not say what the saved plan does (core/team/plan_match.py), and applies
exactly that plan. Break-glass may bypass approvals, with its reason and time box, audited as a bypass.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsdeck.core.ledger.identity import operator
from opsdeck.core.ledger.remote import publish
from opsdeck.core.team import covers, signatures
from opsdeck.core.team.signatures import Approval
from opsdeck.errors import OpsdeckError, RefusedError

if TYPE_CHECKING:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.events import Reporter
    from opsdeck.core.model import PlanResult
    from opsdeck.core.types.cloud import Credentials

FOLDER = "requests"
STATUSES = ("pending", "approved", "stale", "executed", "rejected")


@dataclass
class Request:
    """A change waiting for approvals (see the module's docstring)."""

    id: str
    environment: str
    action: str
    plan_sha256: str
    plan_object: tuple[str, str]  # (bucket, key) of the saved plan
    state_etag: str | None  # the state the plan was made against
    requested_by: str
    requested_key: str
    reason: str
    needed: int
    created_at: float
    services: list[dict[str, str]] = field(default_factory=list)  # {"name", "from_image", "to_image", ...}
    pins: dict[str, str] = field(default_factory=dict)  # pin file -> its text once applied
    base: dict[str, str] = field(default_factory=dict)  # pin file -> its text the plan was made on
    summary: dict[str, int] = field(default_factory=dict)
    diff: list[str] = field(default_factory=list)
    message: str = ""  # the ledger commit's message once it runs
    approvals: list[Approval] = field(default_factory=list)
    rejected: dict[str, Any] | None = None
    executed: dict[str, Any] | None = None
    stale: str = ""  # why it is stale (or its record cannot be trusted), when it is
    format: int = covers.FORMAT  # 0: filed before the whole record was signed
    filed: dict[str, Any] | None = None  # the requester's signature: {"key", "signature", "covers"}
    requester: str = ""  # the allowed signer the requester's signature verified as (read, not stored)

    @property
    def valid_approvers(self) -> list[str]:
        return sorted({a.by for a in self.approvals if a.valid})

    @property
    def status(self) -> str:
        if self.executed:
            return "executed"
        if self.rejected:
            return "rejected"
        if self.stale:
            return "stale"
        return "approved" if len(self.valid_approvers) >= self.needed else "pending"

    def covers(self) -> dict[str, str]:
        """The digest of each field of the record: what every signature on this request covers."""
        return covers.digests(self.record())

    def payload(self, decision: str, reason: str = "") -> bytes:
        """What a signer signs: this request's whole record, as it is now, and the decision."""
        return covers.payload(self.id, decision, self.covers(), reason)

    def record(self) -> dict[str, Any]:
        """The request as committed (what never changes once made)."""
        return {
            "id": self.id,
            "environment": self.environment,
            "action": self.action,
            "plan_sha256": self.plan_sha256,
            "plan_object": list(self.plan_object),
            "state_etag": self.state_etag,
            "requested_by": self.requested_by,
            "requested_key": self.requested_key,
            "reason": self.reason,
            "needed": self.needed,
            "created_at": self.created_at,
            "services": self.services,
            "pins": self.pins,
            "base": self.base,
            "summary": self.summary,
            "diff": self.diff,
            "message": self.message,
            "format": self.format,
        }

    def to_file(self) -> dict[str, Any]:
        """request.json: the record and the requester's signature over it."""
        return {**self.record(), "filed": self.filed}

    def to_json(self) -> dict[str, Any]:
        data = {
            "id": self.id,
            "environment": self.environment,
            "action": self.action,
            "plan_sha256": self.plan_sha256,
            "requested_by": self.requested_by,
            "reason": self.reason,
            "approvals": [a.to_json() for a in self.approvals],
            "needed": self.needed,
            "status": self.status,
            "created_at": self.created_at,
            "services": self.services,
            "summary": self.summary,
            "diff": self.diff,
        }
        if self.requester:
            data["signed_by"] = self.requester  # who the requester's signature verified as
        if self.stale:
            data["stale"] = self.stale
        if self.rejected:
            data["rejected"] = {k: v for k, v in self.rejected.items() if k != "signature"}
        if self.executed:
            data["executed"] = self.executed
        return data

    def describe(self) -> str:
        what = ", ".join(f"{s['name']} {s.get('version') or s.get('to_image', '')}" for s in self.services)
        return f"{self.action} {self.environment}" + (f" ({what})" if what else "")


def request_dir(request_id: str) -> str:
    return f"{FOLDER}/{request_id}"


def needs_approval(deck: Deck, env: str, glass_for_env: bool) -> bool:
    """A change to ``env`` becomes a request (break-glass bypasses, audited as such)."""
    return deck.env(env).approvals > 0 and not glass_for_env


# -- reading ----------------------------------------------------------------------------------------


def load(deck: Deck, request_id: str, *, check_stale: bool = True) -> Request:
    """A request as the ledger has it, its approvals verified."""
    if not re.fullmatch(r"[a-z0-9-]{4,40}", request_id):
        raise RefusedError(f"{request_id!r} is not a request id (see `opsdeck requests`)")
    path = deck.root / request_dir(request_id) / "request.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RefusedError(f"there is no request {request_id} (see `opsdeck requests`)") from None
    except ValueError:
        raise OpsdeckError(f"{path.relative_to(deck.root)}: not a readable request") from None
    try:
        request = _from_file(data)
    except (KeyError, TypeError, ValueError, IndexError):
        raise OpsdeckError(f"{path.relative_to(deck.root)}: not a readable request") from None
    folder = deck.root / request_dir(request_id)
    for name in ("rejected", "executed"):
        file = folder / f"{name}.json"
        if file.is_file():
            setattr(request, name, json.loads(file.read_text(encoding="utf-8")))
    is_open = request.status in ("pending", "approved")
    if is_open:
        request.stale = signatures.filed_problem(deck, request)  # sets request.requester when it verifies
    request.approvals = signatures.approvals(deck, request)
    if check_stale and is_open and not request.stale:
        request.stale = staleness(deck, request)
    return request


def _from_file(data: dict[str, Any]) -> Request:
    filed = data.get("filed")
    return Request(
        id=str(data["id"]),
        environment=str(data["environment"]),
        action=str(data["action"]),
        plan_sha256=str(data["plan_sha256"]),
        plan_object=(str(data["plan_object"][0]), str(data["plan_object"][1])),
        state_etag=data.get("state_etag"),
        requested_by=str(data["requested_by"]),
        requested_key=str(data.get("requested_key", "")),
        reason=str(data.get("reason", "")),
        needed=int(data["needed"]),
        created_at=float(data["created_at"]),
        services=list(data.get("services", [])),
        pins=dict(data.get("pins", {})),
        base=dict(data.get("base", {})),
        summary=dict(data.get("summary", {})),
        diff=list(data.get("diff", [])),
        message=str(data.get("message", "")),
        format=int(data.get("format", 0)),
        filed=filed if isinstance(filed, dict) else None,
    )


def staleness(deck: Deck, request: Request) -> str:
    """Why the request no longer matches the world (its pins or its state moved on), or ""."""
    for rel, text in request.base.items():
        path = deck.root / rel
        now = path.read_text(encoding="utf-8") if path.is_file() else None
        if now != text:
            return f"{rel} changed since the request was planned"
    backend = deck.backend(request.environment)
    if backend is not None:
        try:
            etag = deck.tools.env(request.environment).cloud.object_etag(backend.bucket, backend.key)
        except OpsdeckError:
            return ""  # cannot tell now; execute checks again, and Terraform refuses a stale plan anyway
        if etag != request.state_etag:
            return f"the Terraform state of {request.environment} changed since the request was planned"
    return ""


def all_requests(deck: Deck, *, check_stale: bool = True) -> list[Request]:
    folder = deck.root / FOLDER
    ids = sorted(p.name for p in folder.iterdir() if (p / "request.json").is_file()) if folder.is_dir() else []
    requests = [load(deck, i, check_stale=check_stale) for i in ids]
    return sorted(requests, key=lambda r: r.created_at)


def pending_for(deck: Deck) -> dict[str, Request]:
    """The newest request waiting in each environment (for the deck's rows)."""
    waiting: dict[str, Request] = {}
    for request in all_requests(deck, check_stale=False):
        if request.status in ("pending", "approved"):
            waiting[request.environment] = request
    return waiting


# -- making one ---------------------------------------------------------------------------------------


async def create(
    deck: Deck,
    env: str,
    action: str,
    plan: PlanResult,
    rep: Reporter,
    *,
    services: list[dict[str, str]],
    pins: dict[str, str],
    base: dict[str, str],
    reason: str,
    message: str,
    diff: list[str],
    credentials: Credentials | None = None,
) -> Request:
    """Turn a planned change into a request: the saved plan to the state bucket, the request to the
    ledger (committed and pushed). Nothing is applied."""
    who = operator(deck)
    planfile = Path(plan.planfile)
    body = planfile.read_bytes()
    request_id = time.strftime("r%Y%m%d-", time.gmtime()) + secrets.token_hex(3)
    backend = deck.backend(env)
    if backend is None:
        raise OpsdeckError(f"{env} has no S3 backend: a request keeps its saved plan beside the state")
    cloud = deck.tools.env(env, credentials).cloud
    with rep.phase("request"):
        plan_key = f"opsdeck/requests/{request_id}.tfplan"
        await asyncio.to_thread(cloud.put_object, backend.bucket, plan_key, body)
        etag = await asyncio.to_thread(cloud.object_etag, backend.bucket, backend.key)
        request = Request(
            id=request_id,
            environment=env,
            action=action,
            plan_sha256=hashlib.sha256(body).hexdigest(),
            plan_object=(backend.bucket, plan_key),
            state_etag=etag,
            requested_by=who.git or who.user,
            requested_key=who.fingerprint,
            reason=reason,
            needed=deck.env(env).approvals,
            created_at=time.time(),
            services=services,
            pins=pins,
            base=base,
            summary={"add": plan.summary.add, "change": plan.summary.change, "destroy": plan.summary.destroy},
            diff=diff,
            message=message,
        )
        try:
            await asyncio.to_thread(signatures.sign_filed, deck, request)
        except RefusedError:
            await asyncio.to_thread(cloud.delete_object, backend.bucket, plan_key)
            raise
        rel = f"{request_dir(request_id)}/request.json"
        path = deck.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(request.to_file(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        head = f"request {request.describe()}: needs {request.needed} approvals" + (f": {reason}" if reason else "")
        await asyncio.to_thread(deck.tools.git.commit, [rel], f"{head}\n\n{who.trailers()}\n")
    await asyncio.to_thread(publish, deck, rep)
    return request
