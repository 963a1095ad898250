"""The `opsdeck` command: opens the deck (TUI) or runs one headless command.

Errors are one line on stderr and exit code 1, never a traceback (a traceback of an unexpected
failure goes to a log file the line names). Exit codes follow Terraform's -detailed-exitcode:
0 nothing to do or clean, 2 changes or drift found, 1 error.
"""

from __future__ import annotations

import argparse
import gc
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from opsdeck import __version__, wiring
from opsdeck.commands import finish_notices
from opsdeck.errors import OpsdeckError

COMMAND_MODULES = (
    "cloud",
    "demo",
    "inspect",
    "lifecycle",
    "team",
    "drift",
    "admin",
    "config",
    "trail",
    "recover",
    "schedule",
    "orphans",
    "engine",
    "init",
    "govern",
)


def _common() -> argparse.ArgumentParser:
    """Options every subcommand takes too: `opsdeck secrets status --deck DIR` works as well as
    `opsdeck --deck DIR secrets status`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--deck", metavar="DIR", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return common


class Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit code 1 like every other error, and every
    subcommand (at any depth) takes the common options."""

    def add_subparsers(self, **kwargs: Any) -> Any:
        kwargs.setdefault("parser_class", Parser)
        action = super().add_subparsers(**kwargs)
        original = action.add_parser

        def add_parser(name: str, **options: Any) -> argparse.ArgumentParser:
            options.setdefault("parents", [_common()])
            parser: argparse.ArgumentParser = original(name, **options)
            return parser

        action.add_parser = add_parser  # type: ignore[method-assign]
        return action

    def error(self, message: str) -> NoReturn:
        sub = self.prog.removeprefix("opsdeck").strip()
        where = f"{sub}: " if sub else ""
        self.exit(1, f"opsdeck: {where}{message} (see `{self.prog} --help`)\n")


def build_parser() -> Parser:
    import importlib

    parser = Parser(
        prog="opsdeck",
        description="A terminal deck for immutable infrastructure: images, plans, drift and promotions.",
    )
    parser.add_argument("--version", action="version", version=f"opsdeck {__version__}")
    parser.add_argument("--deck", metavar="DIR", help="the deck (default: $OPSDECK_DECK, then the current directory)")
    parser.add_argument("--theme", help="theme of the deck (saved as your choice)")
    parser.add_argument("--read-only", action="store_true", help="open the deck with every mutating key disabled")
    parser.add_argument(
        "--no-mouse",
        action="store_true",
        help="leave the mouse to the terminal, to select and copy text (the config's mouse = false, for good)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"opsdeck.commands.{name}").register(sub)
    return parser


def _log_internal_error() -> str:
    from opsdeck import paths

    path = paths.state_dir() / "last-error.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(traceback.format_exc(), encoding="utf-8")
    except OSError:
        return "no log written"
    return f"details in {path}"


def _stacks_on_sigusr1() -> None:
    """`kill -USR1 PID` prints every thread's stack to stderr: what a stuck operation is waiting on."""
    import faulthandler
    import signal

    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True, chain=False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to say how to run it on another deck
    _stacks_on_sigusr1()
    wiring.install()  # the real tools: every deck this process opens gets them
    try:
        if args.command is None:
            from opsdeck.tui.launch import open_default

            return open_default(args)
        return int(args.handler(args))
    except OpsdeckError as exc:
        print(f"opsdeck: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("opsdeck: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except Exception as exc:
        where = _log_internal_error()
        first = " ".join(str(exc).split()) or type(exc).__name__
        print(f"opsdeck: internal error: {type(exc).__name__}: {first} ({where})", file=sys.stderr)
        return 1
    finally:
        finish_notices()  # release notices still being sent get a few seconds before the process exits


def run() -> NoReturn:
    """The `opsdeck` program (its console script, and `python -m opsdeck`): ``main`` with the process's
    heap handled as a short-lived command's.

    What the command line's imports made lives until the process ends: it is moved out of the garbage
    collector's sight first, so the collections while a command works (boto3 loading its models, before
    Terraform starts) no longer walk it (~15 ms). At the end the whole heap is: Python's own collection
    as the interpreter shuts down walks all of it (~60 ms with boto3's models loaded) to free memory the
    exit frees anyway. Nothing opsdeck leaves needs it: files are closed where they are written, atexit
    handlers (Checkov's server) and the flush of stdout and stderr still run."""
    gc.freeze()
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
