"""Running outside tools as asyncio subprocesses, streaming their output line by line.

A tool runs in its own session, so a Ctrl-C in the terminal reaches opsdeck only, and opsdeck
forwards exactly one SIGINT: Terraform treats the first interrupt as "stop gracefully and release
the state lock" and a second as "abort now", which is what must never happen by accident.

A tool writes to an unlinked temporary file, not to a pipe, and opsdeck follows that file. If opsdeck
dies (SIGKILL, a closed SSH session), the tool does not die of a broken pipe halfway through an apply:
it finishes, saves its state and releases its lock, and the file vanishes with the last descriptor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from opsdeck.core.types.tools import CommandResult
from opsdeck.errors import ToolMissingError

LineSink = Callable[[str], None]
GRACE_SECONDS = 60.0
STDERR_TAIL = 40
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Finished:
    """How a tool run ended."""

    returncode: int
    stderr: str


def _identity(text: str) -> str:
    return text


def _output_file() -> tuple[BinaryIO, BinaryIO]:
    """A private file opened twice (the tool writes, opsdeck reads at its own offset), already unlinked."""
    fd, name = tempfile.mkstemp(prefix="opsdeck-tool-")
    try:
        writer = os.fdopen(fd, "wb")
        reader = open(name, "rb")  # noqa: SIM115 - closed by the caller
    finally:
        os.unlink(name)
    return writer, reader


class _Follower:
    """Reads complete lines appended to a file, keeping a partial last line for the next read."""

    def __init__(self, reader: BinaryIO, sink: LineSink, redact: Callable[[str], str]) -> None:
        self.reader, self.sink, self.redact = reader, sink, redact
        self.partial = b""

    def pump(self, final: bool = False) -> None:
        data = self.partial + self.reader.read()
        *lines, self.partial = data.split(b"\n")
        if final and self.partial:
            lines.append(self.partial)
            self.partial = b""
        for raw in lines:
            self.sink(self.redact(raw.decode("utf-8", errors="replace").rstrip("\r")))


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

    out_w, out_r = _output_file()
    err_w, err_r = _output_file()
    try:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=str(cwd),
                env=dict(env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_w,
                stderr=err_w,
                start_new_session=True,
            )
        except FileNotFoundError:
            name = tool or os.path.basename(argv[0])
            raise ToolMissingError(f"{name} is not installed or not on PATH (looked for {argv[0]!r})") from None
        finally:
            out_w.close()
            err_w.close()
        stdout, stderr = _Follower(out_r, on_stdout, redact), _Follower(err_r, keep, redact)
        try:
            while True:
                try:
                    returncode = await asyncio.wait_for(asyncio.shield(proc.wait()), POLL_SECONDS)
                except TimeoutError:
                    stdout.pump()
                    stderr.pump()
                    continue
                stdout.pump(final=True)
                stderr.pump(final=True)
                break
        except asyncio.CancelledError:
            await _interrupt(proc)
            raise
    finally:
        out_r.close()
        err_r.close()
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


def processes_in(directory: Path) -> list[tuple[int, str]]:
    """Live processes whose working directory is ``directory`` (pid, command line), from /proc."""
    target = directory.resolve()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if Path(os.readlink(entry / "cwd")).resolve() != target:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cmdline:
            found.append((int(entry.name), cmdline))
    return found


async def run_command(
    command: str,
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    on_line: LineSink,
    redact: Callable[[str], str] = _identity,
) -> CommandResult:
    """Run a shell command (a deck's smoke check) in its own process group, streaming its output
    (stdout and stderr together); at ``timeout`` the whole group gets SIGTERM, then SIGKILL."""
    import time

    tail: deque[str] = deque(maxlen=STDERR_TAIL)

    def keep(line: str) -> None:
        tail.append(line)
        on_line(line)

    started = time.monotonic()
    out_w, out_r = _output_file()
    try:
        try:
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                command,
                cwd=str(cwd),
                env=dict(env),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out_w,
                stderr=out_w,
                start_new_session=True,
            )
        finally:
            out_w.close()
        follower = _Follower(out_r, keep, redact)
        returncode: int | None = None
        try:
            while True:
                try:
                    returncode = await asyncio.wait_for(asyncio.shield(proc.wait()), POLL_SECONDS)
                    follower.pump(final=True)
                    break
                except TimeoutError:
                    follower.pump()
                    if time.monotonic() - started > timeout:
                        await _kill_group(proc)
                        follower.pump(final=True)
                        returncode = None
                        break
        except asyncio.CancelledError:
            await _kill_group(proc)
            raise
    finally:
        out_r.close()
    return CommandResult(returncode, tuple(tail), time.monotonic() - started)


async def _kill_group(proc: asyncio.subprocess.Process, grace: float = 2.0) -> None:
    """SIGTERM to the command's whole process group, then SIGKILL to what is left of it."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            await asyncio.wait_for(asyncio.shield(proc.wait()), grace)
            if sig == signal.SIGTERM:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)  # the shell is gone; its children may not be
            return
        except TimeoutError:
            continue


class LocalProcesses:
    """core's ProcessPort: shell commands and the processes of this machine."""

    async def run_shell(
        self,
        command: str,
        *,
        cwd: Path,
        env: Mapping[str, str],
        timeout: float,
        on_line: Callable[[str], None],
        redact: Callable[[str], str],
    ) -> CommandResult:
        return await run_command(command, cwd=cwd, env=env, timeout=timeout, on_line=on_line, redact=redact)

    def processes_in(self, directory: Path) -> list[tuple[int, str]]:
        return processes_in(directory)
