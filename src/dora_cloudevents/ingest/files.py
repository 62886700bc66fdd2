"""Event files for ``dora-ce send`` (to a server) and ``dora-ce import`` (into the database).

A file holds one CloudEvent (a JSON object), a batch (a JSON array of them) or JSON Lines
(one CloudEvent per line; ``.jsonl``/``.ndjson``, or any file whose lines are JSON objects).
``send`` posts them as the CloudEvents HTTP binding's structured or batched mode; ``import``
checks each with the same code as the HTTP endpoints and stores it with the same inserts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from sqlalchemy import Engine

from dora_cloudevents.config import Settings
from dora_cloudevents.ingest.cloudevents import (
    BATCH,
    STRUCTURED,
    Limits,
    check_attributes,
    load_json,
)
from dora_cloudevents.problems import Problem
from dora_cloudevents.store.db import write_transaction
from dora_cloudevents.store.events import EventRow, cloudevent_row, insert_groups
from dora_cloudevents.store.schema import cloudevents_raw

LINE_SUFFIXES = (".jsonl", ".ndjson")
_BATCH_INDEX = re.compile(r"event \[(\d+)\]")
# Events per request or transaction: well under the server's default max_batch_events
# (1000) and its 1 MiB body limit for events of a kilobyte or so.
DEFAULT_BATCH_SIZE = 500


class EventFileError(Exception):
    """The file cannot be read as events; the message names the file and, where known, the line."""


@dataclass(frozen=True)
class Chunk:
    """Events of one file to send in one request: their JSON, and where each is in the file."""

    positions: list[str]  # "line 7" (JSON Lines) or "event 3" (1-based, in the file's array)
    body: bytes
    content_type: str

    def where(self) -> str:
        if len(self.positions) == 1:
            return self.positions[0]
        return f"{self.positions[0]} to {self.positions[-1]}"

    def locate(self, detail: str) -> str:
        """A problem detail with the request's "event [i]" turned into the file's position."""
        match = _BATCH_INDEX.match(detail)
        if match is None or int(match[1]) >= len(self.positions):
            return detail
        return self.positions[int(match[1])] + detail[match.end():]


@dataclass
class FileOutcome:
    """What the server (or the database) made of one file."""

    path: Path
    accepted: int = 0
    duplicates: int = 0
    failure: str | None = None

    def describe(self) -> str:
        counts = f"accepted {self.accepted}, duplicates {self.duplicates}"
        if self.failure is None:
            return f"{self.path}: {counts}"
        return f"{self.path}: {self.failure} ({counts} before it)"


def is_json_lines(path: Path, data: bytes) -> bool:
    if path.suffix.lower() in LINE_SUFFIXES:
        return True
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        # Not one JSON document: JSON Lines if the first line is an object of its own.
        first = data.lstrip().split(b"\n", 1)[0]
        try:
            return isinstance(orjson.loads(first), dict)
        except orjson.JSONDecodeError:
            return False
    return False


def json_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for each non-blank line."""
    for number, line in enumerate(data.split(b"\n"), start=1):
        line = line.strip()
        if line:
            yield number, line


def chunks(path: Path, data: bytes, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[Chunk]:
    """The requests that carry the events of ``data`` (read from ``path``), each event's
    bytes as in the file where the file's shape allows."""
    if is_json_lines(path, data):
        lines = list(json_lines(data))
        for start in range(0, len(lines), batch_size):
            part = lines[start:start + batch_size]
            yield Chunk([f"line {number}" for number, _ in part],
                        b"[" + b",".join(line for _, line in part) + b"]", BATCH)
        return
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise EventFileError(f"{path}: not JSON or JSON Lines: {error}") from None
    if isinstance(document, dict):
        yield Chunk(["the event"], data, STRUCTURED)
    elif isinstance(document, list):
        positions = [f"event {n}" for n in range(1, len(document) + 1)]
        if len(document) <= batch_size:
            yield Chunk(positions or ["the empty batch"], data, BATCH)
            return
        for start in range(0, len(document), batch_size):
            yield Chunk(positions[start:start + batch_size],
                        orjson.dumps(document[start:start + batch_size]), BATCH)
    else:
        raise EventFileError(f"{path}: holds a JSON {type(document).__name__}; expected a "
                             "CloudEvent object, an array of them, or JSON Lines")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise EventFileError(f"{path}: cannot be read: {error.strerror}") from None


def send_file(http: httpx.Client, url: str, path: Path,
              batch_size: int = DEFAULT_BATCH_SIZE) -> FileOutcome:
    """POST ``path``'s events to ``url``; stops at the first request the server refuses."""
    outcome = FileOutcome(path)
    try:
        for chunk in chunks(path, _read(path), batch_size):
            response = http.post(url, content=chunk.body,
                                 headers={"content-type": chunk.content_type})
            if response.status_code != 202:
                outcome.failure = (f"{chunk.where()} refused with {response.status_code}: "
                                   f"{chunk.locate(_detail(response))}")
                return outcome
            answer = response.json()
            outcome.accepted += answer["accepted"]
            outcome.duplicates += answer["duplicates"]
    except EventFileError as error:
        outcome.failure = str(error).removeprefix(f"{path}: ")
    return outcome


def _detail(response: httpx.Response) -> str:
    try:
        problem = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if isinstance(problem, dict) and "detail" in problem:
        return str(problem["detail"])
    return response.text.strip()[:200]


def import_lines(engine: Engine, settings: Settings, path: Path,
                 batch_size: int = DEFAULT_BATCH_SIZE,
                 progress: Callable[[int, int], None] | None = None) -> FileOutcome:
    """Check and store each line of ``path`` as the ingest endpoints would, ``batch_size``
    events per transaction; stops at the first bad line (earlier batches stay stored, so a
    re-run after the fix counts them as duplicates). ``progress`` gets (line reached, lines)."""
    data = _read(path)
    total = data.count(b"\n") + 1
    limits = Limits.of(settings)
    outcome = FileOutcome(path)
    rows: list[EventRow] = []
    now = datetime.now(UTC)  # received_at: one per transaction, as one per request
    for number, line in json_lines(data):
        try:
            event = check_attributes(load_json(line, f"line {number}", limits.max_json_depth),
                                     f"line {number}", limits)
        except Problem as problem:
            _store(engine, rows, outcome)
            outcome.failure = problem.detail
            return outcome
        rows.append(cloudevent_row(event, now))
        if len(rows) >= batch_size:
            _store(engine, rows, outcome)
            rows, now = [], datetime.now(UTC)
            if progress is not None:
                progress(number, total)
    _store(engine, rows, outcome)
    if progress is not None:
        progress(total, total)
    return outcome


def _store(engine: Engine, rows: list[EventRow], outcome: FileOutcome) -> None:
    if not rows:
        return
    with write_transaction(engine) as connection:
        [written] = insert_groups(connection, cloudevents_raw, [rows])
    outcome.accepted += written.accepted
    outcome.duplicates += written.duplicates
