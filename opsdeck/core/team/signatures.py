"""The signatures on a request, checked as every clone checks them: the requester's over the record it
filed, and each approval's over the record it approved (see core/team/covers.py for what they cover).

Who asked is whoever the requester's key is in allowed_signers, and that principal must be the email
of the git identity the request names: a record whose ``requested_by`` was edited no longer verifies,
so nobody can approve their own request by renaming its requester.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsdeck.core.ledger.identity import Operator, email_of, operator
from opsdeck.core.team import covers
from opsdeck.core.types.signatures import Verified
from opsdeck.errors import RefusedError

if TYPE_CHECKING:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.team.requests import Request


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


def signers_file(deck: Deck) -> Path:
    return deck.root / deck.config.team.allowed_signers


def signer(deck: Deck, key: str | None) -> Operator:
    """The operator, with the key they sign with (git's user.signingkey, or ``key``)."""
    who = operator(deck, key)
    if not who.signing_key:
        raise RefusedError(
            "git has no signing key: set user.signingkey to your SSH key (git config user.signingkey "
            "~/.ssh/id_ed25519), or pass --key"
        )
    return who


def cannot_sign(deck: Deck, who: Operator, action: str, checked: Verified) -> str:
    """Why the operator's key cannot sign here: not in allowed_signers, or (teams that sign commits have
    ``namespaces="git"``) listed for other namespaces only, with the line that lets it sign."""
    signers = deck.config.team.allowed_signers
    if not checked.listed:
        return f"your key {who.fingerprint} is not in {signers}: you cannot {action} ({checked.problem})"
    first = checked.listed[0]
    ours = covers.NAMESPACE
    return (
        f"your key {who.fingerprint} is in {signers} for {first.principals} (line {first.number}), but only for "
        f'namespaces "{first.namespaces}", not opsdeck\'s ({ours}): you cannot {action} until it may sign '
        f"there too; add this line to {signers} (or {ours} to the namespaces of line {first.number}): "
        f"{first.with_namespace(ours)}"
    )


def is_requester(request: Request, principal: str, key: str) -> bool:
    named = email_of(request.requested_by)
    return principal in (request.requester or named, named) or bool(key and key == request.requested_key)


def sign_filed(deck: Deck, request: Request) -> None:
    """The requester signs the request's whole record (``request.filed``); refused, with the reason, when
    their key cannot sign for them (no key, not in allowed_signers, or listed for someone else)."""
    who = signer(deck, None)
    signed = request.covers()
    data = covers.payload(request.id, "request", signed)
    signature = deck.tools.signer().sign(who.signing_key or "", covers.NAMESPACE, data)
    checked = deck.tools.signer().verify(signers_file(deck), covers.NAMESPACE, signature, data)
    if not checked.valid:
        raise RefusedError(
            cannot_sign(deck, who, f"request a change to {request.environment}", checked)
            + f"; requests are signed by their requester, who must be in {deck.config.team.allowed_signers}"
        )
    if checked.principal != email_of(request.requested_by):
        raise RefusedError(
            f"your key is {checked.principal}'s in {deck.config.team.allowed_signers}, but git names you "
            f"{request.requested_by}: set git's user.email to {checked.principal} to request a change"
        )
    request.filed = {"key": who.fingerprint, "signature": signature, "covers": signed}


def filed_problem(deck: Deck, request: Request) -> str:
    """Why the request's record cannot be trusted as its requester filed it, or "" (and then
    ``request.requester`` is the principal who signed it)."""
    if request.format < covers.FORMAT:
        return "filed by an older opsdeck, whose approvals did not cover the whole request"
    filed = request.filed or {}
    signed, signature = covers.covers_of(filed.get("covers")), filed.get("signature")
    if signed is None or not isinstance(signature, str):
        return "its requester's signature is missing from request.json"
    data = covers.payload(request.id, "request", signed)
    checked = deck.tools.signer().verify(signers_file(deck), covers.NAMESPACE, signature, data)
    if not checked.valid:
        return f"its requester's signature does not verify ({checked.problem})"
    fields = covers.edited(signed, request.covers())
    if fields:
        return f"request.json was edited after it was filed ({', '.join(fields)})"
    if checked.principal != email_of(request.requested_by):
        return f"it names {request.requested_by} as its requester but is signed by {checked.principal}"
    request.requester = checked.principal
    return ""


def approvals(deck: Deck, request: Request) -> list[Approval]:
    """Every approval record of the request, each checked: signed by an allowed signer, by the one it
    names, over this request's whole record as it is now, and not by the requester."""
    folder = deck.root / "requests" / request.id / "approvals"
    now = request.covers()
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            claimed, signature = str(data["by"]), str(data["signature"])
            at, key = float(data.get("at", 0.0)), str(data.get("key", ""))
        except (ValueError, KeyError, TypeError):
            found.append(Approval(path.stem, "", 0.0, False, "not a readable approval record"))
            continue
        signed = covers.covers_of(data.get("covers"))
        if signed is None or request.format < covers.FORMAT:
            found.append(Approval(claimed, key, at, False, "made by an older opsdeck: it does not cover the request"))
            continue
        checked = deck.tools.signer().verify(
            signers_file(deck), covers.NAMESPACE, signature, covers.payload(request.id, "approve", signed)
        )
        problem = checked.problem
        if checked.valid and checked.principal != claimed:
            problem = f"signed by {checked.principal}, not by {claimed}"
        elif checked.valid and is_requester(request, checked.principal, key):
            problem = "signed by the requester"
        elif checked.valid and (fields := covers.edited(signed, now)):
            problem = f"the request was edited after this approval ({', '.join(fields)})"
        found.append(Approval(claimed, key, at, not problem, problem))
    return found
