"""Ingest throughput: dora-ce serve on SQLite and PostgreSQL against a bare 202 ASGI app.

Each server runs as its own process (uvicorn, one worker, like `dora-ce serve`); a separate
client process keeps N keep-alive connections busy over loopback for a fixed time, sending
single structured CloudEvents or batches of 100, every event with a new id. Afterwards the
stored row count is checked against what was acknowledged.

    .venv/bin/python bench/ingest.py [--seconds 10] [--runs 3] [--connections 32]
        [--postgres URL] [--targets bare,sqlite,postgresql] [--batches 1,100]

Every server is started first; then each round drives each of them in turn, and each cell
of the table is the best of --runs rounds (other work on the machine only ever slows a run
down, and interleaving spreads its bursts over the baseline and the servers alike). Beside
the rates, the table gives the CPU time the server's main thread (the event loop) spent
per request in that run, read from /proc, and the median (and range) of the ratios to the
bare app round by round: on a host whose speed drifts, the best rounds of two servers may
come from different minutes, a server and the baseline of one round never do.

The target `handling` is dora-ce with a committer that answers without storing: what the
request handling costs the server, apart from the storage. The target `floor` is the
opposite: dora-ce's group committer and SQLite file behind a minimal handler that only
parses the events, checks their attributes and stores them (no header limits, request ids,
read deadline, body checks or content negotiation): what the storage alone lets a server
reach. Neither runs by default.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from sqlalchemy import Table, create_engine, text
from sqlalchemy.engine import make_url
from starlette.types import Receive, Scope, Send

from dora_cloudevents.ingest.cloudevents import check_attributes
from dora_cloudevents.ingest.committer import GroupCommitter
from dora_cloudevents.ingest.front import IngestFirst
from dora_cloudevents.ingest.routes import accepted
from dora_cloudevents.store.events import EventRow, InsertOutcome, cloudevent_row
from dora_cloudevents.store.schema import cloudevents_raw

HERE = Path(__file__).resolve().parent
DEFAULT_POSTGRES = os.environ.get(
    "DORA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# dora-ce serve with one part replaced by {patch}, for the `handling` and `floor` targets.
PATCHED_APP = """
import sys
sys.path.insert(0, {bench!r})
import ingest
from dora_cloudevents.ingest.front import IngestFirst
from dora_cloudevents.cli import main
from dora_cloudevents.ingest.committer import GroupCommitter
{patch}
main(["serve", "--db", {url!r}, "--port", "{port}", "--components", "ingest,api"])
"""
# The group committer answers at once, nothing stored.
HANDLING_PATCH = "GroupCommitter.submit = ingest.answer_without_storing"
# POST /events is minimal_ingest: the real committer, nothing else.
FLOOR_PATCH = "IngestFirst.__call__ = ingest.minimal_ingest(IngestFirst.__call__)"
BARE_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 202,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"29")]})
    await send({"type": "http.response.body", "body": b'{"accepted":1,"duplicates":0}'})
"""


def answer_without_storing(self: GroupCommitter, _table: Table,
                           rows: list[EventRow]) -> asyncio.Future[InsertOutcome]:
    """GroupCommitter.submit for measuring without storage: everything is new, at once."""
    future: asyncio.Future[InsertOutcome] = self._loop.create_future()  # type: ignore[union-attr]
    future.set_result(InsertOutcome(len(rows), 0))
    return future


ASGICall = Callable[[IngestFirst, Scope, Receive, Send], Awaitable[None]]


def minimal_ingest(original: ASGICall) -> ASGICall:
    """IngestFirst.__call__ for the `floor` target: POST /events parses a structured
    event or a batch, checks the attributes and stores the events through the app's own
    group committer; every other request goes to ``original``."""

    async def call(self: IngestFirst, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/events":
            await original(self, scope, receive, send)
            return
        endpoints = self.endpoints["/events"].convert.__self__  # type: ignore[attr-defined]
        committer = self.committer
        assert committer is not None
        body = (await receive())["body"]
        parsed = orjson.loads(body)
        # As the real handler: one received_at per loop iteration, a single event stored as sent.
        now = endpoints.clock.now()
        if isinstance(parsed, list):
            rows = [cloudevent_row(check_attributes(event), now) for event in parsed]
        else:
            rows = [cloudevent_row(check_attributes(parsed), now, body.decode())]
        answer = accepted(await committer.submit(cloudevents_raw, rows))
        await send({"type": "http.response.start", "status": 202,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"%d" % len(answer))]})
        await send({"type": "http.response.body", "body": answer})

    return call


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def event(run: str, n: int) -> dict[str, object]:
    return {"specversion": "1.0", "id": f"{run}-{n}", "source": "/bench/ingest",
            "type": "dev.knative.source.github.push", "time": "2024-05-01T10:00:00Z",
            "datacontenttype": "application/json",
            "data": {"ref": "refs/heads/main", "after": f"{n:040x}",
                     "repository": {"full_name": "acme/shop", "default_branch": "main"}}}


def request_bytes(port: int, run: str, start: int, batch: int) -> bytes:
    if batch == 1:
        body = orjson.dumps(event(run, start))
        content_type = b"application/cloudevents+json"
    else:
        body = orjson.dumps([event(run, start + i) for i in range(batch)])
        content_type = b"application/cloudevents-batch+json"
    head = (b"POST /events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: %s\r\n"
            b"Content-Length: %d\r\n\r\n" % (port, content_type, len(body)))
    return head + body


async def _connection(port: int, run: str, worker: int, batch: int, deadline: float,
                      counts: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = worker * 100_000_000
    while time.perf_counter() < deadline:
        writer.write(request_bytes(port, run, n, batch))
        n += batch
        status = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        if status.split(b" ", 2)[1] == b"202":
            counts[0] += 1
        else:
            counts[1] += 1
    writer.close()


def client(port: int, run: str, connections: int, batch: int, seconds: float,
           result: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def main() -> list[int]:
        counts = [0, 0]
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(_connection(port, run, w, batch, deadline, counts)
                               for w in range(connections)))
        return counts

    started = time.perf_counter()
    ok, failed = asyncio.run(main())
    result.put((ok, failed, time.perf_counter() - started))


@dataclass
class Measurement:
    requests_per_s: float
    events_per_s: float
    failed: int
    acknowledged_events: int
    server_cpu_per_request: float = 0.0  # seconds of the server's main thread


def main_thread_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) the main thread of process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(port: int, connections: int, batch: int, seconds: float) -> Measurement:
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    run = uuid.uuid4().hex[:8]
    process = multiprocessing.Process(target=client,
                                      args=(port, run, connections, batch, seconds, queue))
    process.start()
    # A client that died (say, a server that reset its connections) must not hang the bench.
    ok, failed, elapsed = queue.get(timeout=seconds + 60)
    process.join()
    return Measurement(ok / elapsed, ok * batch / elapsed, failed, ok * batch)


def wait_ready(port: int, process: subprocess.Popen[bytes], path: str = "/healthz") -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the server exited before it was ready")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                if sock.recv(1024).startswith(b"HTTP/1.1 20"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not become ready")


def start_dora(database_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dora_cloudevents", "serve", "--db", database_url,
         "--port", str(port), "--components", "ingest,api"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, process, "/readyz")
    return process, port


def start_patched(workdir: Path, name: str, patch: str,
                  database_url: str) -> tuple[subprocess.Popen[bytes], int]:
    """dora-ce serve on ``database_url`` with ``patch`` applied (PATCHED_APP)."""
    port = free_port()
    script = workdir / f"{name}_app.py"
    script.write_text(PATCHED_APP.format(bench=str(HERE), port=port, url=database_url,
                                         patch=patch))
    process = subprocess.Popen([sys.executable, str(script)], cwd=workdir,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, process, "/readyz")
    return process, port


def start_bare(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    (workdir / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    process = subprocess.Popen(
        # uvicorn as `dora-ce serve` runs it: no access log, and no proxy-header middleware
        # (dora-ce applies that to its API only, never to ingest).
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port),
         "--log-level", "warning", "--no-access-log", "--no-proxy-headers"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, process)
    return process, port


def stored_rows(database_url: str) -> int:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        count = connection.execute(text("SELECT count(*) FROM cloudevents_raw")).scalar_one()
    engine.dispose()
    return int(count)


def postgres_schema(admin_url: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin_url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    url = make_url(admin_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def drop_schema(admin_url: str, schema: str) -> None:
    engine = create_engine(admin_url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


TARGETS = {"bare": "bare ASGI 202 (baseline)", "sqlite": "dora-ce on SQLite",
           "postgresql": "dora-ce on PostgreSQL",
           "handling": "dora-ce, nothing stored (handling only)",
           "floor": "dora-ce's storage behind a minimal handler (SQLite)"}
DEFAULT_TARGETS = ("bare", "sqlite", "postgresql")


def round_ratios(target: Target, baseline: Target, batch: int) -> list[float]:
    """The target's req/s over the baseline's, round by round: the two ran a few seconds
    apart, so a host whose speed drifts over minutes moves both alike."""
    return [measured.requests_per_s / base.requests_per_s
            for measured, base in zip(target.rounds[batch], baseline.rounds[batch], strict=True)]


def print_table(targets: list[Target], batches: list[int]) -> None:
    baseline = next((target for target in targets if target.name == TARGETS["bare"]), None)
    baseline_best = baseline.best if baseline is not None else {}
    header, rule = ["server"], ["---"]
    for batch in batches:
        what = "single" if batch == 1 else f"batch of {batch}"
        header += [f"{what}: req/s", f"{what}: events/s", f"{what}: server µs/req"]
        rule += ["---:", "---:", "---:"]
        if baseline is not None:
            header += ["ratio to bare (req/s)", "median ratio per round"]
            rule += ["---:", "---:"]
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(rule) + "|")
    for target in targets:
        cells, best = [target.name], target.best
        for batch in batches:
            measured = best[batch]
            cells += [f"{measured.requests_per_s:,.0f}", f"{measured.events_per_s:,.0f}",
                      f"{measured.server_cpu_per_request * 1e6:.1f}"]
            if baseline is not None:
                ratio = measured.requests_per_s / baseline_best[batch].requests_per_s
                per_round = round_ratios(target, baseline, batch)
                cells += [f"{ratio:.2f}", f"{statistics.median(per_round):.2f} "
                          f"({min(per_round):.2f}-{max(per_round):.2f})"]
        print("| " + " | ".join(cells) + " |")


@dataclass
class Target:
    """One server under test; ``database_url`` is None for the bare baseline."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    database_url: str | None
    rounds: dict[int, list[Measurement]] = field(default_factory=dict)  # by batch size
    acknowledged: int = 0

    @property
    def best(self) -> dict[int, Measurement]:
        return {batch: max(measured, key=lambda m: m.requests_per_s)
                for batch, measured in self.rounds.items()}

    def measure(self, args: argparse.Namespace, batch: int) -> None:
        cpu = main_thread_cpu(self.process.pid)
        measured = drive(self.port, args.connections, batch, args.seconds)
        requests = measured.acknowledged_events // batch + measured.failed
        measured.server_cpu_per_request = (
            (main_thread_cpu(self.process.pid) - cpu) / requests if requests else 0.0)
        self.acknowledged += measured.acknowledged_events
        self.rounds.setdefault(batch, []).append(measured)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def check_stored(self) -> None:
        if self.database_url is not None:
            stored = stored_rows(self.database_url)
            verdict = "ok" if stored == self.acknowledged else "MISMATCH"
            print(f"  {self.name}: acknowledged {self.acknowledged} events, stored {stored} "
                  f"({verdict})")


def measure_interleaved(targets: list[Target], args: argparse.Namespace) -> None:
    """Round-robin: each round runs every target once, so a burst of load from elsewhere
    on the machine hits the baseline and the servers alike, not one of them only."""
    for batch in args.batches:
        for _ in range(args.runs):
            for target in targets:
                target.measure(args, batch)


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs per cell")
    parser.add_argument("--targets", default=",".join(DEFAULT_TARGETS),
                        help="comma-separated subset of " + ", ".join(TARGETS))
    parser.add_argument("--batches", default="1,100",
                        help="events per request, comma-separated (1 = single structured)")
    args = parser.parse_args()
    args.batches = [int(size) for size in args.batches.split(",")]
    chosen = [name.strip() for name in args.targets.split(",")]
    unknown = set(chosen) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    print(f"# ingest benchmark: {args.connections} connections, best of {args.runs} "
          f"interleaved runs of {args.seconds:.0f} s, {os.cpu_count()} CPUs; at start {load()}")
    targets: list[Target] = []
    schema = None
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        try:
            if "bare" in chosen:
                targets.append(Target(TARGETS["bare"], *start_bare(workdir), None))
            if "sqlite" in chosen:
                sqlite_url = f"sqlite:///{workdir / 'bench.db'}"
                targets.append(Target(TARGETS["sqlite"], *start_dora(sqlite_url, workdir),
                                      sqlite_url))
            if "handling" in chosen:
                handling = start_patched(workdir, "handling", HANDLING_PATCH,
                                         f"sqlite:///{workdir / 'handling.db'}")
                targets.append(Target(TARGETS["handling"], *handling, None))
            if "floor" in chosen:
                floor_url = f"sqlite:///{workdir / 'floor.db'}"
                floor = start_patched(workdir, "floor", FLOOR_PATCH, floor_url)
                targets.append(Target(TARGETS["floor"], *floor, floor_url))
            if "postgresql" in chosen:
                pg_url, schema = postgres_schema(args.postgres)
                targets.append(Target(TARGETS["postgresql"], *start_dora(pg_url, workdir),
                                      pg_url))
            measure_interleaved(targets, args)
            for target in targets:
                target.stop()
            for target in targets:
                target.check_stored()
        finally:
            for target in targets:
                if target.process.poll() is None:
                    target.stop()
            if schema is not None:
                drop_schema(args.postgres, schema)
    print(f"# at end: {load()}")
    print_table(targets, args.batches)
    failures = sum(measured.failed for target in targets
                   for rounds in target.rounds.values() for measured in rounds)
    if failures:
        print(f"\n{failures} requests were not answered 202")


if __name__ == "__main__":
    main()
