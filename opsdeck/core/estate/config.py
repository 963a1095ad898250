"""A deck's `opsdeck.toml`, parsed into typed settings and checked as a whole."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from opsdeck.core.estate.schema import Where, build, describe, read_toml, setting
from opsdeck.errors import ConfigError

CONFIG_FILE = "opsdeck.toml"
ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
ACCOUNT_ID = re.compile(r"^\d{12}$")

Approval = Literal["none", "confirm", "typed"]


@dataclass(frozen=True)
class AwsSettings:
    """Where the deck's environments live."""

    region: str = setting(doc="AWS region of every environment, e.g. us-east-1.")
    state_bucket: str = setting(doc="S3 bucket holding the Terraform state of every environment.")
    local: bool = setting(False, doc="Run on the embedded local cloud (moto) instead of a real account.")
    profile: str | None = setting(None, doc="AWS profile for a real account (ignored when local).")
    protected_accounts: tuple[str, ...] = setting(
        (), doc="Account ids where nuke-and-rebuild is refused, whatever the environment says."
    )


@dataclass(frozen=True)
class ImageSettings:
    """The image recipes (Packer templates), relative to the deck."""

    app: str = setting(doc="Application name; the AMI tag app = <app> finds the deck's images.")
    recipe: str = setting(doc="Packer template of the application image.")
    base_recipe: str | None = setting(None, doc="Packer template of the base image the app image builds on.")


@dataclass(frozen=True)
class SafetySettings:
    """How hard it is to change things."""

    break_glass_minutes: int = setting(30, doc="How long break-glass lasts once opened.")


@dataclass(frozen=True)
class EnvSettings:
    """One environment: a Terraform root module and what may be done to it."""

    name: str = setting(doc="The environment's name (the table's key).")
    path: str = setting("", doc="Its root module, relative to the deck (default envs/<name>).")
    sandbox: bool = setting(False, doc="Nuke-and-rebuild is allowed.")
    protected: bool = setting(False, doc="Read-only unless break-glass.")
    promote_from: str | None = setting(None, doc="The environment whose images may be promoted here.")
    approval: Approval | None = setting(
        None, doc='How hard the confirmation is: "none", "confirm" or "typed" (the default when protected).'
    )

    @property
    def confirmation(self) -> Approval:
        if self.approval is not None:
            return self.approval
        return "typed" if self.protected else "confirm"


@dataclass(frozen=True)
class DeckConfig:
    """The whole of opsdeck.toml."""

    name: str = setting(doc="The deck's name, shown in the header.")
    aws: AwsSettings = setting(doc="The AWS side.")
    image: ImageSettings = setting(doc="The image recipes.")
    environments: tuple[EnvSettings, ...] = setting(factory=tuple, doc="Environments, in file order.")
    safety: SafetySettings = setting(factory=SafetySettings, doc="Safety settings.")
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


def load_config(root: Path) -> DeckConfig:
    """Read and check ``root/opsdeck.toml``; every mistake is one ConfigError line."""
    path = root / CONFIG_FILE
    label = str(path) if os.environ.get("OPSDECK_FULL_PATHS") else CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"no {CONFIG_FILE} in {root} (pass --deck DIR or set OPSDECK_DECK)")
    data = read_toml(path, label)
    where = Where(label)
    envs = data.get("environments")
    if not isinstance(envs, dict) or not envs:
        raise where.child("environments").error("expected at least one [environments.<name>] table")
    built = []
    for name, table in envs.items():
        env_where = where.child("environments").child(name)
        if not ENV_NAME.match(name):
            raise env_where.error("environment names are lower-case letters, digits and dashes")
        if not isinstance(table, dict):
            raise env_where.error(f"expected a table, got {describe(table)}")
        if "name" in table:
            raise env_where.child("name").error("unknown key (the table's key is the name)")
        env = build(EnvSettings, {"path": f"envs/{name}", **table, "name": name}, env_where)
        built.append(env)
    config = build(DeckConfig, {k: v for k, v in data.items() if k != "environments"}, where)
    config = replace(config, environments=tuple(built))
    _check(config, root, where)
    return config


def _check(config: DeckConfig, root: Path, where: Where) -> None:
    names = config.env_names
    envs_where = where.child("environments")
    for env in config.environments:
        ew = envs_where.child(env.name)
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
    for env in config.environments:
        seen = [env.name]
        current = env
        while current.promote_from is not None:
            current = config.env(current.promote_from)
            if current.name in seen:
                chain = " -> ".join([*seen, current.name])
                raise envs_where.child(env.name).child("promote_from").error(f"promote chain has a cycle: {chain}")
            seen.append(current.name)
    for account in config.aws.protected_accounts:
        if not ACCOUNT_ID.match(account):
            raise (
                where.child("aws").child("protected_accounts").error(f"expected 12-digit account ids, got {account!r}")
            )
    for key in ("recipe", "base_recipe"):
        rel = getattr(config.image, key)
        if rel is not None and not (root / rel).is_file():
            raise where.child("image").child(key).error(f"expected a Packer template, {rel} does not exist")
    if config.safety.break_glass_minutes <= 0:
        raise where.child("safety").child("break_glass_minutes").error("expected a positive number of minutes")
    if config.refresh_minutes <= 0:
        raise where.child("refresh_minutes").error("expected a positive number of minutes")
    if config.drift_minutes < 0:
        raise where.child("drift_minutes").error("expected a number of minutes, 0 or more")
