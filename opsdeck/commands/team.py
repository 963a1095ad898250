"""`opsdeck requests | approve | reject | execute`: changes that wait for a teammate's signed approval."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from opsdeck.commands import open_deck, print_json, reporter, run, table, when


def register(sub: Any) -> None:
    requests = sub.add_parser("requests", help="changes waiting for approvals (and the ones decided)")
    requests.add_argument("--all", action="store_true", help="executed and rejected ones too")
    requests.add_argument("--json", action="store_true", help="print JSON")
    requests.set_defaults(handler=requests_cmd)

    approve = sub.add_parser("approve", help="sign a request with your SSH key (git's user.signingkey)")
    approve.add_argument("request", help="request id")
    approve.add_argument("--key", help="an SSH private key file to sign with instead of git's user.signingkey")
    approve.add_argument("--json", action="store_true", help="print JSON")
    approve.add_argument("-v", "--verbose", action="store_true", help="print progress")
    approve.set_defaults(handler=approve_cmd)

    reject = sub.add_parser("reject", help="turn a request down (signed, with a reason)")
    reject.add_argument("request", help="request id")
    reject.add_argument("--reason", required=True, help="why (recorded in the ledger and the audit log)")
    reject.add_argument("--key", help="an SSH private key file to sign with instead of git's user.signingkey")
    reject.add_argument("--json", action="store_true", help="print JSON")
    reject.set_defaults(handler=reject_cmd)

    execute = sub.add_parser("execute", help="apply an approved request's saved plan, exactly as approved")
    execute.add_argument("request", help="request id")
    execute.add_argument("--yes", action="store_true", help="confirm without asking (needed without a terminal)")
    execute.add_argument("--json", action="store_true", help="print JSON")
    execute.add_argument("-v", "--verbose", action="store_true", help="print progress")
    execute.set_defaults(handler=execute_cmd)


def request_line(data: dict[str, Any]) -> str:
    approvals = ", ".join(a["by"] for a in data["approvals"] if a["valid"]) or "none"
    return (
        f"request {data['id']}: {data['action']} {data['environment']} is {data['status']} "
        f"({sum(1 for a in data['approvals'] if a['valid'])}/{data['needed']} approvals: {approvals})"
    )


def requests_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.ledger.remote import latest
    from opsdeck.core.team.requests import all_requests

    deck = open_deck(args)
    ledger = latest(deck)  # what the team's remote says, not only this clone
    if ledger.offline or ledger.behind:
        print(f"warning: requests as this clone has them: {ledger.describe()}", file=sys.stderr)
    found = [r for r in all_requests(deck) if args.all or r.status in ("pending", "approved", "stale")]
    if args.json:
        print_json([r.to_json() for r in found])
        return 0
    rows = []
    for r in found:
        approved = ", ".join(r.valid_approvers) or "-"
        rows.append(
            [
                r.id,
                r.environment,
                r.action,
                r.status,
                f"{len(r.valid_approvers)}/{r.needed}",
                approved,
                r.requested_by,
                when(r.created_at),
                r.reason,
            ]
        )
    print(table(["REQUEST", "ENV", "ACTION", "STATUS", "APPROVALS", "BY", "REQUESTED BY", "WHEN", "REASON"], rows))
    return 0


def approve_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.engine import registry, runner
    from opsdeck.core.engine.operation import ApproveArgs

    deck = open_deck(args)
    what = ApproveArgs(args.request, args.key)
    request = run(runner.run(deck, registry.APPROVE, what, reporter(args, "approve"))).result
    if args.json:
        print_json(request.to_json())
    else:
        print(request_line(request.to_json()))
    return 0


def reject_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.engine import registry, runner
    from opsdeck.core.engine.operation import RejectArgs

    deck = open_deck(args)
    what = RejectArgs(args.request, args.reason, args.key)
    request = run(runner.run(deck, registry.REJECT, what, reporter(args, "reject"))).result
    if args.json:
        print_json(request.to_json())
    else:
        print(request_line(request.to_json()))
    return 0


def execute_cmd(args: argparse.Namespace) -> int:
    from opsdeck.commands.lifecycle import cli_confirm
    from opsdeck.core.engine import registry, runner
    from opsdeck.core.engine.operation import ExecuteArgs

    deck = open_deck(args)
    deck.check_cloud()
    rep = reporter(args, "execute")
    result = run(runner.run(deck, registry.EXECUTE, ExecuteArgs(args.request), rep, confirm=cli_confirm(args))).result
    if args.json:
        print_json({**result.to_json(), "request": args.request})
    else:
        print(
            f"executed {args.request}: {result.action} {result.environment} {result.summary()}, "
            f"commit {result.commit[:12]} ({result.seconds:.1f}s)",
            file=sys.stdout,
        )
    return 0
