"""Break-glass credentials in the OS keyring (keyring): stored, loaded and deleted, never printed.

On a headless Linux box keyring has no backend until one is configured; the error says how.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from opsdeck.core.types.cloud import Credentials
from opsdeck.errors import OpsdeckError, SecretsUnavailableError

NO_BACKEND = (
    "no keyring backend is available to hold credentials: on a desktop, unlock your Secret Service "
    "(gnome-keyring, KWallet); on a headless box, install keyrings.alt for a file keyring or run "
    "gnome-keyring-daemon under dbus, or set PYTHON_KEYRING_BACKEND (see README, 'Secrets')"
)
INSECURE = ("keyrings.alt.file.PlaintextKeyring",)


def _backend() -> Any:
    import keyring
    from keyring.backends import chainer, fail

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or (isinstance(backend, chainer.ChainerBackend) and not backend.backends):
        raise SecretsUnavailableError(NO_BACKEND)
    return backend


def backend_name() -> str:
    backend = _backend()
    return f"{type(backend).__module__}.{type(backend).__qualname__}"


def is_insecure() -> bool:
    return backend_name() in INSECURE


def _service(deck: str) -> str:
    return f"opsdeck/{deck}"


def _user(env: str) -> str:
    return f"break-glass/{env}"


def store(deck: str, env: str, creds: Credentials) -> None:
    from keyring.errors import KeyringError

    payload = {"access_key": creds.access_key, "secret_key": creds.secret_key}
    if creds.session_token:
        payload["session_token"] = creds.session_token
    try:
        _backend().set_password(_service(deck), _user(env), json.dumps(payload))
    except KeyringError as exc:
        raise SecretsUnavailableError(f"the keyring refused to store credentials: {type(exc).__name__}") from None


def load(deck: str, env: str) -> Credentials | None:
    from keyring.errors import KeyringError

    try:
        raw = _backend().get_password(_service(deck), _user(env))
    except KeyringError as exc:
        raise SecretsUnavailableError(f"the keyring refused to give credentials: {type(exc).__name__}") from None
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return Credentials(data["access_key"], data["secret_key"], data.get("session_token"))
    except (ValueError, KeyError, TypeError):
        raise OpsdeckError(
            f"the keyring entry for {env} is damaged; store it again with `opsdeck secrets set {env}`"
        ) from None


def delete(deck: str, env: str) -> bool:
    from keyring.errors import PasswordDeleteError

    try:
        _backend().delete_password(_service(deck), _user(env))
    except PasswordDeleteError:
        return False
    return True


DEMO_STORE = "demo-break-glass.json"
DEMO_SOURCE = "the demo's own credentials file (local cloud only, not a keyring)"


class KeyringSecrets:
    """One deck's break-glass credentials in the OS keyring (core's SecretsPort)."""

    def __init__(self, deck: str) -> None:
        self.deck = deck

    def load(self, env: str) -> tuple[Credentials, str] | None:
        creds = load(self.deck, env)
        return None if creds is None else (creds, f"keyring ({backend_name()})")

    def store(self, env: str, creds: Credentials) -> str:
        store(self.deck, env, creds)
        return f"keyring ({backend_name()})"


class FileSecrets:
    """Credentials in a JSON file of their own (mode 600): the demo's, on a machine without a keyring."""

    def __init__(self, path: Path, label: str = DEMO_SOURCE) -> None:
        self.path = path
        self.label = label

    def _all(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def load(self, env: str) -> tuple[Credentials, str] | None:
        try:
            return Credentials(**self._all()[env]), self.label
        except (KeyError, TypeError):
            return None

    def store(self, env: str, creds: Credentials) -> str:
        data = self._all()
        data[env] = asdict(creds)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch(mode=0o600)
        self.path.write_text(json.dumps(data), encoding="utf-8")
        return self.label


class FallbackSecrets:
    """The keyring first; ``then`` when the keyring has no backend or holds nothing for the environment."""

    def __init__(self, first: KeyringSecrets, then: FileSecrets) -> None:
        self.first = first
        self.then = then

    def load(self, env: str) -> tuple[Credentials, str] | None:
        try:
            found = self.first.load(env)
        except SecretsUnavailableError:
            found = self.then.load(env)
            if found is None:
                raise
            return found
        return found or self.then.load(env)

    def store(self, env: str, creds: Credentials) -> str:
        try:
            return self.first.store(env, creds)
        except SecretsUnavailableError:
            return self.then.store(env, creds)
