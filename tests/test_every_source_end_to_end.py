"""Acceptance check of the router: every source's raw events become the golden CDEvents.

Every golden fixture input (``tests/transformers/*/*.input.json``) is posted, one CloudEvent
per request in structured mode, to a running server with the default components (ingest,
router, api). Within seconds each raw event must have left ``pending``, and
``GET /api/v1/cdevents`` must hold exactly the golden outputs (``*.expected.json``): nothing
lost, nothing extra, no duplicates, each one valid. Posting everything again changes nothing.

Two properties of the fixture set shape the expectations, and are pinned below so a new
fixture that changes them is noticed:

* ``INGEST_DUPLICATES``: fixture inputs that reuse another input's CloudEvent (source, id).
  Ingest keeps the first and answers ``duplicates: 1`` for the later one, whose outputs are
  therefore not expected from it.
* ``REISSUED_CDEVENT_IDS``: inputs that produce a CDEvent id an earlier input already
  produced, with different content (a re-sent alert, a repeated scaling event). The store
  keeps the first CDEvent with a given (source, id); the later one is a duplicate.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from dora_cloudevents.app import create_app
from dora_cloudevents.config import Settings
from dora_cloudevents.store.schema import cdevents_raw
from tests.conftest import LiveServer
from tests.oracle import assert_valid_cdevent
from tests.transformers.test_fixtures import CASES, load_case

STRUCTURED = {"content-type": "application/cloudevents+json"}
ROUTING_TIMEOUT = 20.0
Key = tuple[str, str]  # (source, id) of a CloudEvent or a CDEvent context

# (case, index of the input in the case) -> the earlier input whose (source, id) it reuses.
INGEST_DUPLICATES = {
    ("github/incident-opened", 0): ("github/incident-created-with-label", 0),
}
# Cases with a later input that re-issues an earlier CDEvent id with different content.
REISSUED_CDEVENT_IDS = {"alertmanager/episodes", "kubernetes/event-scaling"}
# Every fixture type has a route in the default table: none stays unrouted.
EXPECTED_UNROUTED: set[str] = set()


@dataclass(frozen=True)
class Posting:
    """One raw CloudEvent of a golden case, and the CDEvents the case expects of it."""

    case: str
    index: int
    transformer: str
    event: dict[str, Any]
    expected: list[dict[str, Any]]

    @property
    def key(self) -> Key:
        return self.event["source"], self.event["id"]

    @property
    def where(self) -> tuple[str, int]:
        return self.case, self.index


def golden_postings() -> tuple[list[Posting], list[str]]:
    """Every fixture input in posting order, and the cases skipped for missing shared files."""
    postings: list[Posting] = []
    skipped: list[str] = []
    for path in CASES:
        case = f"{path.parent.name}/{path.name.removesuffix('.input.json')}"
        try:
            transformer, events, many = load_case(path)
        except pytest.skip.Exception:
            skipped.append(case)
            continue
        expected = json.loads(path.with_name(path.name.replace(".input.json",
                                                               ".expected.json")).read_text())
        per_event = expected if many else [expected]
        postings.extend(Posting(case, index, transformer, event, outputs)
                        for index, (event, outputs) in enumerate(
                            zip(events, per_event, strict=True)))
    return postings, skipped


def split_ingest_duplicates(postings: list[Posting]
                            ) -> tuple[list[Posting], dict[tuple[str, int], tuple[str, int]]]:
    """The postings ingest stores (first of each (source, id)), and which later ones repeat."""
    first: dict[Key, Posting] = {}
    duplicates = {}
    for posting in postings:
        if posting.key in first:
            duplicates[posting.where] = first[posting.key].where
        else:
            first[posting.key] = posting
    return list(first.values()), duplicates


def expected_cdevents(stored: list[Posting]) -> tuple[dict[Key, dict[str, Any]], set[str]]:
    """The CDEvents the store must hold: first of each (source, id), in posting order; and
    the cases in which a later output re-issued a stored id with different content."""
    expected: dict[Key, dict[str, Any]] = {}
    reissued = set()
    for posting in stored:
        for cdevent in posting.expected:
            key = cdevent["context"]["source"], cdevent["context"]["id"]
            if key not in expected:
                expected[key] = cdevent
            elif expected[key] != cdevent:
                reissued.add(posting.case)
    return expected, reissued


def first_producers(stored: list[Posting]) -> dict[Key, str]:
    """The transformer whose output each expected CDEvent is (the first to produce it)."""
    producers: dict[Key, str] = {}
    for posting in stored:
        for cdevent in posting.expected:
            key = cdevent["context"]["source"], cdevent["context"]["id"]
            producers.setdefault(key, posting.transformer)
    return producers


def post_each(http: httpx.Client, postings: list[Posting]) -> dict[tuple[str, int], Any]:
    """POST every event on its own in structured mode; the ingest answer per posting."""
    answers = {}
    for posting in postings:
        response = http.post("/events", content=json.dumps(posting.event), headers=STRUCTURED)
        assert response.status_code == 202, (posting.where, response.text)
        answers[posting.where] = response.json()
    return answers


def raw_events_once_routed(http: httpx.Client, count: int) -> list[dict[str, Any]]:
    """The stored raw events, once ``count`` are stored and none is pending any more."""
    deadline = time.monotonic() + ROUTING_TIMEOUT
    while True:
        events = http.get("/api/v1/events", params={"limit": 1000}).json()
        pending = [e["id"] for e in events if e["status"] == "pending"]
        if len(events) == count and not pending:
            routed: list[dict[str, Any]] = events
            return routed
        assert time.monotonic() < deadline, (
            f"after {ROUTING_TIMEOUT} s: {len(events)} of {count} raw events stored, "
            f"{len(pending)} still pending")
        time.sleep(0.05)


def stored_cdevents(http: httpx.Client) -> list[dict[str, Any]]:
    response = http.get("/api/v1/cdevents", params={"limit": 1000})
    assert response.status_code == 200, response.text
    cdevents: list[dict[str, Any]] = response.json()
    assert len(cdevents) < 1000, "raise the limit or page: the check must see every CDEvent"
    return cdevents


def transformer_of_each_cdevent(engine: Engine) -> dict[Key, str | None]:
    with engine.connect() as connection:
        rows = connection.execute(select(cdevents_raw.c.source, cdevents_raw.c.event_id,
                                          cdevents_raw.c.transformer))
        return {(source, event_id): transformer for source, event_id, transformer in rows}


@pytest.fixture
def http(engine: Engine) -> Iterator[httpx.Client]:
    with LiveServer(create_app(Settings(), engine)) as live, httpx.Client(
        base_url=live.url, timeout=10
    ) as client:
        yield client


def test_every_source_becomes_its_golden_cdevents(engine: Engine, http: httpx.Client) -> None:
    postings, skipped = golden_postings()
    if not postings:
        pytest.skip(f"no golden case could be loaded (missing shared fixtures: {skipped})")
    stored_postings, ingest_duplicates = split_ingest_duplicates(postings)
    assert ingest_duplicates == {
        where: first for where, first in INGEST_DUPLICATES.items()
        if where[0] not in skipped and first[0] not in skipped
    }, "fixture inputs sharing a CloudEvent (source, id) changed: update INGEST_DUPLICATES"
    expected, reissued = expected_cdevents(stored_postings)
    assert reissued <= REISSUED_CDEVENT_IDS, "new re-issued CDEvent ids: review and pin them"

    answers = post_each(http, postings)
    assert answers == {p.where: {"accepted": 0, "duplicates": 1} if p.where in ingest_duplicates
                       else {"accepted": 1, "duplicates": 0} for p in postings}

    raw = raw_events_once_routed(http, len(stored_postings))
    cdevents = stored_cdevents(http)

    # (a) exactly the golden outputs, each one equal to its expected JSON
    by_key = {(c["context"]["source"], c["context"]["id"]): c for c in cdevents}
    assert {c["context"]["id"] for c in cdevents} == {key[1] for key in expected}
    assert sorted(by_key) == sorted(expected)
    for key, cdevent in by_key.items():
        assert cdevent == expected[key], f"stored CDEvent {key} differs from its golden JSON"
    # (b) no duplicates
    assert len(cdevents) == len(by_key) == len(expected)
    # (c) every stored CDEvent is valid by the official schemas and our validator
    for cdevent in cdevents:
        assert_valid_cdevent(cdevent)
    # (d) nothing failed, nothing unrouted: every raw event reached its fixture's transformer
    by_status: dict[str, set[str]] = {}
    for event in raw:
        by_status.setdefault(event["status"], set()).add(event["id"])
    failed = {e["id"]: e["error"] for e in raw if e["status"] == "failed"}
    assert not failed, f"raw events failed: {failed}"
    assert by_status.get("unrouted", set()) == EXPECTED_UNROUTED
    assert set(by_status) == {"routed"}
    assert transformer_of_each_cdevent(engine) == first_producers(stored_postings)

    # (e) posting everything a second time: only duplicates, nothing new anywhere
    again = post_each(http, postings)
    assert all(answer == {"accepted": 0, "duplicates": 1} for answer in again.values()), again
    assert raw_events_once_routed(http, len(stored_postings)) == raw
    assert stored_cdevents(http) == cdevents
