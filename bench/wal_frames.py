"""WAL frames per commit of group inserts into cloudevents_raw, by b-tree and page type.

Each frame SQLite appends to its write-ahead log is one page (plus a 24-byte header, two
`pwrite` calls); on the single-event ingest path they are most of what a commit costs. This
fills a fresh SQLite file with the app's schema, inserts --warm rows, then commits --commits
groups of --group rows as the group committer does (one multi-row INSERT ... ON CONFLICT
DO NOTHING per group, bench-shaped events) and counts the frames of those commits per
b-tree, from the WAL's frame headers and SQLite's dbstat table.

    .venv/bin/python bench/wal_frames.py [--ids uuid|streams] [--streams 32] [--group 31]
"""

from __future__ import annotations

import argparse
import sqlite3
import struct
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
from sqlalchemy import create_engine

from dora_cloudevents.store.schema import metadata

COLUMNS = ("source", "event_id", "type", "subject", "time", "received_at", "event")
WAL_HEADER_BYTES = 32
FRAME_HEADER_BYTES = 24


def event_text(event_id: str, n: int) -> str:
    """The bench's event (bench/ingest.py), as stored."""
    return orjson.dumps({
        "specversion": "1.0", "id": event_id, "source": "/bench/ingest",
        "type": "dev.knative.source.github.push", "time": "2024-05-01T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {"ref": "refs/heads/main", "after": f"{n:040x}",
                 "repository": {"full_name": "acme/shop", "default_branch": "main"}}}).decode()


def id_maker(kind: str, streams: int) -> Callable[[int], str]:
    """Ids as the bench's connections send them (``streams``: one counter per connection,
    taken in turn), or random UUIDs as most real sources send them."""
    if kind == "uuid":
        return lambda _n: str(uuid.uuid4())
    run = uuid.uuid4().hex[:8]
    counters = [stream * 100_000_000 for stream in range(streams)]

    def next_id(n: int) -> str:
        stream = n % streams
        counters[stream] += 1
        return f"{run}-{counters[stream]}"

    return next_id


def insert_group(connection: sqlite3.Connection, ids: Callable[[int], str], first: int,
                 size: int) -> None:
    values: list[str | None] = []
    for n in range(first, first + size):
        event_id = ids(n)
        values += ["/bench/ingest", event_id, "dev.knative.source.github.push", None,
                   "2024-05-01T10:00:00Z", "2026-11-30 01:00:00.000000", event_text(event_id, n)]
    row = "(" + ", ".join("?" * len(COLUMNS)) + ")"
    connection.execute(f"INSERT INTO cloudevents_raw ({', '.join(COLUMNS)}) VALUES "
                       f"{', '.join([row] * size)} ON CONFLICT (source, event_id) DO NOTHING",
                       values)


def wal_pages(wal: Path) -> list[int]:
    """The page number of each frame in ``wal``."""
    data = wal.read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    frame = FRAME_HEADER_BYTES + page_size
    return [struct.unpack(">I", data[offset:offset + 4])[0]
            for offset in range(WAL_HEADER_BYTES, len(data) - frame + 1, frame)]


def measure(args: argparse.Namespace, workdir: Path) -> tuple[int, Counter[str]]:
    path = workdir / "frames.db"
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)  # the tables and indexes the migrations create
    engine.dispose()
    connection = sqlite3.connect(path, isolation_level=None)
    # As the app runs it (store/db.py, ingest/committer.py), checkpoints left to us.
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")
    ids = id_maker(args.ids, args.streams)
    n = 0
    for _ in range(args.warm // args.group):
        insert_group(connection, ids, n, args.group)
        n += args.group
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    for _ in range(args.commits):
        insert_group(connection, ids, n, args.group)
        n += args.group
    pages = wal_pages(workdir / "frames.db-wal")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    owners = {page: f"{name} ({kind})" for page, name, kind
              in connection.execute("SELECT pageno, name, pagetype FROM dbstat")}
    connection.close()
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
