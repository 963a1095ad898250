"""Who an operator is: their git identity, the SSH key git signs with, and the machine account.

Every audit record and ledger commit names the operator this way (and the AWS caller of the
credentials the operation used, from STS); an approval is a signature by the key.
"""

from __future__ import annotations

import getpass
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opsdeck.errors import OpsdeckError

if TYPE_CHECKING:
    from opsdeck.core.estate.deck import Deck


@dataclass(frozen=True)
class Operator:
    git: str  # "Name <email>", or "" when git has none
    email: str
    signing_key: str | None  # user.signingkey (a key file)
    fingerprint: str  # SHA256:... of the signing key, or ""
    user: str  # user@host

    def trailers(self, caller: str = "") -> str:
        """Git trailers naming the operator (for a ledger commit)."""
        lines = [f"Opsdeck-Operator: {self.git or self.user}"]
        if self.fingerprint:
            lines.append(f"Opsdeck-Signing-Key: {self.fingerprint}")
        if caller:
            lines.append(f"Opsdeck-Caller: {caller}")
        return "\n".join(lines)


def email_of(identity: str) -> str:
    match = re.search(r"<([^>]+)>", identity)
    return match.group(1) if match else identity


def operator(deck: Deck, signing_key: str | None = None) -> Operator:
    """The operator behind this process (``signing_key`` instead of git's user.signingkey)."""
    git = deck.tools.git
    try:
        identity = git.identity()
    except OpsdeckError:
        identity = ""
    try:
        key = signing_key or git.config_value("user.signingkey")
    except OpsdeckError:  # not a git repository (yet): no key to sign with
        key = signing_key
    if key and key.startswith("key::"):  # git allows the public key itself: no file to sign with
        key = None
    fingerprint = ""
    if key:
        try:
            fingerprint = deck.tools.signer().fingerprint(key)
        except OpsdeckError:
            fingerprint = ""
    return Operator(identity, email_of(identity), key, fingerprint, f"{getpass.getuser()}@{socket.gethostname()}")
