"""The tables of a deck's `opsdeck.toml` below the deck itself: the AWS side, services and the base layer,
conventions, the build account, the team, policy, orphans, the engine, safety, and each environment.
core/estate/config.py reads them into a ``DeckConfig`` and checks them as a whole."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from opsdeck.core.estate.schema import setting
from opsdeck.errors import ConfigError

ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]+$")
REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
TAG_KEY = re.compile(r"^[\w .:/=+@-]{1,128}$")

Approval = Literal["none", "confirm", "typed"]
Rollout = Literal["auto", "replace", "blue-green", "instance-refresh", "instances"]


@dataclass(frozen=True)
class AwsSettings:
    """The AWS side every environment shares unless it says otherwise."""

    region: str = setting(doc="Default AWS region of the environments and the build account, e.g. us-east-1.")
    local: bool = setting(False, doc="Run on the embedded local cloud (moto) instead of real accounts.")
    profile: str | None = setting(
        None, doc="Default AWS profile for real accounts (an environment's own role or profile wins)."
    )
    protected_accounts: tuple[str, ...] = setting(
        (), doc="Account ids where nuke-and-rebuild is refused, whatever the environment says."
    )
    state_bucket: str | None = setting(
        None, doc="Kept for older decks: each environment's backend block names its own state bucket."
    )


@dataclass(frozen=True)
class ImageSettings:
    """The single-image format of earlier decks: one application, read as one service."""

    app: str = setting(doc="Application name; the AMI tag app = <app> finds its images.")
    recipe: str = setting(doc="Packer template of the application image.")
    base_recipe: str | None = setting(None, doc="Packer template of the base image the app image builds on.")


@dataclass(frozen=True)
class BaseSettings:
    """The shared base layer every service's image builds on."""

    recipe: str = setting(doc="Packer template of the base image (OS and agents).")


@dataclass(frozen=True)
class ServiceSettings:
    """One service: its image recipe, and where each environment pins its image."""

    name: str = setting(doc="The service's name (the table's key); its images carry the tag app = <name>.")
    recipe: str = setting(doc="Packer template of the service's image, relative to the deck.")
    pin_file: str | None = setting(None, doc="Pin file, relative to each environment's root module.")
    pin_variable: str | None = setting(
        None, doc='Terraform variable the pin sets; "a.b" is key b of map variable a ({service} is this name).'
    )


@dataclass(frozen=True)
class Conventions:
    """The names a team's Terraform already uses (today's defaults suit the sample decks)."""

    env_tag: str = setting("env", doc="Tag key whose value names the environment, on every resource.")
    service_tag: str = setting("app", doc="Tag key whose value names the service, on its groups and instances.")
    image_service_tag: str = setting(
        "app", doc="Tag key whose value names the service on its images (opsdeck bake's or the team's pipeline's)."
    )
    image_version_tag: str = setting(
        "version", doc="Tag key whose value is an image's version; an image without it is known by its creation time."
    )
    pin_file: str = setting(
        "image.auto.tfvars.json", doc="Where a service's pin lives, relative to each environment's root module."
    )
    pin_variable: str = setting(
        "image_id", doc='The Terraform variable a pin sets; "images.{service}" is a key of a map variable.'
    )


@dataclass(frozen=True)
class BuildSettings:
    """The build account: where images are baked and kept, and shared from."""

    account: str | None = setting(None, doc="Its account id (checked against STS before a bake).")
    region: str | None = setting(None, doc="Its region (default aws.region).")
    role: str | None = setting(None, doc="A role to assume in it.")
    profile: str | None = setting(None, doc="Or an AWS profile for it.")


@dataclass(frozen=True)
class TeamSettings:
    """The team's shared ledger (the deck's git remote) and who may approve changes."""

    remote: str | None = setting(None, doc="The git remote that is the truth (default: the branch's upstream remote).")
    branch: str | None = setting(None, doc="Its branch (default: the upstream branch of the current one).")
    allowed_signers: str = setting(
        "allowed_signers", doc="Who may approve: an SSH allowed-signers file (git's format), at the deck's root."
    )
    fetch_seconds: float = setting(
        20.0, doc="How long a fetch or push may take before the remote counts as unreachable."
    )


@dataclass(frozen=True)
class PolicySettings:
    """Policy on every plan before it is applied: Checkov's built-in checks, plus the deck's own."""

    checks: str | None = setting(
        None, doc="A folder of the deck's own Checkov checks (YAML or Python), relative to the deck."
    )
    skip: tuple[str, ...] = setting(factory=tuple, doc="Check ids not run (say why in a comment beside each).")
    enabled: bool = setting(True, doc="false: plans are applied without the policy gate (audited as such).")


@dataclass(frozen=True)
class OrphanSettings:
    """What `opsdeck orphans` counts as left behind, and the prices it estimates costs with."""

    keep_images: int = setting(
        3, doc="Each service keeps its newest N images; an older one no environment pins or runs is an orphan."
    )
    copy_max_age_hours: float = setting(24.0, doc="A recovered copy older than this many hours is an orphan.")
    sandbox_max_age_hours: float = setting(
        72.0, doc="A sandbox whose oldest resource is older than this many hours is an orphan (rebuild or destroy it)."
    )
    price_table: str | None = setting(
        None, doc="The deck's own on-demand price table (JSON, relative to the deck) instead of opsdeck's dated one."
    )


@dataclass(frozen=True)
class EngineSettings:
    """Where operations run: in this process (no broker), or as jobs on Celery workers."""

    broker: str = setting(
        "", doc="The Redis URL of the job broker (redis://HOST:PORT/DB); empty: run in-process. $OPSDECK_BROKER wins."
    )
    wait_seconds: float = setting(
        60.0, doc="How long a job waits for a worker that serves its account before it is given up."
    )


@dataclass(frozen=True)
class SafetySettings:
    """How hard it is to change things."""

    break_glass_minutes: int = setting(30, doc="How long break-glass lasts once opened.")


@dataclass(frozen=True)
class RefreshSettings:
    """How opsdeck starts an instance refresh itself (``start_refresh = true``): StartInstanceRefresh's
    preferences, as a group's instance_refresh block would give them."""

    min_healthy_percentage: int = setting(
        90, doc="Percent of the group that stays in service while instances are replaced (AWS's default 90)."
    )
    instance_warmup: int | None = setting(None, doc="Seconds a new instance warms up before it counts as healthy.")
    skip_matching: bool = setting(False, doc="Leave instances that already run the new launch template alone.")
    auto_rollback: bool = setting(
        False, doc="AWS rolls the group back on its own when the refresh fails (the refresh names its target)."
    )
    checkpoint_percentages: tuple[int, ...] = setting(
        factory=tuple, doc="Percentages at which the refresh pauses for checkpoint_delay seconds."
    )
    checkpoint_delay: int | None = setting(None, doc="Seconds the refresh waits at each checkpoint.")


@dataclass(frozen=True)
class EnvSettings:
    """One environment: a Terraform root module, where it runs, and what may be done to it."""

    name: str = setting(doc="The environment's name (the table's key).")
    path: str = setting("", doc="Its root module, relative to the deck (default envs/<name>).")
    account: str | None = setting(None, doc="Its AWS account id; checked against STS before any change.")
    region: str | None = setting(None, doc="Its AWS region (default aws.region).")
    role: str | None = setting(None, doc="The role opsdeck assumes to reach it (its deploy role).")
    profile: str | None = setting(None, doc="Or the AWS profile that reaches it.")
    break_glass_role: str | None = setting(
        None, doc="The role behind its break-glass credentials (the demo mints them from it; the trail knows it)."
    )
    trail: str | None = setting(
        None,
        doc='Where the account\'s CloudTrail delivers its log files, "s3://bucket" or "s3://bucket/prefix" '
        "(`opsdeck trail` reads the changes made outside the pipeline from them).",
    )
    sandbox: bool = setting(False, doc="Nuke-and-rebuild is allowed.")
    ttl_hours: float | None = setting(
        None,
        doc="A sandbox's lifetime in hours, counted from its last build (its first apply, or its last "
        "nuke-and-rebuild); `opsdeck sandbox expire` destroys it once ended (`sandbox extend` adds hours).",
    )
    protected: bool = setting(False, doc="Read-only unless break-glass.")
    promote_from: str | None = setting(None, doc="The environment whose images may be promoted here.")
    approval: Approval | None = setting(
        None, doc='How hard the confirmation is: "none", "confirm" or "typed" (the default when protected).'
    )
    approvals: int = setting(
        0, doc="How many allowed signers other than the requester must approve a change before it runs."
    )
    soak_minutes: float = setting(
        0.0,
        doc="How long an image must have run in the environment this one promotes from before it may come here.",
    )
    rollout: Rollout = setting(
        "auto",
        doc='How a new image reaches the instances: "auto" (read from each plan and the cloud), "replace" (a new '
        'group replaces the old one, red/black), "blue-green" (the idle color takes the image, passes the gates, '
        'then traffic switches to it), "instance-refresh" (one group, its launch template updated in place, '
        'rolled by the group\'s instance refresh) or "instances" (plain instances, replaced by Terraform).',
    )
    rollouts: dict[str, Rollout] = setting(
        factory=dict, doc='Per-service rollouts where a service differs from the environment\'s: {batch = "instances"}.'
    )
    start_refresh: bool = setting(
        False,
        doc="instance-refresh: opsdeck starts the refresh itself (preferences from [environments.<name>.refresh]) "
        "when the apply starts none (a group with no instance_refresh block, or on $Latest).",
    )
    refresh: RefreshSettings = setting(factory=RefreshSettings, doc="The preferences of a refresh opsdeck starts.")
    refresh_timeout: float = setting(
        3600.0, doc="instance-refresh: seconds a refresh may take before opsdeck stops it and puts the pins back."
    )
    standby_minutes: float = setting(
        30.0,
        doc="blue-green: how long the color that was live stays warm (in service, out of traffic) after a switch, "
        "so a rollback is the switch alone (0: scaled to zero at once).",
    )
    smoke: tuple[str, ...] = setting(
        factory=tuple,
        doc="blue-green: smoke-check commands run against the new color before traffic switches to it "
        "(OPSDECK_ENDPOINT, OPSDECK_PREVIEW_HOST, OPSDECK_COLOR, OPSDECK_IMAGE ... in their environment).",
    )
    smoke_timeout: float = setting(60.0, doc="blue-green: seconds a smoke command may run before it fails the release.")
    health_timeout: float = setting(
        300.0, doc="blue-green: seconds the new color's targets have to become healthy before the release stops."
    )

    @property
    def blue_green(self) -> bool:
        return self.rollout == "blue-green"

    def rollout_of(self, service: str) -> Rollout:
        """How ``service`` rolls out here: its own override, else the environment's rollout."""
        return self.rollouts.get(service, self.rollout)

    @property
    def confirmation(self) -> Approval:
        if self.approval is not None:
            return self.approval
        return "typed" if self.protected else "confirm"


TRAIL_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/([\w!.*'()/=+@-]*))?$")


def trail_location(url: str) -> tuple[str, str]:
    """(bucket, prefix) of a checked ``trail`` setting; the prefix has no slash at either end."""
    match = TRAIL_URL.match(url)
    if match is None:
        raise ConfigError(f"expected s3://bucket or s3://bucket/prefix, got {url!r}")
    return match.group(1), (match.group(2) or "").strip("/")
