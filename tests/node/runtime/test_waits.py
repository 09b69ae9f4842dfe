"""node.runtime.waits: bounded waits that keep the caller's cancellation (gh-86296)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from node.runtime.waits import wait_done, wait_set


async def _cancelled_as_it_completes(
    wait: Callable[[], Coroutine[Any, Any, bool]], complete: Callable[[], None]
) -> None:
    """Cancel a waiting task and complete what it waits for in the same loop iteration:
    the race in which Python 3.11's ``asyncio.wait_for`` returns instead of raising."""
    task = asyncio.create_task(wait())
    await asyncio.sleep(0)  # the task is now waiting
    task.cancel()
    complete()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_a_cancellation_is_kept_when_the_future_completes_at_the_same_moment() -> None:
    async def main() -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await _cancelled_as_it_completes(lambda: wait_done(fut, 10.0), lambda: fut.set_result(None))

    asyncio.run(main())


def test_a_cancellation_is_kept_when_the_event_is_set_at_the_same_moment() -> None:
    async def main() -> None:
        ev = asyncio.Event()
        await _cancelled_as_it_completes(lambda: wait_set(ev, 10.0), ev.set)

    asyncio.run(main())


def test_waits_report_done_and_timeout() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        assert not await wait_done(fut, 0.0)
        loop.call_soon(fut.set_result, None)
        assert await wait_done(fut, 10.0)
        ev = asyncio.Event()
        assert not await wait_set(ev, 0.0)
        loop.call_soon(ev.set)
        assert await wait_set(ev, 10.0)

    asyncio.run(main())
