"""Approvals: a change to an environment that needs them becomes a request; allowed signers other than
the requester approve that exact saved plan; only then is it applied, exactly as approved.

A request is planned like any change, then stopped short of applying: its saved plan goes to the
environment's state bucket (encrypted at rest) and the request (the plan's SHA-256, the pins it
writes and the ones it found, the state's ETag, the diff, who asked and why) is committed to the
ledger and pushed, so every clone sees it. An approval is an SSH signature, with the key git signs
with, over the request's id, environment, action and plan hash, committed beside it: it cannot be
copied onto another request or another plan. ``execute`` runs a request with enough valid approvals
from distinct allowed signers (never the requester): it refuses a request whose pins or state moved
on since (stale: plan and approve again) and a saved plan whose hash changed, and applies exactly
that plan. Break-glass may bypass approvals, with its reason and time box, audited as a bypass.
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

from opsdeck.core.team.identity import Operator, email_of, operator
from opsdeck.errors import OpsdeckError, RefusedError

if TYPE_CHECKING:
    from opsdeck.adapters.aws import Credentials
    from opsdeck.adapters.sshsig import Verified
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.events import Reporter
    from opsdeck.core.model import PlanResult

FOLDER = "requests"
NAMESPACE = "opsdeck-approval"
STATUSES = ("pending", "approved", "stale", "executed", "rejected")


@dataclass(frozen=True)
class Approval:
    by: str  # the signer's principal in allowed_signers (an email)
    key: str  # its key's fingerprint
    at: float
    valid: bool
    problem: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"by": self.by, "key": self.key, "at": self.at, "valid": self.valid}
        if self.problem:
            data["problem"] = self.problem
        return data


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
    stale: str = ""  # why it is stale, when it is

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

    def payload(self, decision: str, reason: str = "") -> bytes:
        """What a signer signs: this request's identity and its exact plan."""
        body = {
            "decision": decision,
            "request": self.id,
            "environment": self.environment,
            "action": self.action,
            "plan_sha256": self.plan_sha256,
        }
        if reason:
            body["reason"] = reason
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

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
        }

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


def _dir(request_id: str) -> str:
    return f"{FOLDER}/{request_id}"


def _slug(principal: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]+", "_", principal)


def needs_approval(deck: Deck, env: str, glass_for_env: bool) -> bool:
    """A change to ``env`` becomes a request (break-glass bypasses, audited as such)."""
    return deck.env(env).approvals > 0 and not glass_for_env


# -- reading ----------------------------------------------------------------------------------------


def load(deck: Deck, request_id: str, *, check_stale: bool = True) -> Request:
    """A request as the ledger has it, its approvals verified."""
    if not re.fullmatch(r"[a-z0-9-]{4,40}", request_id):
        raise RefusedError(f"{request_id!r} is not a request id (see `opsdeck requests`)")
    path = deck.root / _dir(request_id) / "request.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RefusedError(f"there is no request {request_id} (see `opsdeck requests`)") from None
    except ValueError:
        raise OpsdeckError(f"{path.relative_to(deck.root)}: not a readable request") from None
    request = Request(
        id=data["id"],
        environment=data["environment"],
        action=data["action"],
        plan_sha256=data["plan_sha256"],
        plan_object=(data["plan_object"][0], data["plan_object"][1]),
        state_etag=data.get("state_etag"),
        requested_by=data["requested_by"],
        requested_key=data.get("requested_key", ""),
        reason=data.get("reason", ""),
        needed=int(data["needed"]),
        created_at=float(data["created_at"]),
        services=list(data.get("services", [])),
        pins=dict(data.get("pins", {})),
        base=dict(data.get("base", {})),
        summary=dict(data.get("summary", {})),
        diff=list(data.get("diff", [])),
        message=data.get("message", ""),
    )
    request.approvals = _approvals(deck, request)
    folder = deck.root / _dir(request_id)
    for name in ("rejected", "executed"):
        file = folder / f"{name}.json"
        if file.is_file():
            setattr(request, name, json.loads(file.read_text(encoding="utf-8")))
    if check_stale and request.status in ("pending", "approved"):
        request.stale = staleness(deck, request)
    return request


def _approvals(deck: Deck, request: Request) -> list[Approval]:
    """Every approval record of the request, each checked: signed by an allowed signer, by the one it
    names, over this request and this plan, and not by the requester."""
    from opsdeck.adapters import sshsig

    folder = deck.root / _dir(request.id) / "approvals"
    signers = deck.root / deck.config.team.allowed_signers
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            claimed, signature = str(data["by"]), str(data["signature"])
            at, key = float(data.get("at", 0.0)), str(data.get("key", ""))
        except (ValueError, KeyError, TypeError):
            found.append(Approval(path.stem, "", 0.0, False, "not a readable approval record"))
            continue
        checked = sshsig.verify(signers, NAMESPACE, signature, request.payload("approve"))
        problem = checked.problem
        if checked.valid and checked.principal != claimed:
            problem = f"signed by {checked.principal}, not by {claimed}"
        elif checked.valid and (
            checked.principal == email_of(request.requested_by) or (key and key == request.requested_key)
        ):
            problem = "signed by the requester"
        found.append(Approval(claimed, key, at, not problem, problem))
    return found


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
    from opsdeck.core.team.remote import publish

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
        rel = f"{_dir(request_id)}/request.json"
        path = deck.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(request.record(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        head = f"request {request.describe()}: needs {request.needed} approvals" + (f": {reason}" if reason else "")
        await asyncio.to_thread(deck.tools.git.commit, [rel], f"{head}\n\n{who.trailers()}\n")
    await asyncio.to_thread(publish, deck, rep)
    return request


# -- approving and rejecting ----------------------------------------------------------------------------


def _signer(deck: Deck, key: str | None) -> Operator:
    who = operator(deck, key)
    if not who.signing_key:
        raise RefusedError(
            "git has no signing key: set user.signingkey to your SSH key (git config user.signingkey "
            "~/.ssh/id_ed25519), or pass --key"
        )
    return who


def _cannot_sign(deck: Deck, who: Operator, action: str, checked: Verified) -> str:
    signers = deck.config.team.allowed_signers
    if not checked.listed:
        return f"your key {who.fingerprint} is not in {signers}: you cannot {action} ({checked.problem})"
    # Listed for other namespaces only (teams that sign commits have namespaces="git"): the line that fixes it.
    first = checked.listed[0]
    return (
        f"your key {who.fingerprint} is in {signers} for {first.principals} (line {first.number}), but only for "
        f'namespaces "{first.namespaces}", not opsdeck\'s ({NAMESPACE}): you cannot {action} until it may sign '
        f"there too; add this line to {signers} (or {NAMESPACE} to the namespaces of line {first.number}): "
        f"{first.with_namespace(NAMESPACE)}"
    )


async def approve(deck: Deck, request_id: str, rep: Reporter, *, key: str | None = None) -> Request:
    """Sign the request with the operator's key, check the signature as every clone will, commit it."""
    return await _decide(deck, request_id, rep, "approve", key=key)


async def reject(deck: Deck, request_id: str, reason: str, rep: Reporter, *, key: str | None = None) -> Request:
    if not reason.strip():
        raise RefusedError("reject needs a reason (--reason TEXT)")
    return await _decide(deck, request_id, rep, "reject", reason=reason.strip(), key=key)


async def _decide(
    deck: Deck, request_id: str, rep: Reporter, decision: str, *, reason: str = "", key: str | None = None
) -> Request:
    from opsdeck.adapters import sshsig
    from opsdeck.core.safety import audit
    from opsdeck.core.team.remote import publish, sync_before_change

    action = "approve" if decision == "approve" else "reject"
    request: Request | None = None
    try:
        await asyncio.to_thread(sync_before_change, deck, rep)
        request = await asyncio.to_thread(load, deck, request_id)
        if request.status not in ("pending", "approved"):
            why = f": {request.stale}" if request.stale else ""
            raise RefusedError(f"request {request_id} is {request.status}{why}; nothing to {action}")
        who = _signer(deck, key)
        payload = request.payload(decision, reason)
        signature = await asyncio.to_thread(sshsig.sign, who.signing_key or "", NAMESPACE, payload)
        signers = deck.root / deck.config.team.allowed_signers
        checked = await asyncio.to_thread(sshsig.verify, signers, NAMESPACE, signature, payload)
        if not checked.valid:
            raise RefusedError(_cannot_sign(deck, who, action, checked))
        principal = checked.principal
        mine = principal == email_of(request.requested_by) or who.fingerprint == request.requested_key
        if decision == "approve" and mine:
            raise RefusedError(f"you requested {request_id}: approvals must come from someone else")
        if decision == "approve" and principal in request.valid_approvers:
            raise RefusedError(f"{principal} already approved {request_id}")
    except RefusedError as exc:
        who_ = await asyncio.to_thread(audit.who, deck)
        audit.append(
            deck,
            action=action,
            environment=request.environment if request else None,
            result="refused",
            request=request_id,
            error=str(exc),
            who=who_,
        )
        raise
    record = {"by": principal, "key": who.fingerprint, "at": time.time(), "signature": signature}
    if decision == "approve":
        rel = f"{_dir(request_id)}/approvals/{_slug(principal)}.json"
        head = f"approve {request_id} ({request.describe()}) as {principal}"
    else:
        record["reason"] = reason
        rel = f"{_dir(request_id)}/rejected.json"
        head = f"reject {request_id} ({request.describe()}) as {principal}: {reason}"
    path = deck.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    await asyncio.to_thread(deck.tools.git.commit, [rel], f"{head}\n\n{who.trailers()}\n")
    pushed, _ = await asyncio.to_thread(publish, deck, rep)
    who_ = await asyncio.to_thread(audit.who, deck)
    audit.append(
        deck,
        action=action,
        environment=request.environment,
        result="ok",
        request=request_id,
        by=principal,
        key=who.fingerprint,
        reason=reason,
        pushed=pushed,
        who=who_,
    )
    return await asyncio.to_thread(load, deck, request_id)
