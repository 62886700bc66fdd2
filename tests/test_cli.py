"""The dora-ce command as a user runs it: db upgrade, and serve as a real process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from click.testing import CliRunner

from dora_cloudevents.cli import main


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_db_upgrade(database_url: str) -> None:
    result = CliRunner().invoke(main, ["db", "upgrade", "--db", database_url])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    again = CliRunner().invoke(main, ["db", "upgrade", "--db", database_url])
    assert again.exit_code == 0, again.output


def test_invalid_config_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "dora.yaml"
    config.write_text("port: eighty\n")
    result = CliRunner().invoke(main, ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 1
    assert "port" in result.output and str(config) in result.output


def test_unreachable_database_is_a_clear_error() -> None:
    result = CliRunner().invoke(
        main, ["db", "upgrade", "--db", "postgresql+psycopg://postgres@127.0.0.1:1/test"])
    assert result.exit_code == 1
    assert "cannot reach the database" in result.output


def test_unknown_component_is_refused() -> None:
    result = CliRunner().invoke(main, ["serve", "--components", "ingest,bogus"])
    assert result.exit_code == 2
    assert "bogus" in result.output


def test_serve_runs_on_embedded_sqlite_in_the_working_directory(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "DORA_PORT": str(port)}
    env.pop("DORA_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "dora_cloudevents", "serve"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "dora-ce serve did not become ready"
            time.sleep(0.1)
        body = {"specversion": "1.0", "id": "1", "source": "/cli", "type": "t", "data": {}}
        response = httpx.post(url, content=json.dumps(body),
                              headers={"content-type": "application/cloudevents+json"})
        assert response.status_code == 202
        assert httpx.get(f"{url}/api/v1/events").json()[0]["source"] == "/cli"
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert (tmp_path / "dora.db").exists()
