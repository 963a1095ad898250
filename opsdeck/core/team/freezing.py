"""Freezing and unfreezing environments: the operator signs a freeze (or unfreeze) record with their SSH
key, it is checked as every clone will check it (core/safety/freeze.py), committed to the ledger in one
commit for all the environments named, and pushed. Anyone in allowed_signers may do either; both are
audited, refusals included."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.ledger.identity import Operator
from opsdeck.core.ledger.remote import publish, sync_before_change
from opsdeck.core.safety import audit
from opsdeck.core.safety.freeze import FORMAT, Freeze, check_record, freeze_path, iso, read_freeze, signed_payload
from opsdeck.core.team.covers import NAMESPACE
from opsdeck.core.team.signatures import cannot_sign, signer, signers_file
from opsdeck.errors import RefusedError


@dataclass(frozen=True)
class Decided:
    """What a freeze or unfreeze did to one environment."""

    environment: str
    decision: str  # "freeze", "unfreeze", "tidy" (a record that did not count replaced) or "none"
    by: str = ""
    reason: str = ""
    until: float | None = None
    replaced: Freeze | None = None  # the freeze this one replaced or lifted
    pushed: bool = False
    commit: str = ""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"environment": self.environment, "decision": self.decision, "by": self.by}
        if self.decision == "freeze":
            data |= {"reason": self.reason, "until": self.until}
        if self.replaced is not None:
            data["replaced" if self.decision == "freeze" else "lifted"] = self.replaced.to_json()
        return data | {"pushed": self.pushed, "commit": self.commit}


def _sign(deck: Deck, who: Operator, record: dict[str, Any], action: str) -> dict[str, Any]:
    """Sign ``record`` as the principal allowed_signers gives the operator's key (asked by signing once,
    then signed again naming them when git's email is not that principal)."""
    for _ in range(2):
        data = signed_payload(record)
        signature = deck.tools.signer().sign(who.signing_key or "", NAMESPACE, data)
        checked = deck.tools.signer().verify(signers_file(deck), NAMESPACE, signature, data)
        if not checked.valid:
            raise RefusedError(cannot_sign(deck, who, action, checked))
        if checked.principal == record["by"]:
            return {**record, "key": who.fingerprint, "signature": signature}
        record = {**record, "by": checked.principal}
    raise RefusedError(f"your key signs as {record['by']}, but the signature does not say so; nothing was frozen")


def _write(deck: Deck, records: dict[str, dict[str, Any]]) -> list[str]:
    """Write each environment's record, read back as every clone will read it; when one does not
    verify, every file is put back as it was and nothing is committed."""
    written = []
    try:
        for env, record in records.items():
            rel = freeze_path(env)
            path = deck.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            written.append(rel)
            path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            checked = check_record(deck, env, path.read_text(encoding="utf-8"))
            if checked is None or not checked.valid:
                raise RefusedError(f"{rel}: the record does not verify ({checked.problem if checked else 'gone'})")
    except BaseException:
        for rel in written:
            _discard(deck, rel)
        raise
    return written


def _discard(deck: Deck, rel: str) -> None:
    if deck.tools.git.text_at("HEAD", rel) is None:
        (deck.root / rel).unlink(missing_ok=True)
    else:
        deck.tools.git.restore(rel)


def _refused(deck: Deck, action: str, envs: list[str], exc: Exception, **fields: Any) -> None:
    who = audit.who(deck)
    for env in envs:
        audit.append(deck, action=action, environment=env, result="refused", error=str(exc), who=who, **fields)


async def freeze(
    deck: Deck, envs: list[str], until: float, reason: str, rep: Reporter, *, key: str | None = None
) -> list[Decided]:
    """Freeze ``envs`` until ``until`` (epoch seconds) for ``reason``: one signed record each, one commit."""
    for env in envs:
        deck.env(env)
    try:
        if not reason.strip():
            raise RefusedError("a freeze needs a reason (--reason TEXT)")
        if until <= time.time():
            raise RefusedError(f"a freeze must end in the future, not at {iso(until)}")
        await asyncio.to_thread(sync_before_change, deck, rep)
        who = await asyncio.to_thread(signer, deck, key)
        made_at = iso(time.time())
        decided, records = [], {}
        for env in envs:
            before = (await asyncio.to_thread(read_freeze, deck, env)).freeze
            record: dict[str, Any] = {
                "format": FORMAT,
                "decision": "freeze",
                "environment": env,
                "by": who.email,
                "reason": reason.strip(),
                "until": iso(until),
                "made_at": made_at,
            }
            records[env] = record = await asyncio.to_thread(_sign, deck, who, record, f"freeze {env}")
            decided.append(Decided(env, "freeze", record["by"], record["reason"], until, before))
        files = await asyncio.to_thread(_write, deck, records)
    except RefusedError as exc:
        await asyncio.to_thread(_refused, deck, "freeze", envs, exc, reason=reason, until=iso(until))
        raise
    head = f"freeze {', '.join(envs)} until {iso(until)}: {reason.strip()}"
    return await _commit(deck, rep, files, head, who, decided)


async def unfreeze(deck: Deck, envs: list[str], rep: Reporter, *, key: str | None = None) -> list[Decided]:
    """Lift the freezes of ``envs`` with signed unfreeze records (an environment with a record that
    no longer counts, an ended or unsigned freeze, gets one too: the file is tidied)."""
    for env in envs:
        deck.env(env)
    try:
        await asyncio.to_thread(sync_before_change, deck, rep)
        who = await asyncio.to_thread(signer, deck, key)
        made_at = iso(time.time())
        decided, records = [], {}
        for env in envs:
            before = (await asyncio.to_thread(read_freeze, deck, env)).freeze
            current = check_record(deck, env, await asyncio.to_thread(deck.tools.git.text_at, "HEAD", freeze_path(env)))
            if before is None and (current is None or (current.valid and current.decision == "unfreeze")):
                decided.append(Decided(env, "none"))
                continue
            record: dict[str, Any] = {
                "format": FORMAT,
                "decision": "unfreeze",
                "environment": env,
                "by": who.email,
                "made_at": made_at,
                "lifts": before.id if before is not None else "",
            }
            records[env] = record = await asyncio.to_thread(_sign, deck, who, record, f"unfreeze {env}")
            decided.append(Decided(env, "unfreeze" if before is not None else "tidy", record["by"], replaced=before))
        files = await asyncio.to_thread(_write, deck, records)
    except RefusedError as exc:
        await asyncio.to_thread(_refused, deck, "unfreeze", envs, exc)
        raise
    if not files:
        return decided
    lifted = [d.environment for d in decided if d.decision == "unfreeze"]
    head = f"unfreeze {', '.join(lifted)}" if lifted else f"tidy the freeze records of {', '.join(envs)}"
    return await _commit(deck, rep, files, head, who, decided)


async def _commit(
    deck: Deck, rep: Reporter, files: list[str], head: str, who: Operator, decided: list[Decided]
) -> list[Decided]:
    try:
        await asyncio.to_thread(deck.tools.git.commit, files, f"{head}\n\n{who.trailers()}\n")
    except BaseException:
        for rel in files:
            await asyncio.to_thread(_discard, deck, rel)
        raise
    pushed, sha = await asyncio.to_thread(publish, deck, rep)
    ident = await asyncio.to_thread(audit.who, deck)
    done = []
    for item in decided:
        item = Decided(**{**item.__dict__, "pushed": pushed, "commit": sha})
        done.append(item)
        if item.decision == "none":
            continue
        fields: dict[str, Any] = {"by": item.by, "pushed": pushed, "commit": sha}
        if item.decision == "freeze":
            fields |= {"reason": item.reason, "until": iso(item.until or 0.0)}
        if item.replaced is not None:
            fields["replaced" if item.decision == "freeze" else "lifted"] = item.replaced.record()
        action = "freeze" if item.decision == "freeze" else "unfreeze"
        audit.append(deck, action=action, environment=item.environment, result="ok", who=ident, **fields)
    return done
