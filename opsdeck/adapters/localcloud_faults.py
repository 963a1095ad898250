"""Faults the local cloud answers with when a test asks: AWS's throttling and plain 503s.

Off until told. A test sets them at run time through a control endpoint on the local cloud itself:

    POST /_opsdeck/faults   {"throttle": 0.2, "unavailable": 0.0, "seed": 7}   set (counters start again)
    GET  /_opsdeck/faults                                                     read them and the counters

``throttle`` is the fraction of AWS calls answered as the service throttles: ``Throttling`` (HTTP 400) for
the query APIs (autoscaling, STS, IAM, ELB, SNS), ``RequestLimitExceeded`` (503) for EC2, ``SlowDown``
(503) for S3 and ``ThrottlingException`` (400) for JSON APIs. ``unavailable`` is the fraction answered
with a plain 503 and no body, as a load balancer in front of a service would. Only signed AWS calls
count (the control endpoint and unsigned requests never fail), and each draw comes from one random
sequence seeded by ``seed``: the n-th call after a setting fails or not whatever the run, so a failure
seen once can be seen again. A call answered with a fault never reaches moto, so the SDK's retry is
its first run and creates nothing twice.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter, OrderedDict
from typing import Any
from urllib.parse import parse_qs

CONTROL_PATH = "/_opsdeck/faults"
AFTER_FAULT = "opsdeck.after_fault"  # set in the environ of a retry whose earlier attempts were faulted
REMEMBERED = 4096  # invocation ids of faulted calls kept, to tell their retries from lost answers


def service_of(environ: dict[str, Any]) -> str:
    """The AWS service a signed call is for, from its SigV4 credential scope (header or presigned query);
    "" when it is not signed with SigV4."""
    scope = ""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    if auth.startswith("AWS4-"):
        for part in auth.split(" ", 1)[-1].split(","):
            key, _, value = part.strip().partition("=")
            if key == "Credential":
                scope = value
    else:
        scope = (parse_qs(str(environ.get("QUERY_STRING", ""))).get("X-Amz-Credential") or [""])[0]
    parts = scope.split("/")
    return parts[3] if len(parts) == 5 else ""


def signed(environ: dict[str, Any]) -> bool:
    """An AWS call: signed in its Authorization header (SigV4, or S3's older scheme) or its query."""
    auth = str(environ.get("HTTP_AUTHORIZATION", ""))
    query = str(environ.get("QUERY_STRING", ""))
    return auth.startswith(("AWS4-", "AWS ")) or "X-Amz-Signature=" in query or "Signature=" in query


def _throttling(environ: dict[str, Any]) -> tuple[str, str, str]:
    """How the call's own service says it throttles: (error code, HTTP status, content type)."""
    service = service_of(environ)
    if service == "s3":
        return "SlowDown", "503 Slow Down", "application/xml"
    if service == "ec2":
        return "RequestLimitExceeded", "503 Service Unavailable", "text/xml;charset=UTF-8"
    if environ.get("HTTP_X_AMZ_TARGET"):  # the JSON protocol names its operation in this header
        return "ThrottlingException", "400 Bad Request", "application/x-amz-json-1.1"
    return "Throttling", "400 Bad Request", "text/xml"


def throttled_answer(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    """The call's service's throttling answer, in its protocol: (status, headers, body)."""
    request_id = str(uuid.uuid4())
    code, status, kind = _throttling(environ)
    if code == "SlowDown":
        body = (
            f"<Error><Code>{code}</Code><Message>Please reduce your request rate.</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
    elif code == "RequestLimitExceeded":
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>Request limit exceeded.</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
    elif code == "ThrottlingException":
        body = json.dumps({"__type": code, "message": "Rate exceeded"})
    else:
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>Rate exceeded</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
    data = body.encode()
    return status, [("Content-Type", kind), ("Content-Length", str(len(data))), ("x-amzn-RequestId", request_id)], data


class Faults:
    """A WSGI app in front of the local cloud that answers a seeded fraction of AWS calls with a fault."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.settings: dict[str, float | int] = {"throttle": 0.0, "unavailable": 0.0, "seed": 0}
        self.draws = random.Random(0)
        self.calls = 0
        self.codes: Counter[str] = Counter()  # the fault answers sent, by error code ("503" for a plain one)
        self.faulted: OrderedDict[str, None] = OrderedDict()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == CONTROL_PATH:
            return self.control(environ, start_response)
        if not signed(environ):
            return self.app(environ, start_response)
        fault = self.draw(str(environ.get("HTTP_AMZ_SDK_INVOCATION_ID", "")), environ)
        if fault is None:
            return self.app(environ, start_response)
        _drain(environ)  # a connection closed on an unread body is reset, and the answer lost with it
        if fault == "unavailable":
            start_response("503 Service Unavailable", [("Content-Length", "0")])
            return [b""]
        status, headers, body = throttled_answer(environ)
        start_response(status, headers)
        return [body]

    def draw(self, invocation: str, environ: dict[str, Any]) -> str | None:
        """The fault for the next call ("throttle", "unavailable") or None; counted."""
        with self.lock:
            throttle, unavailable = float(self.settings["throttle"]), float(self.settings["unavailable"])
            if invocation and invocation in self.faulted:
                environ[AFTER_FAULT] = True
            if throttle <= 0 and unavailable <= 0:
                return None
            self.calls += 1
            roll = self.draws.random()
            fault = "throttle" if roll < throttle else "unavailable" if roll < throttle + unavailable else None
            if fault is None:
                return None
            self.codes[_throttling(environ)[0] if fault == "throttle" else "503"] += 1
            if invocation:
                self.faulted[invocation] = None
                while len(self.faulted) > REMEMBERED:
                    self.faulted.popitem(last=False)
            return fault

    def state(self) -> dict[str, Any]:
        with self.lock:
            return {
                **self.settings,
                "calls": self.calls,
                "faulted": sum(self.codes.values()),
                "by_code": dict(sorted(self.codes.items())),
            }

    def configure(self, data: Any) -> None:
        """New settings (missing ones are 0); a bad one is a ValueError naming it, and changes nothing."""
        if not isinstance(data, dict):
            raise ValueError('the body is a JSON object such as {"throttle": 0.2, "seed": 7}')
        unknown = sorted(set(data) - {"throttle", "unavailable", "seed"})
        if unknown:
            raise ValueError(f"unknown setting {unknown[0]!r} (known: throttle, unavailable, seed)")
        rates = {}
        for key in ("throttle", "unavailable"):
            value = data.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"{key} is a fraction of calls from 0 to 1, not {value!r}")
            rates[key] = float(value)
        if rates["throttle"] + rates["unavailable"] > 1:
            raise ValueError("throttle and unavailable together exceed 1")
        seed = data.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed is an integer, not {seed!r}")
        with self.lock:
            self.settings = {**rates, "seed": seed}
            self.draws = random.Random(seed)
            self.calls = 0
            self.codes.clear()

    def control(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        status = "200 OK"
        if environ.get("REMOTE_ADDR") not in (None, "127.0.0.1"):
            status, answer = "403 Forbidden", {"error": "the fault settings are for this machine only"}
        elif method == "POST":
            try:
                self.configure(json.loads(_drain(environ) or b"{}"))
                answer = self.state()
            except ValueError as exc:  # json.JSONDecodeError is one
                status, answer = "400 Bad Request", {"error": " ".join(str(exc).split())}
        elif method == "GET":
            answer = self.state()
        else:
            status, answer = "405 Method Not Allowed", {"error": "GET or POST"}
        body = json.dumps(answer).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _drain(environ: dict[str, Any]) -> bytes:
    """The request's body, read to its end."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = str(environ.get("CONTENT_LENGTH") or "").strip()
    if length.isdigit():
        return bytes(stream.read(int(length)))
    return bytes(stream.read()) if environ.get("wsgi.input_terminated") else b""
