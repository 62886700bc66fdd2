"""WAL frames per commit of group inserts into cloudevents_raw, by b-tree and page type.

Each frame SQLite appends to its write-ahead log is one page (plus a 24-byte header, two
`pwrite` calls); on the single-event ingest path they are most of what a commit costs. This
fills a fresh SQLite file (the app's engine and migrations) with --warm rows, then commits
--commits groups of --group bench events through the group committer's insert (one
multi-row INSERT per group) and counts the frames of those commits per b-tree, from the
WAL's frame headers and SQLite's dbstat table.

    .venv/bin/python bench/wal_frames.py [--ids uuid|streams] [--streams 32] [--group 31]
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from dora_cloudevents.store.db import make_engine  # noqa: E402
from dora_cloudevents.store.events import cloudevent_row, insert_groups_dbapi  # noqa: E402
from dora_cloudevents.store.migrate import upgrade  # noqa: E402
from dora_cloudevents.store.schema import cloudevents_raw  # noqa: E402
from ingest import event  # noqa: E402

WAL_HEADER_BYTES = 32
FRAME_HEADER_BYTES = 24


def event_maker(kind: str, streams: int) -> Callable[[int], dict[str, object]]:
    """The n-th event: the bench's, with ids as its connections send them (``streams``: one
    counter per connection, taken in turn), or with random UUIDs as most real sources send."""
    run = uuid.uuid4().hex[:8]
    if kind == "uuid":
        return lambda n: {**event(run, n), "id": str(uuid.uuid4())}
    counters = [stream * 100_000_000 for stream in range(streams)]

    def next_event(n: int) -> dict[str, object]:
        stream = n % streams
        counters[stream] += 1
        return event(run, counters[stream])

    return next_event


def insert_group(driver: Any, events: Callable[[int], dict[str, object]], first: int,
                 size: int) -> None:
    """One group as the group committer writes it: one statement, events stored as sent."""
    now = datetime.now(UTC)
    rows = []
    for n in range(first, first + size):
        sent = events(n)
        rows.append(cloudevent_row(sent, now, orjson.dumps(sent).decode()))
    insert_groups_dbapi(driver, "sqlite", cloudevents_raw, [rows])


def wal_pages(wal: Path) -> list[int]:
    """The page number of each frame in ``wal``."""
    data = wal.read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    frame = FRAME_HEADER_BYTES + page_size
    return [struct.unpack(">I", data[offset:offset + 4])[0]
            for offset in range(WAL_HEADER_BYTES, len(data) - frame + 1, frame)]


def measure(args: argparse.Namespace, workdir: Path) -> tuple[int, Counter[str]]:
    engine = make_engine(f"sqlite:///{workdir / 'frames.db'}")  # the app's pragmas
    upgrade(engine)
    connection = engine.raw_connection()
    driver: Any = connection.driver_connection
    # No automatic checkpoints: the WAL keeps every frame of the measured commits.
    driver.execute("PRAGMA wal_autocheckpoint=0")
    events = event_maker(args.ids, args.streams)
    n = 0
    for _ in range(args.warm // args.group):
        insert_group(driver, events, n, args.group)
        n += args.group
    driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for _ in range(args.commits):
        insert_group(driver, events, n, args.group)
        n += args.group
    pages = wal_pages(workdir / "frames.db-wal")
    driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    owners = {page: f"{name} ({kind})" for page, name, kind
              in driver.execute("SELECT pageno, name, pagetype FROM dbstat")}
    connection.close()
    engine.dispose()
    return len(pages), Counter(owners.get(page, "?") for page in pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", choices=("uuid", "streams"), default="uuid")
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument("--group", type=int, default=31, help="rows per commit")
    parser.add_argument("--warm", type=int, default=200_000, help="rows stored beforehand")
    parser.add_argument("--commits", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        frames, by_tree = measure(args, Path(workdir))
    ids = "random UUIDs" if args.ids == "uuid" else f"ids from {args.streams} streams"
    print(f"# {args.commits} commits of {args.group} rows after {args.warm:,}, {ids}")
    print(f"frames per commit {frames / args.commits:.2f}, "
          f"per row {frames / args.commits / args.group:.2f}")
    for tree, count in by_tree.most_common():
        print(f"  {tree:48s} {count / args.commits:6.2f} per commit")


if __name__ == "__main__":
    main()
