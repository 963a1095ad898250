"""`opsdeck drift`, `opsdeck apply ENV` and `opsdeck nuke-rebuild ENV`."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from opsdeck.commands import open_deck, print_json, reporter, run, table
from opsdeck.commands.lifecycle import cli_confirm
from opsdeck.errors import ConfigError, OpsdeckError


def register(sub: Any) -> None:
    drift = sub.add_parser("drift", help="managed, unmanaged and image drift (exit 0 clean, 2 drifted, 1 error)")
    drift.add_argument("envs", nargs="*", metavar="ENV", help="environments (default: all)")
    drift.add_argument("--json", action="store_true", help="print JSON")
    drift.add_argument("-v", "--verbose", action="store_true", help="print progress")
    drift.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="TARGET",
        help="on drift or a failed check, tell TARGET: an http(s) webhook or an SNS topic ARN (repeatable)",
    )
    drift.add_argument(
        "--trail",
        action="store_true",
        help="also report changes made outside the pipeline (CloudTrail), and alarm on them",
    )
    drift.add_argument(
        "--trail-since", default="24h", metavar="DURATION", help="how far back --trail reads (default 24h)"
    )
    drift.add_argument(
        "--notify-timeout", type=float, default=10.0, metavar="SECONDS", help="per attempt (3 attempts; default 10)"
    )
    drift.set_defaults(handler=drift_cmd)

    apply = sub.add_parser("apply", help="apply ENV's pending plan (puts code back over managed drift)")
    apply.add_argument("env")
    apply.add_argument("--yes", action="store_true", help="confirm without asking (needed without a terminal)")
    apply.add_argument("--break-glass", action="store_true", help="use the environment's elevated credentials")
    apply.add_argument("--reason", default="", help="why (needed with --break-glass)")
    apply.add_argument("--json", action="store_true", help="print JSON")
    apply.add_argument("-v", "--verbose", action="store_true", help="print progress")
    apply.set_defaults(handler=apply_cmd)

    nuke = sub.add_parser("nuke-rebuild", help="delete everything of a sandbox and rebuild it from code")
    nuke.add_argument("env")
    nuke.add_argument("--yes", action="store_true", help="do it (without: print what would be deleted, and exit)")
    nuke.add_argument("--break-glass", action="store_true", help="pass the sandbox's freeze (audited)")
    nuke.add_argument("--reason", default="", help="why (needed with --break-glass)")
    nuke.add_argument("--json", action="store_true", help="print JSON")
    nuke.add_argument("-v", "--verbose", action="store_true", help="print progress")
    nuke.set_defaults(handler=nuke_cmd)


def drift_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.drift.check import drift_json
    from opsdeck.core.engine import registry, runner
    from opsdeck.core.engine.operation import EnvsArgs
    from opsdeck.core.hygiene.notify import parse_target

    targets = [parse_target(t) for t in args.notify]  # a bad target fails before any work
    if not math.isfinite(args.notify_timeout) or args.notify_timeout <= 0:
        raise ConfigError(f"--notify-timeout {args.notify_timeout:g}: must be more than 0 seconds")
    since = _since(args.trail_since) if args.trail else None
    deck = None
    try:
        deck = open_deck(args)
        for env in args.envs:
            deck.env(env)
        deck.check_cloud()
        reports = run(
            runner.run(deck, registry.DRIFT_CHECK, EnvsArgs(args.envs or None), reporter(args, "drift"))
        ).result
    except Exception as exc:  # the check itself failed: that is an alarm too (then the error, as always)
        if targets:
            _alarm(args, deck, targets, None, error=_one_line(exc))
        raise
    trails, unread = None, None
    if since is not None:
        try:
            trails = _trail(deck, args, since)
        except OpsdeckError as exc:  # the drift found is still reported (and alarmed on)
            unread = f"trail not read: {exc}"
    drifted = any(r.status == "drifted" for r in reports) or any(t.findings for t in trails or [])
    report = drift_json(reports)
    trail_json = {"environments": [t.to_json() for t in trails]} if trails is not None else None
    unread = unread or "; ".join(f"trail of {t.name} not read: {t.error}" for t in trails or [] if t.error) or None
    delivered, undelivered = (
        _alarm(args, deck, targets, report, error=unread, trail=trail_json) if targets else ([], None)
    )
    if args.json:
        extra = {
            **({"trail": trail_json} if trail_json is not None else {}),
            **({"notified": delivered} if targets else {}),
        }
        print_json({**report, **extra})
    else:
        rows = []
        for r in reports:
            details = [f"{m['address']} [{', '.join(m['attributes'])}]" for m in r.managed]
            details += [f"unmanaged {u['type']} {u['id']}" for u in r.unmanaged]
            details += [f"instance {i['instance']} runs {i['image_id']}" for i in r.image]
            rows.append([r.name, r.status, f"{r.seconds:.1f}s", "; ".join(details) or "-"])
        print(table(["ENV", "DRIFT", "TOOK", "DETAILS"], rows))
        for t in trails or []:
            print(t.summary())
        for d in delivered:
            print(f"notified {d['target']} ({d['detail']})")
    if undelivered is not None:
        raise undelivered  # after the report: nothing found is lost
    if unread is not None:
        raise OpsdeckError(unread)
    return 2 if drifted else 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if isinstance(exc, OpsdeckError) else f"internal error: {type(exc).__name__}: {text}"


def _since(text: str) -> Any:
    from opsdeck.core.hygiene.trail import parse_since

    try:
        return parse_since(text)
    except ValueError as exc:
        raise ConfigError(f"--trail-since: {exc}") from None


def _trail(deck: Any, args: argparse.Namespace, since: Any) -> list[Any]:
    """The trail of the checked environments that have one (all of them by default)."""
    from opsdeck.core.hygiene.trail import read_trail, trail_envs

    with_trail = trail_envs(deck)
    envs = [e for e in args.envs if e in with_trail] if args.envs else None
    if args.envs and not envs:
        return []
    return run(read_trail(deck, envs, since, reporter(args, "trail")))


def _alarm(
    args: argparse.Namespace,
    deck: Any,
    targets: list[Any],
    report: dict[str, Any] | None,
    error: str | None = None,
    trail: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], Exception | None]:
    """Tell the targets; (deliveries as JSON, the NotifyError to raise once the report is out)."""
    from opsdeck.core.hygiene.notify import NotifyError, drift_alarm, send

    name = (
        deck.config.name
        if deck is not None and deck.config.name
        else Path(getattr(args, "deck", None) or ".").resolve().name
    )
    alarm = drift_alarm(name, report, error=error, trail=trail)
    if alarm is None:
        return [], None
    try:
        done = run(send(deck, targets, alarm, reporter(args, "notify"), timeout=args.notify_timeout))
    except NotifyError as exc:
        if error is not None:  # the check's own error is the one raised; this one is said first
            print(f"opsdeck: {exc}", file=sys.stderr)
            return [], None
        return [], exc
    return [d.to_json() for d in done], None


def apply_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.engine import registry, runner
    from opsdeck.core.engine.operation import EnvArgs
    from opsdeck.core.safety.breakglass import close_break_glass, open_break_glass

    deck = open_deck(args)
    deck.env(args.env)
    deck.check_cloud()
    glass = open_break_glass(deck, args.env, args.reason) if args.break_glass else None
    try:
        rep = reporter(args, "apply", args.env)
        ran = run(runner.run(deck, registry.APPLY, EnvArgs(args.env), rep, confirm=cli_confirm(args), glass=glass))
        result = ran.result
    finally:
        if glass is not None:
            close_break_glass(deck, glass)
    from opsdeck.core.team.requests import Request

    if isinstance(result, Request):
        from opsdeck.commands.team import request_line

        if args.json:
            print_json(result.to_json())
        else:
            print(request_line(result.to_json()))
        return 0
    if args.json:
        print_json(result.to_json())
    elif result.applied:
        print(f"applied {args.env}: +{result.add} ~{result.change} -{result.destroy} ({result.seconds:.1f}s)")
    else:
        print(f"{args.env}: nothing to apply")
    return 0


def nuke_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.sandbox import nuke

    deck = open_deck(args)
    deck.env(args.env)
    deck.check_cloud()
    rep = reporter(args, "nuke-rebuild", args.env)
    if not args.yes:
        plan = run(nuke.inventory(deck, args.env, rep))
        if args.json:
            print_json({"dry_run": True, **plan.to_json()})
            return 0
        print(f"dry run: {plan.summary()}")
        for address in plan.managed:
            print(f"  terraform destroy  {address}")
        for res in plan.unmanaged:
            print(f"  delete unmanaged   {res.type} {res.id}")
        for kept in plan.kept:
            print(f"  keep               {kept}")
        print(f"re-run with --yes to nuke and rebuild {args.env}", file=sys.stderr)
        return 0
    from opsdeck.core.engine import registry, runner
    from opsdeck.core.engine.operation import EnvArgs
    from opsdeck.core.safety.breakglass import close_break_glass, open_break_glass

    glass = open_break_glass(deck, args.env, args.reason) if args.break_glass else None
    try:
        ran = run(runner.run(deck, registry.NUKE, EnvArgs(args.env), rep, glass=glass))
    finally:
        if glass is not None:
            close_break_glass(deck, glass)
    result, worker = ran.result, ran.worker
    if args.json:
        print_json(result.to_json() | ({"worker": worker} if worker else {}))
        return 0
    print(
        f"nuked and rebuilt {args.env}: destroyed {result.destroyed}, deleted {result.unmanaged_deleted} "
        f"unmanaged, created {result.created} ({result.seconds:.1f}s{f' on {worker}' if worker else ''})"
    )
    for name, seconds in result.phases:
        print(f"  {name:<20} {seconds:6.1f}s")
    return 0
