"""The Celery app of the engine: the Redis broker (and result backend) and the two kinds of task.

Read-only jobs (plan, drift) are acknowledged late and rejected back to the queue when their worker is
lost, and retry by themselves on a transient failure. Mutating jobs (promote, rollback, deploy) are
acknowledged as they are taken and never retried: a worker that dies mid-apply leaves the environment
interrupted, with its lock naming that worker, for a person to look at (`opsdeck unlock`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opsdeck.core.engine.jobs import MUTATING_TASK, READ_ONLY_TASK
from opsdeck.core.engine.packages import engine_packages
from opsdeck.errors import OpsdeckError

with engine_packages():
    from celery import Celery

READ_ONLY_RETRIES = 2
VISIBILITY_SECONDS = 900  # a read-only job a lost worker held goes back to the queue after this


class RetryableJobError(OpsdeckError):
    """A read-only job failed for a reason that may pass (the cloud or a connection); Celery retries it."""


def make_app(broker: str, deck_root: Path | None = None) -> Celery:
    app = Celery("opsdeck", broker=broker, backend=broker, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=2.0,
        broker_transport_options={"visibility_timeout": VISIBILITY_SECONDS},
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        opsdeck_deck=str(deck_root) if deck_root else "",
    )

    @app.task(  # type: ignore[untyped-decorator]
        name=READ_ONLY_TASK,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        autoretry_for=(RetryableJobError,),
        max_retries=READ_ONLY_RETRIES,
        retry_backoff=1,
        retry_backoff_max=5,
        retry_jitter=False,
    )
    def read_only(self: Any, spec: dict[str, Any]) -> dict[str, Any]:
        from opsdeck.core.engine.worker import execute_job  # lazy: worker imports this module (RetryableJobError)

        return execute_job(
            spec,
            worker=str(self.request.hostname),
            deck_root=Path(self.app.conf.opsdeck_deck),
            broker=str(self.app.conf.broker_url),
            attempt=int(self.request.retries),
            may_retry=int(self.request.retries) < READ_ONLY_RETRIES,
        )

    @app.task(  # type: ignore[untyped-decorator]
        name=MUTATING_TASK, bind=True, acks_late=False, reject_on_worker_lost=False, max_retries=0
    )
    def mutating(self: Any, spec: dict[str, Any]) -> dict[str, Any]:
        from opsdeck.core.engine.worker import execute_job  # lazy: worker imports this module (RetryableJobError)

        return execute_job(
            spec,
            worker=str(self.request.hostname),
            deck_root=Path(self.app.conf.opsdeck_deck),
            broker=str(self.app.conf.broker_url),
            attempt=0,
            may_retry=False,
        )

    return app
