"""Running outside tools as asyncio subprocesses, streaming their output line by line.

A tool runs in its own session, so a Ctrl-C in the terminal reaches opsdeck only, and opsdeck
forwards exactly one SIGINT: Terraform treats the first interrupt as "stop gracefully and release
the state lock" and a second as "abort now", which is what must never happen by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from opsdeck.errors import ToolMissingError

LineSink = Callable[[str], None]
GRACE_SECONDS = 60.0
STDERR_TAIL = 40
STREAM_LIMIT = 16 * 1024 * 1024  # one `terraform show -json` line can be megabytes


@dataclass(frozen=True)
class Finished:
    """How a tool run ended."""

    returncode: int
    stderr: str


def _identity(text: str) -> str:
    return text


async def _pump(stream: asyncio.StreamReader, sink: LineSink, redact: Callable[[str], str]) -> None:
    while True:
        raw = await stream.readline()
        if not raw:
            return
        sink(redact(raw.decode("utf-8", errors="replace").rstrip("\r\n")))


async def run_streaming(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    on_stdout: LineSink,
    on_stderr: LineSink | None = None,
    redact: Callable[[str], str] = _identity,
    tool: str | None = None,
) -> Finished:
    """Run ``argv`` and feed every output line to the sinks; cancelling interrupts the tool gracefully."""
    tail: deque[str] = deque(maxlen=STDERR_TAIL)

    def keep(line: str) -> None:
        tail.append(line)
        if on_stderr is not None:
            on_stderr(line)

    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=str(cwd),
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            limit=STREAM_LIMIT,
        )
    except FileNotFoundError:
        name = tool or os.path.basename(argv[0])
        raise ToolMissingError(f"{name} is not installed or not on PATH (looked for {argv[0]!r})") from None
    assert proc.stdout is not None and proc.stderr is not None
    pumps = asyncio.gather(_pump(proc.stdout, on_stdout, redact), _pump(proc.stderr, keep, redact))
    try:
        await pumps
        returncode = await proc.wait()
    except asyncio.CancelledError:
        await _interrupt(proc)
        pumps.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumps
        raise
    return Finished(returncode, "\n".join(tail))


async def _interrupt(proc: asyncio.subprocess.Process) -> None:
    """One SIGINT, time to finish, then SIGKILL."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(asyncio.shield(proc.wait()), GRACE_SECONDS)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def run_captured(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    tool: str | None = None,
    redact: Callable[[str], str] = _identity,
) -> tuple[int, str, str]:
    """Run ``argv`` to the end; returns (returncode, stdout, stderr)."""
    out: list[str] = []
    err: list[str] = []
    finished = await run_streaming(
        argv, cwd=cwd, env=env, on_stdout=out.append, on_stderr=err.append, redact=redact, tool=tool
    )
    return finished.returncode, "\n".join(out), "\n".join(err)
