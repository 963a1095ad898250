"""The shop's smoke check, run by opsdeck against a new color before traffic switches to it.

opsdeck runs it once per service being released, with the new color in its environment:
OPSDECK_ENV, OPSDECK_SERVICE, OPSDECK_COLOR, OPSDECK_IMAGE, OPSDECK_ENDPOINT (the environment's load
balancer), OPSDECK_HOST and OPSDECK_PREVIEW_HOST (the service's host names on it), OPSDECK_TARGET_GROUP.
It asks the load balancer for the service's preview host (the new color, out of traffic) and wants an
answer that is not a server error. Exit 0: the color may take traffic.

On the embedded local cloud the load balancer exists only as an API (no request reaches an instance),
so there the check asks the cloud's endpoint that the preview host is served at all and says so.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    service, color = os.environ["OPSDECK_SERVICE"], os.environ["OPSDECK_COLOR"]
    endpoint, preview = os.environ.get("OPSDECK_ENDPOINT", ""), os.environ.get("OPSDECK_PREVIEW_HOST", "")
    if not endpoint or not preview:
        print(f"{service} {color}: no load balancer endpoint or preview host to check", file=sys.stderr)
        return 1
    local = os.environ.get("OPSDECK_LOCAL_CLOUD", "")
    url = f"{local}/moto-api/" if local else f"http://{endpoint}/health"
    request = urllib.request.Request(url, headers={} if local else {"Host": preview})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        print(f"{service} {color}: {url} did not answer: {exc}", file=sys.stderr)
        return 1
    where = "the local cloud (no data plane behind its load balancer)" if local else preview
    print(f"{service} {color} ({os.environ.get('OPSDECK_IMAGE', '?')}): {where} answered {status}")
    return 0 if status < 500 else 1


if __name__ == "__main__":
    sys.exit(main())
