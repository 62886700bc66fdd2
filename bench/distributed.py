"""End-to-end throughput and lag of the distributed topology on PostgreSQL.

Each configuration runs on a fresh PostgreSQL schema as separate `dora-ce` processes on
loopback, as the Kubernetes workloads would:

* embedded (the baseline): one `dora-ce serve` with every stage;
* distributed x1: one ingest, one router, one projector and one API process;
* distributed x2: two ingest, two routers, two projectors, one API.

Throughput: a history of mixed events (raw GitHub pushes, native CDEvents, every source's
fixtures; tests/scaleout/history.py) is posted in batches of 50 through every ingest process
at once; events/s is the event count over the time from the first request to the moment
nothing is pending in either log (ingested, routed and projected).

Lag: a probe thread meanwhile sends one deployment at a time as a raw CloudEvent to
`POST /events` (so it crosses ingest, router, projector) and polls `/api/v1/dora` for its
service until the deployment counts; lag is the time from the 202 to that answer. Probes run
under load (while the history drains) and idle (after it drained).

    .venv/bin/python bench/distributed.py [--services 10] [--steps 100] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import Engine, func, select

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]  # the scale-out tests' topology and history helpers

from tests.metrics.scenario import deploy  # noqa: E402
from tests.scaleout.history import History, history, post_through, requests  # noqa: E402
from tests.scaleout.topology import (  # noqa: E402
    Stage,
    dora_ce,
    pending,
    start_all,
    stop_all,
    wait_until_drained,
)

from dora_cloudevents.cdevents.binding import as_cloudevent  # noqa: E402
from dora_cloudevents.store.db import make_engine  # noqa: E402
from dora_cloudevents.store.schema import cloudevents_raw  # noqa: E402
from ingest import DEFAULT_POSTGRES, drop_schema, postgres_schema  # noqa: E402

STRUCTURED = {"content-type": "application/cloudevents+json"}
PROBE_TIMEOUT = 60.0


@dataclass
class Probes:
    """Deployments sent one at a time; seconds from 202 to counted in /api/v1/dora."""

    ingest_url: str
    api_url: str
    under_load: list[float] = field(default_factory=list)
    idle: list[float] = field(default_factory=list)
    busy: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def one(self, number: int) -> float:
        service = f"probe-{uuid.uuid4().hex[:8]}"
        cdevent = deploy(service, "production", None, "2024-06-01T12:00:00")
        cdevent["context"]["id"] = f"{service}-{number}"
        window = {"from": "2024-06-01T00:00:00Z", "to": "2024-06-02T00:00:00Z",
                  "service": service}
        with httpx.Client(timeout=30) as http:
            answer = http.post(f"{self.ingest_url}/events", headers=STRUCTURED,
                               content=json.dumps(as_cloudevent(cdevent)))
            assert answer.status_code == 202, answer.text
            sent = time.perf_counter()
            while time.perf_counter() - sent < PROBE_TIMEOUT:
                dora = http.get(f"{self.api_url}/api/v1/dora", params=window).json()
                if dora["deployment_frequency"]["deployments"] == 1:
                    return time.perf_counter() - sent
                time.sleep(0.02)
        raise RuntimeError(f"probe {service} not visible after {PROBE_TIMEOUT} s")

    def run(self, idle_probes: int) -> None:
        number = 0
        while self.busy.is_set() and not self.stop.is_set():
            self.under_load.append(self.one(number))
            number += 1
            time.sleep(0.1)
        for _ in range(idle_probes):
            time.sleep(0.3)
            self.idle.append(self.one(number))
            number += 1


@dataclass
class Result:
    name: str
    processes: int
    events: int
    seconds: float
    routed_seconds: float  # until the raw log had nothing pending (ingest + router)
    probes: Probes

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def topology(name: str, replicas: int, url: str, logs: Path) -> tuple[list[Stage], list[Stage],
                                                                     Stage]:
    """(all stages, ingest stages, API stage) of one configuration."""
    if replicas == 0:
        one = Stage(name, "ingest,router,projector,api", url, logs, migrate=True)
        return [one], [one], one
    migrated = dora_ce("db", "upgrade", "--db", url)
    assert migrated.returncode == 0, migrated.stderr
    stages = {component: [Stage(f"{component}-{n}", component, url, logs)
                          for n in range(1, replicas + 1)]
              for component in ("ingest", "router", "projector")}
    api = Stage("api", "api", url, logs)
    return [*stages["ingest"], *stages["router"], *stages["projector"], api], \
        stages["ingest"], api


def measure(name: str, replicas: int, events: History, admin_url: str,
            idle_probes: int) -> Result:
    url, schema = postgres_schema(admin_url)
    logs = Path(tempfile.mkdtemp(prefix="dora-bench-"))
    stages, ingest, api = topology(name, replicas, url, logs)
    engine = make_engine(url)
    try:
        start_all(stages, timeout=180)
        probes = Probes(ingest[0].url, api.url)
        probes.busy.set()
        prober = threading.Thread(target=probes.run, args=(idle_probes,))
        batches = requests(events)
        started = time.perf_counter()
        prober.start()
        accepted = post_through([stage.url for stage in ingest], batches)
        routed = routed_after(engine, len(events.raw), started)
        wait_until_drained(engine, events.size, 600, stages)
        seconds = time.perf_counter() - started
        probes.busy.clear()
        prober.join(timeout=PROBE_TIMEOUT * (idle_probes + 2))
        assert accepted == events.size, (accepted, events.size)
        assert pending(engine) == 0
        return Result(name, len(stages), events.size, seconds, routed, probes)
    finally:
        stop_all(stages)
        engine.dispose()
        drop_schema(admin_url, schema)


def routed_after(engine: Engine, raw_events: int, started: float) -> float:
    """Seconds from ``started`` until every raw event is stored and none is pending."""
    while True:
        with engine.connect() as connection:
            stored, left = connection.execute(select(
                func.count(), func.count().filter(cloudevents_raw.c.status == "pending"))).one()
        if stored >= raw_events and left == 0:
            return time.perf_counter() - started
        time.sleep(0.05)


def report(results: list[Result]) -> None:
    baseline = results[0]
    print(f"\n{'configuration':<16} {'processes':>9} {'events':>7} {'seconds':>8} "
          f"{'routed s':>8} {'events/s':>9} {'ratio':>6} {'lag load p50/p95 s':>19} "
          f"{'lag idle p50/p95 s':>19}")
    for result in results:
        load, idle = result.probes.under_load, result.probes.idle

        def lag(values: list[float]) -> str:
            if not values:
                return "-"
            return f"{statistics.median(values):.2f}/{percentile(values, 0.95):.2f} " \
                   f"(n={len(values)})"

        print(f"{result.name:<16} {result.processes:>9} {result.events:>7} "
              f"{result.seconds:>8.1f} {result.routed_seconds:>8.1f} "
              f"{result.events_per_s:>9.0f} "
              f"{result.events_per_s / baseline.events_per_s:>6.2f} {lag(load):>19} "
              f"{lag(idle):>19}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--idle-probes", type=int, default=20)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    events = history(args.services, args.steps)
    print(f"{events.size} events ({len(events.raw)} raw, {len(events.cdevents)} CDEvents); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    results = []
    for name, replicas in (("embedded", 0), ("distributed x1", 1), ("distributed x2", 2)):
        results.append(measure(name, replicas, events, args.postgres, args.idle_probes))
        print(f"{name}: {results[-1].events_per_s:.0f} events/s", flush=True)
    report(results)


if __name__ == "__main__":
    main()
