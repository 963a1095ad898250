"""Helpers shared by the tests: the repository root and the real `opsdeck` command line."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def opsdeck(
    *args: str, deck: Path | None = None, check: bool = False, timeout: float = 420.0, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Run the real `opsdeck` command line in a subprocess. One that runs past ``timeout`` prints its
    threads' stacks, is interrupted as an engineer would (Ctrl-C, so it puts back what it changed),
    and the test fails with everything it printed, long before pytest's own timeout kills it and
    leaves the deck half-changed for the tests after it."""
    argv = [sys.executable, "-m", "opsdeck"]
    if deck is not None:
        argv += ["--deck", str(deck)]
    stdin = kw.pop("stdin", subprocess.DEVNULL if "input" not in kw else subprocess.PIPE)
    proc = subprocess.Popen(
        [*argv, *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=kw.pop("cwd", ROOT),
        **{k: v for k, v in kw.items() if k != "input"},
    )
    try:
        out, err = proc.communicate(input=kw.get("input"), timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = _interrupt(proc)
        raise AssertionError(
            f"opsdeck {' '.join(args)} still ran after {timeout:.0f}s; it printed:\n{out}\n{err}"
        ) from None
    result = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check and result.returncode != 0:
        raise AssertionError(
            f"opsdeck {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def _interrupt(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Stacks (SIGUSR1), then Ctrl-C with 60 s to put things back, then kill; what it printed."""
    import signal

    for sig, grace in ((signal.SIGUSR1, 1.0), (signal.SIGINT, 60.0)):
        if proc.poll() is None:
            proc.send_signal(sig)
        try:
            return proc.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    return proc.communicate()


def spawn(deck: Path, *args: str) -> subprocess.Popen[str]:
    """Start the real `opsdeck` command line on ``deck`` (output piped) and return at once."""
    return subprocess.Popen(
        [sys.executable, "-m", "opsdeck", "--deck", str(deck), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 300.0) -> tuple[str, str]:
    """Wait for a spawned `opsdeck` and return (stdout, stderr); when it runs past ``timeout``, have it
    print its threads' stacks, interrupt it, and fail with what it printed."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = _interrupt(proc)
        raise AssertionError(f"{proc.args!r} still ran after {timeout:.0f}s; it printed:\n{out}\n{err}") from None


def state_serial(deck: Path, env: str) -> int:
    """The serial of ``env``'s Terraform state, read from its state bucket (it grows by one per apply)."""
    import json

    from opsdeck.core.estate.deck import Deck

    opened = Deck.open(deck)
    backend = opened.backend(env)
    assert backend is not None
    body = opened.tools.env(env).cloud.read_object(backend.bucket, backend.key)
    assert body is not None
    return int(json.loads(body)["serial"])


def demo_key(name: str) -> Path:
    """A demo team member's SSH key (alice runs the demo's deck; bob and carol approve)."""
    return Path(os.environ["OPSDECK_HOME"]) / "data" / "demo-team" / name


def approve_and_execute(deck: Path, request_id: str, *approvers: str) -> dict[str, Any]:
    """Approve a request as each of ``approvers`` (bob by default), then run it; its JSON result."""
    import json

    for name in approvers or ("bob",):
        opsdeck("approve", request_id, "--key", str(demo_key(name)), deck=deck, check=True)
    return dict(json.loads(opsdeck("execute", request_id, "--yes", "--json", deck=deck, check=True).stdout))


def released(deck: Path, *args: str) -> dict[str, Any]:
    """Run a release command (promote, rollback, deploy, apply) with --yes --json; when the environment
    takes approvals, approve the request it became (as bob, and carol when two are needed) and run it."""
    import json

    data = dict(json.loads(opsdeck(*args, "--yes", "--json", deck=deck, check=True).stdout))
    if data.get("status") in ("pending", "approved"):
        approvers = ("bob", "carol")[: int(data["needed"])]
        return approve_and_execute(deck, str(data["id"]), *approvers)
    return data


@contextlib.contextmanager
def edited(path: Path, old: str, new: str) -> Iterator[None]:
    """``path`` with ``old`` replaced by ``new`` for the time of the block."""
    original = path.read_text()
    assert old in original, (path, old)
    path.write_text(original.replace(old, new))
    try:
        yield
    finally:
        path.write_text(original)


NO_PROD_APPROVALS = ("approvals = 2\n", "")  # prod as a deck without approvals has it: break-glass only


def wait_until(predicate: Any, what: str, timeout: float = 60.0, every: float = 0.05) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` once ``timeout`` seconds have passed."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def applying(env_dir: Path) -> bool:
    """Terraform's apply runs in ``env_dir`` and has started its AWS provider: it is making the changes."""
    from opsdeck.adapters.process import processes_in

    running = [cmd for _, cmd in processes_in(env_dir)]
    return any("terraform apply" in cmd for cmd in running) and any("terraform-provider-aws" in c for c in running)


def live_pins(deck: Path, env: str, file: str = "images.auto.tfvars.json") -> dict[str, str]:
    """Each service's pinned image in ``env``: the live color's in a blue/green environment."""
    import json

    pins = json.loads((deck / "envs" / env / file).read_text())["images"]
    return {s: (p[p["live"]] if isinstance(p, dict) else p) for s, p in pins.items()}


class Hook:
    """A local webhook that answers each POST with the next status of ``statuses`` (the last repeats)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.bodies = statuses, []  # type: list[int], list[dict[str, Any]]
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                status = hook.statuses[min(len(hook.bodies), len(hook.statuses)) - 1]
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
