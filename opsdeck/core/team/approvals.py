"""Approving and rejecting a request: the operator signs the request's whole record with their key, the
signature is checked as every clone will check it, and the decision is committed and pushed."""

from __future__ import annotations

import asyncio
import json
import re
import time

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.ledger.remote import publish, sync_before_change
from opsdeck.core.safety import audit
from opsdeck.core.team import covers
from opsdeck.core.team.requests import Request, load, request_dir
from opsdeck.core.team.signatures import cannot_sign, is_requester, signer, signers_file
from opsdeck.errors import RefusedError


async def approve(deck: Deck, request_id: str, rep: Reporter, *, key: str | None = None) -> Request:
    """Sign the request with the operator's key, check the signature as every clone will, commit it."""
    return await _decide(deck, request_id, rep, "approve", key=key)


async def reject(deck: Deck, request_id: str, reason: str, rep: Reporter, *, key: str | None = None) -> Request:
    if not reason.strip():
        raise RefusedError("reject needs a reason (--reason TEXT)")
    return await _decide(deck, request_id, rep, "reject", reason=reason.strip(), key=key)


def _slug(principal: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]+", "_", principal)


async def _decide(
    deck: Deck, request_id: str, rep: Reporter, decision: str, *, reason: str = "", key: str | None = None
) -> Request:
    action = "approve" if decision == "approve" else "reject"
    request: Request | None = None
    try:
        await asyncio.to_thread(sync_before_change, deck, rep)
        request = await asyncio.to_thread(load, deck, request_id)
        if request.status not in ("pending", "approved"):
            why = f": {request.stale}" if request.stale else ""
            raise RefusedError(f"request {request_id} is {request.status}{why}; nothing to {action}")
        who = signer(deck, key)
        signed = request.covers()  # the record exactly as this signer read it
        data = covers.payload(request.id, decision, signed, reason)
        signature = await asyncio.to_thread(deck.tools.signer().sign, who.signing_key or "", covers.NAMESPACE, data)
        checked = await asyncio.to_thread(
            deck.tools.signer().verify, signers_file(deck), covers.NAMESPACE, signature, data
        )
        if not checked.valid:
            raise RefusedError(cannot_sign(deck, who, action, checked))
        principal = checked.principal
        if decision == "approve" and is_requester(request, principal, who.fingerprint):
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
    record = {"by": principal, "key": who.fingerprint, "at": time.time(), "signature": signature, "covers": signed}
    if decision == "approve":
        rel = f"{request_dir(request_id)}/approvals/{_slug(principal)}.json"
        head = f"approve {request_id} ({request.describe()}) as {principal}"
    else:
        record["reason"] = reason
        rel = f"{request_dir(request_id)}/rejected.json"
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
