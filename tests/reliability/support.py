"""Real processes for the fault tests: dora-ce serve, sustained ingest clients, a private
PostgreSQL cluster, and the check that every acknowledged event is stored exactly once."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import func, select

from dora_cloudevents.store.db import make_engine
from dora_cloudevents.store.schema import cloudevents_raw
from tests.test_cli import free_port

STRUCTURED = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


class Serve:
    """``dora-ce serve`` as its own process; its log goes to ``log`` (appended across runs)."""

    def __init__(self, database_url: str, log: Path, *args: str, env: dict[str, str] | None = None
                 ) -> None:
        self.database_url, self.log, self.args = database_url, log, args
        self.env = {**os.environ, **(env or {})}
        for name in ("DORA_CONFIG", "DORA_DATABASE_URL", "DORA_PORT"):
            self.env.pop(name, None)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> Serve:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dora_cloudevents", "serve", "--db", self.database_url,
                 "--port", str(self.port), *self.args],
                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(f"dora-ce serve exited:\n{self.log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError("dora-ce serve did not start in time")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush, exactly like the OOM killer."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> Serve:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def cloudevent(source: str, event_id: str) -> dict[str, object]:
    return {"specversion": "1.0", "id": event_id, "source": source,
            "type": "com.example.reliability", "time": "2024-05-01T10:00:00Z",
            "data": {"n": event_id}}


@dataclass
class Outcomes:
    """What the clients saw: ids acknowledged (2xx), ids sent without a 2xx, statuses."""

    acked: list[str] = field(default_factory=list)
    unacked: list[str] = field(default_factory=list)
    statuses: list[tuple[float, int]] = field(default_factory=list)
    refusals: list[httpx.Response] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)  # asserted empty by the tests
    lock: threading.Lock = field(default_factory=threading.Lock)


class Clients:
    """``workers`` threads posting without pause, alternating single events and batches of
    ``batch``; each keeps going through connection errors (the server may be dead)."""

    def __init__(self, url: str, source: str, workers: int = 4, batch: int = 10,
                 pause: float = 0.0) -> None:
        self.url, self.source, self.batch, self.pause = url, source, batch, pause
        self.outcomes = Outcomes()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._post, args=(w,), daemon=True)
                         for w in range(workers)]

    def _post(self, worker: int) -> None:
        with httpx.Client(base_url=self.url, timeout=15) as http:
            n = 0
            while not self._stop.is_set():
                size = 1 if n % 2 == 0 else self.batch
                ids = [f"w{worker}-{n}-{k}" for k in range(size)]
                events = [cloudevent(self.source, i) for i in ids]
                n += 1
                try:
                    if size == 1:
                        response = http.post("/events", content=orjson.dumps(events[0]),
                                             headers=STRUCTURED)
                    else:
                        response = http.post("/events", content=orjson.dumps(events),
                                             headers=BATCH)
                except httpx.ConnectError:
                    time.sleep(0.02)  # the server is down: nothing was sent
                    continue
                except httpx.TransportError:  # sent, but the answer never came
                    with self.outcomes.lock:
                        self.outcomes.unacked.extend(ids)
                    time.sleep(0.02)
                    continue
                with self.outcomes.lock:
                    self.outcomes.statuses.append((time.monotonic(), response.status_code))
                    if response.status_code == 202:
                        body = response.json()
                        if body["accepted"] + body["duplicates"] != size:
                            self.outcomes.anomalies.append(f"{ids[0]}: {body}")
                        self.outcomes.acked.extend(ids)
                    else:
                        self.outcomes.unacked.extend(ids)
                        self.outcomes.refusals.append(response)
                if self.pause:
                    time.sleep(self.pause)

    def __enter__(self) -> Clients:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def wait_for_acks(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        start = len(self.outcomes.acked)
        while len(self.outcomes.acked) - start < count:
            assert time.monotonic() < deadline, "the clients got no acknowledgements"
            time.sleep(0.02)


def stored_counts(database_url: str, source: str) -> dict[str, int]:
    """How many rows each event id of ``source`` has in cloudevents_raw."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(cloudevents_raw.c.event_id, func.count())
                .where(cloudevents_raw.c.source == source)
                .group_by(cloudevents_raw.c.event_id)).all()
    finally:
        engine.dispose()
    return {event_id: count for event_id, count in rows}


def assert_exactly_once(acked: list[str], stored: dict[str, int]) -> None:
    assert len(acked) == len(set(acked)), "an id was acknowledged twice"
    missing = [i for i in acked if i not in stored]
    assert not missing, f"{len(missing)} acknowledged events were lost: {missing[:10]}"
    doubled = {i: c for i, c in stored.items() if c != 1}
    assert not doubled, f"events stored more than once: {doubled}"


# --- a private PostgreSQL cluster ------------------------------------------------------------

PG_VERSION = "15"
_CLUSTER_PREFIX = "dora_faults_"


def _ctl(*args: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *args], check=True,
                   capture_output=True, timeout=60)


def _drop_orphans() -> None:
    """Clusters an earlier, killed test run left behind (named after its process id)."""
    listed = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout
    for line in listed.splitlines():
        parts = line.split()
        match = re.fullmatch(_CLUSTER_PREFIX + r"(\d+)", parts[1]) if len(parts) > 1 else None
        if match and parts[0] == PG_VERSION and not Path(f"/proc/{match.group(1)}").exists():
            subprocess.run(["pg_dropcluster", "--stop", PG_VERSION, parts[1]],
                           capture_output=True, timeout=60)


@dataclass
class Cluster:
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        _ctl("--mode", "fast", PG_VERSION, self.name, "stop")

    def start(self) -> None:
        _ctl(PG_VERSION, self.name, "start")

    def ready(self) -> bool:
        return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)],
                              timeout=10).returncode == 0


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """A PostgreSQL 15 cluster of this test alone, on a free port (never the shared one)."""
    if os.geteuid() != 0:
        pytest.skip("creating a PostgreSQL cluster needs root (pg_createcluster)")
    if shutil.which("pg_createcluster") is None or not Path(
            f"/usr/lib/postgresql/{PG_VERSION}/bin/initdb").exists():
        pytest.skip(f"pg_createcluster and PostgreSQL {PG_VERSION} are not installed")
    _drop_orphans()
    cluster = Cluster(f"{_CLUSTER_PREFIX}{os.getpid()}", free_port())
    subprocess.run(["pg_createcluster", PG_VERSION, cluster.name, "-p", str(cluster.port),
                    "--", "--auth-host=trust", "--auth-local=trust"],
                   check=True, capture_output=True, timeout=120)
    try:
        cluster.start()
        yield cluster
    finally:
        subprocess.run(["pg_dropcluster", "--stop", PG_VERSION, cluster.name],
                       capture_output=True, timeout=120)
