"""Running coroutines side by side the way operations need: all of them, or none left behind."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def all_or_nothing(*work: Awaitable[T]) -> list[T]:
    """Run ``work`` concurrently; when one fails, cancel the others, wait until they have stopped (their
    tools interrupted gracefully), then raise that first error itself (one line, not a group)."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def every_one(*work: Awaitable[T]) -> list[T]:
    """Run ``work`` concurrently to the end, each on its own; then raise the first error, if any."""
    results = await asyncio.gather(*work, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if not isinstance(r, BaseException)]


def concurrency() -> int:
    """How many environments an operation works on side by side: one per core."""
    return max(1, os.cpu_count() or 1)
