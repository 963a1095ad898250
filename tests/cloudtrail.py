"""CloudTrail log files as CloudTrail delivers them, for tests: the local cloud never writes any."""

from __future__ import annotations

from datetime import datetime
from typing import Any

DEV = "111111111111"


def identity(arn: str) -> dict[str, Any]:
    account = arn.split(":")[4]
    if ":assumed-role/" not in arn:
        return {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": arn, "accountId": account}
    role = arn.split("/")[1]
    return {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLE:session",
        "arn": arn,
        "accountId": account,
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{account}:role/{role}", "accountId": account}
        },
    }


def run_instances(arn: str, when: datetime, event_id: str, env: str, account: str = DEV) -> dict[str, Any]:
    tags = {"items": [{"resourceType": "instance", "tags": [{"key": "env", "value": env}]}]}
    return {
        "eventVersion": "1.09",
        "userIdentity": identity(arn),
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "ec2.amazonaws.com",
        "eventName": "RunInstances",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.23",
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": {"instanceType": "t3.micro", "tagSpecificationSet": tags},
        "responseElements": {"instancesSet": {"items": [{"instanceId": f"i-{event_id[-12:]}"}]}},
        "eventID": event_id,
        "readOnly": False,
        "eventType": "AwsApiCall",
        "recipientAccountId": account,
    }


class Delivery:
    """Log files put into a trail bucket as CloudTrail delivers them; deleted again afterwards."""

    def __init__(self, deck: Any, env: str) -> None:
        from opsdeck.core.estate.sections import trail_location

        self.cloud = deck.tools.env(env).cloud
        self.account = deck.env(env).account
        self.bucket, self.prefix = trail_location(deck.env(env).trail)
        self.keys: list[str] = []

    def put(self, body: bytes, delivered: datetime, unique: str, region: str = "us-east-1") -> str:
        key = (
            f"{self.prefix}/AWSLogs/{self.account}/CloudTrail/{region}/{delivered:%Y/%m/%d}/"
            f"{self.account}_CloudTrail_{region}_{delivered:%Y%m%dT%H%MZ}_{unique}.json.gz"
        )
        self.cloud.put_object(self.bucket, key, body)
        self.keys.append(key)
        return key

    def clean(self) -> None:
        for key in self.keys:
            self.cloud.delete_object(self.bucket, key)
