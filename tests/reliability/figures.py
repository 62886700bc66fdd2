"""Figures the reliability tests measure, kept in .reports/reliability.json for the docs.

Each test records what it observed (events acknowledged and stored, recovery time, hostile
inputs tried); ``python -m tests.reliability.figures`` prints them as the Markdown that
docs/reliability.md quotes, with the run's date.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parents[2]
REPORT = Path(os.environ.get("DORA_RELIABILITY_REPORT", PROJECT / ".reports" / "reliability.json"))


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


def main() -> None:
    figures = json.loads(REPORT.read_text())
    for key in sorted(figures):
        value = {k: v for k, v in figures[key].items() if k != "at"}
        print(f"| `{key}` | {json.dumps(value)} | {figures[key]['at']} |")


if __name__ == "__main__":
    main()
