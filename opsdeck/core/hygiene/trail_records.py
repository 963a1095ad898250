"""CloudTrail log files and their records: parsing, who acted, what changed, which tags it carried.

Pure functions on CloudTrail's documented delivery format: a gzipped JSON object ``{"Records": [...]}``
per file, named ``<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<unique>.json.gz`` (the minute it was
delivered; every event in it happened before that). A file that cannot be read as that format is a
``BadLogFile`` with a one-line reason; a record that is not an event is counted, never fatal.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

MAX_LOG_BYTES = 256 * 1024 * 1024  # decompressed; a real log file is a few MiB at most
CHUNK = 1024 * 1024
FILE_NAME = re.compile(r"^(\d{12})_CloudTrail_([a-z0-9-]+)_(\d{8}T\d{4}Z)_[A-Za-z0-9]+\.json\.gz$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:(.*)/)?([^/]+)$")
ASSUMED_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:sts::(\d{12}):assumed-role/([^/]+)/(.+)$")
DURATION = re.compile(r"^(?:\d+[wdhms])+$")
DURATION_PART = re.compile(r"(\d+)([wdhms])")
UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
# Calls whose records carry no readOnly flag are reads when their name says so.
READ_PREFIXES = ("Get", "Describe", "List", "Head", "Lookup", "BatchGet", "Search", "Select", "Scan", "Query")
# Services whose events a multi-region trail records once, in us-east-1: they belong to the whole account.
GLOBAL_SOURCES = frozenset(
    {"iam.amazonaws.com", "sts.amazonaws.com", "organizations.amazonaws.com", "cloudfront.amazonaws.com"}
    | {"route53.amazonaws.com", "waf.amazonaws.com", "signin.amazonaws.com"}
)
# Request parameters that name the resource a call changed (when the record has no `resources` list).
RESOURCE_KEYS = (
    "instanceId",
    "groupId",
    "groupName",
    "imageId",
    "vpcId",
    "subnetId",
    "launchTemplateId",
    "launchTemplateName",
    "autoScalingGroupName",
    "loadBalancerArn",
    "targetGroupArn",
    "listenerArn",
    "bucketName",
    "roleName",
    "userName",
    "policyArn",
    "keyName",
    "volumeId",
    "snapshotId",
    "trailName",
    "name",
)


class BadLogFile(Exception):
    """A file that is not a readable CloudTrail log file; the message is the one-line reason."""


def parse_duration(text: str) -> timedelta:
    """``90m``, ``24h``, ``7d``, ``2w``, ``1h30m`` as a duration (above zero)."""
    cleaned = text.strip().lower()
    if not DURATION.match(cleaned):
        raise ValueError(f"expected a duration such as 90m, 24h or 7d, got {text!r}")
    seconds = sum(int(n) * UNIT_SECONDS[unit] for n, unit in DURATION_PART.findall(cleaned))
    if seconds <= 0:
        raise ValueError(f"expected a duration above zero, got {text!r}")
    return timedelta(seconds=seconds)


def file_stamp(key: str) -> datetime | None:
    """When a log file was delivered, from its name (None when the name is not CloudTrail's)."""
    match = FILE_NAME.match(key.rpartition("/")[2])
    if match is None:
        return None
    return datetime.strptime(match.group(3), "%Y%m%dT%H%MZ").replace(tzinfo=UTC)


def read_records(stream: BinaryIO, limit: int = MAX_LOG_BYTES) -> list[Any]:
    """The ``Records`` of one gzipped log file, decompressed as it streams in."""
    data = bytearray()
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
            while chunk := unzipped.read(CHUNK):
                data += chunk
                if len(data) > limit:
                    raise BadLogFile(f"larger than {limit // (1024 * 1024)} MiB decompressed")
    except EOFError:
        raise BadLogFile("truncated gzip (the file ends early)") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise BadLogFile(f"not gzip ({exc})") from None
    try:
        body = json.loads(bytes(data))
    except UnicodeDecodeError:
        raise BadLogFile("not JSON (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise BadLogFile(f"not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(body, dict) or "Records" not in body:
        raise BadLogFile("no Records list (not a CloudTrail log file)")
    records = body["Records"]
    if not isinstance(records, list):
        raise BadLogFile(f"Records is {type(records).__name__}, not a list")
    return records


def role_of(arn: str) -> tuple[str, str] | None:
    """(account, role name) of a role ARN or of an assumed-role session ARN; None for anything else.

    An IAM role ARN carries the role's path (``role/ops/deploy``), a session ARN only its name
    (``assumed-role/deploy/session``): the name is what both share."""
    match = ROLE_ARN.match(arn)
    if match is not None:
        return match.group(1), match.group(3)
    match = ASSUMED_ROLE_ARN.match(arn)
    if match is not None:
        return match.group(1), match.group(2)
    return None


@dataclass(frozen=True)
class Event:
    """One write call from a trail, before it is matched to an environment's pipeline."""

    time: datetime
    account: str
    region: str
    source: str  # eventSource, e.g. ec2.amazonaws.com
    name: str  # eventName, e.g. RunInstances
    who: str  # the principal's ARN (or its id when the record has no ARN)
    principal_type: str  # userIdentity.type: AssumedRole, IAMUser, Root, ...
    role: tuple[str, str] | None  # (account, role name) when the principal is a role's session
    resources: tuple[str, ...]
    tags: dict[str, str] = field(default_factory=dict)
    source_ip: str = ""
    event_id: str = ""
    session: str = ""  # the session name of an assumed role (who was behind it)

    @property
    def action(self) -> str:
        return f"{self.source.removesuffix('.amazonaws.com')}:{self.name}"

    @property
    def is_global(self) -> bool:
        return self.source in GLOBAL_SOURCES


@dataclass
class Sorted:
    """What the records of one file came to."""

    events: list[Event] = field(default_factory=list)
    malformed: int = 0  # records that are not events (counted, skipped)
    denied: int = 0  # write calls that failed (errorCode): nothing changed
    reads: int = 0
    by_aws: int = 0  # calls AWS made itself (service principals, service-linked roles)


def sort_records(records: list[Any], since: datetime, until: datetime | None = None) -> Sorted:
    """The write events in ``[since, until]`` of a file's records, and counts of the rest."""
    out = Sorted()
    for record in records:
        event = _event(record, out)
        if event is not None and event.time >= since and (until is None or event.time <= until):
            out.events.append(event)
    return out


def _event(record: Any, out: Sorted) -> Event | None:
    if not isinstance(record, dict):
        out.malformed += 1
        return None
    identity = record.get("userIdentity")
    name, source = record.get("eventName"), record.get("eventSource")
    when = _time(record.get("eventTime"))
    if not isinstance(identity, dict) or not isinstance(name, str) or not isinstance(source, str) or when is None:
        out.malformed += 1
        return None
    if record.get("eventType") not in (None, "AwsApiCall", "AwsConsoleAction"):
        out.reads += 1  # service events, sign-ins and insights change nothing by a principal
        return None
    if not _is_write(record.get("readOnly"), name):
        out.reads += 1
        return None
    if record.get("errorCode"):
        out.denied += 1
        return None
    issuer = _issuer_arn(identity)
    kind = str(identity.get("type") or "")
    if kind == "AWSService" or ":role/aws-service-role/" in issuer:
        out.by_aws += 1
        return None
    arn = str(identity.get("arn") or "")
    account = str(record.get("recipientAccountId") or identity.get("accountId") or "")
    role = role_of(issuer) or role_of(arn)
    session_match = ASSUMED_ROLE_ARN.match(arn)
    return Event(
        time=when,
        account=account,
        region=str(record.get("awsRegion") or ""),
        source=source,
        name=name,
        who=arn or str(identity.get("principalId") or f"{kind or 'unknown'} in {identity.get('accountId', '?')}"),
        principal_type=kind or "unknown",
        role=role,
        resources=tuple(dict.fromkeys(_resources(record))),
        tags=tags_of(record.get("requestParameters")),
        source_ip=str(record.get("sourceIPAddress") or ""),
        event_id=str(record.get("eventID") or ""),
        session=session_match.group(3) if session_match else "",
    )


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _is_write(read_only: Any, name: str) -> bool:
    if isinstance(read_only, bool):
        return not read_only
    if isinstance(read_only, str) and read_only.lower() in ("true", "false"):
        return read_only.lower() == "false"
    return not name.startswith(READ_PREFIXES)


def _issuer_arn(identity: dict[str, Any]) -> str:
    context = identity.get("sessionContext")
    issuer = context.get("sessionIssuer") if isinstance(context, dict) else None
    return str(issuer.get("arn") or "") if isinstance(issuer, dict) else ""


def _items(value: Any) -> list[Any]:
    """CloudTrail's EC2 lists: ``{"items": [...]}``, or a plain list."""
    if isinstance(value, dict):
        value = value.get("items")
    return value if isinstance(value, list) else []


def _resources(record: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for item in record.get("resources") or []:
        if isinstance(item, dict) and isinstance(item.get("ARN"), str):
            found.append(item["ARN"])
    response = record.get("responseElements")
    if isinstance(response, dict):  # RunInstances: the instances it made
        found += [str(i["instanceId"]) for i in _items(response.get("instancesSet")) if _has(i, "instanceId")]
    request = record.get("requestParameters")
    if isinstance(request, dict):
        for key in RESOURCE_KEYS:
            if isinstance(request.get(key), str) and request[key]:
                found.append(request[key])
        found += [str(i["instanceId"]) for i in _items(request.get("instancesSet")) if _has(i, "instanceId")]
        found += [str(i["resourceId"]) for i in _items(request.get("resourcesSet")) if _has(i, "resourceId")]
    return found


def _has(item: Any, key: str) -> bool:
    return isinstance(item, dict) and isinstance(item.get(key), str)


def tags_of(request: Any) -> dict[str, str]:
    """The tags a call set: RunInstances' tagSpecificationSet, CreateTags' tagSet, or a plain tags list/map."""
    if not isinstance(request, dict):
        return {}
    pairs: list[Any] = []
    for spec in _items(request.get("tagSpecificationSet")):
        if isinstance(spec, dict):
            pairs += _items(spec.get("tags")) or _items(spec.get("tagSet"))
    pairs += _items(request.get("tagSet"))
    for key in ("tags", "Tags", "tagList"):
        value = request.get(key)
        if isinstance(value, dict) and "items" not in value:
            pairs += [{"key": k, "value": v} for k, v in value.items()]
        else:
            pairs += _items(value)
    tags: dict[str, str] = {}
    for pair in pairs:
        if isinstance(pair, dict):
            name, text = pair.get("key", pair.get("Key")), pair.get("value", pair.get("Value"))
            if isinstance(name, str) and isinstance(text, str):
                tags[name] = text
    return tags
