"""The ingest clock: one reading per event-loop iteration, fresh in the next one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from dora_cloudevents.ingest.routes import IterationClock


def test_requests_of_one_iteration_share_a_reading_and_the_next_iteration_reads_again() -> None:
    async def readings() -> tuple[datetime, datetime, datetime]:
        clock = IterationClock()
        first, again = clock.now(), clock.now()
        await asyncio.sleep(0.002)  # later iterations
        return first, again, clock.now()

    before = datetime.now(UTC)
    first, again, later = asyncio.run(readings())
    assert again is first
    assert before <= first < later <= datetime.now(UTC)
    assert first.tzinfo is UTC
