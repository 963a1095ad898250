"""Drift alarms: tell a person when the nightly check found drift, or could not check.

A target is an HTTP(S) webhook (a JSON body chat webhooks accept: a one-line ``text``, with the full
report beside it) or an SNS topic ARN (published as the account the deck reaches it as). A message goes
only when something drifted or the check failed. Each target gets a few attempts with a timeout each;
a target that still fails is an error of its own, reported after every target was tried.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from opsdeck.core.estate import installed
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.types.tools import DeliveryError
from opsdeck.errors import CloudUnavailableError, ConfigError, OpsdeckError, RefusedError, ToolError

SNS_ARN = re.compile(
    r"^arn:aws[a-z-]*:sns:(?P<region>[a-z]+(?:-[a-z]+)+-\d+):(?P<account>\d{12}):(?P<name>[\w.-]{1,256})$"
)
SNS_LIMIT = 256 * 1024  # bytes of one SNS message
SUBJECT_LIMIT = 100  # characters of an SNS subject
# SNS answers that a retry will not change.
FINAL_SNS_ERRORS = {"NotFound", "AuthorizationError", "InvalidParameter", "InvalidClientTokenId", "AccessDenied"}


class NotifyError(OpsdeckError):
    """One or more targets were not told (after their retries)."""


@dataclass(frozen=True)
class NotifyTarget:
    kind: str  # webhook | sns
    value: str  # the URL or the topic ARN
    region: str = ""
    account: str = ""

    def shown(self) -> str:
        if self.kind == "sns":
            return self.value
        return shown_url(self.value)


def parse_target(text: str) -> NotifyTarget:
    """A `--notify` argument; ConfigError (one line) when it is neither a webhook nor a topic."""
    text = text.strip()
    if text.startswith("arn:"):
        match = SNS_ARN.match(text)
        if match is None:
            raise ConfigError(f"--notify {text}: not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:TOPIC)")
        _known_region(text, match["region"])
        return NotifyTarget("sns", text, match["region"], match["account"])
    if text.startswith("env:"):
        return _from_environment(text)
    parts = urlsplit(text)
    if parts.scheme in ("http", "https") and parts.hostname:
        try:
            parts.port  # noqa: B018 - urlsplit checks the port only when asked
        except ValueError:
            raise ConfigError(f"--notify {_shown_url(text)}: the port is not a number from 0 to 65535") from None
        return NotifyTarget("webhook", text)
    raise ConfigError(f"--notify {text}: neither an http(s):// webhook URL nor an SNS topic ARN")


def _from_environment(text: str) -> NotifyTarget:
    """`env:NAME`: the target is in environment variable NAME, so a webhook's key stays out of the
    command line (`ps`), crontabs and unit files."""
    name = text.removeprefix("env:")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ConfigError(f"--notify {text}: expected env:NAME, NAME an environment variable")
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigError(f"--notify {text}: environment variable {name} is not set")
    if value.startswith("env:"):
        raise ConfigError(f"--notify {text}: {name} names another variable, not a target")
    try:
        return parse_target(value)
    except ConfigError as exc:
        raise ConfigError(f"--notify {text}: {name} holds no target: {str(exc).split(': ', 1)[-1]}") from None


def shown_url(url: str) -> str:
    """A webhook URL as opsdeck prints it: scheme, host and port. A chat webhook's path is its secret."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.path not in ("", "/") else f"{parts.scheme}://{parts.netloc}/"


def _shown_url(text: str) -> str:
    try:
        return shown_url(text)
    except ValueError:
        return text.split("/", 3)[2] if text.count("/") >= 2 else text


def _known_region(text: str, region: str) -> None:
    regions = set(installed.outside().known_regions("sns"))
    if regions and region not in regions:
        raise ConfigError(f"--notify {text}: unknown region {region}")


@dataclass(frozen=True)
class Alarm:
    """What the targets are told."""

    status: str  # drifted | failed
    text: str  # the one-line summary
    body: dict[str, Any]  # text + the full report

    def json_bytes(self) -> bytes:
        return json.dumps(self.body, default=str).encode()


def drift_alarm(
    name: str, report: dict[str, Any] | None, error: str | None = None, trail: dict[str, Any] | None = None
) -> Alarm | None:
    """The alarm for deck ``name``'s drift report (its JSON) or its failure; None when all is clean."""
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    findings = _trail_findings(trail)
    if error is not None:
        status, text = "failed", f"opsdeck drift {name}: the check failed: {error}"
    else:
        drifted = [e for e in (report or {}).get("environments", []) if e.get("status") == "drifted"]
        if not drifted and not findings:
            return None
        parts = [f"{e['name']} ({_kinds(e)})" for e in drifted]
        parts += [f"{env}: {n} change{'s' * (n != 1)} outside the pipeline" for env, n in findings.items()]
        total = len((report or {}).get("environments", []))
        lead = f"{len(drifted)} of {total} environments drifted" if drifted else "no managed drift"
        status, text = "drifted", f"opsdeck drift {name}: {lead}: {'; '.join(parts)}"
    body: dict[str, Any] = {"text": text, "deck": name, "status": status, "at": at}
    if report is not None:
        body["report"] = report
    if trail is not None:
        body["trail"] = trail
    if error is not None:
        body["error"] = error
    return Alarm(status, text, body)


def _kinds(env: dict[str, Any]) -> str:
    counts = [(len(env.get(k) or []), label) for k, label in (("managed", "changed"), ("unmanaged", "unmanaged"))]
    counts.append((len(env.get("image") or []), "on an unpinned image"))
    return ", ".join(f"{n} {label}" for n, label in counts if n) or "drifted"


def _trail_findings(trail: dict[str, Any] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for env in (trail or {}).get("environments", []):
        if env.get("findings"):
            out[str(env.get("name"))] = len(env["findings"])
    return out


def sns_subject(text: str) -> str:
    """SNS takes a subject of printable ASCII on one line, under 100 characters."""
    plain = " ".join(text.replace("…", "...").replace("→", "->").split())
    plain = "".join(c if 32 <= ord(c) < 127 else "?" for c in plain)
    return plain if len(plain) <= SUBJECT_LIMIT else plain[: SUBJECT_LIMIT - 3] + "..."


@dataclass(frozen=True)
class Delivery:
    target: str
    ok: bool
    attempts: int
    detail: str  # the message id, the HTTP status, or why it failed

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "delivered": self.ok, "attempts": self.attempts, "detail": self.detail}


async def send(
    deck: Deck | None,
    targets: Sequence[NotifyTarget],
    alarm: Alarm,
    rep: Reporter,
    *,
    timeout: float = 10.0,
    attempts: int = 3,
    backoff: float = 1.0,
) -> list[Delivery]:
    """Tell every target (concurrently); NotifyError naming each one that was not told. Without a deck
    (it did not open) webhooks are still told; a topic cannot be reached."""
    with rep.phase("notify"):
        results = await asyncio.gather(
            *(_deliver(deck, t, alarm, rep, timeout=timeout, attempts=attempts, backoff=backoff) for t in targets)
        )
    failed = [d for d in results if not d.ok]
    if failed:
        told = len(results) - len(failed)
        detail = "; ".join(f"{d.target}: {d.detail} ({d.attempts} attempt{'s' * (d.attempts != 1)})" for d in failed)
        raise NotifyError(f"drift alarm not delivered to {detail}" + (f" ({told} other told)" if told else ""))
    return list(results)


async def _deliver(
    deck: Deck | None,
    target: NotifyTarget,
    alarm: Alarm,
    rep: Reporter,
    *,
    timeout: float,
    attempts: int,
    backoff: float,
) -> Delivery:
    webhook = installed.outside().webhook()
    shown = target.shown()
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            if target.kind == "webhook":
                status = await asyncio.wait_for(
                    asyncio.to_thread(webhook.post_json, target.value, alarm.json_bytes(), timeout), timeout + 5
                )
                detail = f"HTTP {status}"
            else:
                detail = await asyncio.wait_for(_publish(deck, target, alarm), timeout + 5)
            rep.log(f"notified {shown} ({detail})")
            return Delivery(shown, True, attempt, detail)
        except DeliveryError as exc:
            last = exc.reason
            if not exc.retry:
                return Delivery(shown, False, attempt, last)
        except TimeoutError:
            last = f"no answer within {timeout:g}s"
        except RefusedError as exc:
            return Delivery(shown, False, attempt, str(exc))  # the deck cannot reach that account
        except CloudUnavailableError as exc:
            last = str(exc)
        except ToolError as exc:
            last = str(exc).removeprefix(f"{exc.step}: ")
            if last.split(":", 1)[0] in FINAL_SNS_ERRORS:
                return Delivery(shown, False, attempt, last)  # an answer that will not change
        except OpsdeckError as exc:
            return Delivery(shown, False, attempt, str(exc))
        except Exception as exc:  # an alarm that cannot go out says why; it never hides the report
            return Delivery(shown, False, attempt, f"{type(exc).__name__}: {' '.join(str(exc).split())}")
        rep.log(f"notify {shown}: {last} (attempt {attempt} of {attempts})")
        if attempt < attempts:
            await asyncio.sleep(backoff * 2 ** (attempt - 1))
    return Delivery(shown, False, attempts, last)


async def _publish(deck: Deck | None, target: NotifyTarget, alarm: Alarm) -> str:
    if deck is None:
        raise RefusedError("the deck did not open, so no account can be reached")
    cloud = await asyncio.to_thread(deck.tools.account, target.account, target.region)
    message = alarm.json_bytes()
    if len(message) > SNS_LIMIT:
        # The full report does not fit one message: the summary and the counts do.
        slim = {k: v for k, v in alarm.body.items() if k not in ("report", "trail")}
        slim["truncated"] = f"the full report is {len(message)} bytes; SNS takes {SNS_LIMIT}"
        message = json.dumps(slim).encode()[:SNS_LIMIT]
    subject = sns_subject(alarm.text)
    started = time.monotonic()
    message_id = await asyncio.to_thread(cloud.publish, target.value, subject, message.decode())
    return f"message {message_id} in {time.monotonic() - started:.1f}s"
