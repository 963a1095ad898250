"""`opsdeck worker` and `opsdeck engine status`: operations as jobs on Celery workers (opt-in)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from opsdeck.commands import open_deck, print_json, table
from opsdeck.errors import ConfigError


def register(sub: Any) -> None:
    worker = sub.add_parser("worker", help="run the deck's jobs from the broker (its accounts' queues)")
    worker.add_argument(
        "--queue",
        dest="queues",
        action="append",
        metavar="NAME",
        help="a queue to serve, opsdeck.<account> (repeatable; default: every account this machine reaches)",
    )
    worker.add_argument("--name", default="opsdeck", help="the worker's name (it runs as NAME@host)")
    worker.add_argument("--concurrency", type=int, default=1, help="jobs at once (default 1)")
    worker.set_defaults(handler=worker_cmd)

    engine = sub.add_parser("engine", help="the engine: broker, workers and their queues, jobs waiting")
    actions = engine.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = actions.add_parser("status", help="is the broker reachable; workers, their queues; jobs waiting")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=status_cmd)


def worker_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.engine.jobs import QUEUE_PREFIX
    from opsdeck.core.engine.packages import check_installed
    from opsdeck.core.engine.settings import broker_url

    check_installed()
    from opsdeck.core.engine.worker import default_queues, run_worker

    if args.concurrency < 1:
        raise ConfigError(f"--concurrency {args.concurrency}: at least 1")
    if not args.name or "@" in args.name or not args.name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"--name {args.name!r}: letters, digits, - and _ only")
    deck = open_deck(args)
    broker = broker_url(deck)
    if not broker:
        raise ConfigError("no broker: set OPSDECK_BROKER or [engine] broker in opsdeck.toml (redis://HOST:PORT/DB)")
    for queue in args.queues or []:
        if not queue.startswith(QUEUE_PREFIX) or len(queue) == len(QUEUE_PREFIX):
            raise ConfigError(f"--queue {queue!r}: queues are named opsdeck.<account> (e.g. opsdeck.111111111111)")
    deck.check_cloud()
    queues = list(dict.fromkeys(args.queues)) if args.queues else default_queues(deck)
    return run_worker(deck, broker, queues, args.name, args.concurrency)


def status_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.engine.status import engine_status

    deck = open_deck(args)
    status = engine_status(deck, ask_workers=True)
    if args.json:
        print_json(status.to_json())
        return 0 if status.mode == "in-process" or status.reachable else 1
    if status.mode == "in-process":
        print("engine: in-process (no broker: set OPSDECK_BROKER or [engine] broker to run jobs on workers)")
        return 0
    if not status.reachable:
        print(f"engine: broker {status.broker} does not answer ({status.error})")
        return 1
    print(f"engine: broker {status.broker} reachable, {len(status.workers)} workers")
    now = time.time()
    rows = [
        [
            w.name,
            ", ".join(w.queues),
            ", ".join(f"{j.get('op')} {j.get('env')}" for j in w.jobs) or "idle",
            f"{now - w.started:.0f}s",
        ]
        for w in status.workers
    ]
    if rows:
        print(table(["WORKER", "QUEUES", "RUNNING", "UP"], rows))
    silent = [w.name for w in status.workers if status.consuming is not None and w.name not in status.consuming]
    if silent:
        print(f"registered but not answering Celery's broadcast (busy or stuck): {', '.join(silent)}")
    print(
        table(
            ["QUEUE", "ENVIRONMENTS", "WAITING", "WORKERS"],
            [
                [q.name, ", ".join(q.environments), q.waiting, ", ".join(q.workers) or "none: jobs wait for a worker"]
                for q in status.queues
            ],
        )
    )
    return 0
