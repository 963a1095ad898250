"""`opsdeck init [DIR]`: adopt an existing Terraform repository by writing a commented opsdeck.toml draft."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, get_args

from opsdeck.commands import print_json


def register(sub: Any) -> None:
    init = sub.add_parser(
        "init",
        help="draft an opsdeck.toml from an existing Terraform repository (exit 0 complete, 2 with TODOs)",
    )
    init.add_argument("dir", nargs="?", default=".", metavar="DIR", help="the repository (default: here)")
    init.add_argument(
        "--output", metavar="FILE", help="write the draft to FILE instead of DIR/opsdeck.toml (never over a file)"
    )
    init.add_argument("--print", action="store_true", help="print the draft on stdout instead of writing it")
    init.add_argument(
        "--json", action="store_true", help="print what was found as JSON (with --print: the draft in it)"
    )
    init.set_defaults(handler=init_cmd)


def init_cmd(args: argparse.Namespace) -> int:
    from opsdeck.core.adopt.draft import adoption_json, render, rollout_note
    from opsdeck.core.adopt.infer import adopt
    from opsdeck.core.estate.config import CONFIG_FILE
    from opsdeck.core.estate.sections import Rollout
    from opsdeck.errors import OpsdeckError

    repo = Path(args.dir)
    target = Path(args.output) if args.output else repo / CONFIG_FILE
    if args.output and args.print:
        raise OpsdeckError("--output and --print: give one (where the draft goes)")
    if not args.print and target.exists():
        raise OpsdeckError(f"{target} already exists: opsdeck init never overwrites it (pass --output FILE or --print)")
    adoption = adopt(repo)
    text = render(adoption)
    if not args.print:
        try:
            with target.open("x", encoding="utf-8") as out:  # exclusive: a file made meanwhile is not lost
                out.write(text)
        except FileExistsError:
            raise OpsdeckError(f"{target} already exists: opsdeck init never overwrites it") from None
        except OSError as exc:
            raise OpsdeckError(f"cannot write {target}: {exc.strerror or exc}") from None
    for todo in adoption.todos:
        print(f"TODO: {todo.where or 'top'}: {' '.join(todo.text.split())}", file=sys.stderr)
    for env in adoption.envs:
        if env.rollout is not None and env.rollout not in get_args(Rollout):
            print(f"note: environments.{env.survey.name}: {rollout_note(env.rollout)}", file=sys.stderr)
    if args.json:
        data = adoption_json(adoption)
        data["draft"] = text if args.print else None
        data["written"] = None if args.print else str(target)
        print_json(data)
    elif args.print:
        sys.stdout.write(text)
    if not args.print:
        count = len(adoption.todos)
        what = f"{len(adoption.envs)} environments, {len(adoption.services)} services"
        left = f"{count} TODOs to resolve" if count else "nothing left to resolve"
        print(f"wrote {target}: {what}; {left}", file=sys.stderr)
    return 2 if adoption.todos else 0
