"""The local cloud process: moto's server on 127.0.0.1, with fixes that make it answer as AWS does.

Run as ``python -m opsdeck.adapters.localcloud_server --port N --ready FILE``; it writes FILE once it
answers, and serves until SIGTERM or SIGINT. State is in memory only, as with any moto server.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any


def apply_fidelity_fixes() -> None:
    """Make moto answer like AWS where opsdeck's real code paths depend on it.

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
    amis.AmiBackend.create_image = create_image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opsdeck-localcloud")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ready", type=Path, required=True, help="file written once the server answers")
    args = parser.parse_args(argv)

    apply_fidelity_fixes()
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    args.ready.write_text(f"http://127.0.0.1:{args.port}\n", encoding="utf-8")

    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
