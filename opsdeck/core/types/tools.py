"""What the command-line tools give back: a file as a commit left it (git), Packer's machine-readable lines
and build result, the policy engine's report, and how a shell command ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class FileVersion:
    """A file as one commit left it (``text`` None: deleted there)."""

    commit: str
    when: datetime
    author: str
    message: str
    text: str | None


@dataclass(frozen=True)
class PackerLine:
    """One machine-readable line."""

    timestamp: str
    target: str
    type: str
    data: tuple[str, ...]

    @property
    def text(self) -> str:
        """The human text of a ui line (``ui,say,<text>``)."""
        return self.data[1] if self.type == "ui" and len(self.data) > 1 else ",".join(self.data)


@dataclass
class BuildResult:
    """What a build produced."""

    artifacts: list[str] = field(default_factory=list)  # "region:ami-..." ids
    errors: list[str] = field(default_factory=list)

    @property
    def image_ids(self) -> list[str]:
        ids = []
        for artifact in self.artifacts:
            for part in artifact.split(","):
                ami = part.split(":")[-1].strip()
                if ami.startswith("ami-") and ami not in ids:
                    ids.append(ami)
        return ids


@dataclass(frozen=True)
class Failure:
    """One failed check on one resource."""

    check_id: str
    name: str
    resource: str
    guideline: str = ""

    def describe(self) -> str:
        return f"{self.check_id} on {self.resource}: {self.name}"

    def to_json(self) -> dict[str, str]:
        return {"check": self.check_id, "name": self.name, "resource": self.resource}


@dataclass(frozen=True)
class Report:
    """What Checkov said of one plan."""

    passed: int
    failed: tuple[Failure, ...]
    skipped: int
    version: str

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass(frozen=True)
class CommandResult:
    """How a shell command ended: its exit status (None: killed at its timeout) and its last lines."""

    returncode: int | None
    tail: tuple[str, ...]
    seconds: float

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


class DeliveryError(Exception):
    """One attempt that did not deliver: ``reason`` is short ("HTTP 500", "timed out after 5s")."""

    def __init__(self, reason: str, *, retry: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
