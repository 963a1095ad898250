"""A deck: its config, its directories, and the tools (Terraform, Packer, AWS, git) set up for it.

On the local cloud every tool opsdeck starts gets the endpoint and dummy credentials in its
environment (never in argv and never by rewriting the user's .tf files); if the cloud is not
running, nothing is started at all, so no tool can fall through to the real AWS hosts.
"""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from opsdeck.core.estate.config import DeckConfig, EnvSettings, load_config
from opsdeck.core.estate.settings import UserSettings, load_settings
from opsdeck.errors import CloudUnavailableError, ConfigError

if TYPE_CHECKING:
    from opsdeck.adapters.aws import Aws, Credentials
    from opsdeck.adapters.git import Git
    from opsdeck.adapters.packer import Packer
    from opsdeck.adapters.terraform import Terraform

PIN_FILE = "image.auto.tfvars.json"
LOCAL_KEY = "opsdeck-local"  # moto accepts any key; this one says where it came from

# Variables that would point a tool at a real account; dropped for the local cloud.
_REAL_AWS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
)


def find_deck_root(explicit: str | None) -> Path:
    """--deck, then $OPSDECK_DECK, then the current directory."""
    chosen = explicit or os.environ.get("OPSDECK_DECK") or "."
    root = Path(chosen).expanduser()
    if not root.is_dir():
        raise ConfigError(f"deck directory {chosen} does not exist")
    return root.resolve()


class Deck:
    """One deck, opened from its directory."""

    def __init__(self, root: Path, config: DeckConfig, settings: UserSettings) -> None:
        self.root = root
        self.config = config
        self.settings = settings
        self._terraform: dict[str, Terraform] = {}
        self._credentials: dict[str, Credentials] = {}
        self._aws: dict[str, Aws] = {}

    @classmethod
    def open(cls, root: Path) -> Deck:
        return cls(root, load_config(root), load_settings())

    # -- layout -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def local_dir(self) -> Path:
        """Deck-local files that are not code: plans, snapshots, locks, the audit log (git-ignored)."""
        path = self.root / ".opsdeck"
        path.mkdir(exist_ok=True)
        return path

    def env(self, name: str) -> EnvSettings:
        return self.config.env(name)

    def env_dir(self, name: str) -> Path:
        return self.root / self.env(name).path

    def pin_rel(self, name: str) -> str:
        return f"{self.env(name).path}/{PIN_FILE}"

    # -- the cloud ----------------------------------------------------------------------------

    @property
    def is_local(self) -> bool:
        return self.config.aws.local

    def endpoint(self) -> str | None:
        """The local cloud's endpoint (an error when it is not running), None for a real account."""
        if not self.is_local:
            return None
        from opsdeck.adapters import localcloud

        return localcloud.running_endpoint()

    def check_endpoint(self) -> None:
        """The local cloud runs and answers (a cheap check: no boto3); nothing to check for a real account."""
        if self.is_local:
            from opsdeck.adapters import localcloud

            endpoint = localcloud.running_endpoint()
            if not localcloud.answers(endpoint, timeout=2.0):
                raise CloudUnavailableError(
                    f"the local cloud at {endpoint} does not answer (stopped or overloaded); "
                    "try again, or restart the demo with `opsdeck demo --reset`"
                )

    def check_cloud(self) -> None:
        """The cloud answers and still holds this deck's state bucket (moto forgets all on restart)."""
        self.check_endpoint()
        aws = self.aws()
        if not aws.bucket_exists(self.config.aws.state_bucket):
            if self.is_local:
                raise CloudUnavailableError(
                    f"the local cloud does not hold this deck's state (bucket {self.config.aws.state_bucket} "
                    "is gone: the cloud was restarted and keeps state in memory); "
                    "run `opsdeck demo --reset` to recreate the demo deck"
                )
            raise CloudUnavailableError(f"state bucket {self.config.aws.state_bucket} does not exist")

    def use_credentials(self, env: str, credentials: Credentials) -> None:
        """Elevated credentials (break-glass) for one environment's tools."""
        self._credentials[env] = credentials
        self._terraform.pop(env, None)
        self._aws.pop(env, None)

    def drop_credentials(self, env: str) -> None:
        """Back to the deck's normal credentials (break-glass ended)."""
        self._credentials.pop(env, None)
        self._terraform.pop(env, None)
        self._aws.pop(env, None)

    def tool_env(self, env: str | None = None) -> dict[str, str]:
        """The process environment of a tool opsdeck starts (Terraform, Packer)."""
        out = dict(os.environ)
        aws = self.config.aws
        out["AWS_REGION"] = aws.region
        out["AWS_DEFAULT_REGION"] = aws.region
        out["TF_IN_AUTOMATION"] = "1"
        out["TF_INPUT"] = "0"
        out["CHECKPOINT_DISABLE"] = "1"  # no version check calls home
        out["PACKER_CHECKPOINT_DISABLE"] = "1"
        mirror = self.settings.terraform.plugin_mirror
        if mirror:
            from opsdeck import paths
            from opsdeck.adapters.terraform import write_cli_config

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
                    "AWS_ACCESS_KEY_ID": LOCAL_KEY,
                    "AWS_SECRET_ACCESS_KEY": LOCAL_KEY,
                    "AWS_EC2_METADATA_DISABLED": "true",
                    "AWS_CONFIG_FILE": os.devnull,
                    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                }
            )
        elif aws.profile:
            out["AWS_PROFILE"] = aws.profile
        creds = self._credentials.get(env) if env else None
        if creds is not None:
            out.pop("AWS_PROFILE", None)
            out["AWS_ACCESS_KEY_ID"] = creds.access_key
            out["AWS_SECRET_ACCESS_KEY"] = creds.secret_key
            if creds.session_token:
                out["AWS_SESSION_TOKEN"] = creds.session_token
            else:
                out.pop("AWS_SESSION_TOKEN", None)
        return out

    def backend_config(self) -> dict[str, str]:
        """Extra `-backend-config` settings; the S3 backend needs these only on the local cloud."""
        if not self.is_local:
            return {}
        return {
            "use_path_style": "true",
            "skip_credentials_validation": "true",
            "skip_requesting_account_id": "true",
            "skip_s3_checksum": "true",
        }

    # -- tools --------------------------------------------------------------------------------

    def aws(self, env: str | None = None) -> Aws:
        """boto3 for the deck, or for one environment when it holds elevated credentials."""
        from opsdeck.adapters.aws import Aws, Credentials

        key = env if env in self._credentials else ""
        if key not in self._aws:
            creds = self._credentials.get(key) if key else None
            if creds is None and self.is_local:
                creds = Credentials(LOCAL_KEY, LOCAL_KEY)
            self._aws[key] = Aws(
                self.config.aws.region,
                endpoint=self.endpoint(),
                profile=None if self.is_local else self.config.aws.profile,
                credentials=creds,
            )
        return self._aws[key]

    def terraform(self, env: str) -> Terraform:
        if env not in self._terraform:
            from opsdeck.adapters.terraform import Terraform

            self._terraform[env] = Terraform(
                self.env_dir(env), self.tool_env(env), binary=self.settings.terraform.binary, redact=self.redact
            )
        return self._terraform[env]

    def packer(self) -> Packer:
        from opsdeck.adapters.packer import Packer

        return Packer(self.tool_env(), binary=self.settings.packer.binary, redact=self.redact)

    @cached_property
    def git(self) -> Git:
        from opsdeck.adapters.git import Git

        return Git(self.root)

    def redact(self, text: str) -> str:
        """Hide every secret opsdeck holds from a line of tool output."""
        for creds in self._credentials.values():
            for secret in (creds.secret_key, creds.session_token, creds.access_key):
                if secret and secret in text:
                    text = text.replace(secret, "********")
        return text

    # -- state backend ------------------------------------------------------------------------

    def state_location(self, env: str) -> tuple[str, str] | None:
        """(bucket, key) of the environment's state, as `terraform init` recorded it."""
        try:
            data = json.loads((self.env_dir(env) / ".terraform" / "terraform.tfstate").read_text("utf-8"))
            cfg = data["backend"]["config"]
            return str(cfg["bucket"]), str(cfg["key"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
