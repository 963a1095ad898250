"""The errors opsdeck reports as one clear line (the CLI prints them, the TUI shows them as notices)."""

from __future__ import annotations


class OpsdeckError(Exception):
    """A failure the user can act on; its message is one line that names what is wrong."""

    exit_code = 1

    def __str__(self) -> str:
        # One line, whatever the cause carried (tool output often has newlines).
        return " ".join(super().__str__().split())


class ConfigError(OpsdeckError):
    """A deck or user setting that is missing, malformed or inconsistent."""


class ToolError(OpsdeckError):
    """An outside tool (terraform, packer, git, AWS) failed; says which step."""

    def __init__(self, step: str, message: str) -> None:
        self.step = step
        super().__init__(f"{step}: {message}")


class ToolMissingError(OpsdeckError):
    """A binary opsdeck needs is not installed."""


class RefusedError(OpsdeckError):
    """An operation was refused by a safety rule (chain, protection, revoked image, dirty pin)."""


class CloudUnavailableError(OpsdeckError):
    """The cloud endpoint cannot be reached (or the local cloud is gone)."""


class LockedError(OpsdeckError):
    """Another operation holds the environment's lock."""


def reworded(exc: OpsdeckError, message: str) -> OpsdeckError:
    """The same error (its class, so its exit code and how it is classified), saying ``message``."""
    new = type(exc).__new__(type(exc))
    new.__dict__.update(exc.__dict__)
    new.args = (message,)
    return new


class SecretsUnavailableError(OpsdeckError):
    """No usable store for secrets (no keyring backend)."""
