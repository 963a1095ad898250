"""SSH signatures with `ssh-keygen -Y`: what git's `gpg.format = ssh` signs commits with.

An approver signs with the key git is configured with (``user.signingkey``: a private key file, or a
public key whose private half an ssh-agent holds); who may sign is an ``allowed_signers`` file in
ssh-keygen's (and git's) format: ``principal [options] keytype key``. Signatures are made and checked
under a namespace, so a signature made for one purpose never verifies for another.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import tempfile
from pathlib import Path

from opsdeck.core.types.signatures import Listing, Verified
from opsdeck.errors import ToolError, ToolMissingError

TIMEOUT = 30.0


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
    # ssh-keygen said no; the file itself says why when the key is there for other namespaces only.
    elsewhere = _listed_elsewhere(allowed_signers, namespace, signature)
    if elsewhere:
        first = elsewhere[0]
        return Verified(
            False,
            first.principals,
            f"its key is in allowed_signers for {first.principals} (line {first.number}) only for namespaces "
            f'"{first.namespaces}", not {namespace}',
            elsewhere,
        )
    if not principals:
        return Verified(False, problem="signed by a key that is not in allowed_signers")
    return Verified(False, principals[0], "the signature does not match what it claims to sign")


def _listed_elsewhere(allowed_signers: Path, namespace: str, signature: str) -> tuple[Listing, ...]:
    """The signing key's lines, when it has some and none permits ``namespace`` (else nothing)."""
    key = signature_key(signature)
    if key is None:
        return ()
    lines = [listing for listing in listings(allowed_signers) if listing.key == key]
    if not lines or any(listing.permits(namespace) for listing in lines):
        return ()
    return tuple(lines)


def signature_key(signature: str) -> str | None:
    """The public key (``keytype base64``) inside an armored SSH signature (PROTOCOL.sshsig: "SSHSIG",
    a uint32 version, then the key blob as an SSH string), None when it is not one."""
    body = "".join(line.strip() for line in signature.strip().splitlines()[1:-1])
    try:
        blob = base64.b64decode(body, validate=True)
        if blob[:6] != b"SSHSIG":
            return None
        key, _ = _ssh_string(blob, 10)
        keytype, _ = _ssh_string(key, 0)
        return f"{keytype.decode('ascii')} {base64.b64encode(key).decode('ascii')}"
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def _ssh_string(data: bytes, at: int) -> tuple[bytes, int]:
    """The SSH wire format's string at ``at`` (a uint32 length, then the bytes) and where the next begins."""
    if at + 4 > len(data):
        raise ValueError("truncated")
    length = int.from_bytes(data[at : at + 4], "big")
    end = at + 4 + length
    if end > len(data):
        raise ValueError("truncated")
    return data[at + 4 : end], end


_KEY_TYPE = re.compile(r"^(ssh-[\w@.-]+|ecdsa-sha2-[\w@.-]+|sk-[\w@.-]+)$")


def listings(allowed_signers: Path) -> list[Listing]:
    """Every key line of an allowed_signers file (ssh-keygen's format; comments and blank lines skipped,
    as are lines it could not read either)."""
    try:
        text = allowed_signers.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = _fields(line)
        if not fields or fields[0].startswith("#"):
            continue
        at = 1 if len(fields) > 2 and _KEY_TYPE.match(fields[1]) else 2
        if len(fields) < at + 2 or not _KEY_TYPE.match(fields[at]):
            continue
        options = tuple(_split_options(fields[1])) if at == 2 else ()
        found.append(Listing(number, fields[0], options, f"{fields[at]} {fields[at + 1]}"))
    return found


def _fields(line: str) -> list[str]:
    """A line split at blanks outside double quotes (an option's value may hold a blank)."""
    fields: list[str] = []
    current, quoted = "", False
    for char in line.strip():
        if char == '"':
            quoted = not quoted
        if char in " \t" and not quoted:
            if current:
                fields.append(current)
            current = ""
            continue
        current += char
    if current:
        fields.append(current)
    return fields


def _split_options(text: str) -> list[str]:
    """Options separated by commas outside double quotes (namespaces="git,opsdeck-approval" is one)."""
    options: list[str] = []
    current, quoted = "", False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            options.append(current)
            current = ""
            continue
        current += char
    return [*options, current] if current else options


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


class SshSigner:
    """core's SignerPort: the functions above."""

    def sign(self, key: str, namespace: str, data: bytes) -> str:
        return sign(key, namespace, data)

    def verify(self, allowed_signers: Path, namespace: str, signature: str, data: bytes) -> Verified:
        return verify(allowed_signers, namespace, signature, data)

    def fingerprint(self, key: str) -> str:
        return fingerprint(key)
