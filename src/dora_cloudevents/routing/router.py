"""The router: claims raw CloudEvents, runs their routes' transformers, stores the CDEvents."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from dora_cloudevents.cdevents import CDEventError, validate_cdevent
from dora_cloudevents.events import CDEvent, CloudEvent
from dora_cloudevents.routing.table import RoutingTable
from dora_cloudevents.routing.targets import Target
from dora_cloudevents.store.db import write_transaction
from dora_cloudevents.store.events import (
    EventRow,
    cdevent_row,
    claim_pending,
    insert_groups,
    set_statuses,
    still_pending,
)
from dora_cloudevents.store.schema import cdevents_raw, cloudevents_raw
from dora_cloudevents.transformers.base import TransformError

log = logging.getLogger(__name__)


@dataclass
class RouteStats:
    routed: int = 0
    unrouted: int = 0
    failed: int = 0
    cdevents: int = 0

    @property
    def events(self) -> int:
        return self.routed + self.unrouted + self.failed

    def add(self, other: RouteStats) -> None:
        self.routed += other.routed
        self.unrouted += other.unrouted
        self.failed += other.failed
        self.cdevents += other.cdevents


@dataclass
class Outcome:
    """What routing one raw event came to."""

    seq: int
    status: str
    error: str | None = None
    rows: list[EventRow] = field(default_factory=list)


def transform_event(event: CloudEvent, targets: Sequence[tuple[str, Target]]
                    ) -> list[tuple[str, CDEvent, str]]:
    """(transformer name, CDEvent, spec version) for every output; raises TransformError."""
    produced = []
    for name, target in targets:
        try:
            outputs = target(event)
        except TransformError:
            raise
        except Exception as error:
            # A bug in one transformer must fail this event only, with a usable message.
            raise TransformError(f"{name} crashed: {error.__class__.__name__}: {error}") from error
        for index, cdevent in enumerate(outputs):
            try:
                info = validate_cdevent(cdevent)
            except CDEventError as error:
                raise TransformError(f"{name} produced an invalid CDEvent (output {index}): "
                                     f"{error}") from None
            produced.append((name, cdevent, info.spec_version))
    return produced


class Router:
    """One pass at a time over pending raw events; safe to run as several replicas."""

    def __init__(self, engine: Engine, table: RoutingTable, targets: Mapping[str, Target],
                 batch_size: int = 200) -> None:
        self.engine = engine
        self.table = table
        self.targets = targets
        self.batch_size = batch_size

    def route_batch(self) -> RouteStats:
        """Route up to ``batch_size`` pending events; returns what happened to them."""
        if self.engine.dialect.name == "postgresql":
            # Row locks (SKIP LOCKED) are the claim: hold them until the results commit.
            with write_transaction(self.engine) as connection:
                claimed = claim_pending(connection, cloudevents_raw, self.batch_size)
                outcomes = [self._route(row.seq, row.event) for row in claimed]
                return self._record(connection, outcomes)
        # SQLite has one writer at a time: transform outside the write lock so ingest is
        # never blocked behind a slow (remote) transformer, then keep only rows no other
        # router finished meanwhile.
        with self.engine.connect() as connection:
            claimed = claim_pending(connection, cloudevents_raw, self.batch_size)
        outcomes = [self._route(row.seq, row.event) for row in claimed]
        with write_transaction(self.engine) as connection:
            pending = still_pending(connection, cloudevents_raw, [o.seq for o in outcomes])
            return self._record(connection, [o for o in outcomes if o.seq in pending])

    def route_all(self, max_batches: int | None = None) -> RouteStats:
        """Route until nothing is pending (or ``max_batches`` batches were done)."""
        total = RouteStats()
        batches = 0
        while max_batches is None or batches < max_batches:
            stats = self.route_batch()
            total.add(stats)
            batches += 1
            if stats.events == 0:
                break
        return total

    def _route(self, seq: int, event: Any) -> Outcome:
        names = self.table.targets_for(event)
        if not names:
            return Outcome(seq, "unrouted")
        try:
            produced = transform_event(event, [(name, self.targets[name]) for name in names])
        except TransformError as error:
            log.warning("event %s (%s) failed: %s", seq, event.get("type"), error)
            return Outcome(seq, "failed", str(error))
        now = datetime.now(UTC)
        rows = [cdevent_row(cdevent, version, now, origin_seq=seq, transformer=name)
                for name, cdevent, version in produced]
        return Outcome(seq, "routed", rows=rows)

    @staticmethod
    def _record(connection: Any, outcomes: list[Outcome]) -> RouteStats:
        stats = RouteStats()
        rows = [row for outcome in outcomes for row in outcome.rows]
        if rows:
            [written] = insert_groups(connection, cdevents_raw, [rows])
            stats.cdevents = written.accepted
        set_statuses(connection, cloudevents_raw,
                     [(o.seq, o.status, o.error) for o in outcomes])
        for outcome in outcomes:
            setattr(stats, outcome.status, getattr(stats, outcome.status) + 1)
        return stats
