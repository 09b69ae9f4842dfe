"""Bounded waits that never lose their caller's cancellation.

Python 3.11's ``asyncio.wait_for`` returns the awaited result, and drops the
cancellation, when the awaited future completes in the same loop iteration as the
caller is cancelled (CPython gh-86296, fixed in 3.12). A waiter that runs in a task
group then never ends, and the group waits for it for ever: the MQTT bridge's block
publisher did exactly that at a broker restart while blocks were being committed, so
the bridge never reconnected and the messages queued for its session were never taken.
The waits here are built on ``asyncio.wait`` and ``asyncio.timeout``, which re-raise it.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def wait_done(fut: asyncio.Future[Any], timeout_s: float) -> bool:
    """Wait until ``fut`` is done or ``timeout_s`` passes; True when it is done.
    ``fut`` itself is neither cancelled nor awaited for its result."""
    done, _ = await asyncio.wait([fut], timeout=timeout_s)
    return bool(done)


async def wait_set(event: asyncio.Event, timeout_s: float) -> bool:
    """Wait until ``event`` is set or ``timeout_s`` passes; True when it is set."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        pass
    return event.is_set()


def raise_if_cancelled() -> None:
    """Raise ``CancelledError`` when this task was cancelled but a library swallowed the
    cancellation (aiomqtt awaits each publish with ``asyncio.wait_for``). The request stays
    counted in ``Task.cancelling()``; a long-lived loop that calls this every turn ends."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
