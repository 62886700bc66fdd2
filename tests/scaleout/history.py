"""A few thousand events of mixed kinds for the scale-out tests and the distributed benchmark:
raw GitHub pushes (routed by the github transformer), native CDEvents (deployments of those
pushes, incidents), and every golden fixture input of every source (tests/transformers)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from dora_cloudevents.cdevents.binding import as_cloudevent
from tests.metrics.scenario import deploy, incident, sha
from tests.test_every_source_end_to_end import (
    INGEST_DUPLICATES,
    REISSUED_CDEVENT_IDS,
    golden_postings,
)

Event = dict[str, Any]
BATCH = {"content-type": "application/cloudevents-batch+json"}
START = datetime(2024, 1, 1, tzinfo=UTC)
# The metrics window the tests compare: every generated and every fixture event is in it.
WINDOW = {"from": "2015-01-01T00:00:00Z", "to": "2030-01-01T00:00:00Z"}


def moment(hours: float) -> str:
    return (START + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def github_push(repo: str, commits: Sequence[tuple[str, str]]) -> Event:
    """A push to main as the Knative GitHubSource delivers it."""
    url = f"https://github.com/{repo}"
    head, head_time = commits[-1]
    return {"specversion": "1.0", "id": f"push-{head}", "source": url,
            "type": "dev.knative.source.github.push", "time": head_time,
            "datacontenttype": "application/json",
            "data": {"ref": "refs/heads/main", "before": "0" * 39 + "1", "after": head,
                     "repository": {"full_name": repo, "html_url": url,
                                    "default_branch": "main"},
                     "commits": [{"id": c, "timestamp": t} for c, t in commits],
                     "head_commit": {"id": head, "timestamp": head_time}}}


@dataclass
class History:
    """Raw CloudEvents (for POST /events) and CDEvents (for POST /cdevents)."""

    raw: list[Event] = field(default_factory=list)
    cdevents: list[Event] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.raw) + len(self.cdevents)


def golden_raw_events() -> list[Event]:
    """Every fixture input whose outcome does not depend on arrival order. Excluded: inputs
    that repeat another's (source, id), and cases whose later inputs re-issue a CDEvent id
    with new content; with concurrent ingest, which copy is kept first is a race."""
    postings, _ = golden_postings()
    duplicated = {case for where in INGEST_DUPLICATES.items() for case, _ in where}
    return [p.event for p in postings
            if p.case not in REISSUED_CDEVENT_IDS and p.case not in duplicated]


def history(services: int = 10, steps: int = 100) -> History:
    """Per service: a push of three commits to main then its deployment every 6 hours, and
    an incident (detected, resolved) every tenth step; plus the golden fixtures."""
    made = History(raw=golden_raw_events())
    for number in range(services):
        service = f"service-{number}"
        repo = f"acme/{service}"
        for step in range(steps):
            at = number + step * 6
            commits = [(sha(f"{service}-{step}-{k}"), moment(at + k)) for k in range(3)]
            made.raw.append(github_push(repo, commits))
            made.cdevents.append(deploy(service, "production", commits[-1][0],
                                        moment(at + 4), repo=repo))
            if step % 10 == 9:
                made.cdevents.extend(incident(f"{service}-incident-{step}", service,
                                              "production", moment(at + 4.5), moment(at + 5)))
    return made


def chunks(events: list[Event], size: int) -> Iterator[list[Event]]:
    for start in range(0, len(events), size):
        yield events[start:start + size]


def requests(made: History, size: int = 50) -> list[tuple[str, bytes]]:
    """The history as batch requests: (path, body), raw and native interleaved."""
    raw = [("/events", json.dumps(chunk).encode()) for chunk in chunks(made.raw, size)]
    native = [("/cdevents", json.dumps([as_cloudevent(c) for c in chunk]).encode())
              for chunk in chunks(made.cdevents, size)]
    mixed: list[tuple[str, bytes]] = []
    for index in range(max(len(raw), len(native))):
        mixed.extend(raw[index:index + 1] + native[index:index + 1])
    return mixed


def post(base_url: str, batch: tuple[str, bytes]) -> int:
    """POST one batch; the number of events accepted (202 or the test fails)."""
    path, body = batch
    response = httpx.post(base_url + path, content=body, headers=BATCH, timeout=60)
    assert response.status_code == 202, response.text
    accepted: int = response.json()["accepted"]
    return accepted


def post_through(ingest_urls: Sequence[str], batches: list[tuple[str, bytes]],
                 connections_per_server: int = 2) -> int:
    """Send the batches round-robin through every ingest server at once; events accepted."""
    jobs = [(ingest_urls[n % len(ingest_urls)], batch) for n, batch in enumerate(batches)]
    with ThreadPoolExecutor(len(ingest_urls) * connections_per_server) as pool:
        return sum(pool.map(lambda job: post(*job), jobs))
