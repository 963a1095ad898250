"""`opsdeck audit`, `opsdeck secrets` and `opsdeck unlock`: the trail, the credentials, the locks."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from opsdeck.commands import open_deck, print_json, reporter, run, table
from opsdeck.errors import OpsdeckError, RefusedError


def register(sub: Any) -> None:
    audit = sub.add_parser(
        "audit", help="the deck's audit log (`audit verify`: its hash chain; `audit ship`: to the locked bucket)"
    )
    audit.add_argument("action", nargs="?", choices=["list", "verify", "ship"], default="list")
    audit.add_argument("--json", action="store_true", help="print JSON")
    audit.add_argument("-n", "--last", type=int, default=0, help="only the last N records")
    audit.add_argument("--setup", action="store_true", help="ship: create the bucket with Object Lock first")
    audit.set_defaults(handler=audit_cmd)

    secrets = sub.add_parser("secrets", help="break-glass credentials in your keyring (never printed)")
    actions = secrets.add_subparsers(dest="secrets_action", metavar="ACTION", required=True)
    set_ = actions.add_parser("set", help="store ENV's credentials (asked for, or JSON on stdin; never argv)")
    set_.add_argument("env")
    set_.set_defaults(handler=secrets_set_cmd)
    delete = actions.add_parser("delete", help="forget ENV's credentials")
    delete.add_argument("env")
    delete.set_defaults(handler=secrets_delete_cmd)
    status = actions.add_parser("status", help="which environments have credentials, and the keyring in use")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=secrets_status_cmd)

    unlock = sub.add_parser("unlock", help="release an environment's lock left by an interrupted operation")
    unlock.add_argument("env")
    unlock.add_argument("--yes", action="store_true", help="do not ask")
    unlock.set_defaults(handler=unlock_cmd)

    standby = sub.add_parser("standby", help="blue/green standbys: `standby expire` scales ended windows to zero")
    standby_actions = standby.add_subparsers(dest="standby_action", metavar="ACTION", required=True)
    expire = standby_actions.add_parser(
        "expire", help="scale every warm standby whose window has ended to zero (for a scheduler; the deck does it too)"
    )
    expire.add_argument("env", nargs="*", help="environments (default: every blue/green environment)")
    expire.add_argument("--json", action="store_true", help="print JSON")
    expire.add_argument("-v", "--verbose", action="store_true", help="print every phase as it starts")
    expire.set_defaults(handler=standby_expire_cmd)


def audit_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.safety import audit

    deck = open_deck(args)
    if args.last is not None and args.last < 0:
        raise OpsdeckError(f"--last: expected a positive number, got {args.last}")
    if args.setup and args.action != "ship":
        raise OpsdeckError("--setup goes with `opsdeck audit ship`")
    if args.action == "ship":
        return _audit_ship(deck, args)
    if args.action == "verify":
        return _audit_verify(deck, args)
    records = audit.read(deck)
    if args.last:
        records = records[-args.last :]
    if args.json:
        print_json(records)
        return 0
    rows = []
    for r in records:
        who = r.get("who") or {}
        what = " -> ".join(x for x in (r.get("from") or "", r.get("to") or "") if x)
        rows.append(
            [
                r.get("seq"),
                r.get("at"),
                r.get("action"),
                r.get("environment") or "-",
                r.get("result"),
                who.get("git") or who.get("user", ""),
                what,
                r.get("reason") or "",
                r.get("error") or "",
            ]
        )
    print(table(["SEQ", "AT", "ACTION", "ENV", "RESULT", "WHO", "IMAGES", "REASON", "ERROR"], rows))
    return 0


def _audit_verify(deck: Any, args: argparse.Namespace) -> int:
    from opsdeck.core.safety import audit, audit_shipping

    result = audit.verify(deck)
    try:
        records = audit.read(deck)
    except OpsdeckError:  # an unreadable line: the local check above names it; nothing to compare with
        records = None
    shipped = audit_shipping.verify_shipped(deck, records) if records is not None else None
    problems = [p for p in (result.problem, shipped.problem if shipped else "") if p]
    if args.json:
        print_json(
            {
                "ok": not problems,
                "records": result.records,
                "problem": "; ".join(problems) or None,
                "shipped": shipped.to_json() if shipped else None,
            }
        )
    elif problems:
        for problem in problems:
            print(f"audit log TAMPERED: {problem}", file=sys.stderr)
    else:
        print(f"audit log intact: {result.records} records, hash chain verified")
        if shipped:
            print(f"shipped copy in s3://{shipped.bucket} matches through record {shipped.verified_through}")
    return 2 if problems else 0


def _audit_ship(deck: Any, args: argparse.Namespace) -> int:
    from opsdeck.core.safety import audit_shipping

    config = audit_shipping.settings(deck)
    deck.check_cloud()
    if args.setup:
        mode, days = audit_shipping.setup(deck)
        print(f"s3://{config.bucket}: Object Lock on, default retention {days} days in {mode.lower()} mode")
    done = audit_shipping.ship(deck)
    if args.json:
        print_json({"bucket": done.bucket, "keys": list(done.keys), "records": done.records, "through": done.through})
    elif done.records:
        print(f"shipped {done.records} records to s3://{done.bucket} (through record {done.through})")
    else:
        print(f"nothing to ship: s3://{done.bucket} has every record through {done.through}")
    return 0


CREDENTIALS_JSON = (
    '{"access_key_id", "secret_access_key", "session_token"}, or the output of '
    "`aws sts assume-role` or `aws configure export-credentials`"
)


def parse_credentials_json(text: str) -> tuple[str, str, str | None]:
    """Credentials from opsdeck's own JSON shape or from what the AWS CLI prints."""
    try:
        data = json.loads(text)
        if isinstance(data.get("Credentials"), dict):  # aws sts assume-role / get-session-token
            data = data["Credentials"]
        if "AccessKeyId" in data:  # the AWS CLI's names
            return str(data["AccessKeyId"]), str(data["SecretAccessKey"]), data.get("SessionToken")
        return str(data["access_key_id"]), str(data["secret_access_key"]), data.get("session_token")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise OpsdeckError(f"stdin: expected JSON {CREDENTIALS_JSON}") from None


def _read_credentials() -> Any:
    from opsdeck.core.types.cloud import Credentials

    if sys.stdin.isatty():
        access = input("AWS access key id: ").strip()
        secret = getpass.getpass("AWS secret access key: ").strip()
        token = getpass.getpass("AWS session token (empty if none): ").strip() or None
    else:
        access, secret, token = parse_credentials_json(sys.stdin.read())
    if not access or not secret:
        raise OpsdeckError("both an access key id and a secret access key are needed")
    return Credentials(str(access), str(secret), str(token) if token else None)


def secrets_set_cmd(args: argparse.Namespace) -> int:
    from opsdeck.adapters import secrets

    deck = open_deck(args)
    env = deck.env(args.env)
    if not env.protected:
        raise RefusedError(f"{args.env} is not protected; break-glass credentials are for protected environments")
    secrets.backend_name()  # a clear error before asking for anything
    secrets.store(deck.name, args.env, _read_credentials())
    print(f"stored break-glass credentials for {args.env} in {secrets.backend_name()}", file=sys.stderr)
    if secrets.is_insecure():
        print(
            "warning: this keyring is an unencrypted file; prefer a Secret Service on shared machines", file=sys.stderr
        )
    return 0


def secrets_delete_cmd(args: argparse.Namespace) -> int:
    from opsdeck.adapters import secrets

    deck = open_deck(args)
    deck.env(args.env)
    found = secrets.delete(deck.name, args.env)
    print(f"forgot the credentials of {args.env}" if found else f"{args.env} had no stored credentials")
    return 0


def secrets_status_cmd(args: argparse.Namespace) -> int:
    from opsdeck.adapters import secrets

    deck = open_deck(args)
    backend = secrets.backend_name()
    have = {e.name: secrets.load(deck.name, e.name) is not None for e in deck.config.environments if e.protected}
    if args.json:
        print_json({"backend": backend, "environments": have})
    else:
        print(f"keyring: {backend}")
        for env, present in have.items():
            print(f"  {env}: {'stored' if present else 'none'}")
    return 0


def standby_expire_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.release import standby

    deck = open_deck(args)
    envs = args.env or [e.name for e in deck.config.environments if e.blue_green]
    for env in envs:
        if not deck.env(env).blue_green:
            raise RefusedError(f"{env} rolls out by replacement, not blue-green: it keeps no standby")
    deck.check_cloud()
    results = [run(standby.expire(deck, env, reporter(args, "standby expire", env))) for env in envs]
    if args.json:
        print_json([r.to_json() for r in results])
        return 0
    for result in results:
        if not result.services:
            print(f"{result.environment}: no standby past its window")
        for service, pin in result.services.items():
            print(f"{result.environment}: {service} {pin.idle} ({pin.idle_image}) scaled to zero")
    return 0


def unlock_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.release import recovery

    deck = open_deck(args)
    deck.env(args.env)
    found = recovery.inspect(deck, args.env)
    if found is None:
        print(f"{args.env} is not locked")
        return 0
    interrupted = "" if found.record.unreadable else "interrupted "
    print(f"{args.env}: {interrupted}{found.record.describe()}", file=sys.stderr)
    if found.dirty:  # what unlock will do about them (found.advice() is for when it cannot)
        print(
            f"  {', '.join(found.dirty)} has uncommitted pins: unlock commits the pins the cloud runs, "
            "or puts the committed ones back",
            file=sys.stderr,
        )
    else:
        print(f"  {found.advice()}", file=sys.stderr)
    if not args.yes:
        if not sys.stdin.isatty():
            raise RefusedError("unlock needs confirmation: re-run with --yes")
        if input(f"Type {args.env} to release the lock: ").strip() != args.env:
            raise RefusedError("not confirmed; the lock stays")
    deck.check_cloud()
    # Its notices say how the pins were settled (committed, put back, or why not): the advice above was
    # said before it looked.
    run(recovery.unlock(deck, args.env, reporter(args, "unlock", args.env)))
    print(f"released {args.env}'s lock ({found.record.operation}, lock id {found.record.id})")
    return 0
