"""The audit log shipped to an Object Lock bucket on the local cloud, through the real CLI: `audit ship
--setup` makes the bucket (compliance mode), a real apply's records are shipped after it, `audit verify`
matches them, a locked version cannot be deleted and a version written over it does not fool verify, a
local log rewritten with a valid chain is caught by naming the record, and a nuke's inventory leaves the
bucket out although it carries the sandbox's tag."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from opsdeck.core.safety import audit
from tests.helpers import edited, opsdeck

pytestmark = pytest.mark.integration

BUCKET = "opsdeck-demo-audit-log"
SCRATCH = "opsdeck-demo-sandbox-scratch"  # a bucket a nuke of the sandbox would delete
BUILD_ROLE = "arn:aws:iam::111111111111:role/opsdeck-build"  # the bucket lives in the build account
AUDIT = f'\n[audit]\nbucket = "{BUCKET}"\nretention_days = 1\n'


@pytest.fixture()
def shipping(demo_deck: Path) -> Iterator[Path]:
    """The demo deck shipping its audit log (its opsdeck.toml as it was afterwards, the log restored)."""
    toml = demo_deck / "opsdeck.toml"
    text = toml.read_text()
    log = demo_deck / ".opsdeck" / audit.AUDIT_FILE
    with edited(toml, text, text + AUDIT):
        yield demo_deck
        # The test rewrites the log as a forger would; the records of this test stay, unforged.
        if (demo_deck / ".opsdeck" / "audit.true").exists():
            log.write_text((demo_deck / ".opsdeck" / "audit.true").read_text())
            (demo_deck / ".opsdeck" / "audit.true").unlink()


def _s3() -> Any:
    endpoint = json.loads(opsdeck("cloud", "status", "--json", check=True).stdout)["endpoint"]
    dummy = {"aws_access_key_id": "audit-ship", "aws_secret_access_key": "audit-ship", "region_name": "us-east-1"}
    sts = boto3.client("sts", endpoint_url=endpoint, **dummy)
    creds = sts.assume_role(RoleArn=BUILD_ROLE, RoleSessionName="audit-ship-test")["Credentials"]
    sts.close()
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def _verify(deck: Path) -> tuple[int, dict[str, Any]]:
    done = opsdeck("audit", "verify", "--json", deck=deck)
    return done.returncode, json.loads(done.stdout)


def test_a_real_operation_is_shipped_locked_and_verify_names_a_rewritten_record(shipping: Path) -> None:
    deck = shipping
    setup = opsdeck("audit", "ship", "--setup", deck=deck, check=True)
    assert f"s3://{BUCKET}: Object Lock on, default retention 1 days in compliance mode" in setup.stdout
    assert "shipped " in setup.stdout
    applied = opsdeck("apply", "sandbox", "--yes", deck=deck)
    assert applied.returncode == 0, applied.stderr
    assert "audit log not shipped" not in applied.stderr
    records = audit_records(deck)
    assert records[-1]["action"] == "apply" and records[-1]["result"] == "ok"
    code, verified = _verify(deck)
    assert code == 0 and verified["ok"], verified
    assert verified["shipped"] == {"bucket": BUCKET, "verified_through": records[-1]["seq"]}
    nothing = opsdeck("audit", "ship", deck=deck, check=True)
    assert nothing.stdout.startswith(f"nothing to ship: s3://{BUCKET} has every record through {records[-1]['seq']}")

    s3 = _s3()
    try:
        rule = s3.get_object_lock_configuration(Bucket=BUCKET)["ObjectLockConfiguration"]["Rule"]
        assert (rule["DefaultRetention"]["Mode"], rule["DefaultRetention"]["Days"]) == ("COMPLIANCE", 1)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="audit/")["Contents"]]
        last = keys[-1]
        head = s3.head_object(Bucket=BUCKET, Key=last)
        assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockRetainUntilDate"]
        (version,) = s3.list_object_versions(Bucket=BUCKET, Prefix=last)["Versions"]
        with pytest.raises(ClientError, match="AccessDenied"):
            s3.delete_object(Bucket=BUCKET, Key=last, VersionId=version["VersionId"])
        with pytest.raises(ClientError, match="AccessDenied"):
            s3.delete_object(Bucket=BUCKET, Key=last, VersionId=version["VersionId"], BypassGovernanceRetention=True)
        # A PUT over the key adds a version above the locked one; verify reads the first.
        s3.put_object(Bucket=BUCKET, Key=last, Body=b'{"seq": 1}\n')
        assert _verify(deck)[0] == 0
        # The bucket itself stays: a nuke's inventory leaves it out even when tagged as the sandbox's.
        sandbox_tag = {"TagSet": [{"Key": "env", "Value": "sandbox"}]}
        s3.create_bucket(Bucket=SCRATCH)
        s3.put_bucket_tagging(Bucket=SCRATCH, Tagging=sandbox_tag)
        s3.put_bucket_tagging(Bucket=BUCKET, Tagging=sandbox_tag)
        dry = json.loads(opsdeck("nuke-rebuild", "sandbox", "--json", deck=deck, check=True).stdout)
        assert dry["dry_run"] and SCRATCH in json.dumps(dry) and BUCKET not in json.dumps(dry)
        with pytest.raises(ClientError, match="BucketNotEmpty"):
            s3.delete_bucket(Bucket=BUCKET)
    finally:  # the bucket outlives this test (Object Lock): it leaves the sandbox's tag behind it
        s3.delete_bucket_tagging(Bucket=BUCKET)
        if SCRATCH in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
            s3.delete_bucket(Bucket=SCRATCH)
        s3.close()

    log = deck / ".opsdeck" / audit.AUDIT_FILE
    (deck / ".opsdeck" / "audit.true").write_text(log.read_text())
    target = records[-1]["seq"]
    forge(log, target, result="failed")
    local = opsdeck("audit", "verify", deck=deck)
    assert local.returncode == 2
    assert f"audit log TAMPERED: record {target} differs from the shipped copy in s3://{BUCKET}/audit/" in local.stderr
    code, verified = _verify(deck)
    assert code == 2 and verified["shipped"]["verified_through"] == target - 1


def audit_records(deck: Path) -> list[dict[str, Any]]:
    return list(json.loads(opsdeck("audit", "--json", deck=deck, check=True).stdout))


def forge(log: Path, seq: int, **changes: Any) -> None:
    """Rewrite record ``seq`` and re-chain the ones after it, as someone who can rewrite the log would."""
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    prev = records[seq - 2]["hash"] if seq > 1 else audit.GENESIS
    for record in records[seq - 1 :]:
        record.update(changes if record["seq"] == seq else {})
        record["prev"] = prev
        record["hash"] = audit._digest(record)
        prev = record["hash"]
    log.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
