"""Tool subprocesses: streamed lines, redaction, one graceful SIGINT, and tools that outlive opsdeck."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from opsdeck.adapters.process import processes_in, run_streaming
from opsdeck.core.estate.deck import Deck
from opsdeck.core.types.cloud import Credentials
from tests.helpers import wait_until


def test_lines_are_streamed_and_secrets_redacted(sample_copy: Path, tmp_path: Path) -> None:
    from tests.fakes import World, fake_tools

    deck = Deck.open(sample_copy, tools=fake_tools(World()))
    deck.tools.env("prod", Credentials("AKIAPLANTED000", "planted-secret-9f8e7d"))
    out: list[str] = []
    err: list[str] = []
    script = 'echo "one"; echo "key=$S" >&2; echo "$S again"; printf "no newline"'
    finished = asyncio.run(
        run_streaming(
            ["sh", "-c", script],
            cwd=tmp_path,
            env={"S": "planted-secret-9f8e7d", "PATH": os.environ["PATH"]},
            on_stdout=out.append,
            on_stderr=err.append,
            redact=deck.redact,
        )
    )
    assert finished.returncode == 0
    assert out == ["one", "******** again", "no newline"]
    assert err == ["key=********"] and finished.stderr == "key=********"


def test_cancelling_sends_one_graceful_interrupt(tmp_path: Path) -> None:
    marker = tmp_path / "interrupted"
    ready = tmp_path / "handler-set"
    # The tool installs its own handler and unblocks SIGINT, as Terraform's runtime does, so how the
    # test run itself was started (in the background of a shell: SIGINT ignored) cannot matter.
    tool = textwrap.dedent(f"""
        import pathlib, signal, sys, time
        def stop(signum, frame):
            with open({str(marker)!r}, "a") as out:
                out.write("once\\n")
            sys.exit(130)
        signal.signal(signal.SIGINT, stop)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {{signal.SIGINT}})
        pathlib.Path({str(ready)!r}).touch()
        while True:
            time.sleep(0.05)
    """)

    async def scenario() -> None:
        task = asyncio.create_task(
            run_streaming([sys.executable, "-c", tool], cwd=tmp_path, env={"PATH": os.environ["PATH"]}, on_stdout=print)
        )
        for _ in range(600):  # its handler is set (a loaded machine may take a while to start it)
            if ready.exists():
                break
            await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert ready.exists(), "the tool never started"
    assert marker.exists(), "the tool ended without its SIGINT handler running"
    assert marker.read_text() == "once\n"


def test_a_tool_finishes_when_opsdeck_is_killed(tmp_path: Path) -> None:
    """With a pipe, the tool would die of SIGPIPE on its next line; it writes to a file and finishes."""
    marker = tmp_path / "finished"
    tool = f"sleep 1; for i in $(seq 2000); do echo line $i; done; echo ok > {marker}"
    runner = textwrap.dedent(f"""
        import asyncio, os
        from pathlib import Path
        from opsdeck.adapters.process import run_streaming
        asyncio.run(run_streaming(["sh", "-c", {tool!r}], cwd=Path({str(tmp_path)!r}),
                                  env={{"PATH": os.environ["PATH"]}}, on_stdout=lambda line: None))
    """)
    proc = subprocess.Popen([sys.executable, "-c", runner])
    wait_until(lambda: any(" -c sleep 1;" in cmd for _, cmd in processes_in(tmp_path)), "the tool to start", 30)
    assert not marker.exists()  # opsdeck is killed while its tool still runs
    proc.kill()
    proc.wait()
    # `echo ok > file` creates the file before it writes the line: wait for the line, not the file.
    wait_until(
        lambda: marker.exists() and marker.read_text().endswith("\n"), "the tool to finish after opsdeck was killed", 20
    )
    assert marker.read_text() == "ok\n"
