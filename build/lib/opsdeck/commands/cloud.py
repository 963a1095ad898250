"""`opsdeck cloud start | stop | status`: the embedded local cloud."""

from __future__ import annotations

import argparse
from typing import Any

from opsdeck.commands import print_json, when


def register(sub: Any) -> None:
    cloud = sub.add_parser("cloud", help="start, stop or inspect the embedded local cloud (moto on 127.0.0.1)")
    actions = cloud.add_subparsers(dest="cloud_action", metavar="ACTION", required=True)
    start = actions.add_parser("start", help="start it in the background (or report the one running)")
    start.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: a free one)")
    start.add_argument("--json", action="store_true", help="print JSON")
    start.set_defaults(handler=start_cmd)
    stop = actions.add_parser("stop", help="stop it; everything it held is gone")
    stop.add_argument("--json", action="store_true", help="print JSON")
    stop.set_defaults(handler=stop_cmd)
    status = actions.add_parser("status", help="is it running, and where")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=status_cmd)


def start_cmd(args: argparse.Namespace) -> int:
    from opsdeck.adapters import localcloud

    if args.port is not None and not 1024 <= args.port <= 65535:
        from opsdeck.errors import OpsdeckError

        raise OpsdeckError(f"--port: expected a port between 1024 and 65535, got {args.port}")
    info = localcloud.start(port=args.port)
    if args.json:
        print_json({"running": True, "endpoint": info.endpoint, "pid": info.pid, "started_at": info.started_at})
    else:
        print(f"local cloud running at {info.endpoint} (pid {info.pid}, since {when(info.started_at)})")
    return 0


def stop_cmd(args: argparse.Namespace) -> int:
    from opsdeck.adapters import localcloud

    stopped = localcloud.stop()
    if args.json:
        print_json({"running": False, "stopped": stopped})
    else:
        print("local cloud stopped; everything it held is gone" if stopped else "the local cloud was not running")
    return 0


def status_cmd(args: argparse.Namespace) -> int:
    from opsdeck.adapters import localcloud

    st = localcloud.status()
    if args.json:
        print_json(st.to_json())
    elif st.running:
        print(f"local cloud running at {st.endpoint} (pid {st.pid}, since {when(st.started_at)})")
    else:
        print("local cloud not running (`opsdeck cloud start`, or `opsdeck demo` for the demo deck)")
    return 0
