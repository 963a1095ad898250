"""The one factory of tools a deck's operations use (``Tools``), and what it binds them to: a target
(an account and a region, and how opsdeck reaches them) and one environment's tools (``EnvTools``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from opsdeck.core.ports.cloud import CloudPort
from opsdeck.core.ports.git import GitPort
from opsdeck.core.ports.outside import ProcessPort, SecretsPort, SignerPort
from opsdeck.core.ports.tools import PackerPort, PolicyPort, TerraformPort
from opsdeck.core.types.cloud import Credentials


@dataclass(frozen=True)
class Target:
    """Where something runs: an account and a region, and how opsdeck reaches them."""

    name: str  # an environment's name, or "build"
    region: str
    account: str | None = None  # the configured account id (checked against STS before a change)
    role: str | None = None  # a role to assume
    profile: str | None = None  # or a profile of the AWS config

    def describe(self) -> str:
        where = f"account {self.account}" if self.account else "the default account"
        how = f" as {self.role}" if self.role else f" with profile {self.profile}" if self.profile else ""
        return f"{self.name} ({where}, {self.region}{how})"


@dataclass(frozen=True)
class EnvTools:
    """One environment's tools, bound to its target and credentials."""

    target: Target
    terraform: TerraformPort
    cloud: CloudPort


class Tools(Protocol):
    """The one factory of tools a deck's operations use."""

    @property
    def git(self) -> GitPort: ...

    @property
    def is_local(self) -> bool:
        """On the embedded local cloud (dummy credentials, the local endpoint)."""
        ...

    def endpoint(self) -> str | None:
        """The local cloud's endpoint; None for a real account."""
        ...

    def check_endpoint(self) -> None:
        """The cloud answers (cheap; nothing to check for a real account)."""
        ...

    def env(self, name: str, credentials: Credentials | None = None) -> EnvTools:
        """``name``'s tools, with its own credentials (its role or profile), or with ``credentials``
        (break-glass) instead."""
        ...

    def env_copy(self, name: str, region: str, workdir: Path, credentials: Credentials | None = None) -> EnvTools:
        """``name``'s tools (its account, its credentials or ``credentials``) aimed at ``region``, with
        Terraform in ``workdir``: a copy of its root module (opsdeck recover)."""
        ...

    def build(self, region: str | None = None) -> CloudPort:
        """The build account (where images are baked and kept), in its region or in ``region``."""
        ...

    def build_target(self) -> Target: ...

    def account(self, account: str, region: str) -> CloudPort:
        """``account`` in ``region``, reached as the first environment in that account (or the build)
        is; RefusedError naming the account when the deck reaches no such account."""
        ...

    def packer(self) -> PackerPort: ...

    def policy(self) -> PolicyPort:
        """The policy engine; ToolMissingError (one line: how to install it) when there is none."""
        ...

    def secrets(self) -> SecretsPort:
        """Where this deck's break-glass credentials are kept."""
        ...

    def signer(self) -> SignerPort: ...

    def processes(self) -> ProcessPort: ...

    def backend_config(self) -> dict[str, str]:
        """Extra `-backend-config` settings for `terraform init` (the local cloud needs some)."""
        ...

    def redact(self, text: str) -> str:
        """``text`` with every secret this factory handed out masked."""
        ...
