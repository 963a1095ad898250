"""The real tools of a deck: Terraform, boto3, Packer, git, the keyring, ssh-keygen and processes, bound
to each environment's target (core's ``Tools``, core/ports/factory.py).

One factory for every tool an operation uses. An environment's tools run with that environment's
account, region and credentials: a role it names is assumed (the session name carries the
operator's name), else its profile, else the deck's. Break-glass credentials, when an operation
holds them, are passed in and used instead. On the local cloud every tool gets the endpoint and
dummy base credentials in its environment (never in argv, never by rewriting the user's .tf files),
and nothing is started when the cloud is not running, so no tool can fall through to real AWS.
"""

from __future__ import annotations

import getpass
import os
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

from opsdeck import paths
from opsdeck.adapters import localcloud
from opsdeck.adapters import secrets as stored
from opsdeck.adapters.aws import Aws
from opsdeck.adapters.checkov import Checkov, find_binary
from opsdeck.adapters.git import Git
from opsdeck.adapters.packer import Packer
from opsdeck.adapters.process import LocalProcesses
from opsdeck.adapters.sshsig import SshSigner
from opsdeck.adapters.terraform import Terraform, write_cli_config
from opsdeck.core.estate.config import DeckConfig
from opsdeck.core.estate.demo_deck import is_demo_deck
from opsdeck.core.estate.settings import UserSettings
from opsdeck.core.ports.factory import EnvTools, Target
from opsdeck.core.ports.outside import SecretsPort
from opsdeck.core.types.cloud import Credentials
from opsdeck.errors import CloudUnavailableError, ConfigError, RefusedError, ToolError

LOCAL_KEY = "opsdeck-local"  # moto accepts any key; this one says where it came from
RENEW_BEFORE = 300.0  # seconds: assumed credentials are renewed this long before they expire

# Variables that would point a tool at a real account; dropped for the local cloud.
_REAL_AWS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


def session_name(operator: str) -> str:
    """An STS role session name naming the operator (AWS allows [\\w+=,.@-], 2 to 64 characters)."""
    cleaned = re.sub(r"[^\w+=,.@-]+", "-", operator).strip("-") or "operator"
    return f"opsdeck-{cleaned}"[:64]


class LiveTools:
    """The real adapters, for one deck."""

    def __init__(self, root: Path, config: DeckConfig, settings: UserSettings) -> None:
        self.root = root
        self.config = config
        self.settings = settings
        self._lock = threading.RLock()
        self._git: Git | None = None
        self._assumed: dict[str, Credentials] = {}  # role -> its current credentials
        self._assuming: dict[str, threading.Lock] = {}  # role -> held while its credentials are fetched
        self._handed_out: list[Credentials] = []  # every credential given to a tool (for redaction)
        self._env_tools: dict[tuple[str, str], EnvTools] = {}
        self._clouds: dict[tuple[str, str, str], Aws] = {}  # (region, access key, profile) -> its clients
        self._operator: str | None = None

    # -- the deck's own -----------------------------------------------------------------------

    @property
    def git(self) -> Git:
        with self._lock:
            if self._git is None:
                self._git = Git(self.root)
            return self._git

    @property
    def is_local(self) -> bool:
        return self.config.aws.local

    def endpoint(self) -> str | None:
        if not self.is_local:
            return None

        try:
            return localcloud.running_endpoint()
        except CloudUnavailableError:
            if is_demo_deck(self.root):
                raise  # its advice is to rebuild the demo
            raise CloudUnavailableError(
                "the local cloud is not running, and everything it held is gone (it keeps state in memory); "
                "`opsdeck cloud start` starts an empty one, where this deck's state buckets must be made again "
                "and its environments applied"
            ) from None

    def check_endpoint(self) -> None:
        endpoint = self.endpoint()
        if endpoint is not None and not localcloud.answers(endpoint, timeout=2.0):
            again = ", or restart the demo with `opsdeck demo --reset`" if is_demo_deck(self.root) else ""
            raise CloudUnavailableError(
                f"the local cloud at {endpoint} does not answer (stopped or overloaded); try again{again}"
            )

    def operator(self) -> str:
        """Who opsdeck acts for: the git identity's name, else the OS user."""
        if self._operator is None:
            try:
                self._operator = self.git.user_name() or getpass.getuser()
            except Exception:  # no git to ask: the OS user is still someone
                self._operator = getpass.getuser()
        return self._operator

    def backend_config(self) -> dict[str, str]:
        if not self.is_local:
            return {}
        return {
            "use_path_style": "true",
            "skip_credentials_validation": "true",
            "skip_requesting_account_id": "true",
            "skip_s3_checksum": "true",
        }

    def redact(self, text: str) -> str:
        with self._lock:
            secrets = [s for creds in self._handed_out for s in creds.secrets()]
        for secret in secrets:
            if secret in text:
                text = text.replace(secret, "********")
        return text

    # -- targets and credentials --------------------------------------------------------------

    def env_target(self, name: str) -> Target:
        env = self.config.env(name)
        return Target(
            name=name,
            region=env.region or self.config.aws.region,
            account=env.account,
            role=env.role,
            profile=env.profile or (None if env.role else self.config.aws.profile),
        )

    def build_target(self) -> Target:
        build = self.config.build
        return Target(
            name="build",
            region=self.config.build_region,
            account=build.account,
            role=build.role,
            profile=build.profile or (None if build.role else self.config.aws.profile),
        )

    def _base_cloud(self, region: str, profile: str | None) -> Aws:
        """boto3 with the operator's own credentials (the local cloud's dummies, or a profile)."""
        creds = Credentials(LOCAL_KEY, LOCAL_KEY) if self.is_local else None
        return Aws(region, endpoint=self.endpoint(), profile=None if self.is_local else profile, credentials=creds)

    def credentials(self, target: Target) -> Credentials | None:
        """The credentials ``target`` is reached with: its role's (assumed, renewed before they expire),
        the local cloud's dummies, or None (its profile, or the default chain)."""
        if target.role is None:
            return Credentials(LOCAL_KEY, LOCAL_KEY) if self.is_local else None
        with self._lock:
            assuming = self._assuming.setdefault(target.role, threading.Lock())
        # One fetch per role at a time: a second caller (the state bucket check beside a plan, in the same
        # account) waits for the first's credentials instead of loading boto3 and assuming the role again.
        with assuming:
            with self._lock:
                held = self._assumed.get(target.role)
                if held is not None and (held.expires_at is None or held.expires_at - time.time() > RENEW_BEFORE):
                    return held
            base = self._base_cloud(target.region, target.profile)
            try:
                creds = base.assume_role(target.role, session_name(self.operator()))
            except ToolError as exc:
                detail = str(exc).removeprefix(f"{exc.step}: ")
                raise RefusedError(
                    f"{target.name}: cannot assume {target.role} in account {target.account or '?'}: {detail}"
                ) from None
            with self._lock:
                self._assumed[target.role] = creds
                self._handed_out.append(creds)
            return creds

    def _cloud(self, target: Target, creds: Credentials | None, region: str | None = None) -> Aws:
        region = region or target.region
        profile = None if (creds or self.is_local) else target.profile
        # Keyed by what the clients are made from, not by the target: environments reached the same way (one
        # account's role, as sandbox and dev are) share their clients, each made once.
        key = (region, creds.access_key if creds else "", profile or "")
        with self._lock:
            if key not in self._clouds:
                self._clouds[key] = Aws(region, endpoint=self.endpoint(), profile=profile, credentials=creds)
            return self._clouds[key]

    def env(self, name: str, credentials: Credentials | None = None) -> EnvTools:
        target = self.env_target(name)
        if credentials is not None:
            with self._lock:
                if credentials not in self._handed_out:
                    self._handed_out.append(credentials)
        creds = credentials or self.credentials(target)
        key = (name, creds.access_key if creds else "")
        with self._lock:
            found = self._env_tools.get(key)
        if found is not None:
            return found
        workdir = self.root / self.config.env(name).path
        tools = EnvTools(
            target=target,
            terraform=Terraform(
                workdir,
                self.tool_env(target, creds),
                binary=self.settings.terraform.binary,
                redact=self.redact,
            ),
            cloud=self._cloud(target, creds),
        )
        with self._lock:
            self._env_tools[key] = tools
        return tools

    def env_copy(self, name: str, region: str, workdir: Path, credentials: Credentials | None = None) -> EnvTools:
        target = replace(self.env_target(name), region=region)
        if credentials is not None:
            with self._lock:
                if credentials not in self._handed_out:
                    self._handed_out.append(credentials)
        creds = credentials or self.credentials(target)
        terraform = Terraform(
            workdir, self.tool_env(target, creds), binary=self.settings.terraform.binary, redact=self.redact
        )
        return EnvTools(target=target, terraform=terraform, cloud=self._cloud(target, creds))

    def build(self, region: str | None = None) -> Aws:
        target = self.build_target()
        return self._cloud(target, self.credentials(target), region)

    def account(self, account: str, region: str) -> Aws:
        targets = [self.env_target(name) for name in self.config.env_names] + [self.build_target()]
        for target in targets:
            if target.account == account:
                return self._cloud(target, self.credentials(target), region)
        known = sorted({t.account for t in targets if t.account})
        raise RefusedError(
            f"no environment of this deck is in account {account} (it reaches {', '.join(known) or 'no named account'})"
        )

    def packer(self) -> Packer:
        target = self.build_target()
        return Packer(
            self.tool_env(target, self.credentials(target)), binary=self.settings.packer.binary, redact=self.redact
        )

    def policy(self) -> Checkov:
        return Checkov(find_binary(self.settings.checkov.binary))

    def secrets(self) -> SecretsPort:
        keyring = stored.KeyringSecrets(self.config.name)
        if self.is_local and is_demo_deck(self.root):
            # The demo on a machine without a keyring backend keeps its own credentials in a file of its
            # own, labelled as such wherever break-glass shows where its credentials came from.
            return stored.FallbackSecrets(keyring, stored.FileSecrets(self.root / ".opsdeck" / stored.DEMO_STORE))
        return keyring

    def signer(self) -> SshSigner:
        return SshSigner()

    def processes(self) -> LocalProcesses:
        return LocalProcesses()

    def tool_env(self, target: Target, creds: Credentials | None) -> dict[str, str]:
        """The process environment of a tool opsdeck starts (Terraform, Packer) for ``target``."""
        out = dict(os.environ)
        out["AWS_REGION"] = target.region
        out["AWS_DEFAULT_REGION"] = target.region
        out["TF_IN_AUTOMATION"] = "1"
        out["TF_INPUT"] = "0"
        out["CHECKPOINT_DISABLE"] = "1"  # no version check calls home
        out["PACKER_CHECKPOINT_DISABLE"] = "1"
        mirror = self.settings.terraform.plugin_mirror
        if mirror:
            mirror_path = Path(mirror).expanduser()
            if not (mirror_path / "registry.terraform.io").is_dir():
                raise ConfigError(
                    f"terraform.plugin_mirror: {mirror} is not a provider mirror "
                    "(expected the folder above registry.terraform.io)"
                )
            out["TF_CLI_CONFIG_FILE"] = str(write_cli_config(mirror_path, paths.cache_dir()))
        if self.is_local:
            for key in _REAL_AWS:
                out.pop(key, None)
            endpoint = self.endpoint()
            assert endpoint is not None
            out.update(
                {
                    "AWS_ENDPOINT_URL": endpoint,
                    "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_CONFIG_FILE": os.devnull,
                    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                }
            )
        if creds is not None:
            out.pop("AWS_PROFILE", None)
            out["AWS_ACCESS_KEY_ID"] = creds.access_key
            out["AWS_SECRET_ACCESS_KEY"] = creds.secret_key
            if creds.session_token:
                out["AWS_SESSION_TOKEN"] = creds.session_token
            else:
                out.pop("AWS_SESSION_TOKEN", None)
        elif target.profile:
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
                out.pop(key, None)
            out["AWS_PROFILE"] = target.profile
        return out
