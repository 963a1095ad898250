"""The embedded local cloud: a background moto server on 127.0.0.1 that outlives one command.

Its pid, port and start time are kept in ``<state dir>/localcloud.json``; ``start`` is idempotent,
``stop`` ends it (and with it every resource and Terraform state it held: moto keeps them in memory).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from opsdeck import paths
from opsdeck.errors import CloudUnavailableError

SERVER_MODULE = "opsdeck.adapters.localcloud_server"


@dataclass(frozen=True)
class CloudInfo:
    """A local cloud process."""

    pid: int
    port: int
    endpoint: str
    started_at: float
    log: str


@dataclass(frozen=True)
class CloudStatus:
    running: bool
    endpoint: str | None = None
    pid: int | None = None
    started_at: float | None = None

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _state_file() -> Path:
    return paths.state_dir() / "localcloud.json"


def _read_info() -> CloudInfo | None:
    try:
        return CloudInfo(**json.loads(_state_file().read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _is_ours(pid: int) -> bool:
    """The pid is alive and runs the local cloud server (not a recycled pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True  # no /proc: trust the pid
    return SERVER_MODULE.encode() in cmdline


def answers(endpoint: str, timeout: float = 2.0) -> bool:
    """Whether something answers HTTP at ``endpoint``."""
    try:
        with urllib.request.urlopen(endpoint + "/", timeout=timeout) as response:
            return bool(response.status)
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def status() -> CloudStatus:
    info = _read_info()
    if info is None or not _is_ours(info.pid):
        return CloudStatus(running=False)
    return CloudStatus(running=True, endpoint=info.endpoint, pid=info.pid, started_at=info.started_at)


def running_endpoint() -> str:
    """The endpoint of the running local cloud, or a CloudUnavailableError saying how to get one."""
    st = status()
    if not st.running or st.endpoint is None:
        raise CloudUnavailableError(
            "the local cloud is not running, and everything it held is gone (it keeps state in memory); "
            "run `opsdeck demo --reset` to recreate the demo deck, or `opsdeck cloud start` for an empty cloud"
        )
    return st.endpoint


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(port: int | None = None, timeout: float = 30.0) -> CloudInfo:
    """Start the local cloud in the background, or return the one already running."""
    info = _read_info()
    if info is not None and _is_ours(info.pid):
        return info
    state = paths.state_dir()
    state.mkdir(parents=True, exist_ok=True)
    log_path = state / "localcloud.log"
    ready = state / "localcloud.ready"
    attempts = 1 if port else 3
    last_error = ""
    for _ in range(attempts):
        chosen = port or _free_port()
        ready.unlink(missing_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", SERVER_MODULE, "--port", str(chosen), "--ready", str(ready)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # outlives this command and its terminal
                env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                last_error = f"exited with code {proc.returncode}"
                break
            if ready.exists() and answers(f"http://127.0.0.1:{chosen}", timeout=1.0):
                info = CloudInfo(
                    pid=proc.pid,
                    port=chosen,
                    endpoint=f"http://127.0.0.1:{chosen}",
                    started_at=time.time(),
                    log=str(log_path),
                )
                tmp = _state_file().with_suffix(".tmp")
                tmp.write_text(json.dumps(asdict(info)), encoding="utf-8")
                tmp.replace(_state_file())
                return info
            time.sleep(0.1)
        else:
            proc.terminate()
            last_error = f"did not answer within {timeout:.0f}s"
    raise CloudUnavailableError(f"the local cloud failed to start ({last_error}); see {log_path}")


def stop(timeout: float = 10.0) -> bool:
    """Stop the local cloud; False when none was running."""
    info = _read_info()
    _state_file().unlink(missing_ok=True)
    if info is None or not _is_ours(info.pid):
        return False
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _is_ours(info.pid):
        time.sleep(0.05)
    if _is_ours(info.pid):
        os.kill(info.pid, signal.SIGKILL)
    return True
