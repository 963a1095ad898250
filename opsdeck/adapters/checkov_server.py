"""Checkov kept warm: run by Checkov's own Python (its virtual environment, never opsdeck's), it loads
Checkov and its checks once, then checks one plan per request.

Each plan is checked in a child forked from the loaded, never-used server: Checkov keeps state between
runs in one process (its reports and loaded checks carry over, so a second plan could be answered with
the first plan's verdict). A fork starts every check from the same clean, loaded state, for the cost of
a fork, not of loading Checkov again.

Requests are JSON lines on stdin, ``{"argv": [checkov's arguments]}``; each answer is one JSON line on
stdout, ``{"rc": exit code, "out": what checkov printed, "err": its stderr}``. It ends when stdin closes
(its opsdeck ended, however it ended). A standalone script: it imports nothing of opsdeck.
"""

import contextlib
import io
import json
import os
import sys
import warnings


def _check(argv: list[str]) -> dict[str, object]:
    """Run checkov with ``argv`` here (in the forked child) and capture what it prints."""
    from checkov.main import Checkov

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = Checkov(argv=argv).run()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception as exc:  # one bad plan must not end the server
            err.write(f"{type(exc).__name__}: {exc}\n")
            code = 2
    return {"rc": code or 0, "out": out.getvalue(), "err": err.getvalue()}


def _in_child(argv: list[str]) -> dict[str, object]:
    """The answer for ``argv`` from a child forked for this one plan."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: check, write the answer, end without running the server's exit handlers
        os.close(read_end)
        try:
            answer = _check(argv)
        except BaseException as exc:  # whatever happened is the answer
            answer = {"rc": 2, "out": "", "err": f"{type(exc).__name__}: {exc}\n"}
        with os.fdopen(write_end, "w") as pipe:
            pipe.write(json.dumps(answer))
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    if not text:
        return {"rc": 2, "out": "", "err": "checkov's checking process ended without an answer\n"}
    parsed: dict[str, object] = json.loads(text)
    return parsed


def main() -> int:
    answers = sys.stdout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=SyntaxWarning)
        import checkov.main  # noqa: F401 - the slow part, done once
        from checkov.terraform.plan_runner import Runner  # noqa: F401 - its checks register on import

    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        answers.write(json.dumps(_in_child(json.loads(line)["argv"])) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
