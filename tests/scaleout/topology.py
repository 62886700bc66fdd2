"""The distributed topology as separate ``dora-ce`` processes on loopback over one database.

Each stage is its own ``dora-ce serve --components ... --no-migrate`` process, as it is its
own workload on Kubernetes; the schema is migrated once beforehand (``dora-ce db upgrade``,
the chart's Job). Used by the scale-out tests and by ``bench/distributed.py``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from dora_cloudevents.store import schema

RAW_LOGS = (schema.cloudevents_raw, schema.cdevents_raw)
# Everything the projector derives (whatever tables later migrations add).
ENTITY_TABLES = tuple(sorted(name for name in schema.metadata.tables
                             if name not in {log.name for log in RAW_LOGS}))
DRILL_DOWNS = ("deployments", "changes", "incidents")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def named_connections(database_url: str, name: str) -> str:
    """``database_url`` with PostgreSQL's ``application_name``, to find a process's sessions
    in ``pg_stat_activity``."""
    return make_url(database_url).update_query_dict(
        {"application_name": name}).render_as_string(hide_password=False)


def dora_ce(*args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run one ``dora-ce`` command to its end (as a Job or CronJob would)."""
    return subprocess.run([sys.executable, "-m", "dora_cloudevents", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, check=False)


class Stage:
    """One ``dora-ce serve --components ...`` process with its own port and log file."""

    def __init__(self, name: str, components: str, database_url: str, logs: Path,
                 *, migrate: bool = False) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = logs / f"{name}.log"
        command = [sys.executable, "-m", "dora_cloudevents", "serve", "--components",
                   components, "--host", "127.0.0.1", "--port", str(self.port),
                   "--db", named_connections(database_url, name)]
        if not migrate:
            command.append("--no-migrate")
        self.command = command
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Stage:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready after {timeout} s:\n{self.log()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, open transactions are cut off."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_all(stages: Iterable[Stage], timeout: float = 90) -> list[Stage]:
    """Start every stage at once (as a rollout does), then wait until each is ready."""
    started = [stage.start() for stage in stages]
    for stage in started:
        stage.wait_ready(timeout)
    return started


def stop_all(stages: Iterable[Stage]) -> None:
    for stage in stages:
        stage.stop()


def pending(engine: Engine) -> int:
    """Raw CloudEvents not yet routed plus CDEvents not yet projected."""
    with engine.connect() as connection:
        return sum(connection.execute(select(func.count()).select_from(table).where(
            table.c.status == "pending")).scalar_one()
            for table in RAW_LOGS)


def wait_until_drained(engine: Engine, expected_raw: int, timeout: float,
                       stages: Sequence[Stage] = ()) -> float:
    """Wait until ``expected_raw`` events are stored and nothing is pending; seconds taken."""
    started = time.monotonic()
    while True:
        with engine.connect() as connection:
            stored = sum(connection.execute(select(func.count()).select_from(table)).scalar_one()
                         for table in RAW_LOGS)
        left = pending(engine)
        if stored >= expected_raw and left == 0:
            return time.monotonic() - started
        dead = [stage.name for stage in stages if not stage.alive()]
        if dead or time.monotonic() - started > timeout:
            logs = "\n".join(f"--- {s.name}\n{s.log()}" for s in stages)
            raise AssertionError(f"not drained after {time.monotonic() - started:.0f} s: "
                                 f"{stored} events stored of {expected_raw} posted, {left} "
                                 f"pending, dead stages {dead}\n{logs}")
        time.sleep(0.2)


def table_counts(engine: Engine) -> dict[str, Any]:
    """Rows per raw log and status, and rows per entity table: what "nothing lost or
    duplicated" is checked on."""
    counts: dict[str, Any] = {}
    with engine.connect() as connection:
        for log in RAW_LOGS:
            rows = connection.execute(select(log.c.status, func.count()).group_by(log.c.status))
            counts[log.name] = dict(sorted((status, n) for status, n in rows))
        for name in ENTITY_TABLES:
            table = schema.metadata.tables[name]
            counts[name] = connection.execute(
                select(func.count()).select_from(table)).scalar_one()
    return counts


def metrics_snapshot(api_url: str, window: dict[str, str]) -> dict[str, Any]:
    """What the metrics API answers: /api/v1/dora, drill-down totals, /deploy-frequency."""
    with httpx.Client(base_url=api_url, timeout=30) as http:
        snapshot: dict[str, Any] = {"dora": http.get("/api/v1/dora", params=window).json()}
        for name in DRILL_DOWNS:
            page = http.get(f"/api/v1/{name}", params={**window, "limit": 1}).json()
            snapshot[f"{name}_total"] = page["total"]
        snapshot["deploy_frequency_day"] = http.get("/deploy-frequency/day",
                                                    params=window).json()
    return snapshot
