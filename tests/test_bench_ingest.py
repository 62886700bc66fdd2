"""bench/ingest.py end to end: each server stores what it acknowledged; the table adds up."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine

from tests.conftest import POSTGRES_URL

BENCH = Path(__file__).resolve().parents[1] / "bench" / "ingest.py"
ROW = re.compile(r"^\| (?P<name>[^|]+?) \| (?P<cells>.+) \|$", re.MULTILINE)


def test_the_ingest_benchmark_runs_and_stores_what_it_acknowledged(
    postgres_admin: Engine,
) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--seconds", "0.5", "--runs", "2", "--connections", "4",
         "--postgres", POSTGRES_URL, "--targets", "bare,sqlite,postgresql", "--batches", "1,100"],
        capture_output=True, text=True, timeout=240, check=True)
    out = result.stdout
    assert "dora-ce on SQLite: acknowledged" in out and "dora-ce on PostgreSQL: acknowledged" in out
    assert out.count("(ok)") == 2, out
    assert "MISMATCH" not in out and "not answered 202" not in out, out

    rows = {match["name"]: [cell.strip() for cell in match["cells"].split("|")]
            for match in ROW.finditer(out) if match["name"] != "server"}  # not the header
    assert set(rows) >= {"bare ASGI 202 (baseline)", "dora-ce on SQLite", "dora-ce on PostgreSQL"}
    # Per batch size: req/s, events/s, µs per request, best ratio, median ratio (range).
    for cells in rows.values():
        assert len(cells) == 10, cells
        single_rps, single_eps, batch_rps, batch_eps = (
            float(cells[i].replace(",", "")) for i in (0, 1, 5, 6))
        assert single_rps > 0 and single_rps == single_eps
        assert abs(batch_eps - batch_rps * 100) <= 100  # both rounded to whole numbers
        assert re.fullmatch(r"\d\.\d\d \(\d\.\d\d-\d\.\d\d\)", cells[4]), cells[4]
    assert rows["bare ASGI 202 (baseline)"][3] == "1.00"
    assert rows["bare ASGI 202 (baseline)"][4] == "1.00 (1.00-1.00)"
