"""Request limits enforced at the front door: header count and size, and body read time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from itertools import chain

from dora_cloudevents.problems import Problem


def header_problem(headers: Iterable[tuple[bytes, bytes]], max_headers: int,
                   max_bytes: int) -> Problem | None:
    """A 431 when the request carries too many header fields or too many header bytes.

    uvicorn's default parser (httptools) has no limit of its own, so this is checked on
    the parsed headers; a proxy in front bounds what reaches the parser (docs/configuration.md).
    """
    if not isinstance(headers, list):
        headers = list(headers)
    if len(headers) > max_headers:
        return Problem(431, f"the request has {len(headers)} header fields; at most "
                       f"{max_headers} are accepted (the max_headers setting)")
    size = sum(map(len, chain.from_iterable(headers)))  # C loops: no Python frame per header
    if size > max_bytes:
        return Problem(431, f"the request headers take {size} bytes; at most {max_bytes} are "
                       "accepted (the max_header_bytes setting)")
    return None


class ReadDeadlines:
    """Cancels body reads that outlast ``seconds``: a client that sends its body too slowly
    (or not at all) gets a 408 instead of holding a connection and its buffers forever.

    One periodic sweep serves every request: a timer per request (``asyncio.timeout``)
    cost ~10 µs each, a sixth of the whole single-event ingest path; registering here is
    a dictionary insert and delete.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._reading: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._sweeping: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def begin(self) -> asyncio.Task[object] | None:
        """Start the clock for the current task's body read."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            return None
        self._reading[task] = loop.time()
        if self._sweeping is None:
            self._sweeping = loop.call_later(self._interval(), self._sweep)
        return task

    def end(self, task: asyncio.Task[object] | None) -> None:
        if task is not None:
            self._reading.pop(task, None)

    def timed_out(self, task: asyncio.Task[object] | None) -> bool:
        """Whether the cancellation ``task`` got is this guard's (then it is consumed)."""
        if task is None or task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return True

    def problem(self) -> Problem:
        return Problem(408, f"the request body did not arrive within {self.seconds:g} s (the "
                       "body_read_timeout_seconds setting)", headers={"Connection": "close"})

    def _interval(self) -> float:
        # A read is cut between `seconds` and 1.25 x `seconds` after it started.
        return self.seconds / 4

    def _sweep(self) -> None:
        loop = self._loop
        assert loop is not None
        oldest_allowed = loop.time() - self.seconds
        for task, started in list(self._reading.items()):
            if started <= oldest_allowed:
                del self._reading[task]
                self._expired.add(task)
                task.cancel()
        self._sweeping = (loop.call_later(self._interval(), self._sweep)
                          if self._reading else None)
