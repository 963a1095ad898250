"""Break-glass credentials in the OS keyring (keyring): stored, loaded and deleted, never printed.

On a headless Linux box keyring has no backend until one is configured; the error says how.
"""

from __future__ import annotations

import json
from typing import Any

from opsdeck.adapters.aws import Credentials
from opsdeck.errors import OpsdeckError

NO_BACKEND = (
    "no keyring backend is available to hold credentials: on a desktop, unlock your Secret Service "
    "(gnome-keyring, KWallet); on a headless box, install keyrings.alt for a file keyring or run "
    "gnome-keyring-daemon under dbus, or set PYTHON_KEYRING_BACKEND (see README, 'Secrets')"
)
INSECURE = ("keyrings.alt.file.PlaintextKeyring",)


class SecretsUnavailableError(OpsdeckError):
    """No usable keyring backend."""


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
