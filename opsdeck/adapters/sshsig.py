"""SSH signatures with `ssh-keygen -Y`: what git's `gpg.format = ssh` signs commits with.

An approver signs with the key git is configured with (``user.signingkey``: a private key file, or a
public key whose private half an ssh-agent holds); who may sign is an ``allowed_signers`` file in
ssh-keygen's (and git's) format: ``principal [options] keytype key``. Signatures are made and checked
under a namespace, so a signature made for one purpose never verifies for another.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from opsdeck.errors import ToolError, ToolMissingError

TIMEOUT = 30.0


@dataclass(frozen=True)
class Verified:
    """What checking a signature found: the principal it is from, or why it is not valid."""

    valid: bool
    principal: str = ""
    problem: str = ""


def _run(argv: list[str], data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(argv, input=data, capture_output=True, timeout=TIMEOUT, check=False)
    except FileNotFoundError:
        raise ToolMissingError("ssh-keygen is not installed or not on PATH (OpenSSH 8.2 or later signs)") from None
    except subprocess.TimeoutExpired:
        raise ToolError(
            " ".join(argv[:3]), f"no answer within {TIMEOUT:.0f}s (is the key behind a passphrase?)"
        ) from None


def _why(result: subprocess.CompletedProcess[bytes]) -> str:
    text = (result.stderr or result.stdout).decode(errors="replace").strip().splitlines()
    return text[-1] if text else f"exit code {result.returncode}"


def sign(key: str, namespace: str, data: bytes) -> str:
    """An armored SSH signature of ``data`` by ``key`` (a key file; a .pub works with an ssh-agent)."""
    path = Path(key).expanduser()
    if not path.is_file():
        raise ToolError("ssh-keygen -Y sign", f"the signing key {key} does not exist")
    with tempfile.TemporaryDirectory(prefix="opsdeck-sign-") as tmp:
        message = Path(tmp) / "message"
        message.write_bytes(data)
        result = _run(["ssh-keygen", "-Y", "sign", "-q", "-f", str(path), "-n", namespace, str(message)])
        if result.returncode != 0:
            raise ToolError("ssh-keygen -Y sign", _why(result))
        return (Path(tmp) / "message.sig").read_text(encoding="utf-8")


def verify(allowed_signers: Path, namespace: str, signature: str, data: bytes) -> Verified:
    """Whose signature this is, among ``allowed_signers``, and whether it is valid for ``data``."""
    if not allowed_signers.is_file():
        return Verified(False, problem=f"no allowed signers file ({allowed_signers.name})")
    with tempfile.TemporaryDirectory(prefix="opsdeck-verify-") as tmp:
        sig = Path(tmp) / "message.sig"
        sig.write_text(signature, encoding="utf-8")
        found = _run(["ssh-keygen", "-Y", "find-principals", "-f", str(allowed_signers), "-s", str(sig)])
        principals = found.stdout.decode(errors="replace").split() if found.returncode == 0 else []
        if not principals:
            return Verified(False, problem="signed by a key that is not in allowed_signers")
        for principal in principals:
            checked = _run(
                [
                    "ssh-keygen",
                    "-Y",
                    "verify",
                    "-f",
                    str(allowed_signers),
                    "-I",
                    principal,
                    "-n",
                    namespace,
                    "-s",
                    str(sig),
                ],
                data,
            )
            if checked.returncode == 0:
                return Verified(True, principal)
        return Verified(False, principals[0], "the signature does not match what it claims to sign")


def fingerprint(key: str) -> str:
    """The SHA256 fingerprint of a key file (private or public), as ssh-keygen -l prints it."""
    path = Path(key).expanduser()
    result = _run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(path)])
    if result.returncode != 0:
        raise ToolError("ssh-keygen -l", _why(result))
    parts = result.stdout.decode().split()
    return parts[1] if len(parts) > 1 else ""


def public_key(key: str) -> str:
    """The public half of a key file: ``keytype base64``."""
    path = Path(key).expanduser()
    if path.suffix == ".pub":
        text = path.read_text(encoding="utf-8")
    else:
        result = _run(["ssh-keygen", "-y", "-f", str(path)])
        if result.returncode != 0:
            raise ToolError("ssh-keygen -y", _why(result))
        text = result.stdout.decode()
    return " ".join(text.split()[:2])


def new_key(path: Path, comment: str) -> None:
    """A new ed25519 key pair without passphrase (the demo's team members, and the tests')."""
    path.parent.mkdir(parents=True, exist_ok=True)
    result = _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    if result.returncode != 0:
        raise ToolError("ssh-keygen -t ed25519", _why(result))
    os.chmod(path, 0o600)
