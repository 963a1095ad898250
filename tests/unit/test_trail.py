"""`opsdeck trail` on the fake cloud: CloudTrail log files parsed, filtered to changes outside the pipeline,
attributed to environments, and bad files skipped and named (never fatal)."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from opsdeck.core.estate.deck import Deck
from opsdeck.core.events import Reporter
from opsdeck.core.hygiene.trail import TrailReport, load_report, read_trail
from opsdeck.core.hygiene.trail_records import (
    BadLogFile,
    file_stamp,
    parse_duration,
    read_records,
    role_of,
    sort_records,
    tags_of,
)
from opsdeck.errors import ConfigError, ToolError
from opsdeck.shipped import copy_tree, shipped
from tests.fakes import World, fake_tools
from tests.helpers import opsdeck

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DEV, STAGING, PROD = "111111111111", "222222222222", "333333333333"
BUCKET = {a: f"opsdeck-demo-trail-{a}" for a in (DEV, STAGING, PROD)}
USER = f"arn:aws:iam::{DEV}:user/mallory"


def role_session(account: str, role: str, session: str = "opsdeck-alice") -> dict[str, Any]:
    """An assumed-role identity exactly as CloudTrail writes it."""
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "accountId": account,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLE",
                "arn": f"arn:aws:iam::{account}:role/{role}",
                "accountId": account,
                "userName": role,
            },
            "attributes": {"creationDate": "2026-11-25T10:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def user(arn: str = USER) -> dict[str, Any]:
    account = arn.split(":")[4]
    return {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": arn, "accountId": account, "userName": "mallory"}


_ids = iter(range(1, 100000))


def run_instances(
    identity: dict[str, Any], when: datetime, *, account: str = DEV, region: str = "us-east-1", **tags: str
) -> dict[str, Any]:
    n = next(_ids)
    spec = {"items": [{"resourceType": "instance", "tags": [{"key": k, "value": v} for k, v in tags.items()]}]}
    return {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances",
        "awsRegion": region,
        "sourceIPAddress": "203.0.113.7",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {
            "instancesSet": {"items": [{"imageId": "ami-0abc", "minCount": 1, "maxCount": 1}]},
            "instanceType": "t3.micro",
            **({"tagSpecificationSet": spec} if tags else {}),
        },
        "responseElements": {"instancesSet": {"items": [{"instanceId": f"i-{n:017x}"}]}},
        "requestID": f"req-{n}",
        "eventID": f"evt-{n:08d}",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }


def call(identity: dict[str, Any], when: datetime, source: str, name: str, **fields: Any) -> dict[str, Any]:
    n = next(_ids)
    record = {
        "userIdentity": identity,
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": "203.0.113.7",
        "requestParameters": {},
        "eventID": f"evt-{n:08d}",
        "readOnly": False,
        "eventType": "AwsApiCall",
        "recipientAccountId": identity.get("accountId", DEV),
    }
    record.update(fields)
    return record


def gz(records: Any) -> bytes:
    return gzip.compress(json.dumps({"Records": records}).encode())


def key_for(account: str, region: str, delivered: datetime, unique: str = "AbCd1234") -> str:
    stamp = delivered.strftime("%Y%m%dT%H%MZ")
    return (
        f"cloudtrail/AWSLogs/{account}/CloudTrail/{region}/{delivered:%Y/%m/%d}/"
        f"{account}_CloudTrail_{region}_{stamp}_{unique}.json.gz"
    )


def deliver(world: World, account: str, delivered: datetime, body: bytes, region: str = "us-east-1") -> str:
    key = key_for(account, region, delivered, f"U{next(_ids)}")
    world.objects[(BUCKET[account], key)] = body
    return key


@pytest.fixture()
def deck(tmp_path: Path) -> tuple[Deck, World]:
    root = tmp_path / "deck"
    copy_tree(shipped("sample_envs"), root)
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    world = World()
    return Deck.open(root, tools=fake_tools(world)), world


def trail(deck: Deck, envs: list[str] | None = None, since: str = "24h") -> dict[str, TrailReport]:
    reports = asyncio.run(read_trail(deck, envs, parse_duration(since), Reporter("trail"), now=NOW))
    return {r.name: r for r in reports}


def actions(report: TrailReport) -> list[tuple[str, str]]:
    return [(f.action, f.who) for f in report.findings]


# -- parsing ---------------------------------------------------------------------------------------


def test_durations_read_as_people_write_them() -> None:
    assert parse_duration("24h") == timedelta(hours=24)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration(" 2W ") == timedelta(weeks=2)
    for bad in ("", "soon", "24", "-1h", "0h", "1.5h", "h"):
        with pytest.raises(ValueError, match="expected a duration"):
            parse_duration(bad)


def test_a_role_is_the_same_in_its_iam_and_its_session_form() -> None:
    assert role_of("arn:aws:iam::111111111111:role/opsdeck-deploy") == (DEV, "opsdeck-deploy")
    assert role_of("arn:aws:iam::111111111111:role/teams/ops/opsdeck-deploy") == (DEV, "opsdeck-deploy")
    assert role_of("arn:aws:sts::111111111111:assumed-role/opsdeck-deploy/opsdeck-alice") == (DEV, "opsdeck-deploy")
    assert role_of(USER) is None
    assert role_of("arn:aws:iam::111111111111:root") is None


def test_file_names_give_the_minute_they_were_delivered() -> None:
    key = key_for(DEV, "us-east-1", datetime(2026, 11, 25, 9, 5, tzinfo=UTC))
    assert file_stamp(key) == datetime(2026, 11, 25, 9, 5, tzinfo=UTC)
    assert file_stamp("cloudtrail/AWSLogs/111111111111/CloudTrail/us-east-1/2026/11/25/notes.json.gz") is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (gz([{"a": 1}])[:-12], "truncated gzip"),
        (b"", "not JSON"),
        (b"this is not gzip at all", "not gzip"),
        (gzip.compress(b'{"Records": [{"eventName": '), "not JSON"),
        (gzip.compress(b"\xff\xfe\x00garbage"), "not JSON"),
        (gzip.compress(b'{"records": []}'), "no Records list"),
        (gzip.compress(b"[1, 2]"), "no Records list"),
        (gzip.compress(b'{"Records": {"x": 1}}'), "Records is dict, not a list"),
    ],
)
def test_a_bad_log_file_has_a_one_line_reason(body: bytes, reason: str) -> None:
    with pytest.raises(BadLogFile, match=reason) as caught:
        read_records(io.BytesIO(body))
    assert "\n" not in str(caught.value)


def test_a_file_larger_than_the_limit_is_refused_while_it_streams() -> None:
    body = gzip.compress(json.dumps({"Records": [{"x": "y" * 5000}] * 100}).encode())
    with pytest.raises(BadLogFile, match="larger than"):
        read_records(io.BytesIO(body), limit=100_000)
    assert len(read_records(io.BytesIO(body))) == 100


def test_only_successful_writes_by_principals_remain() -> None:
    t = NOW - timedelta(hours=1)
    linked = role_session(DEV, "aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling")
    linked["sessionContext"]["sessionIssuer"]["arn"] = (
        f"arn:aws:iam::{DEV}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    )
    records = [
        run_instances(user(), t),
        {**run_instances(user(), t), "readOnly": True},
        call(user(), t, "ec2.amazonaws.com", "DescribeInstances", readOnly=None),
        {**run_instances(user(), t), "errorCode": "Client.UnauthorizedOperation"},
        {**run_instances(user(), t), "userIdentity": {"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}},
        run_instances(linked, t),
        call(user(), t, "ec2.amazonaws.com", "CreateTags"),  # no readOnly flag: a write by its name
        {**run_instances(user(), t), "eventType": "AwsServiceEvent"},
        run_instances(user(), NOW - timedelta(days=3)),  # before the window
        "not a record",
        {"eventName": "RunInstances"},
        {**run_instances(user(), t), "eventTime": "yesterday"},
    ]
    records[6].pop("readOnly")
    out = sort_records(records, NOW - timedelta(hours=24))
    assert [(e.name, e.who) for e in out.events] == [("RunInstances", USER), ("CreateTags", USER)]
    assert (out.malformed, out.denied, out.by_aws, out.reads) == (3, 1, 2, 3)
    first = out.events[0]
    assert first.action == "ec2:RunInstances" and first.principal_type == "IAMUser"
    assert first.resources[0].startswith("i-") and first.source_ip == "203.0.113.7"


def test_tags_come_from_every_shape_a_call_carries_them_in() -> None:
    run = run_instances(user(), NOW, env="dev", app="web")
    assert tags_of(run["requestParameters"]) == {"env": "dev", "app": "web"}
    create_tags = {
        "resourcesSet": {"items": [{"resourceId": "i-1"}]},
        "tagSet": {"items": [{"key": "env", "value": "x"}]},
    }
    assert tags_of(create_tags) == {"env": "x"}
    assert tags_of({"tags": {"env": "prod"}}) == {"env": "prod"}
    assert tags_of({"Tags": [{"Key": "env", "Value": "staging"}]}) == {"env": "staging"}
    assert tags_of(None) == {} and tags_of({"tagSpecificationSet": "junk"}) == {}


# -- reading an estate's trails ----------------------------------------------------------------------


def test_a_run_instances_outside_the_deploy_role_shows_and_the_same_by_the_deploy_role_does_not(
    deck: tuple[Deck, World],
) -> None:
    d, world = deck
    t = NOW - timedelta(hours=2)
    outside = run_instances(user(), t, env="dev")
    by_pipeline = run_instances(role_session(DEV, "opsdeck-deploy"), t, env="dev")
    by_packer = run_instances(role_session(DEV, "opsdeck-build", "opsdeck-packer"), t)
    deliver(world, DEV, t + timedelta(minutes=5), gz([outside, by_pipeline, by_packer]))
    reports = trail(d)
    assert set(reports) == {"sandbox", "dev", "staging", "prod"}
    dev = reports["dev"]
    assert [f.event_id for f in dev.findings] == [outside["eventID"]]
    assert dev.findings[0].to_json() == {
        "time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "who": USER,
        "principal_type": "IAMUser",
        "action": "ec2:RunInstances",
        "resources": [outside["responseElements"]["instancesSet"]["items"][0]["instanceId"]],
        "source_ip": "203.0.113.7",
        "event_id": outside["eventID"],
        "region": "us-east-1",
    }
    assert reports["sandbox"].findings == []  # tagged env=dev: dev's, not the sandbox's beside it
    assert dev.status == "changed" and reports["sandbox"].status == "clean"
    assert dev.files_read == 1 and dev.files_skipped == []
    assert "1 change(s) outside the pipeline" in dev.summary() and "mallory" in dev.summary()
    assert dev.last_finding is dev.findings[0]
    alone = trail(d, ["sandbox"])  # dev's tag decides even when the sandbox is read on its own
    assert list(alone) == ["sandbox"] and alone["sandbox"].findings == []


def test_a_person_in_the_deploy_role_outside_opsdeck_is_not_the_pipeline(deck: tuple[Deck, World]) -> None:
    """opsdeck names every role session it opens opsdeck-<operator>; someone who assumes the deploy role
    by hand (`aws sts assume-role ... --role-session-name bob`) and launches an instance is a finding."""
    d, world = deck
    t = NOW - timedelta(hours=1)
    by_hand = run_instances(role_session(DEV, "opsdeck-deploy", "bob"), t, env="dev")
    by_opsdeck = run_instances(role_session(DEV, "opsdeck-deploy", "opsdeck-bob"), t, env="dev")
    deliver(world, DEV, t + timedelta(minutes=5), gz([by_hand, by_opsdeck]))
    dev = trail(d)["dev"]
    assert [f.event_id for f in dev.findings] == [by_hand["eventID"]]
    assert dev.findings[0].who == f"arn:aws:sts::{DEV}:assumed-role/opsdeck-deploy/bob"


def test_an_untagged_change_in_a_shared_account_and_region_is_reported_for_each_environment_there(
    deck: tuple[Deck, World],
) -> None:
    d, world = deck
    t = NOW - timedelta(minutes=30)
    deliver(world, DEV, t + timedelta(minutes=5), gz([run_instances(user(), t)]))
    reports = trail(d)
    assert len(reports["sandbox"].findings) == len(reports["dev"].findings) == 1
    assert reports["staging"].findings == [] and reports["prod"].findings == []


def test_break_glass_is_the_pipeline_but_an_iam_change_by_anyone_else_belongs_to_the_whole_account(
    deck: tuple[Deck, World],
) -> None:
    d, world = deck
    t = NOW - timedelta(hours=1)
    glass = run_instances(role_session(PROD, "opsdeck-break-glass"), t, account=PROD, region="us-west-2")
    admin = role_session(PROD, "AdminSSO", "carol@shop.example")
    in_prod = run_instances(admin, t, account=PROD, region="us-west-2")
    deliver(world, PROD, t + timedelta(minutes=5), gz([glass, in_prod]), region="us-west-2")
    iam = call(admin, t, "iam.amazonaws.com", "CreateUser", requestParameters={"userName": "backdoor"})
    east = run_instances(admin, t, account=PROD)  # another region than prod's: not prod's
    deliver(world, PROD, t + timedelta(minutes=5), gz([iam, east]))
    # a role named like prod's deploy role, in another account, is not prod's pipeline
    other = run_instances(role_session(STAGING, "opsdeck-deploy"), t, account=PROD, region="us-west-2")
    deliver(world, PROD, t + timedelta(minutes=6), gz([other]), region="us-west-2")
    prod = trail(d, ["prod"])["prod"]
    assert sorted((f.action, f.who) for f in prod.findings) == sorted(
        [
            ("ec2:RunInstances", admin["arn"]),
            ("ec2:RunInstances", other["userIdentity"]["arn"]),
            ("iam:CreateUser", admin["arn"]),
        ]
    )
    assert "backdoor" in next(f for f in prod.findings if f.action == "iam:CreateUser").resources
    assert prod.files_read == 3


def test_bad_files_are_skipped_named_and_counted_and_the_good_ones_still_read(deck: tuple[Deck, World]) -> None:
    d, world = deck
    t = NOW - timedelta(hours=3)
    good = deliver(world, STAGING, t, gz([run_instances(user(f"arn:aws:iam::{STAGING}:user/eve"), t, account=STAGING)]))
    bad = {
        deliver(world, STAGING, t, gz([{"x": 1}])[:-9]): "truncated gzip",
        deliver(world, STAGING, t, b"PK\x03\x04 a zip file"): "not gzip",
        deliver(world, STAGING, t, gzip.compress(b"<html>oops</html>")): "not JSON",
        deliver(world, STAGING, t, gzip.compress(b'{"Events": []}')): "no Records list",
    }
    folder = good.rpartition("/")[0]
    world.objects[(BUCKET[STAGING], f"{folder}/README.txt")] = b"hello"
    report = trail(d, ["staging"])["staging"]
    assert [f.who for f in report.findings] == [f"arn:aws:iam::{STAGING}:user/eve"]
    assert report.files_read == 1
    skipped = {s.key: s.reason for s in report.files_skipped}
    assert len(skipped) == 5 and f"{folder}/README.txt" in skipped
    for key, reason in bad.items():
        assert reason in skipped[key]
    shape = report.to_json()
    assert shape["files_skipped"][0].keys() == {"key", "reason"} and shape["status"] == "changed"


def test_since_reads_only_the_day_folders_and_files_it_reaches(deck: tuple[Deck, World]) -> None:
    d, world = deck
    old_day = NOW - timedelta(days=3)
    deliver(world, STAGING, old_day, gz([run_instances(user(), old_day, account=STAGING)]))
    earlier = NOW - timedelta(hours=5)  # same day, before a 2h window
    deliver(world, STAGING, earlier, gz([run_instances(user(), earlier, account=STAGING)]))
    late = NOW - timedelta(minutes=20)
    # a file delivered inside the window can still hold an event from before it
    deliver(world, STAGING, late, gz([run_instances(user(), late, account=STAGING), run_instances(user(), earlier)]))
    deliver(world, STAGING, late, gz([run_instances(user(), late, account=STAGING)]))  # a second file
    listed: list[tuple[str, str]] = []
    original = type(d.tools.env("staging").cloud).list_keys

    def spy(self: Any, bucket: str, prefix: str, start_after: str = "") -> list[str]:
        listed.append((prefix, start_after))
        result: list[str] = original(self, bucket, prefix, start_after)
        return result

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(d.tools.env("staging").cloud), "list_keys", spy)
        report = trail(d, ["staging"], since="2h")["staging"]
    assert report.files_read == 2 and len(report.findings) == 2
    assert all(f.time >= NOW - timedelta(hours=2) for f in report.findings)
    assert {p.rsplit("/", 5)[1] for p, _ in listed} == {"us-east-1"}  # one region, one day folder
    assert all(p.endswith("2026/11/25/") for p, _ in listed) and listed[0][1].endswith("20261125T1000Z")
    week = trail(d, ["staging"], since="7d")["staging"]
    assert week.files_read == 4 and len(week.findings) == 5


def test_an_event_delivered_twice_is_one_finding(deck: tuple[Deck, World]) -> None:
    d, world = deck
    t = NOW - timedelta(hours=1)
    event = run_instances(user(f"arn:aws:iam::{STAGING}:user/eve"), t, account=STAGING)
    deliver(world, STAGING, t, gz([event]))
    deliver(world, STAGING, t + timedelta(minutes=1), gz([event]))
    report = trail(d, ["staging"])["staging"]
    assert report.files_read == 2 and len(report.findings) == 1


def test_an_environment_without_a_trail_is_a_one_line_error(deck: tuple[Deck, World], tmp_path: Path) -> None:
    d, _ = deck
    toml = d.root / "opsdeck.toml"
    toml.write_text("\n".join(line for line in toml.read_text().splitlines() if not line.startswith("trail =")))
    bare = Deck.open(d.root, tools=fake_tools(World()))
    with pytest.raises(ConfigError, match="prod has no trail: set trail"):
        trail(bare, ["prod"])
    with pytest.raises(ConfigError, match="no environment has a trail"):
        trail(bare)
    with pytest.raises(ConfigError, match="at most 366 days"):
        asyncio.run(read_trail(d, None, timedelta(days=400), Reporter("trail")))


@pytest.mark.parametrize("bad", ["bucket", "s3://", "s3://UPPER/x", "s3://b/x y", "https://b/x", "s3://a..b/x"])
def test_a_malformed_trail_setting_names_the_key(deck: tuple[Deck, World], bad: str) -> None:
    d, _ = deck
    toml = d.root / "opsdeck.toml"
    toml.write_text(
        toml.read_text().replace('trail = "s3://opsdeck-demo-trail-222222222222/cloudtrail"', f'trail = "{bad}"')
    )
    with pytest.raises(ConfigError, match=r"environments\.staging\.trail.*expected the trail's log bucket"):
        Deck.open(d.root, tools=fake_tools(World()))


def test_the_command_says_a_bad_since_in_one_line() -> None:
    result = opsdeck("trail", "--since", "yesterday")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "opsdeck: trail: --since: expected a duration such as 90m, 24h or 7d, got 'yesterday'\n"


def test_a_trail_that_cannot_be_listed_is_that_accounts_error_only(deck: tuple[Deck, World]) -> None:
    d, world = deck
    t = NOW - timedelta(hours=1)
    deliver(world, DEV, t, gz([run_instances(user(), t, env="dev")]))
    cloud_type = type(d.tools.env("staging").cloud)
    original = cloud_type.list_keys

    def listing(self: Any, bucket: str, prefix: str, start_after: str = "") -> list[str]:
        if bucket == BUCKET[STAGING]:
            raise ToolError(f"aws s3 list-objects-v2 s3://{bucket}/{prefix}", "NoSuchBucket: it does not exist")
        result: list[str] = original(self, bucket, prefix, start_after)
        return result

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cloud_type, "list_keys", listing)
        reports = trail(d)
    staging = reports["staging"]
    assert staging.status == "error" and "NoSuchBucket" in staging.error and staging.findings == []
    assert staging.to_json()["error"] == staging.error and "trail not read" in staging.summary()
    assert reports["dev"].status == "changed" and reports["prod"].status == "clean"
    assert reports["dev"].to_json()["error"] is None


def test_the_last_report_of_each_environment_is_stored_for_the_deck(deck: tuple[Deck, World]) -> None:
    d, world = deck
    t = NOW - timedelta(hours=1)
    deliver(world, DEV, t, gz([run_instances(user(), t, env="dev")]))
    deliver(world, DEV, t, b"junk")
    reports = trail(d)
    for name, report in reports.items():
        stored = load_report(d, name)
        assert stored is not None and stored.to_json() == report.to_json()
    last = load_report(d, "dev")
    assert last is not None and last.last_finding is not None and last.last_finding.who == USER
    assert last.files_skipped[0].reason.startswith("not gzip")
    (d.local_dir / "trail" / "prod.json").write_text("{not json")
    assert load_report(d, "prod") is None and load_report(d, "nowhere") is None
