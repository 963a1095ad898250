"""Jobs as plain JSON: what to run where, the events a worker streams back, and the Redis keys of a job.

A job names its operation, environment and arguments, the caller's git HEAD (the worker checks that it
runs the same ledger) and the account the environment lives in: its queue is ``opsdeck.<account>``,
so a worker holding one account's credentials only takes that account's jobs.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from opsdeck.core.engine.operation import Where
from opsdeck.core.engine.registry import job_operation
from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Event, LogLine, OpFinished, PhaseFinished, PhaseStarted, Progress
from opsdeck.core.model import ImageRef, PlanResult
from opsdeck.core.safety.confirm import Preview, ServiceChange
from opsdeck.errors import OpsdeckError

QUEUE_PREFIX = "opsdeck."
READ_ONLY_TASK = "opsdeck.read_only"
MUTATING_TASK = "opsdeck.mutating"


def queue_of_account(account: str) -> str:
    return f"{QUEUE_PREFIX}{account}"


def account_of_queue(queue: str) -> str:
    return queue.removeprefix(QUEUE_PREFIX)


def account_of(deck: Deck, env: str) -> str:
    """The account ``env`` lives in (its queue's name); "default" for an environment that names none."""
    return deck.env(env).account or "default"


@dataclass(frozen=True)
class JobSpec:
    """One operation on one environment (a bake: on the build account, ``env`` empty), as a worker
    receives it."""

    id: str
    op: str
    env: str
    account: str
    deck: str  # the deck's name: a worker refuses another deck's jobs
    head: str  # the caller's git HEAD
    args: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0

    @classmethod
    def new(cls, deck: Deck, op: str, env: str, args: dict[str, Any] | None = None, head: str = "") -> JobSpec:
        if job_operation(op).where is Where.BUILD:
            env, account = "", deck.config.build.account or "default"
        else:
            deck.env(env)
            account = account_of(deck, env)
        return cls(
            id=uuid.uuid4().hex,
            op=op,
            env=env,
            account=account,
            deck=deck.name,
            head=head,
            args=dict(args or {}),
            created_at=time.time(),
        )

    @property
    def queue(self) -> str:
        return queue_of_account(self.account)

    @property
    def mutating(self) -> bool:
        """Run at most once: acknowledged on receipt, never sent again (a change, or a bake)."""
        return job_operation(self.op).mutating

    @property
    def task(self) -> str:
        return MUTATING_TASK if self.mutating else READ_ONLY_TASK

    def label(self) -> str:
        if job_operation(self.op).where is Where.BUILD:
            what = (
                "the base layer"
                if self.args.get("base")
                else ", ".join(self.args.get("services") or []) or "every service"
            )
            return f"{self.op} of {what}"
        return f"{self.op} of {self.env}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> JobSpec:
        """A job spec read back; a malformed one is one OpsdeckError line (never a traceback on a worker)."""
        if not isinstance(data, dict):
            raise OpsdeckError(f"a job spec is a JSON object, not {type(data).__name__}")
        missing = [k for k in ("id", "op", "env", "account", "deck", "head") if not isinstance(data.get(k), str)]
        if missing:
            raise OpsdeckError(f"job spec without {', '.join(missing)} (strings expected)")
        job_operation(data["op"], data["id"])
        args = data.get("args") or {}
        if not isinstance(args, dict):
            raise OpsdeckError(f"job {data['id']}: args must be a JSON object")
        return cls(
            id=data["id"],
            op=data["op"],
            env=data["env"],
            account=data["account"],
            deck=data["deck"],
            head=data["head"],
            args=args,
            created_at=float(data.get("created_at") or 0.0),
        )


# -- events -----------------------------------------------------------------------------------------

_EVENT_TYPES: dict[str, type[Event]] = {
    cls.__name__: cls for cls in (PhaseStarted, PhaseFinished, Progress, LogLine, OpFinished)
}


def event_to_json(event: Event) -> dict[str, Any]:
    """An operation's event as JSON (an OpFinished's result object stays behind: the job's result says it)."""
    data = asdict(event)
    data.pop("result", None)
    data.pop("worker", None)
    return {"type": type(event).__name__, **data}


def event_from_json(data: dict[str, Any], worker: str) -> Event | None:
    """The event a worker streamed, labelled with that worker; None for a kind this opsdeck does not know."""
    kind = _EVENT_TYPES.get(str(data.get("type")))
    if kind is None:
        return None
    fields = {k: v for k, v in data.items() if k not in ("type", "worker")}
    try:
        return kind(**fields, worker=worker)
    except TypeError:
        return None


# -- a confirmation, asked on the worker and answered by the caller ----------------------------------


def preview_to_json(preview: Preview) -> dict[str, Any]:
    return {
        "action": preview.action,
        "environment": preview.environment,
        "approval": preview.approval,
        "changes": [
            {"service": c.service, "from": asdict(c.from_image), "to": asdict(c.to_image)} for c in preview.changes
        ],
        "plan": preview.plan.to_json(),
        "reason": preview.reason,
        "note": preview.note,
    }


def preview_from_json(data: dict[str, Any]) -> Preview:
    return Preview(
        action=data["action"],
        environment=data["environment"],
        approval=data["approval"],
        changes=tuple(ServiceChange(c["service"], ImageRef(**c["from"]), ImageRef(**c["to"])) for c in data["changes"]),
        plan=PlanResult.from_json(data["plan"]),
        reason=data.get("reason", ""),
        note=data.get("note", ""),
    )


# -- Redis keys of a job and of the workers -----------------------------------------------------------

KEY_TTL = 24 * 3600  # a job's stream and keys expire a day after its last write


def events_key(job_id: str) -> str:
    return f"opsdeck:job:{job_id}:events"


def alive_key(job_id: str) -> str:
    return f"opsdeck:job:{job_id}:alive"


def answer_key(job_id: str) -> str:
    return f"opsdeck:job:{job_id}:answer"


def cancel_key(job_id: str) -> str:
    return f"opsdeck:job:{job_id}:cancel"


WORKER_PREFIX = "opsdeck:worker:"


def worker_key(name: str) -> str:
    return f"{WORKER_PREFIX}{name}"
