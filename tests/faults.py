"""The local cloud's fault settings, from a test: throttle a fraction of calls, read what was throttled."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from opsdeck.adapters.localcloud_faults import CONTROL_PATH


def set_faults(endpoint: str, **settings: float | int) -> dict[str, Any]:
    """Set the local cloud's faults (``throttle=0.2, seed=7``; what is not given is 0); the state it answers."""
    request = urllib.request.Request(
        endpoint + CONTROL_PATH,
        data=json.dumps(settings).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


def faults(endpoint: str) -> dict[str, Any]:
    """The local cloud's fault settings and what it has answered with a fault since they were set."""
    with urllib.request.urlopen(endpoint + CONTROL_PATH, timeout=10) as response:
        return dict(json.loads(response.read()))


def refused(endpoint: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """POST ``body`` as the settings; the HTTP status and JSON answer of a refusal."""
    request = urllib.request.Request(endpoint + CONTROL_PATH, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        return exc.code, dict(json.loads(exc.read()))


@contextlib.contextmanager
def throttled(endpoint: str, **settings: float | int) -> Iterator[None]:
    """The local cloud faulting as ``settings`` say for the time of the block, and not after it."""
    set_faults(endpoint, **settings)
    try:
        yield
    finally:
        set_faults(endpoint)
