"""The local cloud's faults, through boto3 against its own server (serve() in this process): each
service throttles in its own words, a faulted call never runs in moto (its retry creates exactly one),
the same seed faults the same calls, and the control endpoint is never faulted and refuses bad settings."""

from __future__ import annotations

import socket
import urllib.request
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from opsdeck.adapters.localcloud_faults import Faults, service_of
from opsdeck.adapters.localcloud_server import apply_fidelity_fixes, serve
from tests.faults import faults, refused, set_faults, throttled
from tests.unit.test_localcloud_retries import Counter

ONE_ATTEMPT = Config(retries={"mode": "standard", "total_max_attempts": 1})
RETRYING = Config(retries={"mode": "standard", "max_attempts": 10})


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    apply_fidelity_fixes()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = serve(port)
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def _client(endpoint: str, service: str, config: Config = ONE_ATTEMPT) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="faults-test",
        aws_secret_access_key="faults-test",
        config=config,
    )


def _failure(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return str(response["Error"]["Code"]), int(response["ResponseMetadata"]["HTTPStatusCode"])


def test_each_service_throttles_in_its_own_words(endpoint: str) -> None:
    calls = {
        "ec2": lambda c: c.describe_vpcs(),
        "autoscaling": lambda c: c.describe_auto_scaling_groups(),
        "sts": lambda c: c.get_caller_identity(),
        "s3": lambda c: c.list_buckets(),
        "resourcegroupstaggingapi": lambda c: c.get_resources(),  # a JSON-protocol API
    }
    with throttled(endpoint, throttle=1.0):
        seen = {service: _failure(partial(call, _client(endpoint, service))) for service, call in calls.items()}
        state = faults(endpoint)
    assert seen == {
        "ec2": ("RequestLimitExceeded", 503),
        "autoscaling": ("Throttling", 400),
        "sts": ("Throttling", 400),
        "s3": ("SlowDown", 503),
        "resourcegroupstaggingapi": ("ThrottlingException", 400),
    }
    assert state["faulted"] == state["calls"] == 5
    assert state["by_code"] == {"RequestLimitExceeded": 1, "SlowDown": 1, "Throttling": 2, "ThrottlingException": 1}
    assert _client(endpoint, "sts").get_caller_identity()["Account"]  # and not after the block


def test_a_plain_503_has_no_body_and_is_retried(endpoint: str) -> None:
    with throttled(endpoint, unavailable=1.0):
        assert _failure(lambda: _client(endpoint, "ec2").describe_vpcs())[1] == 503
    with throttled(endpoint, unavailable=0.25, seed=7):  # seed 7 faults the 2nd and 4th draws of 6
        retrying = _client(endpoint, "ec2", RETRYING)
        for _ in range(4):
            assert retrying.describe_vpcs()["Vpcs"]
        assert faults(endpoint) | {"seed": 7} == {
            "throttle": 0.0,
            "unavailable": 0.25,
            "seed": 7,
            "calls": 6,
            "faulted": 2,
            "by_code": {"503": 2},
        }


def test_a_faulted_call_never_runs_in_moto_and_its_retry_creates_exactly_one(endpoint: str) -> None:
    ec2 = _client(endpoint, "ec2")
    name = f"faulted-{uuid.uuid4().hex[:8]}"
    with throttled(endpoint, throttle=1.0):
        assert _failure(lambda: ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={}))[0] == (
            "RequestLimitExceeded"
        )
    assert (
        ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": [name]}])["LaunchTemplates"]
        == []
    )

    retrying = _client(endpoint, "ec2", RETRYING)
    names = [f"retried-{n}-{uuid.uuid4().hex[:8]}" for n in range(4)]
    with throttled(endpoint, throttle=0.25, seed=7):  # the 2nd and 3rd creates are throttled once each
        for each in names:  # a create that ran twice would fail its retry with "already exists"
            retrying.create_launch_template(LaunchTemplateName=each, LaunchTemplateData={})
        state = faults(endpoint)
    assert (state["calls"], state["by_code"]) == (6, {"RequestLimitExceeded": 2})
    found = ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": names}])
    assert sorted(t["LaunchTemplateName"] for t in found["LaunchTemplates"]) == sorted(names)


def test_the_faulted_answer_is_given_in_front_of_the_app() -> None:
    inner = Counter()
    app = Faults(inner)
    app.configure({"throttle": 1.0})
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=AKID/20261201/us-east-1/autoscaling/aws4_request, "
        "SignedHeaders=host, Signature=abc",
    }
    statuses: list[str] = []
    body = b"".join(app(environ, lambda s, h, exc_info=None: statuses.append(s)))
    assert statuses == ["400 Bad Request"] and b"<Code>Throttling</Code>" in body and inner.calls == 0
    assert service_of(environ) == "autoscaling"
    unsigned = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    assert app(unsigned, lambda s, h, exc_info=None: statuses.append(s)) == [b"call 1"]  # not an AWS call


def _pattern(endpoint: str, seed: int) -> list[bool]:
    """Which of 30 calls in a row the faults answered, with ``seed``."""
    sts = _client(endpoint, "sts")
    with throttled(endpoint, throttle=0.3, seed=seed):
        found = []
        for _ in range(30):
            try:
                sts.get_caller_identity()
                found.append(False)
            except ClientError:
                found.append(True)
    return found


def test_the_same_seed_faults_the_same_calls(endpoint: str) -> None:
    first = _pattern(endpoint, 7)
    assert 0 < sum(first) < 30
    assert _pattern(endpoint, 7) == first
    assert _pattern(endpoint, 8) != first


def test_the_control_endpoint_is_never_faulted_and_refuses_bad_settings(endpoint: str) -> None:
    with throttled(endpoint, throttle=1.0, seed=5):
        for _ in range(3):
            assert faults(endpoint)["throttle"] == 1.0
        with urllib.request.urlopen(endpoint + "/", timeout=5) as response:  # unsigned: not an AWS call
            assert response.status == 200
        for body, error in [
            (b"not json", "Expecting value"),
            (b"[1]", "the body is a JSON object"),
            (b'{"throttle": 2}', "throttle is a fraction of calls from 0 to 1, not 2"),
            (b'{"throttle": 0.6, "unavailable": 0.6}', "together exceed 1"),
            (b'{"seed": "x"}', "seed is an integer"),
            (b'{"slow": 1}', "unknown setting 'slow'"),
        ]:
            status, answer = refused(endpoint, body)
            assert status == 400 and error in answer["error"], (body, answer)
        assert faults(endpoint)["throttle"] == 1.0 and faults(endpoint)["seed"] == 5  # unchanged
    assert set_faults(endpoint) == {
        "throttle": 0.0,
        "unavailable": 0.0,
        "seed": 0,
        "calls": 0,
        "faulted": 0,
        "by_code": {},
    }
