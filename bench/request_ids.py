"""Cost of the request-id middleware (logs.RequestIds) per request, in process.

The same bare 202 ASGI app is called directly (baseline) and wrapped in RequestIds, with and
without an incoming X-Request-ID, alternating rounds so both see the same machine load.

    .venv/bin/python bench/request_ids.py [--requests 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from dora_cloudevents.logs import RequestIds

BODY = b'{"accepted":1,"duplicates":0}'


async def bare(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 202,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": BODY})


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"{}", "more_body": False}


async def send(_message: Any) -> None:
    return None


def scope(with_id: bool) -> dict[str, Any]:
    headers = [(b"content-type", b"application/cloudevents+json"), (b"host", b"127.0.0.1")]
    if with_id:
        headers.append((b"x-request-id", b"client-trace-0123456789"))
    return {"type": "http", "method": "POST", "path": "/events", "headers": headers}


async def seconds_per_request(app: Any, with_id: bool, count: int) -> float:
    request = scope(with_id)
    started = time.perf_counter()
    for _ in range(count):
        await app(dict(request), receive, send)
    return (time.perf_counter() - started) / count


async def main(count: int, rounds: int) -> None:
    wrapped = RequestIds(bare)
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, app, with_id in (("bare app (baseline)", bare, False),
                                   ("RequestIds, new id", wrapped, False),
                                   ("RequestIds, caller's id", wrapped, True)):
            took = await seconds_per_request(app, with_id, count)
            best[name] = min(best.get(name, took), took)
    baseline = best["bare app (baseline)"]
    print("| app | µs per request | added µs | ratio to bare |")
    print("|---|---:|---:|---:|")
    for name, took in best.items():
        print(f"| {name} | {took * 1e6:.2f} | {(took - baseline) * 1e6:.2f} | "
              f"{took / baseline:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.requests // args.rounds, args.rounds))
