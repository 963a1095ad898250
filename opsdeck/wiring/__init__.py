"""The composition root: the real tools (adapters) bound into core's ports, installed once per process.

Core never imports an adapter. The command line (opsdeck/cli.py) calls ``install()`` before anything
opens a deck, so ``Deck.open(root)`` gets ``LiveTools`` and notifications reach real webhooks; the test
session installs it too, and unit tests hand ``Deck.open(root, tools=...)`` their fakes instead.

The adapters load when first used, not when the command line starts: the deck's first frame waits for
nothing it does not show (python-hcl2 and http.client alone take ~55 ms to import).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from opsdeck.core.estate import installed
from opsdeck.core.estate.config import DeckConfig
from opsdeck.core.estate.settings import UserSettings

if TYPE_CHECKING:
    from opsdeck.adapters.hcl import HclFiles
    from opsdeck.adapters.webhook import Webhook
    from opsdeck.wiring.tools import LiveTools


def live_tools(root: Path, config: DeckConfig, settings: UserSettings) -> LiveTools:
    from opsdeck.wiring.tools import LiveTools  # lazy: the adapters load when a deck first uses its tools

    return LiveTools(root, config, settings)


class LiveOutside:
    """core's Outside: webhooks, Terraform files (python-hcl2), and the regions botocore knows."""

    def webhook(self) -> Webhook:
        from opsdeck.adapters.webhook import Webhook  # lazy: http.client only when an alarm goes

        return Webhook()

    def terraform_files(self) -> HclFiles:
        from opsdeck.adapters.hcl import HclFiles  # lazy: python-hcl2 (lark) only for `opsdeck init`

        return HclFiles()

    def known_regions(self, service: str) -> list[str]:
        from opsdeck.adapters.aws import known_regions  # lazy: boto3 only when a region is checked

        return known_regions(service)


def install() -> None:
    """Make the real tools the ones every deck of this process opens with (unless handed others)."""
    installed.install(live_tools, LiveOutside())
