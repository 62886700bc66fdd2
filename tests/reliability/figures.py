"""Figures the reliability tests measure, kept in .reports/reliability.json for the docs.

Each test records what it observed (events acknowledged and stored, recovery times, hostile
inputs tried and server errors among them). After a run,

    .venv/bin/python -m tests.reliability.figures          # print the Markdown
    .venv/bin/python -m tests.reliability.figures --write  # put it into docs/reliability.md

renders them as the tables docs/reliability.md quotes between its figures markers. The
numbers change from run to run; what must hold (acknowledged = stored, no 5xx) is asserted
by the tests themselves.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]
REPORT = Path(os.environ.get("DORA_RELIABILITY_REPORT", PROJECT / ".reports" / "reliability.json"))
DOC = PROJECT / "docs" / "reliability.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"


def record(key: str, value: Any) -> None:
    """Store ``value`` under the dotted ``key``."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    try:
        figures = json.loads(REPORT.read_text())
    except (OSError, ValueError):
        figures = {}
    figures[key] = {"at": datetime.now(UTC).isoformat(timespec="seconds"), **value}
    partial = REPORT.with_name(f"{REPORT.name}.{os.getpid()}")
    partial.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
    partial.replace(REPORT)  # whole or not at all, should tests run in parallel (-n)


def count(key: str, tried: int, server_errors: int) -> None:
    """Hostile inputs tried by one test in this run, and the 5xx answers among them."""
    record(key, {"tried": tried, "server_errors": server_errors})


def _kill9(figures: dict[str, Any]) -> list[str]:
    lines = ["| database | SIGKILLs | acknowledged (2xx) | acknowledged and stored once | lost "
             "| stored twice | in flight at a kill (no answer) | of those stored anyway |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for backend in ("sqlite", "postgresql"):
        f = figures.get(f"kill9.{backend}")
        if f:
            lines.append(f"| {backend} | {f['kills']} | {f['acknowledged']} | "
                         f"{f['acknowledged_and_stored_once']} | "
                         f"{f['acknowledged'] - f['acknowledged_and_stored_once']} | 0 | "
                         f"{f['in_flight_unanswered']} | {f['in_flight_stored_anyway']} |")
    return lines


def _outage(figures: dict[str, Any]) -> list[str]:
    lines = ["| fault | answered while down | recovery (database back → first 202) | "
             "acknowledged / stored |", "|---|---|---:|---|"]
    pg = figures.get("database_outage.postgresql")
    if pg:
        lines.append(f"| PostgreSQL stopped for {pg['outage_seconds']} s (`pg_ctlcluster stop`)"
                     f" | {pg['answered_503']} answers 503 + `Retry-After: 5`, nothing else | "
                     f"{pg['recovery_seconds']} s | {pg['acknowledged']} / "
                     f"{pg['acknowledged_and_stored_once']} |")
    lite = figures.get("database_outage.sqlite_locked")
    if lite:
        lines.append("| SQLite write-locked by another process | 503 + `Retry-After: 5` after "
                     f"the {lite['answered_503_after_seconds']} s busy timeout | "
                     f"{lite['recovery_seconds']} s | — |")
    return lines


def _hostile(figures: dict[str, Any]) -> list[str]:
    lines = ["| test | inputs tried | 5xx |", "|---|---:|---:|"]
    tried = errors = 0
    for key in sorted(k for k in figures if k.startswith("hostile_inputs.")):
        f = figures[key]
        tried, errors = tried + f["tried"], errors + f["server_errors"]
        lines.append(f"| `{key.removeprefix('hostile_inputs.')}` | {f['tried']} | "
                     f"{f['server_errors']} |")
    lines.append(f"| **total** | **{tried}** | **{errors}** |")
    return lines


def render(figures: dict[str, Any]) -> str:
    dates = sorted(f["at"] for f in figures.values())
    matrix = [f for k, f in figures.items() if k.startswith("auth_matrix.")]
    return "\n".join([
        f"Run of {dates[0][:16].replace('T', ' ')} to {dates[-1][11:16]} UTC.", "",
        "**kill -9 during sustained ingest**", "", *_kill9(figures), "",
        "**Database outage**", "", *_outage(figures), "",
        "**Hostile input**", "", *_hostile(figures), "",
        f"**Auth matrix**: {sum(f['requests'] for f in matrix)} requests on "
        f"{len(matrix)} databases, {sum(f['unexpected'] for f in matrix)} unexpected answers."])


def write(text: str) -> None:
    doc = DOC.read_text()
    start, end = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    DOC.write_text(doc[:start] + "\n" + text + "\n" + doc[end:])


if __name__ == "__main__":
    rendered = render(json.loads(REPORT.read_text()))
    write(rendered) if "--write" in sys.argv else print(rendered)
