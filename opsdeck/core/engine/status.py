"""What the engine looks like from a deck: is the broker reachable, which workers serve which
queues (and run what), and how many jobs wait in each of the deck's queues."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from opsdeck.core.engine.dispatch import WorkerInfo, live_workers, reason_of, where
from opsdeck.core.engine.jobs import account_of, queue_of_account
from opsdeck.core.engine.packages import engine_packages
from opsdeck.core.engine.settings import broker_url
from opsdeck.core.estate.deck import Deck

with engine_packages():
    import redis

# kombu keeps a queue's messages of each priority step in its own list: the name, then name\x06\x16N
_PRIORITY_STEPS = ("", "\x06\x163", "\x06\x166", "\x06\x169")


@dataclass(frozen=True)
class QueueStatus:
    """One account's queue."""

    name: str
    account: str
    environments: tuple[str, ...]
    waiting: int  # jobs sent, not taken yet
    workers: tuple[str, ...]  # live workers that serve it

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "account": self.account,
            "environments": list(self.environments),
            "waiting": self.waiting,
            "workers": list(self.workers),
        }


@dataclass(frozen=True)
class EngineStatus:
    """The engine as `opsdeck engine status` and the deck show it."""

    mode: str  # "in-process" (no broker configured) or "workers"
    broker: str = ""  # host:port of the broker
    reachable: bool = False
    error: str = ""
    workers: tuple[WorkerInfo, ...] = ()
    queues: tuple[QueueStatus, ...] = ()
    consuming: dict[str, list[str]] | None = None  # Celery's own answer: worker -> queues it consumes (None: not asked)
    checked_at: float = field(default_factory=time.time)

    @property
    def unserved(self) -> list[str]:
        """Accounts whose jobs no live worker would take."""
        return [q.account for q in self.queues if not q.workers]

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "broker": self.broker,
            "reachable": self.reachable,
            "error": self.error,
            "workers": [w.to_json() for w in self.workers],
            "queues": [q.to_json() for q in self.queues],
            "unserved": self.unserved,
            "consuming": self.consuming,
            "checked_at": self.checked_at,
        }


def deck_queues(deck: Deck) -> dict[str, list[str]]:
    """Each of the deck's queues and the environments whose jobs go there."""
    queues: dict[str, list[str]] = {}
    for env in deck.config.env_names:
        queues.setdefault(queue_of_account(account_of(deck, env)), []).append(env)
    return queues


def consuming(broker: str, timeout: float = 1.0) -> dict[str, list[str]]:
    """Which queues each live Celery worker consumes, as the workers answer a broadcast (``timeout``)."""
    from opsdeck.core.engine.celery_app import make_app  # lazy: Celery (the optional engine extra) is heavy

    app = make_app(broker)
    try:
        answers = app.control.inspect(timeout=timeout).active_queues() or {}
    finally:
        app.close()
    return {str(name): sorted(str(q.get("name")) for q in queues) for name, queues in answers.items()}


def engine_status(deck: Deck, *, ask_workers: bool = False) -> EngineStatus:
    """Read the engine's state from the broker (two seconds at most when it does not answer);
    ``ask_workers``: also ask Celery which queues its workers consume (a one-second broadcast)."""
    broker = broker_url(deck)
    if not broker:
        return EngineStatus("in-process")
    client = redis.Redis.from_url(broker, socket_connect_timeout=2.0, socket_timeout=2.0)
    try:
        client.ping()
        workers = live_workers(client, deck.name)
        queues = []
        for name, envs in deck_queues(deck).items():
            waiting = sum(int(client.llen(name + step)) for step in _PRIORITY_STEPS)
            serving = tuple(w.name for w in workers if name in w.queues)
            queues.append(QueueStatus(name, name.removeprefix("opsdeck."), tuple(envs), waiting, serving))
    except redis.RedisError as exc:
        return EngineStatus("workers", where(broker), False, reason_of(exc))
    finally:
        client.close()
    asked = None
    if ask_workers:
        try:
            asked = consuming(broker)
        except Exception as exc:  # kombu's errors vary by transport; the registry above still answered
            return EngineStatus("workers", where(broker), False, reason_of(exc), tuple(workers), tuple(queues))
    return EngineStatus("workers", where(broker), True, "", tuple(workers), tuple(queues), asked)
