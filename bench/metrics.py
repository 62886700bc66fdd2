"""Metrics benchmark: project a year of history for 200 services, then time the metrics API.

Phases, for each back-end (SQLite in a temporary file, PostgreSQL in a fresh schema):

1. generate (bench/history.py, seeded) a year of CDEvents 0.4.1 for ``200 x --scale``
   services, plus the ``--increment`` events that follow it;
2. store the year straight into ``cdevents_raw`` in time order (the state after ingest and
   routing) and run the real projector over it (``Projector.project_batch`` until nothing
   is pending, ``--history-batch-size`` CDEvents per batch): CDEvents/s;
3. start ``dora-ce serve --components api`` and time ``GET /api/v1/dora`` (all services,
   one service, one team, staging; 90 days and a year) and the weekly deployment-frequency
   and lead-time series (all, one team, one service): median and p95 over ``--requests``;
4. store the ``--increment`` events that follow the year and time their projection (500
   per batch, as ``dora-ce serve`` does), then the same events on an empty database: the
   ratio is what the history costs each new event.

    .venv/bin/python bench/metrics.py [--scale 1.0] [--seed 42] [--increment 10000]
        [--requests 50] [--backends sqlite,postgresql] [--postgres URL]
        [--history-batch-size 20000] [--breakdown]
        [--keep-sqlite PATH] [--keep-postgres DATABASE]

The year takes a while to project (about 15 minutes on SQLite and 45 on PostgreSQL at full
scale): ``--keep-sqlite`` / ``--keep-postgres`` keep it in that file or database, and a later
run with the same options finds it projected (same size, nothing pending), migrates it to
the current schema and goes straight to phase 3; phase 4 then runs on a copy of it.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import history  # noqa: E402
from dora_cloudevents.config import Settings  # noqa: E402
from dora_cloudevents.metrics import queries as metric_queries  # noqa: E402
from dora_cloudevents.metrics.dora import compute_dora  # noqa: E402
from dora_cloudevents.metrics.filters import resolve_selection  # noqa: E402
from dora_cloudevents.metrics.projector import Projector  # noqa: E402
from dora_cloudevents.metrics.series import metric_series  # noqa: E402
from dora_cloudevents.store.db import make_engine, write_transaction  # noqa: E402
from dora_cloudevents.store.events import insert_groups  # noqa: E402
from dora_cloudevents.store.migrate import upgrade  # noqa: E402
from dora_cloudevents.store.schema import cdevents_raw, deployments, metadata  # noqa: E402
from ingest import free_port, wait_ready  # noqa: E402

DEFAULT_POSTGRES = os.environ.get(
    "DORA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STORE_CHUNK = 5_000
INCREMENT_BATCH = 500  # the projector's default batch size
YEAR_END = history.START + timedelta(days=history.YEAR_DAYS)


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


TO = rfc3339(YEAR_END)
FROM_90 = rfc3339(YEAR_END - timedelta(days=90))
FROM_YEAR = rfc3339(history.START)


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


# ---- Configuration (teams) and databases -----------------------------------------------------

def config_values(services: int) -> dict[str, Any]:
    return {
        "production_environments": ["production"],
        "services": {history.service_name(i): {"team": history.team_name(i)}
                     for i in range(services)},
    }


@dataclass
class Database:
    backend: str
    url: str


@contextmanager
def database(backend: str, workdir: Path, admin_url: str, label: str) -> Iterator[Database]:
    if backend == "sqlite":
        path = workdir / f"{label}.db"
        yield Database(backend, f"sqlite:///{path}")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    schema = f"bench_metrics_{label}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(admin_url)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield Database(backend, url.render_as_string(hide_password=False))
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@contextmanager
def kept_database(backend: str, args: argparse.Namespace, workdir: Path
                  ) -> Iterator[Database]:
    """The history database: kept where --keep-* says, else a temporary one."""
    if backend == "sqlite" and args.keep_sqlite:
        yield Database(backend, f"sqlite:///{Path(args.keep_sqlite).resolve()}")
    elif backend == "postgresql" and args.keep_postgres:
        yield Database(backend, make_url(args.postgres).set(
            database=args.keep_postgres).render_as_string(hide_password=False))
    else:
        with database(backend, workdir, args.postgres, "history") as db:
            yield db


@contextmanager
def copy_of(db: Database, workdir: Path) -> Iterator[Database]:
    """A scratch copy of a kept database, dropped afterwards."""
    url = make_url(db.url)
    if db.backend == "sqlite":
        path = workdir / "increment.db"
        # The backup API copies what the WAL holds too, which a file copy would miss.
        with sqlite3.connect(str(url.database)) as source, sqlite3.connect(path) as target:
            source.backup(target)
        yield Database(db.backend, f"sqlite:///{path}")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    name = f"{url.database}_increment"
    admin = make_engine(url.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"'))
    try:
        yield Database(db.backend, url.set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def already_projected(engine: Engine, size: int) -> bool:
    with engine.connect() as connection:
        stored = connection.execute(select(func.count()).select_from(cdevents_raw)).scalar_one()
    return int(stored) == size and pending(engine) == 0


def open_engine(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


def store(engine: Engine, specs: list[history.Spec]) -> float:
    """Insert the CDEvents of ``specs`` into cdevents_raw; returns the seconds it took."""
    started = time.perf_counter()
    chunk: list[dict[str, Any]] = []
    for row in history.rows(specs):
        chunk.append(row)
        if len(chunk) == STORE_CHUNK:
            with write_transaction(engine) as connection:
                insert_groups(connection, cdevents_raw, [chunk])
            chunk = []
    if chunk:
        with write_transaction(engine) as connection:
            insert_groups(connection, cdevents_raw, [chunk])
    return time.perf_counter() - started


def pending(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(cdevents_raw).where(
            cdevents_raw.c.status == "pending")).scalar_one())


# ---- Projection ------------------------------------------------------------------------------

@dataclass
class Projection:
    events: int
    seconds: float
    batches: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def project(engine: Engine, settings: Settings, total: int, batch_size: int,
            label: str) -> Projection:
    """project_batch() until nothing is pending (as project_all does), reporting progress."""
    projector = Projector(engine, settings, batch_size=batch_size)
    started = last_report = time.perf_counter()
    done = batches = 0
    window_done, window_start = 0, started
    while True:
        claimed = projector.project_batch()
        if claimed == 0:
            break
        done += claimed
        batches += 1
        now = time.perf_counter()
        if now - last_report >= 30:
            recent = (done - window_done) / (now - window_start)
            log(f"  {label}: {done:,}/{total:,} projected in {now - started:,.0f} s "
                f"({done / (now - started):,.0f}/s overall, {recent:,.0f}/s lately)")
            last_report = window_start = now
            window_done = done
    return Projection(done, time.perf_counter() - started, batches)


def entity_counts(engine: Engine) -> dict[str, int]:
    counts = {}
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            if table.name in ("cloudevents_raw", "cdevents_raw"):
                continue
            counts[table.name] = int(connection.execute(
                select(func.count()).select_from(table)).scalar_one())
        statuses = connection.execute(select(cdevents_raw.c.status, func.count())
                                      .group_by(cdevents_raw.c.status)).all()
        counts.update({f"cdevents {status}": int(n) for status, n in statuses})
        counts["deployments failed"] = int(connection.execute(
            select(func.count()).select_from(deployments).where(
                deployments.c.failed.is_(True))).scalar_one())
    return counts


# ---- Latency ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Query:
    label: str
    path: str
    params: dict[str, str]


def queries(services: int) -> list[Query]:
    one = history.service_name(0)
    team = history.team_name(0)
    d90 = {"from": FROM_90, "to": TO}
    year = {"from": FROM_YEAR, "to": TO}
    week = {"bucket": "week"}
    team_size = min(services, history.SERVICES_PER_TEAM)
    return [
        Query("dora, all services, 90 d", "/api/v1/dora", d90),
        # The default window ends now, mid-day: the 7- and 30-day blocks then end mid-day.
        Query("dora, all services, 90 d to 13:30", "/api/v1/dora",
              {"from": rfc3339(YEAR_END - timedelta(days=90, hours=10, minutes=30)),
               "to": rfc3339(YEAR_END - timedelta(hours=10, minutes=30))}),
        Query(f"dora, service={one}, 90 d", "/api/v1/dora", {**d90, "service": one}),
        Query(f"dora, team={team} ({team_size} svc), 90 d", "/api/v1/dora",
              {**d90, "team": team}),
        Query("dora, environment=staging, 90 d", "/api/v1/dora",
              {**d90, "environment": "staging"}),
        Query("dora, all services, 1 year", "/api/v1/dora", year),
        Query(f"dora, service={one}, 1 year", "/api/v1/dora", {**year, "service": one}),
        Query("deployment-frequency weekly, all, 1 year",
              "/api/v1/metrics/deployment-frequency", {**year, **week}),
        Query(f"deployment-frequency weekly, team={team}, 1 year",
              "/api/v1/metrics/deployment-frequency", {**year, **week, "team": team}),
        Query(f"deployment-frequency weekly, {one}, 1 year",
              "/api/v1/metrics/deployment-frequency", {**year, **week, "service": one}),
        Query("lead-time weekly, all, 1 year", "/api/v1/metrics/lead-time", {**year, **week}),
        Query(f"lead-time weekly, team={team}, 1 year", "/api/v1/metrics/lead-time",
              {**year, **week, "team": team}),
        Query(f"lead-time weekly, {one}, 1 year", "/api/v1/metrics/lead-time",
              {**year, **week, "service": one}),
    ]


@dataclass
class Latency:
    query: Query
    times: list[float]
    summary: str

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times) * 1000

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.times)
        return ordered[max(0, -(-95 * len(ordered) // 100) - 1)] * 1000  # nearest rank


def summarise(body: dict[str, Any]) -> str:
    if "deployment_frequency" in body:
        lead = body["lead_time_for_changes"]
        median = lead["median_seconds"]
        return (f"{body['deployment_frequency']['deployments']} deploys, "
                f"{lead['changes']} changes, lead median "
                f"{'-' if median is None else f'{median / 3600:.1f} h'}, CFR "
                f"{body['change_failure_rate']['rate'] or 0:.3f}, "
                f"{body['time_to_restore']['incidents']} incidents")
    points = body.get("series", [])
    return f"{len(points)} points"


@contextmanager
def api_server(url: str, config: Path, workdir: Path) -> Iterator[str]:
    port = free_port()
    server_log = (workdir / "server.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "dora_cloudevents", "serve", "--components", "api",
         "--db", url, "--port", str(port), "--config", str(config)],
        cwd=workdir, stdout=server_log, stderr=server_log)
    try:
        wait_ready(port, process, "/readyz")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        server_log.close()


def measure_latencies(base: str, services: int, requests: int, query_budget: float
                      ) -> list[Latency]:
    results = []
    with httpx.Client(base_url=base, timeout=600) as client:
        for query in queries(services):
            body: dict[str, Any] = {}
            for _ in range(2):  # warm-up: connection pool, statement caches, page cache
                response = client.get(query.path, params=query.params)
                if response.status_code != 200:
                    raise RuntimeError(f"{query.path} {query.params}: "
                                       f"{response.status_code} {response.text[:500]}")
                body = response.json()
            times: list[float] = []
            started = time.perf_counter()
            while len(times) < requests:
                began = time.perf_counter()
                response = client.get(query.path, params=query.params)
                times.append(time.perf_counter() - began)
                if response.status_code != 200:
                    raise RuntimeError(f"{query.path}: {response.status_code}")
                if time.perf_counter() - started > query_budget and len(times) >= 5:
                    break
            result = Latency(query, times, summarise(body))
            log(f"  {query.label}: median {result.median_ms:,.1f} ms, p95 "
                f"{result.p95_ms:,.1f} ms over {len(times)} ({result.summary})")
            results.append(result)
    return results


# ---- In-process breakdown: time in the queries module versus the rest -----------------------

def breakdown(engine: Engine, settings: Settings, services: int, runs: int = 5) -> list[str]:
    """Each query in-process; the time spent in each function of metrics/queries.py (SQL,
    fetching, building the rows) is shown apart from the total."""
    spent: dict[str, float] = {}
    originals: dict[str, Any] = {}

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - began
        return wrapper

    for name, value in vars(metric_queries).items():
        if (callable(value) and getattr(value, "__module__", None) == metric_queries.__name__
                and not isinstance(value, type) and not name.startswith("_")
                # query builders (called inside the functions that run the queries)
                and not name.endswith(("_filters", "_query")) and name != "change_time"):
            originals[name] = value
            setattr(metric_queries, name, timed(name, value))
    lines = []
    try:
        for query in queries(services):
            params = dict(query.params)
            selection = resolve_selection(settings, start=params.get("from"),
                                          end=params.get("to"), service=params.get("service"),
                                          team=params.get("team"),
                                          environment=params.get("environment"))
            spent.clear()
            started = time.perf_counter()
            for _ in range(runs):
                if query.path == "/api/v1/dora":
                    compute_dora(engine, selection)
                else:
                    with engine.connect() as connection:
                        metric_series(connection, settings, selection,
                                      query.path.rsplit("/", 1)[1], "week")  # type: ignore[arg-type]
            total = (time.perf_counter() - started) / runs * 1000
            parts = ", ".join(f"{name} {seconds / runs * 1000:,.1f}" for name, seconds in
                              sorted(spent.items(), key=lambda item: -item[1]))
            lines.append(f"{query.label}: {total:,.1f} ms in-process; queries.py: {parts}")
    finally:
        for name, value in originals.items():
            setattr(metric_queries, name, value)
    return lines


def source_fingerprint() -> str:
    """What engine code was measured (others edit it): a hash of the package's sources."""
    root = Path(metric_queries.__file__).resolve().parents[1]
    digest = hashlib.sha256()
    newest = 0.0
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
        newest = max(newest, path.stat().st_mtime)
    changed = datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{digest.hexdigest()[:12]} (newest file {changed})"


# ---- One back-end ----------------------------------------------------------------------------

@dataclass
class Result:
    backend: str
    stored_seconds: float = 0.0
    projection: Projection | None = None
    counts: dict[str, int] = field(default_factory=dict)
    latencies: list[Latency] = field(default_factory=list)
    breakdown: list[str] = field(default_factory=list)
    incremental: list[Projection] = field(default_factory=list)  # one per round
    empty: list[Projection] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """Best against best: a burst of load from elsewhere slows one round, not all."""
        if not self.incremental or not self.empty:
            return None
        return best(self.incremental) / best(self.empty)


def best(rounds: list[Projection]) -> float:
    return min(projection.seconds for projection in rounds)


def project_increment(url: str, settings: Settings, specs: list[history.Spec],
                      label: str) -> Projection:
    engine = open_engine(url)
    try:
        store(engine, specs)
        return project(engine, settings, len(specs), INCREMENT_BATCH, label)
    finally:
        engine.dispose()


def run_backend(backend: str, generated: history.History, args: argparse.Namespace,
                workdir: Path) -> Result:
    result = Result(backend)
    settings = Settings.model_validate(config_values(generated.services))
    config = workdir / "config.yaml"
    config.write_text(yaml.safe_dump(config_values(generated.services)))
    size = len(generated.history)
    kept = (args.keep_sqlite if backend == "sqlite" else args.keep_postgres) is not None
    with kept_database(backend, args, workdir) as db:
        phase = time.perf_counter()
        engine = open_engine(db.url)
        result.phases["open and migrate"] = time.perf_counter() - phase
        if kept and already_projected(engine, size):
            log(f"{backend}: reusing the projected history in {db.url}")
        else:
            phase = time.perf_counter()
            log(f"{backend}: storing {size:,} CDEvents in time order")
            result.stored_seconds = store(engine, generated.history)
            result.phases["store history"] = time.perf_counter() - phase
            log(f"{backend}: stored in {result.stored_seconds:,.1f} s "
                f"({size / result.stored_seconds:,.0f}/s); projecting "
                f"(batch size {args.history_batch_size})")
            result.projection = project(engine, settings, size, args.history_batch_size,
                                        f"{backend} history")
            result.phases["project history"] = result.projection.seconds
            log(f"{backend}: projected {result.projection.events:,} in "
                f"{result.projection.seconds:,.1f} s ({result.projection.rate:,.0f}/s)")
        result.counts = entity_counts(engine)
        log(f"{backend}: {result.counts}")
        if backend == "postgresql":
            # What autovacuum would have done by now (index-only scans need the
            # visibility map a vacuum sets); VACUUM cannot run in a transaction.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("VACUUM ANALYZE"))
        phase = time.perf_counter()
        with api_server(db.url, config, workdir) as base:
            result.latencies = measure_latencies(base, generated.services, args.requests,
                                                 args.query_budget)
        result.phases["latency"] = time.perf_counter() - phase
        if args.breakdown:
            phase = time.perf_counter()
            result.breakdown = breakdown(engine, settings, generated.services)
            for line in result.breakdown:
                log(f"  {line}")
            result.phases["breakdown"] = time.perf_counter() - phase
        engine.dispose()
        phase = time.perf_counter()
        # Rounds alternate between the history (a fresh copy each time) and an empty
        # database; the history itself serves one round where it cannot be copied.
        copies = kept or backend == "sqlite"
        for round_ in range(1, (args.increment_rounds if copies else 1) + 1):
            with (copy_of(db, workdir) if copies else nullcontext(db)) as scratch:
                result.incremental.append(project_increment(
                    scratch.url, settings, generated.increment, f"{backend} incremental"))
            with database(backend, workdir, args.postgres, "empty") as empty:
                result.empty.append(project_increment(
                    empty.url, settings, generated.increment, f"{backend} empty"))
            log(f"{backend} round {round_}: {len(generated.increment):,} new events on the "
                f"history {result.incremental[-1].seconds:,.1f} s, on an empty database "
                f"{result.empty[-1].seconds:,.1f} s")
        result.phases["increment rounds"] = time.perf_counter() - phase
    return result


# ---- Report ----------------------------------------------------------------------------------

def rounds(projections: list[Projection]) -> str:
    return ", ".join(f"{projection.seconds:,.1f} s" for projection in projections)


def print_report(args: argparse.Namespace, generated: history.History,
                 results: list[Result], generate_seconds: float) -> None:
    counts = generated.counts(generated.history)
    deploys = sum(n for kind, n in counts.items() if kind.startswith("deploy"))
    change_events = sum(counts.get(kind, 0) for kind in
                        ("push", "pr_created", "pr_merged", "pr_abandoned"))
    print()
    print(f"## Metrics benchmark: scale {args.scale} ({generated.services} services), seed "
          f"{args.seed}, {os.cpu_count()} CPUs")
    print()
    print(f"Command: bench/metrics.py {' '.join(sys.argv[1:])}; engine sources "
          f"{source_fingerprint()}")
    print()
    print(f"History (one year, generated in {generate_seconds:.1f} s): "
          f"{len(generated.history):,} CDEvents: {deploys:,} deployment events "
          f"({counts.get('deploy production deployed', 0):,} production, "
          f"{counts.get('deploy staging deployed', 0):,} staging, "
          f"{counts.get('deploy production rolledback', 0):,} rollbacks), "
          f"{change_events:,} change events ({counts.get('push', 0):,} pushes, "
          f"{counts.get('pr_created', 0):,} pull requests), "
          f"{counts.get('incident detected', 0):,} incidents; increment: "
          f"{len(generated.increment):,} CDEvents.")
    for result in results:
        print(f"\n{result.backend} entities: " + ", ".join(
            f"{name} {n:,}" for name, n in result.counts.items()))
    print()
    print("| back-end | stored events/s | projected events/s (history) | projection time |")
    print("|---|---:|---:|---:|")
    for result in results:
        projection = result.projection
        if projection is None:
            print(f"| {result.backend} | (kept from an earlier run) | | |")
            continue
        print(f"| {result.backend} | {len(generated.history) / result.stored_seconds:,.0f} | "
              f"{projection.rate:,.0f} | {projection.seconds:,.0f} s |")
    print()
    header = "| query | " + " | ".join(
        f"{r.backend} median ms | {r.backend} p95 ms" for r in results) + " |"
    print(header)
    print("|---|" + "---:|---:|" * len(results))
    labels = [latency.query.label for latency in results[0].latencies] if results else []
    for index, label in enumerate(labels):
        cells = []
        for result in results:
            latency = result.latencies[index]
            cells += [f"{latency.median_ms:,.1f}", f"{latency.p95_ms:,.1f}"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print()
    print(f"| back-end | {len(generated.increment):,} events on the history, each round | "
          "same on an empty db | ratio of the best rounds |")
    print("|---|---:|---:|---:|")
    for result in results:
        print(f"| {result.backend} | {rounds(result.incremental)} | {rounds(result.empty)} | "
              f"{result.ratio:,.2f} |")
    print()
    for result in results:
        print(f"{result.backend} phases: " + ", ".join(
            f"{name} {seconds:,.0f} s" for name, seconds in result.phases.items()))
    goals = []
    for result in results:
        series = max((latency.p95_ms for latency in result.latencies
                      if latency.query.path != "/api/v1/dora"), default=float("nan"))
        dora = max((latency.p95_ms for latency in result.latencies
                    if latency.query.path == "/api/v1/dora"), default=float("nan"))
        ratio = result.ratio or float("nan")
        goals.append(f"{result.backend}: worst /api/v1/dora p95 {dora:,.0f} ms "
                     f"({'met' if dora < 100 else 'MISSED'}; goal < 100 ms), worst weekly "
                     f"series p95 {series:,.0f} ms; incremental ratio {ratio:,.2f} "
                     f"({'met' if ratio <= 1.5 else 'MISSED'}; goal <= 1.5)")
    print("\n" + "\n".join(goals))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the 200 services (each keeps a full year)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--increment", type=int, default=10_000,
                        help="new events projected on top of the history")
    parser.add_argument("--requests", type=int, default=50, help="timed requests per query")
    parser.add_argument("--query-budget", type=float, default=120.0,
                        help="stop timing a query after this many seconds (at least 5 requests)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--history-batch-size", type=int, default=20_000,
                        help="projector batch size for the year (the increment uses "
                        f"{INCREMENT_BATCH}, as dora-ce serve does)")
    parser.add_argument("--keep-sqlite", metavar="PATH",
                        help="keep (or reuse) the projected SQLite history in this file")
    parser.add_argument("--keep-postgres", metavar="DATABASE",
                        help="keep (or reuse) the projected PostgreSQL history in this "
                        "database (created beforehand) on the --postgres server")
    parser.add_argument("--increment-rounds", type=int, default=3,
                        help="rounds of the increment, alternating history and empty database "
                        "(the ratio compares the best of each)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also run the queries in-process and show the time spent in SQL")
    args = parser.parse_args()
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = set(backends) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown back-ends: {', '.join(sorted(unknown))}")
    log(f"engine sources {source_fingerprint()}")
    started = time.perf_counter()
    generated = history.generate(args.scale, args.seed, args.increment)
    generate_seconds = time.perf_counter() - started
    log(f"generated {len(generated.history):,} + {len(generated.increment):,} CDEvents for "
        f"{generated.services} services in {generate_seconds:.1f} s: "
        f"{generated.counts(generated.history)}")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        for backend in backends:
            results.append(run_backend(backend, generated, args, Path(tmp)))
    print_report(args, generated, results, generate_seconds)
    log(f"total {time.perf_counter() - started:,.0f} s")


if __name__ == "__main__":
    main()
