"""The local cloud's request gate: one request at a time, and an SDK retry of an answered call gets
that answer again instead of running the call twice."""

from __future__ import annotations

from typing import Any

from opsdeck.adapters.localcloud_server import Serialized, _attempt


class Counter:
    """A WSGI app that counts calls and answers with the count (``fail`` answers 500 once)."""

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.calls += 1
        if self.fail:
            self.fail = False
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"boom"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"call {self.calls}".encode()]


def _call(app: Serialized, invocation: str = "", attempt: int = 1) -> tuple[str, bytes]:
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/"}
    if invocation:
        environ["HTTP_AMZ_SDK_INVOCATION_ID"] = invocation
        environ["HTTP_AMZ_SDK_REQUEST"] = f"attempt={attempt}; max=25"
    status: list[str] = []
    body = app(environ, lambda s, h, exc_info=None: status.append(s))
    return status[0], b"".join(body)


def test_a_retry_of_an_answered_call_gets_the_same_answer_and_is_logged() -> None:
    lines: list[str] = []
    inner = Counter()
    app = Serialized(inner, log=lines.append)
    assert _call(app, "inv-1") == ("200 OK", b"call 1")
    assert _call(app, "inv-1", attempt=2) == ("200 OK", b"call 1")
    assert inner.calls == 1
    assert lines == ["localcloud: attempt 2 of inv-1 (POST /): answered again as before"]


def test_other_calls_and_first_attempts_always_run() -> None:
    inner = Counter()
    app = Serialized(inner, log=lambda line: None)
    _call(app, "inv-1")
    assert _call(app, "inv-2") == ("200 OK", b"call 2")
    assert _call(app) == ("200 OK", b"call 3")  # no SDK headers (Packer's older SDK, curl)
    assert _call(app, "inv-1", attempt=1) == ("200 OK", b"call 4")  # a new first attempt is a new call
    assert inner.calls == 4


def test_a_retry_after_a_failed_answer_runs_the_call_again() -> None:
    lines: list[str] = []
    inner = Counter(fail=True)
    app = Serialized(inner, log=lines.append)
    assert _call(app, "inv-1")[0].startswith("500")
    assert _call(app, "inv-1", attempt=2) == ("200 OK", b"call 2")
    assert lines == ["localcloud: attempt 2 of inv-1 (POST /): run again"]


def test_only_the_newest_answers_are_kept() -> None:
    inner = Counter()
    app = Serialized(inner, log=lambda line: None)
    app.KEPT = 2
    for n in range(3):
        _call(app, f"inv-{n}")
    assert list(app.answers) == ["inv-1", "inv-2"]
    assert _call(app, "inv-0", attempt=2) == ("200 OK", b"call 4")


def test_the_attempt_header_is_read_as_the_sdks_write_it() -> None:
    assert _attempt("attempt=3; max=25") == 3
    assert _attempt("ttl=20261125T000000Z; attempt=2; max=3") == 2
    assert _attempt("") == 1 and _attempt("attempt=x") == 1
