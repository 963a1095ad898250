"""A deck's `opsdeck.toml`, parsed into typed settings and checked as a whole.

A deck is an estate: services (each with its Packer recipe, built on a shared base layer), and
environments (each a Terraform root module with its account, region and how to reach them). The
single-image format of earlier decks (an ``[image]`` table) reads as one service.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from opsdeck.core.estate.pins import pin_spec
from opsdeck.core.estate.schema import Where, build, describe, read_toml, setting
from opsdeck.core.estate.sections import (
    ACCOUNT_ID,
    ENV_NAME,
    REGION,
    ROLE_ARN,
    SERVICE_NAME,
    TAG_KEY,
    TRAIL_URL,
    AwsSettings,
    BaseSettings,
    BuildSettings,
    Conventions,
    EngineSettings,
    EnvSettings,
    ImageSettings,
    OrphanSettings,
    PolicySettings,
    SafetySettings,
    ServiceSettings,
    TeamSettings,
)
from opsdeck.errors import ConfigError

CONFIG_FILE = "opsdeck.toml"


@dataclass(frozen=True)
class DeckConfig:
    """The whole of opsdeck.toml."""

    name: str = setting(doc="The deck's name, shown in the header.")
    aws: AwsSettings = setting(doc="The AWS side.")
    services: tuple[ServiceSettings, ...] = setting(factory=tuple, doc="Services, in file order.")
    base: BaseSettings | None = setting(None, doc="The shared base layer.")
    build: BuildSettings = setting(factory=BuildSettings, doc="The build account.")
    conventions: Conventions = setting(factory=Conventions, doc="Tag and pin names of the deck's Terraform.")
    environments: tuple[EnvSettings, ...] = setting(factory=tuple, doc="Environments, in file order.")
    safety: SafetySettings = setting(factory=SafetySettings, doc="Safety settings.")
    engine: EngineSettings = setting(factory=EngineSettings, doc="Where operations run (in-process or workers).")
    orphans: OrphanSettings = setting(factory=OrphanSettings, doc="Orphaned resources and their cost estimates.")
    team: TeamSettings = setting(factory=TeamSettings, doc="The shared ledger and approvals.")
    policy: PolicySettings | None = setting(None, doc="The policy gate on every plan (none: no policy gate).")
    image: ImageSettings | None = setting(None, doc="The single-image format of earlier decks (one service).")
    refresh_minutes: float = setting(5.0, doc="How often the open deck refreshes plans and instances on its own.")
    drift_minutes: float = setting(
        60.0, doc="How old a drift check may get before the open deck runs another on its own (0: only on d)."
    )
    description: str = setting("", doc="One line about the deck.")

    def env(self, name: str) -> EnvSettings:
        for env in self.environments:
            if env.name == name:
                return env
        known = ", ".join(e.name for e in self.environments)
        raise ConfigError(f"unknown environment {name!r} (this deck has: {known})")

    @property
    def env_names(self) -> list[str]:
        return [e.name for e in self.environments]

    def next_env(self, name: str) -> EnvSettings | None:
        """The environment that promotes from ``name``, if any."""
        return next((e for e in self.environments if e.promote_from == name), None)

    def service(self, name: str) -> ServiceSettings:
        for service in self.services:
            if service.name == name:
                return service
        known = ", ".join(s.name for s in self.services)
        raise ConfigError(f"unknown service {name!r} (this deck has: {known})")

    @property
    def service_names(self) -> list[str]:
        return [s.name for s in self.services]

    def services_named(self, names: list[str] | tuple[str, ...] | None) -> list[str]:
        """``names`` checked (each must be a service of the deck), or every service when empty."""
        if not names:
            return self.service_names
        for name in names:
            self.service(name)
        return list(dict.fromkeys(names))

    @property
    def base_recipe(self) -> str | None:
        return self.base.recipe if self.base else None

    def region_of(self, env: str) -> str:
        return self.env(env).region or self.aws.region

    @property
    def build_region(self) -> str:
        return self.build.region or self.aws.region

    @property
    def regions(self) -> list[str]:
        """Every region the deck uses, the build region first."""
        return list(dict.fromkeys([self.build_region, *(self.region_of(e.name) for e in self.environments)]))


def load_config(root: Path) -> DeckConfig:
    """Read and check ``root/opsdeck.toml``; every mistake is one ConfigError line."""
    path = root / CONFIG_FILE
    label = str(path) if os.environ.get("OPSDECK_FULL_PATHS") else CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"no {CONFIG_FILE} in {root} (pass --deck DIR or set OPSDECK_DECK)")
    data = read_toml(path, label)
    where = Where(label)
    envs = _named_tables(data.get("environments"), where.child("environments"), "environment", ENV_NAME)
    services = _named_tables(data.get("services"), where.child("services"), "service", SERVICE_NAME, required=False)
    built_envs = tuple(
        build(EnvSettings, {"path": f"envs/{name}", **table, "name": name}, where.child("environments").child(name))
        for name, table in envs.items()
    )
    built_services = tuple(
        build(ServiceSettings, {**table, "name": name}, where.child("services").child(name))
        for name, table in services.items()
    )
    rest = {k: v for k, v in data.items() if k not in ("environments", "services")}
    config = build(DeckConfig, rest, where)
    config = replace(config, environments=built_envs, services=built_services)
    config = _single_image_as_service(config, where)
    _check(config, root, where)
    return config


def _named_tables(
    value: Any, where: Where, kind: str, pattern: re.Pattern[str], *, required: bool = True
) -> dict[str, dict[str, Any]]:
    if value is None and not required:
        return {}
    if not isinstance(value, dict) or (required and not value):
        raise where.error(f"expected at least one [{where.key}.<name>] table")
    for name, table in value.items():
        child = where.child(name)
        if not pattern.match(name):
            raise child.error(f"{kind} names are lower-case letters, digits and dashes")
        if not isinstance(table, dict):
            raise child.error(f"expected a table, got {describe(table)}")
        if "name" in table:
            raise child.child("name").error("unknown key (the table's key is the name)")
    return value


def _single_image_as_service(config: DeckConfig, where: Where) -> DeckConfig:
    """An ``[image]`` table (the single-image format) is one service named after its app."""
    if config.image is None:
        if not config.services:
            raise where.child("services").error("expected at least one [services.<name>] table (or an [image] table)")
        return config
    if config.services:
        raise where.child("image").error("a deck has either [image] (one service) or [services.<name>], not both")
    if config.base is not None and config.image.base_recipe:
        raise where.child("image").child("base_recipe").error("the base layer is already [base]: drop one")
    service = ServiceSettings(name=config.image.app, recipe=config.image.recipe)
    base = config.base or (BaseSettings(recipe=config.image.base_recipe) if config.image.base_recipe else None)
    return replace(config, services=(service,), base=base)


def _check(config: DeckConfig, root: Path, where: Where) -> None:
    envs_where = where.child("environments")
    for env in config.environments:
        _check_env(config, root, envs_where.child(env.name), env)
    for env in config.environments:
        seen = [env.name]
        current = env
        while current.promote_from is not None:
            current = config.env(current.promote_from)
            if current.name in seen:
                chain = " -> ".join([*seen, current.name])
                raise envs_where.child(env.name).child("promote_from").error(f"promote chain has a cycle: {chain}")
            seen.append(current.name)
    _check_deck(config, root, where)


def _check_deck(config: DeckConfig, root: Path, where: Where) -> None:
    """What the deck holds besides its environments: the AWS side, the build, recipes, policy, limits."""
    for account in config.aws.protected_accounts:
        if not ACCOUNT_ID.match(account):
            raise (
                where.child("aws").child("protected_accounts").error(f"expected 12-digit account ids, got {account!r}")
            )
    if not REGION.match(config.aws.region):
        raise (
            where.child("aws")
            .child("region")
            .error(f"expected an AWS region such as us-east-1, got {config.aws.region!r}")
        )
    _check_target(
        where.child("build"), config.build.account, config.build.region, config.build.role, config.build.profile
    )
    services_where = where.child("image") if config.image is not None else where.child("services")
    for service in config.services:
        sw = services_where if config.image is not None else services_where.child(service.name)
        recipe_where = sw.child("recipe")
        if not (root / service.recipe).is_file():
            raise recipe_where.error(f"expected a Packer template, {service.recipe} does not exist")
    if config.base is not None and not (root / config.base.recipe).is_file():
        legacy = config.image is not None and config.image.base_recipe is not None
        base_where = where.child("image").child("base_recipe") if legacy else where.child("base").child("recipe")
        raise base_where.error(f"expected a Packer template, {config.base.recipe} does not exist")
    _check_conventions(config.conventions, where.child("conventions"))
    _check_pins(config, where)
    if config.policy is not None:
        pw = where.child("policy")
        if config.policy.checks is not None and not (root / config.policy.checks).is_dir():
            raise pw.child("checks").error(
                f"expected a folder of Checkov checks, {config.policy.checks} does not exist"
            )
        for check in config.policy.skip:
            if not re.match(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$", check):
                raise pw.child("skip").error(f"expected Checkov check ids such as CKV_AWS_79, got {check!r}")
    if config.safety.break_glass_minutes <= 0:
        raise where.child("safety").child("break_glass_minutes").error("expected a positive number of minutes")
    if config.team.fetch_seconds <= 0:
        raise where.child("team").child("fetch_seconds").error("expected a positive number of seconds")
    if config.refresh_minutes <= 0:
        raise where.child("refresh_minutes").error("expected a positive number of minutes")
    if config.drift_minutes < 0:
        raise where.child("drift_minutes").error("expected a number of minutes, 0 or more")
    _check_orphans(config.orphans, root, where.child("orphans"))


def _check_env(config: DeckConfig, root: Path, ew: Where, env: EnvSettings) -> None:
    """One environment's table: its promote source, path, target, soak and standby, rollouts, approvals."""
    names = config.env_names
    if env.promote_from is not None and env.promote_from not in names:
        others = ", ".join(n for n in names if n != env.name)
        raise ew.child("promote_from").error(
            f"expected the name of another environment ({others}), got {env.promote_from!r}"
        )
    if env.promote_from == env.name:
        raise ew.child("promote_from").error("an environment cannot promote from itself")
    if not (root / env.path).is_dir():
        raise ew.child("path").error(f"expected a directory with the root module, {env.path} does not exist")
    if env.sandbox and env.protected:
        raise ew.error("an environment cannot be both sandbox and protected")
    if env.ttl_hours is not None and not env.sandbox:
        raise ew.child("ttl_hours").error("a lifetime is for sandbox environments only (sandbox = true)")
    if env.ttl_hours is not None and not 0 < env.ttl_hours < float("inf"):
        raise ew.child("ttl_hours").error(f"expected a number of hours above 0, got {env.ttl_hours}")
    _check_target(ew, env.account, env.region, env.role, env.profile)
    if env.break_glass_role is not None:
        _check_role(ew.child("break_glass_role"), env.break_glass_role, env.account)
    if env.trail is not None:
        _check_trail(ew.child("trail"), env.trail)
    if env.soak_minutes < 0:
        raise ew.child("soak_minutes").error(f"expected 0 or more minutes, got {env.soak_minutes}")
    if env.soak_minutes and env.promote_from is None:
        raise ew.child("soak_minutes").error("a soak needs promote_from: the environment images soak in first")
    if env.standby_minutes < 0:
        raise ew.child("standby_minutes").error(f"expected 0 or more minutes, got {env.standby_minutes}")
    for key in ("smoke_timeout", "health_timeout"):
        if getattr(env, key) <= 0:
            raise ew.child(key).error(f"expected a number of seconds above 0, got {getattr(env, key)}")
    _check_rollouts(ew, env, config.service_names)
    if not env.blue_green and env.smoke:
        raise ew.child("smoke").error('smoke checks run against an idle color: they need rollout = "blue-green"')
    if any(not c.strip() for c in env.smoke):
        raise ew.child("smoke").error("expected commands, got an empty one")
    if env.approvals < 0:
        raise ew.child("approvals").error(f"expected 0 or more approvals, got {env.approvals}")
    signers = config.team.allowed_signers
    if env.approvals and not (root / signers).is_file():
        raise ew.child("approvals").error(
            f"{env.approvals} approvals need an allowed signers file at the deck's root (team.allowed_signers), "
            f"{signers} does not exist"
        )


def _check_rollouts(where: Where, env: EnvSettings, services: list[str]) -> None:
    for service, rollout in env.rollouts.items():
        if service not in services:
            known = ", ".join(services)
            raise where.child("rollouts").child(service).error(f"expected a service of this deck ({known})")
        if (rollout == "blue-green") != env.blue_green:
            raise (
                where.child("rollouts")
                .child(service)
                .error("blue-green is the whole environment's rollout (rollout = \"blue-green\"), not one service's")
            )
    if env.refresh_timeout <= 0:
        raise where.child("refresh_timeout").error(f"expected a number of seconds above 0, got {env.refresh_timeout}")
    refresh = env.refresh
    if not 0 <= refresh.min_healthy_percentage <= 100:
        raise (
            where.child("refresh")
            .child("min_healthy_percentage")
            .error(f"expected a percentage from 0 to 100, got {refresh.min_healthy_percentage}")
        )
    if any(not 0 < p <= 100 for p in refresh.checkpoint_percentages) or list(refresh.checkpoint_percentages) != sorted(
        set(refresh.checkpoint_percentages)
    ):
        raise (
            where.child("refresh")
            .child("checkpoint_percentages")
            .error("expected rising percentages from 1 to 100, such as [50, 100]")
        )


# Tags opsdeck itself reads on images (core/release/images.py): a deck's names must not take them.
IMAGE_TAGS = ("role", "source_image", "source_region", "revoked", "revoked_by", "revoked_at", "base_ami")


def _check_conventions(conventions: Conventions, where: Where) -> None:
    for name in ("env_tag", "service_tag", "image_service_tag", "image_version_tag"):
        value = getattr(conventions, name)
        if not TAG_KEY.match(value) or value.startswith("aws:"):
            raise where.child(name).error(f"expected a tag key, got {value!r}")
    for name in ("image_service_tag", "image_version_tag"):
        value = getattr(conventions, name)
        if value in IMAGE_TAGS:
            raise where.child(name).error(f"{value!r} is a tag opsdeck sets on images itself: pick another key")
    if conventions.image_service_tag == conventions.image_version_tag:
        raise where.child("image_version_tag").error(
            f"the service and the version of an image need two tags, both are {conventions.image_version_tag!r}"
        )


def _check_orphans(orphans: OrphanSettings, root: Path, where: Where) -> None:
    if orphans.keep_images < 1:
        raise where.child("keep_images").error(f"expected 1 or more images to keep, got {orphans.keep_images}")
    for key in ("copy_max_age_hours", "sandbox_max_age_hours"):
        if getattr(orphans, key) <= 0:
            raise where.child(key).error(f"expected a number of hours above 0, got {getattr(orphans, key)}")
    if orphans.price_table is not None and not (root / orphans.price_table).is_file():
        raise where.child("price_table").error(f"expected a JSON price table, {orphans.price_table} does not exist")


def _check_target(where: Where, account: str | None, region: str | None, role: str | None, profile: str | None) -> None:
    if account is not None and not ACCOUNT_ID.match(account):
        raise where.child("account").error(f"expected a 12-digit account id, got {account!r}")
    if region is not None and not REGION.match(region):
        raise where.child("region").error(f"expected an AWS region such as us-west-2, got {region!r}")
    if role is not None:
        _check_role(where.child("role"), role, account)
    if role is not None and profile is not None:
        raise where.error("give a role to assume or a profile, not both")


def _check_role(where: Where, role: str, account: str | None) -> None:
    match = ROLE_ARN.match(role)
    if match is None:
        raise where.error(f"expected a role ARN such as arn:aws:iam::123456789012:role/deploy, got {role!r}")
    if account is not None and match.group(1) != account:
        raise where.error(f"the role is in account {match.group(1)}, but the account is {account}")


def _check_trail(where: Where, url: str) -> None:
    match = TRAIL_URL.match(url)
    if match is None or ".." in match.group(1) or "//" in (match.group(2) or ""):
        raise where.error(f"expected the trail's log bucket as s3://bucket or s3://bucket/prefix, got {url!r}")


def _check_pins(config: DeckConfig, where: Where) -> None:
    """Two services may share a pin file, never a pin variable."""
    seen: dict[tuple[str, tuple[str, ...]], str] = {}
    for service in config.services:
        spec = pin_spec(config, service.name)
        if not spec.file or spec.file.startswith("/") or ".." in Path(spec.file).parts:
            raise (
                where.child("services")
                .child(service.name)
                .child("pin_file")
                .error(f"expected a path inside the environment's root module, got {spec.file!r}")
            )
        if not all(spec.variable) or not re.match(r"^[A-Za-z_][\w-]*$", spec.variable[0]):
            raise (
                where.child("services")
                .child(service.name)
                .child("pin_variable")
                .error(f"expected a Terraform variable name (or name.key), got {'.'.join(spec.variable)!r}")
            )
        key = (spec.file, spec.variable)
        if key in seen:
            raise (
                where.child("services")
                .child(service.name)
                .child("pin_variable")
                .error(f"{service.name} and {seen[key]} would share the pin {'.'.join(spec.variable)} in {spec.file}")
            )
        seen[key] = service.name
