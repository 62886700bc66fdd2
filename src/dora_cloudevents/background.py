"""Running a pipeline stage continuously inside the server: work while there is work, else wait."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from dora_cloudevents.store.db import is_unavailable

log = logging.getLogger(__name__)


async def run_continuously(name: str, step: Callable[[], int], wake: asyncio.Event,
                           idle_seconds: float = 0.5, max_backoff: float = 30.0,
                           then: asyncio.Event | None = None) -> None:
    """Call ``step`` (in a thread) until it reports 0 items, then sleep until ``wake`` is
    set (new events were committed here) or ``idle_seconds`` pass (other processes' events).
    After a step that did work, ``then`` is set to wake the next stage.
    Database outages back off exponentially and recover by themselves."""
    backoff = 1.0
    while True:
        try:
            done = await asyncio.to_thread(step)
            backoff = 1.0
        except Exception as error:
            if is_unavailable(error):
                log.warning("%s: database unavailable, retrying in %.0f s", name, backoff)
            else:
                log.exception("%s: pass failed, retrying in %.0f s", name, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)
            continue
        if done:
            if then is not None:
                then.set()
            continue
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), idle_seconds)
