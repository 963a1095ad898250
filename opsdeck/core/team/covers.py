"""What a signature on a request covers: a digest of every field of the request's record.

The requester signs the record when filing it, each approver signs it when approving, so an edit of
any field after that (the pins it will commit, the services and diff approvers read, the approvals it
needs, who asked) voids those signatures. A signature is made over the field digests, and the digests
it was made over are kept beside it: when the record no longer matches them, the refusal names the
fields that were edited.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from opsdeck.core.types.signatures import APPROVAL_NAMESPACE, canonical

FORMAT = 2  # requests filed before their whole record was signed have no "format"
NAMESPACE = APPROVAL_NAMESPACE  # the SSH signature namespace of requests, approvals and rejections


def digests(record: Mapping[str, Any]) -> dict[str, str]:
    """Each field of a request's record with the SHA-256 of its canonical JSON."""
    return {name: hashlib.sha256(canonical(value)).hexdigest() for name, value in sorted(record.items())}


def payload(request_id: str, decision: str, covers: Mapping[str, str], reason: str = "") -> bytes:
    """What is signed: the decision ("request", "approve" or "reject"), the request and its record's
    field digests. A signature for one decision never verifies as another."""
    body: dict[str, Any] = {"format": FORMAT, "decision": decision, "request": request_id, "covers": dict(covers)}
    if reason:
        body["reason"] = reason
    return canonical(body)


def edited(signed: Mapping[str, str], now: Mapping[str, str]) -> list[str]:
    """The fields whose digest differs between what was signed and the record now (added and removed
    fields count as edited)."""
    return sorted(name for name in set(signed) | set(now) if signed.get(name) != now.get(name))


def covers_of(value: Any) -> dict[str, str] | None:
    """Field digests as kept beside a signature, or None when they are not such a map."""
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return None
    return dict(value)
