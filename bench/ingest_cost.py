"""Cost of one single-event ingest request in process, without HTTP: handling alone and stored.

dora-ce's ASGI app is called directly (no uvicorn, no sockets) on uvloop, with 32 requests
in flight so that the group committer forms groups as it does under load. Two modes:

* ``handling``: the committer answers at once without storing: what parsing, checking and
  answering a request cost.
* ``stored``: the events go to a fresh SQLite file, as with ``dora-ce serve``.

Wall-clock figures move with the machine's load; ``--callgrind`` counts instructions
instead, which no other work on the machine changes: it runs this script under valgrind's
callgrind with 1 and with N + 1 requests and prints the difference per request (startup,
imports and migrations cancel out). Instructions say nothing about system calls or cache
misses, so they compare versions of the Python side, not the servers' throughput.

    .venv/bin/python bench/ingest_cost.py [--requests 20000] [--rounds 5]
    .venv/bin/python bench/ingest_cost.py --callgrind [--requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import uvloop

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dora_cloudevents.app import create_app  # noqa: E402
from dora_cloudevents.config import Settings  # noqa: E402
from dora_cloudevents.ingest.committer import GroupCommitter  # noqa: E402
from dora_cloudevents.store.db import make_engine  # noqa: E402
from dora_cloudevents.store.migrate import upgrade  # noqa: E402
from ingest import answer_without_storing, event  # noqa: E402

MODES = ("handling", "stored")
IN_FLIGHT = 32


def scope(body: bytes) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "scheme": "http", "method": "POST", "root_path": "", "path": "/events",
            "raw_path": b"/events", "query_string": b"", "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000), "state": {},
            "headers": [(b"host", b"127.0.0.1:8000"),
                        (b"content-type", b"application/cloudevents+json"),
                        (b"content-length", b"%d" % len(body))]}


async def drive(app: Any, bodies: list[bytes]) -> float:
    """Seconds to serve ``bodies``, IN_FLIGHT at a time; every answer must be a 202."""
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def connection(first: int) -> None:
        for body in bodies[first::IN_FLIGHT]:
            async def receive(body: bytes = body) -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}
            await app(scope(body), receive, send)

    started = time.perf_counter()
    await asyncio.gather(*(connection(first) for first in range(IN_FLIGHT)))
    elapsed = time.perf_counter() - started
    if statuses != [202] * len(bodies):
        raise RuntimeError(f"not every request was accepted: {sorted(set(statuses))}")
    return elapsed


async def measure(mode: str, requests: int, rounds: int) -> float:
    """The best of ``rounds`` rounds, in microseconds per request."""
    url = f"sqlite:///{tempfile.mkdtemp(prefix='dora-cost-')}/dora.db"
    engine = make_engine(url)
    upgrade(engine)
    app = create_app(Settings(database_url=url), engine, {"ingest", "api"})
    api: Any = app
    while not hasattr(api, "router"):  # IngestFirst -> the API's middleware -> FastAPI
        api = api.app
    best = float("inf")
    submit = GroupCommitter.submit
    if mode == "handling":
        GroupCommitter.submit = answer_without_storing  # type: ignore[method-assign,assignment]
    try:
        async with api.router.lifespan_context(api):
            for round_ in range(rounds):
                bodies = [orjson.dumps(event(f"cost{round_}", n)) for n in range(requests)]
                best = min(best, await drive(app, bodies))
    finally:
        GroupCommitter.submit = submit  # type: ignore[method-assign]
        engine.dispose()
    return best / requests * 1e6


def instructions(mode: str, requests: int) -> int:
    """Instructions valgrind counts for a run of this script serving ``requests``."""
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         __file__, "--mode", mode, "--requests", str(requests), "--rounds", "1"],
        capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", run.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{run.stderr}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default=",".join(MODES), help="handling, stored or both")
    parser.add_argument("--requests", type=int, default=None,
                        help="per round (default 20000; 3000 with --callgrind)")
    parser.add_argument("--rounds", type=int, default=5, help="best of this many")
    parser.add_argument("--callgrind", action="store_true",
                        help="count instructions per request under valgrind instead of time")
    args = parser.parse_args()
    modes = args.mode.split(",")
    if args.callgrind:
        requests = args.requests or 3000
        for mode in modes:
            extra = instructions(mode, requests + 1) - instructions(mode, 1)
            print(f"{mode}: {extra / requests:,.0f} instructions per request")
        return
    for mode in modes:
        cost = uvloop.run(measure(mode, args.requests or 20_000, args.rounds))
        print(f"{mode}: {cost:.2f} µs per request (best of {args.rounds})")


if __name__ == "__main__":
    main()
