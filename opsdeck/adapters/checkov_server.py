"""Checkov kept warm: run by Checkov's own Python (its virtual environment, never opsdeck's), it loads
Checkov and its checks once, then checks one plan per request.

Requests are JSON lines on stdin, ``{"argv": [checkov's arguments]}``; each answer is one JSON line on
stdout, ``{"rc": exit code, "out": what checkov printed, "err": its stderr}``. It ends when stdin closes
(its opsdeck ended, however it ended). A standalone script: it imports nothing of opsdeck.
"""

import contextlib
import io
import json
import sys
import warnings


def main() -> int:
    answers = sys.stdout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=SyntaxWarning)
        from checkov.main import Checkov  # the slow part, done once

    answers.write(json.dumps({"ready": True}) + "\n")
    answers.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        argv = json.loads(line)["argv"]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = Checkov(argv=argv).run()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except Exception as exc:  # one bad plan must not end the server
                err.write(f"{type(exc).__name__}: {exc}\n")
                code = 2
        answers.write(json.dumps({"rc": code or 0, "out": out.getvalue(), "err": err.getvalue()}) + "\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
