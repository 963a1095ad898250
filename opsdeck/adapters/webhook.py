"""POST a JSON body to an HTTP(S) webhook (chat incoming webhooks, alert gateways).

One attempt per call; the caller retries. A failure is a ``DeliveryError`` naming why in a few words
(the HTTP status, a timeout, a refused connection), never a traceback.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request

from opsdeck import __version__
from opsdeck.core.types.tools import DeliveryError


def post_json(url: str, body: bytes, timeout: float) -> int:
    """POST ``body`` as application/json; the HTTP status on a 2xx answer."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": f"opsdeck/{__version__}"},
    )
    # No proxy from the environment: a webhook opsdeck was told to call is called directly.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as answer:
            answer.read(65536)
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        exc.close()  # the error is the answer: its connection is ours to close
        # A client error will not change on a retry (but for 408 and 429); a server error may.
        retry = exc.code >= 500 or exc.code in (408, 429)
        raise DeliveryError(f"HTTP {exc.code} {exc.reason}".strip(), retry=retry) from None
    except TimeoutError:
        raise DeliveryError(f"no answer within {timeout:g}s") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise DeliveryError(f"no answer within {timeout:g}s") from None
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
        raise DeliveryError(text) from None
    except (ConnectionError, OSError) as exc:
        raise DeliveryError(exc.strerror or type(exc).__name__) from None
    except (ValueError, http.client.HTTPException) as exc:  # a URL or an answer HTTP cannot take
        raise DeliveryError(f"{type(exc).__name__}: {' '.join(str(exc).split())}", retry=False) from None


class Webhook:
    """core's WebhookPort: ``post_json`` above."""

    def post_json(self, url: str, body: bytes, timeout: float) -> int:
        return post_json(url, body, timeout)
