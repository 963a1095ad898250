"""Changes made outside the pipeline, read from the CloudTrail log files each account's trail delivers to S3.

Each environment names where its account's trail delivers (``trail = "s3://bucket/prefix"``). opsdeck
lists only the day folders ``--since`` reaches (``PREFIX/AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/``,
the first one from the minute ``since`` falls in), streams each file through gunzip in a small thread
pool, and keeps the write calls that succeeded and that no pipeline principal made:

- the pipeline is the environment's deploy role, its break-glass role (audited on its own), and in the
  build account the build role (Packer launches and images are the pipeline's own); an environment
  reached with a profile instead of a role counts the identity that profile resolves to. Roles are
  compared by account and name, so the role ARN (``iam::A:role/path/NAME``) and a session ARN
  (``sts::A:assumed-role/NAME/session``) match. Calls AWS makes itself (service principals and
  service-linked roles, e.g. auto scaling launching an instance) are not changes by anyone.
- an event belongs to the environments in its account and region (account-wide services such as IAM
  are recorded in us-east-1 and belong to every environment of the account). Where several share an
  account and region (the demo's sandbox and dev), the environment tag the call set (RunInstances'
  tag specifications, CreateTags) picks one; without it the event is reported for each of them.

A log file that is not gzipped JSON with a ``Records`` list (truncated, corrupt, empty) is skipped and
named with its reason, never fatal. Each account's files are read once, whatever number of its
environments asked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from opsdeck.core.estate.deck import Deck
from opsdeck.core.estate.sections import trail_location
from opsdeck.core.events import Reporter
from opsdeck.core.hygiene.trail_records import (
    BadLogFile,
    Event,
    Sorted,
    file_stamp,
    parse_duration,
    read_records,
    role_of,
    sort_records,
)
from opsdeck.core.hygiene.trail_report import Finding, SkippedFile, TrailReport, iso, load_report, save_report
from opsdeck.core.ports.cloud import ObjectStorePort
from opsdeck.errors import ConfigError, OpsdeckError

__all__ = [
    "Finding",
    "SkippedFile",
    "TrailReport",
    "iso",
    "load_report",
    "parse_since",
    "read_trail",
    "trail_env_names",
    "trail_envs",
]

# Files read at once. Reading is waiting on S3 (parsing 1,000 files of 20 records takes 0.3 s): at 30 ms per
# GET, 1,000 files take 32 s one by one, 4.3 s with 8 threads, 2.2 s with 16 (the boto3 pool holds 20).
WORKERS = 16
GLOBAL_REGION = "us-east-1"  # where a multi-region trail records account-wide (IAM, STS ...) events
MAX_SINCE = timedelta(days=366)


@dataclass
class _Source:
    """One account's log files in one trail bucket, and the environments that read them."""

    bucket: str
    prefix: str
    account: str
    envs: list[str]
    regions: set[str]
    events: list[Event] = field(default_factory=list)
    files_read: int = 0
    skipped: list[SkippedFile] = field(default_factory=list)
    malformed: int = 0
    denied: int = 0
    seconds: float = 0.0
    error: str = ""

    def folder(self, region: str, day: datetime) -> str:
        head = f"{self.prefix}/" if self.prefix else ""
        return f"{head}AWSLogs/{self.account}/CloudTrail/{region}/{day:%Y/%m/%d}/"


def trail_envs(deck: Deck) -> list[str]:
    """The environments whose trail is configured."""
    return [e.name for e in deck.config.environments if e.trail]


def parse_since(text: str) -> timedelta:
    """``--since``: a duration such as 90m, 24h or 7d, at most MAX_SINCE (ValueError says what is wrong)."""
    since = parse_duration(text)
    if since > MAX_SINCE:
        raise ValueError(f"expected at most {MAX_SINCE.days} days, got {text!r}")
    return since


async def read_trail(
    deck: Deck,
    envs: list[str] | None,
    since: timedelta,
    rep: Reporter,
    *,
    now: datetime | None = None,
    workers: int = WORKERS,
) -> list[TrailReport]:
    """Each environment's changes outside the pipeline in the last ``since`` (every environment with a
    trail when ``envs`` is None; a named one without a trail is a ConfigError)."""
    if since <= timedelta(0) or since > MAX_SINCE:
        raise ConfigError(f"since: expected a duration above zero and at most {MAX_SINCE.days} days, got {since}")
    names = trail_env_names(deck, envs)
    now = now or datetime.now(UTC)
    start = now - since
    accounts = await asyncio.gather(*(asyncio.to_thread(_account_of, deck, name) for name in names))
    sources: dict[tuple[str, str, str], _Source] = {}
    for name, account in zip(names, accounts, strict=True):
        trail = deck.env(name).trail
        assert trail is not None
        bucket, prefix = trail_location(trail)
        source = sources.setdefault((bucket, prefix, account), _Source(bucket, prefix, account, [], {GLOBAL_REGION}))
        source.envs.append(name)
        source.regions.add(deck.config.region_of(name))
    for source in sources.values():
        try:
            with rep.phase(f"read trail s3://{source.bucket}/{source.prefix} ({source.account})"):
                await _read_source(deck, source, start, now, rep, workers)
        except OpsdeckError as exc:  # this account's trail only: the others are still read
            source.error = str(exc)
            rep.log(f"trail of account {source.account} not read: {exc}", "warning")
    reports = []
    for name, account in zip(names, accounts, strict=True):
        trail = deck.env(name).trail
        assert trail is not None
        bucket, prefix = trail_location(trail)
        source = sources[(bucket, prefix, account)]
        mine = await asyncio.to_thread(_pipeline, deck, name, account)
        findings = _findings(deck, name, source, mine)
        reports.append(
            TrailReport(
                name=name,
                account=account,
                region=deck.config.region_of(name),
                trail=trail,
                since=start,
                findings=findings,
                files_read=source.files_read,
                files_skipped=list(source.skipped),
                records_skipped=source.malformed,
                denied=source.denied,
                seconds=source.seconds,
                error=source.error,
            )
        )
        save_report(deck, reports[-1])
    return reports


def trail_env_names(deck: Deck, envs: list[str] | None) -> list[str]:
    """``envs`` checked (each must have a trail), or every environment with one; ConfigError when none has."""
    if not envs:
        names = trail_envs(deck)
        if not names:
            raise ConfigError(
                'no environment has a trail: set trail = "s3://BUCKET/PREFIX" (where its account\'s CloudTrail '
                "delivers) in its [environments.<name>] table"
            )
        return names
    for name in envs:
        if not deck.env(name).trail:
            raise ConfigError(
                f'{name} has no trail: set trail = "s3://BUCKET/PREFIX" (where account '
                f"{deck.env(name).account or '?'}'s CloudTrail delivers) in [environments.{name}]"
            )
    return list(dict.fromkeys(envs))


def _account_of(deck: Deck, env: str) -> str:
    configured = deck.env(env).account
    return configured or deck.tools.env(env).cloud.caller_identity()["account"]


OPSDECK_SESSION = "opsdeck-"  # every role session opsdeck opens is named so (opsdeck/wiring/tools.session_name)


@dataclass(frozen=True)
class Pipeline:
    """Who is ``env``'s pipeline: its deploy role (and in the build account the build role) as opsdeck
    uses them, in sessions opsdeck names; its break-glass role, in any session (audited on its own);
    for an environment reached with a profile, that identity."""

    opsdeck_roles: frozenset[tuple[str, str]]  # (account, role name): opsdeck's own sessions only
    roles: frozenset[tuple[str, str]]  # any session
    arns: frozenset[str]

    def made(self, event: Event) -> bool:
        if event.who in self.arns or (event.role is not None and event.role in self.roles):
            return True
        return event.role in self.opsdeck_roles and event.session.startswith(OPSDECK_SESSION)


def _pipeline(deck: Deck, env: str, account: str) -> Pipeline:
    settings = deck.env(env)
    opsdeck_roles = {role_of(settings.role)} if settings.role else set()
    build = role_of(deck.config.build.role) if deck.config.build.role else None
    if build is not None and build[0] == account:  # the build account: Packer's launches are the pipeline's
        opsdeck_roles.add(build)
    roles = {role_of(settings.break_glass_role)} if settings.break_glass_role else set()
    arns: set[str] = set()
    if settings.role is None:  # reached with a profile: whoever that profile is, is the pipeline
        arn = deck.tools.env(env).cloud.caller_identity()["arn"]
        role = role_of(arn)
        if role is not None:
            roles.add(role)
        arns.add(arn)
    return Pipeline(
        frozenset(r for r in opsdeck_roles if r is not None),
        frozenset(r for r in roles if r is not None),
        frozenset(arns),
    )


def _findings(deck: Deck, env: str, source: _Source, pipeline: Pipeline) -> list[Finding]:
    region = deck.config.region_of(env)
    tag = deck.config.conventions.env_tag
    # Every environment of the deck in this account (asked for or not): a call tagged for dev is dev's
    # even when only the sandbox beside it is read.
    account_envs = [e.name for e in deck.config.environments if e.account == source.account] + source.envs
    peers_by_region: dict[str, list[str]] = defaultdict(list)
    for other in dict.fromkeys(account_envs):
        peers_by_region[deck.config.region_of(other)].append(other)
    found: dict[str, Finding] = {}
    for event in source.events:
        if event.is_global:
            peers = account_envs
        elif event.region == region:
            peers = peers_by_region[region]
        else:
            continue
        named = event.tags.get(tag)
        if named in peers and named != env:
            continue  # tagged for another environment in the same account and region
        if pipeline.made(event):
            continue
        key = event.event_id or f"{iso(event.time)} {event.action} {event.who}"
        found.setdefault(key, Finding.of(event))
    return sorted(found.values(), key=lambda f: (f.time, f.event_id), reverse=True)


async def _read_source(
    deck: Deck, source: _Source, start: datetime, now: datetime, rep: Reporter, workers: int
) -> None:
    t0 = time.monotonic()
    cloud = await asyncio.to_thread(lambda: deck.tools.env(source.envs[0]).cloud)
    keys: list[str] = []
    for region in sorted(source.regions):
        keys += await asyncio.to_thread(_list_region, cloud, source, region, start, now)
    to_read = []
    for key in keys:
        stamp = file_stamp(key)
        if not key.endswith(".json.gz"):
            source.skipped.append(SkippedFile(key, "not a CloudTrail log file (expected a .json.gz name)"))
        elif stamp is None or stamp + timedelta(minutes=1) >= start:
            to_read.append(key)
    rep.progress(f"{len(to_read)} trail files of account {source.account}", 0, len(to_read))
    loop = asyncio.get_running_loop()
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="trail") as pool:
        jobs = [loop.run_in_executor(pool, _read_file, cloud, source.bucket, key, start) for key in to_read]
        seen: set[str] = set()
        for done, job in enumerate(asyncio.as_completed(jobs), start=1):
            key, result = await job
            if isinstance(result, SkippedFile):
                source.skipped.append(result)
            else:
                source.files_read += 1
                source.malformed += result.malformed
                source.denied += result.denied
                for event in result.events:
                    if event.event_id and event.event_id in seen:
                        continue  # CloudTrail may deliver an event twice
                    seen.add(event.event_id)
                    source.events.append(event)
            if done % 50 == 0 or done == len(jobs):
                rep.progress(f"read {done} of {len(jobs)} trail files", done, len(jobs))
    source.skipped.sort(key=lambda s: s.key)
    source.seconds = time.monotonic() - t0
    if source.skipped:
        first = source.skipped[0]
        rep.log(
            f"{len(source.skipped)} trail file(s) of account {source.account} skipped, "
            f"e.g. {first.key}: {first.reason}",
            "warning",
        )


def _list_region(cloud: ObjectStorePort, source: _Source, region: str, start: datetime, now: datetime) -> list[str]:
    """The keys of ``region``'s day folders from ``start``'s day to ``now``'s, the first from ``start``'s minute."""
    keys: list[str] = []
    day = start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    first = True
    while day <= now:
        folder = source.folder(region, day)
        after = f"{folder}{source.account}_CloudTrail_{region}_{start.astimezone(UTC):%Y%m%dT%H%M}Z" if first else ""
        keys += [k for k in cloud.list_keys(source.bucket, folder, after) if not k.endswith("/")]
        day += timedelta(days=1)
        first = False
    return keys


def _read_file(cloud: ObjectStorePort, bucket: str, key: str, start: datetime) -> tuple[str, Sorted | SkippedFile]:
    """One log file's write events since ``start``, or why it was skipped (runs in the pool)."""
    try:
        stream = cloud.open_object(bucket, key)
    except OpsdeckError as exc:
        return key, SkippedFile(key, f"could not be read: {exc}")
    if stream is None:
        return key, SkippedFile(key, "gone before it could be read")
    try:
        records = read_records(stream)
    except BadLogFile as exc:
        return key, SkippedFile(key, str(exc))
    except Exception as exc:  # the connection broke mid-stream (botocore, urllib3): this file only
        return key, SkippedFile(key, f"could not be read ({type(exc).__name__}: {' '.join(str(exc).split())})")
    finally:
        stream.close()
    return key, sort_records(records, start)
