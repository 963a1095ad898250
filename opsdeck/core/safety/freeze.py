"""Change freezes as every clone reads them: signed records in the ledger (``freezes/ENV.json``), and the
one check every mutating operation passes (``check_freeze``, called by the audited-operation context).

A freeze record is signed as approvals are (the operator's SSH key, the approvals' namespace, a payload
whose ``decision`` is "freeze" or "unfreeze", so no approval's signature verifies as one) and verified
against ``allowed_signers`` by every reader. What counts is decided from the file's whole git history,
not from the file as it is now:

- the freeze in force is the newest validly signed freeze (by its signed ``made_at``), unless its time
  has passed (it lifts itself, no commit needed) or a validly signed unfreeze names it (``lifts``);
- a record that does not verify (unsigned, edited, forged, signed by a key not in allowed_signers)
  counts for nothing, either way: a forged freeze blocks nobody, and an unsigned unfreeze (or the
  file deleted by a plain commit) lifts nothing. Neither is silent: the state carries a ``problem``
  that status and the deck show;
- an old signed record committed again (a replay) changes nothing: the newest ``made_at`` decides, and
  an unfreeze keeps lifting the freeze it names.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsdeck.core.types.signatures import APPROVAL_NAMESPACE as NAMESPACE
from opsdeck.core.types.signatures import Verified, canonical
from opsdeck.errors import ConfigError, OpsdeckError, RefusedError

if TYPE_CHECKING:
    from opsdeck.core.estate.deck import Deck
    from opsdeck.core.safety.breakglass import BreakGlass

FOLDER = "freezes"
FORMAT = 1
HISTORY = 100  # versions of a freeze file read back (a freeze is decided by its newest signed records)
# What a freeze refuses: every change to what an environment runs (execute runs as its request's action).
FROZEN_ACTIONS = ("promote", "deploy", "rollback", "apply", "nuke-rebuild", "sandbox-expire", "recover")
SIGNED = {
    "freeze": ("format", "decision", "environment", "by", "reason", "until", "made_at"),
    "unfreeze": ("format", "decision", "environment", "by", "made_at", "lifts"),
}
DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([mhd])$")
UNIT_SECONDS = {"m": 60.0, "h": 3600.0, "d": 86400.0}


def freeze_path(env: str) -> str:
    return f"{FOLDER}/{env}.json"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_of(text: str) -> float:
    """An ISO 8601 time (a time without an offset is the local time) as epoch seconds."""
    moment = datetime.fromisoformat(text.strip())
    return moment.timestamp()  # naive: local time, as the operator wrote it


def shown(epoch: float) -> str:
    """A time as people read it in a refusal: local, with its zone."""
    return time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(epoch))


def parse_until(text: str, now: float | None = None) -> float:
    """``--until``: a duration (90m, 2h, 3d) from now, or an ISO 8601 time; in the future."""
    now = time.time() if now is None else now
    value = text.strip()
    match = DURATION.match(value)
    if match:
        seconds = float(match[1]) * UNIT_SECONDS[match[2]]
        if seconds <= 0:
            raise ConfigError(f"--until {text}: expected a duration above 0 (such as 90m, 2h, 3d)")
        return now + seconds
    try:
        until = epoch_of(value)
    except ValueError:
        raise ConfigError(
            f"--until {text}: expected a duration (90m, 2h, 3d) or an ISO 8601 time (2026-12-24T18:00Z)"
        ) from None
    if until <= now:
        raise ConfigError(f"--until {text}: that time has passed ({shown(until)})")
    return until


@dataclass(frozen=True)
class Record:
    """One version of a freeze file, checked: a freeze or an unfreeze, valid or not (and why)."""

    decision: str
    environment: str
    by: str
    made_at: float
    until: float = 0.0
    reason: str = ""
    lifts: str = ""
    signature: str = ""
    valid: bool = False
    problem: str = ""

    @property
    def id(self) -> str:
        """What an unfreeze names to lift this freeze: a digest of its signature."""
        return hashlib.sha256(self.signature.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Freeze:
    """The freeze in force on an environment."""

    environment: str
    by: str
    reason: str
    until: float
    made_at: float
    id: str

    def describe(self) -> str:
        return f"{self.environment} is frozen by {self.by} until {shown(self.until)}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {"by": self.by, "reason": self.reason, "until": self.until}

    def record(self) -> dict[str, Any]:
        """What an audit record says of it (a refusal, a bypass)."""
        return {"by": self.by, "reason": self.reason, "until": iso(self.until), "id": self.id}


@dataclass(frozen=True)
class FreezeState:
    freeze: Freeze | None = None
    problem: str = ""  # a record in the ledger that does not count, said aloud


def signed_payload(data: dict[str, Any]) -> bytes:
    """The bytes a freeze or unfreeze record's signature covers."""
    names = SIGNED.get(str(data.get("decision")), ())
    return canonical({name: data.get(name) for name in names})


_VERDICTS: dict[tuple[str, str, str, bytes], Verified] = {}


def _verified(deck: Deck, signers: str, signers_text: str, signature: str, data: bytes) -> Verified:
    """ssh-keygen's verdict, remembered (status reads every freeze on each refresh); the file's text is
    part of the key, so a changed allowed_signers is checked again."""
    key = (signers, signers_text, signature, data)
    if key not in _VERDICTS:
        if len(_VERDICTS) > 512:
            _VERDICTS.clear()
        _VERDICTS[key] = deck.tools.signer().verify(Path(signers), NAMESPACE, signature, data)
    return _VERDICTS[key]


def check_record(deck: Deck, env: str, text: str | None) -> Record | None:
    """One version of ``freezes/ENV.json`` read and verified; None when the file was deleted."""
    if text is None:
        return None
    try:
        data = json.loads(text)
        decision = str(data["decision"])
        record = Record(
            decision=decision,
            environment=str(data["environment"]),
            by=str(data["by"]),
            made_at=epoch_of(str(data["made_at"])),
            until=epoch_of(str(data["until"])) if decision == "freeze" else 0.0,
            reason=str(data.get("reason", "")),
            lifts=str(data.get("lifts") or ""),
            signature=str(data.get("signature") or ""),
        )
    except (ValueError, KeyError, TypeError):
        return Record("?", env, "?", 0.0, problem="not a readable freeze record")
    problem = ""
    if decision not in SIGNED or data.get("format") != FORMAT:
        problem = f"not a freeze record opsdeck knows (decision {decision!r})"
    elif record.environment != env:
        problem = f"it names {record.environment}, not {env}"
    elif not record.signature:
        problem = "it is not signed"
    else:
        signers = deck.root / deck.config.team.allowed_signers
        try:
            signers_text = signers.read_text(encoding="utf-8")
        except OSError:
            signers_text = ""
        checked = _verified(deck, str(signers), signers_text, record.signature, signed_payload(data))
        if not checked.valid:
            problem = f"its signature does not verify ({checked.problem})"
        elif checked.principal != record.by:
            problem = f"it names {record.by} but is signed by {checked.principal}"
    return Record(**{**record.__dict__, "valid": not problem, "problem": problem})


def decide(records: list[Record | None], now: float) -> Freeze | None:
    """The freeze in force among a file's versions (see the module's docstring)."""
    valid = [r for r in records if r is not None and r.valid]
    freezes = [r for r in valid if r.decision == "freeze"]
    if not freezes:
        return None
    newest = max(freezes, key=lambda r: r.made_at)
    lifted = {r.lifts for r in valid if r.decision == "unfreeze"}
    if newest.id in lifted or now >= newest.until:
        return None
    return Freeze(newest.environment, newest.by, newest.reason, newest.until, newest.made_at, newest.id)


def read_freeze(deck: Deck, env: str, now: float | None = None) -> FreezeState:
    """The freeze in force on ``env`` as the ledger's committed history has it; raises OpsdeckError
    when that history cannot be read."""
    now = time.time() if now is None else now
    rel = freeze_path(env)
    try:
        versions = deck.tools.git.history(rel, limit=HISTORY)
    except OpsdeckError:
        raise
    except Exception as exc:  # GitPython's own errors (an empty repository): the ledger cannot be read
        raise OpsdeckError(f"{rel}: the ledger's history cannot be read ({exc})") from None
    if not versions:
        return FreezeState()
    records = [check_record(deck, env, v.text) for v in versions]
    found = decide(records, now)
    current, commit = records[0], versions[0].commit[:12]
    problem = ""
    if current is None and found is not None:
        problem = f"{rel} was deleted in {commit} without a signed unfreeze: the freeze holds"
    elif current is not None and not current.valid:
        held = f"the signed freeze by {found.by} holds" if found is not None else "it is ignored"
        problem = f"{rel} as committed in {commit} does not count ({current.problem}): {held}"
    return FreezeState(found, problem)


def read_freezes(deck: Deck, envs: list[str], now: float | None = None) -> dict[str, FreezeState]:
    """Every environment's freeze; one look at the folder's history first (a deck that never froze
    anything pays for nothing more). An unreadable ledger is a problem on each row, not an error."""
    try:
        if not deck.tools.git.commits([FOLDER], limit=1):
            return {env: FreezeState() for env in envs}
    except Exception as exc:  # not a git repository yet, or no commit: nothing was ever frozen here
        return {env: FreezeState(problem=f"freezes cannot be read ({' '.join(str(exc).split())})") for env in envs}
    found = {}
    for env in envs:
        try:
            found[env] = read_freeze(deck, env, now)
        except OpsdeckError as exc:
            found[env] = FreezeState(problem=str(exc))
    return found


def check_freeze(deck: Deck, env: str, glass: BreakGlass | None, action: str) -> dict[str, Any] | None:
    """Refuse ``action`` on a frozen ``env`` in one line naming the freeze; under an active break-glass
    for ``env`` it passes, and the freeze it bypassed is returned for the audit record."""
    if action not in FROZEN_ACTIONS:
        return None
    state = read_freeze(deck, env)
    if state.freeze is None:
        return None
    if glass is not None and glass.env == env and glass.active():
        return state.freeze.record()
    raise RefusedError(
        f"{state.freeze.describe()}; {action} is refused (break-glass passes, audited; or `opsdeck unfreeze {env}`)"
    )
