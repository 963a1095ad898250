"""The outside systems core reaches besides the cloud and its command-line tools: the keyring, SSH
signatures, processes on this machine, webhooks, a team's Terraform files, and the cloud SDK's list of
regions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from opsdeck.core.types.cloud import Credentials
from opsdeck.core.types.hcl import Block, Expr
from opsdeck.core.types.signatures import Verified
from opsdeck.core.types.tools import CommandResult


class SecretsPort(Protocol):
    """Where an environment's break-glass credentials are kept (the OS keyring): never printed.
    SecretsUnavailableError (opsdeck.errors) when no store can be used."""

    def load(self, env: str) -> tuple[Credentials, str] | None:
        """``env``'s credentials and where they came from ("keyring (backend)"); None when none are kept."""
        ...

    def store(self, env: str, creds: Credentials) -> str:
        """Keep ``env``'s credentials; where they went."""
        ...


class SignerPort(Protocol):
    """SSH signatures (`ssh-keygen -Y`), as git signs with them: approvals and requests are signed."""

    def sign(self, key: str, namespace: str, data: bytes) -> str: ...

    def verify(self, allowed_signers: Path, namespace: str, signature: str, data: bytes) -> Verified: ...

    def fingerprint(self, key: str) -> str: ...


class ProcessPort(Protocol):
    """Processes on this machine: a shell command run and followed (a deck's smoke check), and which
    processes still run in a directory (an interrupted Terraform)."""

    async def run_shell(
        self,
        command: str,
        *,
        cwd: Path,
        env: Mapping[str, str],
        timeout: float,
        on_line: Callable[[str], None],
        redact: Callable[[str], str],
    ) -> CommandResult:
        """Run ``command`` in its own process group, streaming its output; killed at ``timeout``."""
        ...

    def processes_in(self, directory: Path) -> list[tuple[int, str]]:
        """(pid, command line) of each process whose working directory is ``directory``."""
        ...


class WebhookPort(Protocol):
    """HTTP(S) webhooks: one POST of a JSON body per call (the caller retries)."""

    def post_json(self, url: str, body: bytes, timeout: float) -> int:
        """The HTTP status of a 2xx answer; DeliveryError (core/types/tools.py) otherwise."""
        ...


class TerraformFilesPort(Protocol):
    """A team's Terraform files read as core's values (core/types/hcl.py); HclError names a file it
    cannot read. Nothing is fetched: a module never downloaded is not followed."""

    def read_file(self, path: Path, label: str | None = None) -> list[Block]:
        """The top-level blocks of one ``.tf`` file (``label`` names it in errors and in each block)."""
        ...

    def read_tfvars(self, path: Path, label: str | None = None) -> dict[str, Expr]:
        """The values a ``.tfvars`` or ``.tfvars.json`` file sets."""
        ...

    def installed_modules(self, root_module: Path) -> dict[str, Path]:
        """What `terraform init` put in ``.terraform/modules``: a module call's key -> its directory."""
        ...


class Outside(Protocol):
    """The outside systems core reaches without a deck (an alarm still goes when the deck did not open)."""

    def webhook(self) -> WebhookPort: ...

    def terraform_files(self) -> TerraformFilesPort: ...

    def known_regions(self, service: str) -> list[str]:
        """The regions the cloud SDK knows for ``service`` (no network call)."""
        ...
