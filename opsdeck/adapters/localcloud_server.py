"""The local cloud process: moto's server on 127.0.0.1, with fixes that make it answer as AWS does.

Run as ``python -m opsdeck.adapters.localcloud_server --port N --ready FILE``; it writes FILE once it
answers, and serves until SIGTERM or SIGINT. State is in memory only, as with any moto server.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from opsdeck.adapters.localcloud_faults import AFTER_FAULT, Faults

# The one lock around moto's backends: each request holds it (Serialized), and so does each step of
# the work the local cloud does on its own between requests (an instance refresh's batches).
REQUEST_LOCK = threading.Lock()


def apply_fidelity_fixes() -> None:
    """Make moto answer like AWS where opsdeck's real code paths depend on it."""
    from opsdeck.adapters import localcloud_refresh_api

    _ebs_backed_images()
    _roles_must_exist()
    _launch_template_id_not_found()
    _launch_template_version_user_data()
    localcloud_refresh_api.install(REQUEST_LOCK)


def _launch_template_version_user_data() -> None:
    """User data of a launch template version above 1 is kept as AWS keeps it (base64 text).

    moto 5.2 decodes the user data of a new template but stores a new version's as it came, so
    launching from that version (an auto scaling group created or refreshed with it) failed on an
    assertion, HTTP 500: seen with a template updated in place (``latest_version``). Every version
    now goes through the check the first one gets, invalid base64 included.
    """
    from moto.core.types import Base64EncodedString
    from moto.ec2.models import launch_templates
    from moto.ec2.utils import parse_user_data

    original = launch_templates.LaunchTemplate.create_version
    if getattr(original, "_opsdeck_fixed", False):
        return

    def create_version(self: Any, data: dict[str, Any], description: str) -> Any:
        user_data = data.get("UserData")
        if user_data is not None and not isinstance(user_data, Base64EncodedString):
            data = {**data, "UserData": parse_user_data(user_data)}
        return original(self, data, description)

    create_version._opsdeck_fixed = True  # type: ignore[attr-defined]
    setattr(launch_templates.LaunchTemplate, "create_version", create_version)  # noqa: B010 - patching moto's class


def _launch_template_id_not_found() -> None:
    """Deleting a launch template by an ID that does not exist is `InvalidLaunchTemplateId.NotFound`.

    moto answers `InvalidLaunchTemplateName.NotFoundException` whatever was asked. The AWS provider
    treats AWS's code as "already deleted", so a delete the SDK retries (its first attempt landed,
    the answer did not) succeeds on AWS; with moto's code the apply failed (seen in CI, replacing a
    color's template). Answer as AWS does, by ID and by name (where moto says `MissingParameter`).
    """
    from moto.ec2.exceptions import EC2ClientError, InvalidLaunchTemplateNameNotFoundWithNameError
    from moto.ec2.models import launch_templates

    original = launch_templates.LaunchTemplateBackend.delete_launch_template
    if getattr(original, "_opsdeck_fixed", False):
        return

    class InvalidLaunchTemplateIdNotFoundError(EC2ClientError):
        def __init__(self, tid: str) -> None:
            super().__init__(
                "InvalidLaunchTemplateId.NotFound", f"The specified launch template ID {tid} does not exist."
            )

    def delete_launch_template(self: Any, name: str, tid: str | None) -> Any:
        if not name and tid and tid not in self.launch_templates:
            raise InvalidLaunchTemplateIdNotFoundError(tid)
        if name and name not in self.launch_template_name_to_ids:
            raise InvalidLaunchTemplateNameNotFoundWithNameError(name)
        return original(self, name, tid)

    delete_launch_template._opsdeck_fixed = True  # type: ignore[attr-defined]
    setattr(launch_templates.LaunchTemplateBackend, "delete_launch_template", delete_launch_template)  # noqa: B010


def _roles_must_exist() -> None:
    """AWS refuses AssumeRole of a role its account does not have; moto assumes any ARN at all, so a
    typo in a deck's role would reach the account anyway. Refuse an unknown role in an account that
    has roles. An account with none yet is one being set up (the demo creates its roles that way)."""
    from moto.iam.models import iam_backends
    from moto.sts import models as sts_models
    from moto.sts.exceptions import STSClientError

    original = sts_models.STSBackend.assume_role
    if getattr(original, "_opsdeck_fixed", False):
        return

    class AccessDeniedError(STSClientError):
        code = "AccessDenied"

    def assume_role(self: Any, region_name: str, role_session_name: str, role_arn: str, *args: Any, **kw: Any) -> Any:
        parts = role_arn.split(":")
        if len(parts) == 6 and parts[5].startswith("role/"):
            account, name = parts[4], parts[5].rsplit("/", 1)[-1]
            known = {role.name for role in iam_backends[account]["aws"].roles.values()}
            if known and name not in known:
                raise AccessDeniedError(
                    f"User: {self.account_id} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
                )
        return original(self, region_name, role_session_name, role_arn, *args, **kw)

    assume_role._opsdeck_fixed = True  # type: ignore[attr-defined]
    setattr(sts_models.STSBackend, "assume_role", assume_role)  # noqa: B010 - patching moto's class


def _ebs_backed_images() -> None:
    """An image made from an EBS-backed instance is EBS-backed.

    AWS gives an image made from an EBS-backed instance the root device type "ebs"; moto 5.2 leaves
    "standard", and Packer's amazon-ebs builder then refuses that image as a source, which breaks the
    two-layer bake (the app image is built on the base image). Copy the instance's root device type.
    """
    from moto.ec2.models import amis

    original = amis.AmiBackend.create_image
    if getattr(original, "_opsdeck_fixed", False):
        return

    def create_image(self: Any, instance_id: str, *args: Any, **kwargs: Any) -> Any:
        ami = original(self, instance_id, *args, **kwargs)
        instance = getattr(ami, "instance", None)
        ami.root_device_type = getattr(instance, "root_device_type", None) or "ebs"
        return ami

    create_image._opsdeck_fixed = True  # type: ignore[attr-defined]
    setattr(amis.AmiBackend, "create_image", create_image)  # noqa: B010 - patching moto's class


class Serialized:
    """A WSGI app that handles one request at a time, and answers an SDK's retry of a request it
    already answered with that answer.

    moto's backends are not thread-safe: with Terraform applying several environments at once,
    concurrent requests race (seen: a security group's default egress rule vanishing between create
    and revoke, so the provider's RevokeSecurityGroupEgress failed with InvalidPermission.NotFound).
    AWS is consistent there, so requests are serialised; connections stay concurrent (threads), and
    moto answers each request in milliseconds.

    The AWS SDKs label every attempt of one call with the same ``amz-sdk-invocation-id`` and count
    attempts in ``amz-sdk-request: attempt=N``. A retry whose first attempt moto answered with
    success means that answer never reached the caller (the werkzeug server closes every
    connection, and under load a close can beat the client to the answer). moto would run the call
    again, so a create answered "already exists" and a delete "not found" (seen in CI: the
    provider's CreateLaunchTemplate failed with InvalidLaunchTemplateName.AlreadyExistsException
    for a name only it had generated). The answer it lost is sent again, and the retry is logged.
    """

    KEPT = 4096  # successful answers kept for retries; an SDK retries within seconds

    def __init__(self, app: Any, log: Any = None, lock: threading.Lock | None = None) -> None:
        self.app = app
        self.lock = lock if lock is not None else threading.Lock()
        self.answers: OrderedDict[str, tuple[str, list[tuple[str, str]], list[bytes]]] = OrderedDict()
        self.log = log if log is not None else (lambda line: print(line, file=sys.stderr, flush=True))

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        invocation = environ.get("HTTP_AMZ_SDK_INVOCATION_ID", "")
        attempt = _attempt(environ.get("HTTP_AMZ_SDK_REQUEST", ""))
        with self.lock:
            if invocation and attempt > 1:
                kept = self.answers.get(invocation)
                what = f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}"
                if kept is not None:
                    self.log(f"localcloud: attempt {attempt} of {invocation} ({what}): answered again as before")
                    status, headers, body = kept
                    start_response(status, headers)
                    return body
                if not environ.get(AFTER_FAULT):  # an attempt the faults answered never ran: no news in its retry
                    self.log(f"localcloud: attempt {attempt} of {invocation} ({what}): run again")
            captured: list[Any] = []

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                captured[:] = [status, list(headers)]
                return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

            body = self.app(environ, capture)
            try:
                chunks = [bytes(chunk) for chunk in body]
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
            if invocation and captured and str(captured[0]).startswith("2"):
                self.answers[invocation] = (captured[0], captured[1], chunks)
                while len(self.answers) > self.KEPT:
                    self.answers.popitem(last=False)
            return chunks


def _attempt(header: str) -> int:
    """The attempt number in an ``amz-sdk-request`` header (``attempt=2; max=25``); 1 when absent."""
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == "attempt" and value.isdigit():
            return int(value)
    return 1


def serve(port: int) -> Any:
    """Start serving on 127.0.0.1:port in a thread; returns the server (call .shutdown() to stop).

    Faults (throttling, plain 503s) sit in front of everything, so a call they answer never reaches
    moto; they are off until a test sets them (opsdeck.adapters.localcloud_faults)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = Faults(Serialized(DomainDispatcherApplication(create_backend_app), lock=REQUEST_LOCK))
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=server.serve_forever, name="localcloud", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opsdeck-localcloud")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ready", type=Path, required=True, help="file written once the server answers")
    args = parser.parse_args(argv)

    apply_fidelity_fixes()
    server = serve(args.port)
    args.ready.write_text(f"http://127.0.0.1:{args.port}\n", encoding="utf-8")

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
