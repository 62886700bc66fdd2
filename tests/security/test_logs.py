"""Structured logs: JSON lines with request ids from a real dora-ce serve, and no secret in
them however the requests carry or get their credentials wrong."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from dora_cloudevents.auth import configured_secrets
from dora_cloudevents.config import Settings
from dora_cloudevents.logs import configure_logging
from tests.reliability.support import Serve
from tests.security.auth_matrix import TOKENS, WEBHOOK_SECRETS, bearer, sign

PRESENTED = "presented-but-wrong-token-6b1d"  # sent by a client, configured nowhere
SECRETS = [PRESENTED, *(t for pair in TOKENS.values() for t in pair),
           *(s for pair in WEBHOOK_SECRETS.values() for s in pair)]
GITHUB_PING = {"zen": "hi", "hook_id": 1}


def environment() -> dict[str, str]:
    return {"DORA_INGEST_TOKENS": ",".join(TOKENS["ingest"]),
            "DORA_READ_TOKENS": ",".join(TOKENS["read"]),
            "DORA_METRICS_TOKEN": ",".join(TOKENS["metrics"]),
            "DORA_GITHUB_WEBHOOK_SECRET": ",".join(WEBHOOK_SECRETS["github"]),
            "DORA_GITLAB_WEBHOOK_TOKEN": ",".join(WEBHOOK_SECRETS["gitlab"]),
            "DORA_PAGERDUTY_WEBHOOK_SECRET": ",".join(WEBHOOK_SECRETS["pagerduty"])}


def traffic(http: httpx.Client) -> dict[str, httpx.Response]:
    """Requests that carry every kind of credential, right and wrong."""
    event = {"specversion": "1.0", "id": "log-1", "source": "/logs", "type": "t", "data": {}}
    body = json.dumps(GITHUB_PING).encode()
    github = {"content-type": "application/json", "x-github-event": "ping",
              "x-github-delivery": "d-1"}
    return {
        "accepted": http.post("/events", json=event, headers={
            "content-type": "application/cloudevents+json", **bearer("ingest"),
            "x-request-id": "client-trace.42"}),
        "wrong token": http.post("/events", json=event, headers={
            "content-type": "application/cloudevents+json",
            "authorization": f"Bearer {PRESENTED}"}),
        "bad signature": http.post("/webhooks/github", content=body, headers={
            **github, **sign("github", "gh-" + PRESENTED, body)}),
        "gitlab token wrong": http.post("/webhooks/gitlab", content=b"{}", headers={
            "content-type": "application/json", "x-gitlab-event": "Push Hook",
            "x-gitlab-token": PRESENTED}),
        "signed": http.post("/webhooks/github", content=body, headers={
            **github, **sign("github", WEBHOOK_SECRETS["github"][0], body)}),
        "read": http.get("/api/v1/events", headers=bearer("read")),
        "read with ingest token": http.get("/api/v1/events", headers={
            **bearer("ingest"), "x-request-id": "has space"}),
        "metrics": http.get("/metrics", headers=bearer("metrics")),
    }


@pytest.mark.slow
def test_json_logs_carry_request_ids_and_no_secret(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with Serve(f"sqlite:///{tmp_path / 'dora.db'}", log, "--log-format", "json",
               env=environment()) as server, httpx.Client(base_url=server.url,
                                                           timeout=10) as http:
        answers = traffic(http)
    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {"accepted": 202, "wrong token": 403, "bad signature": 403,
                        "gitlab token wrong": 403, "signed": 202, "read": 200,
                        "read with ingest token": 403, "metrics": 200}

    # Every answer has an id: the caller's when sane, else a fresh one.
    assert answers["accepted"].headers["x-request-id"] == "client-trace.42"
    generated = answers["read with ingest token"].headers["x-request-id"]
    assert generated != "has space" and len(generated) == 16
    ids = {response.headers["x-request-id"] for response in answers.values()}
    assert len(ids) == len(answers)
    # ...and the problem answers quote it.
    assert answers["bad signature"].json()["request_id"] == (
        answers["bad signature"].headers["x-request-id"])

    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_id.setdefault(line.get("request_id", ""), []).append(line)
    refused = answers["bad signature"].headers["x-request-id"]
    assert [line["message"] for line in by_id[refused]] == [
        "POST '/webhooks/github' answered 403"]
    assert generated in by_id
    assert any("dora-ce serving" in line["message"] for line in lines)
    for secret in SECRETS:
        assert secret not in text, f"a credential reached the log: {secret}"
        for response in answers.values():
            assert secret not in response.text


def test_text_logs_name_the_request_and_mask_configured_secrets(
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings.model_validate({"ingest_tokens": "tok-A1b2,tok-C3d4",
                                        "database_url": "postgresql://u:pw-9z8y@db/x"})
    configure_logging("text", configured_secrets(settings))
    try:
        logging.getLogger("dora_cloudevents.test").warning(
            "connect to postgresql://u:pw-9z8y@db/x failed; token tok-C3d4 refused")
    finally:
        configure_logging()
    line = capsys.readouterr().err
    assert "WARNING dora_cloudevents.test connect to" in line
    assert "pw-9z8y" not in line and "tok-C3d4" not in line
    assert line.count("[redacted]") == 2


def test_accepted_ingest_requests_write_no_log_line(client: httpx.Client,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """The ingest front door binds a request's id to the log context only where it logs a
    refusal or failure (ingest.front.IngestFirst._answer_error): that every line carries its
    request's id holds because the endpoints themselves log nothing."""
    caplog.set_level(logging.DEBUG, logger="dora_cloudevents")
    event = {"specversion": "1.0", "id": "quiet-1", "source": "/logs", "type": "t", "data": {}}
    answers = [
        client.post("/events", json=event,
                    headers={"content-type": "application/cloudevents+json"}),
        client.post("/", content=b"{}", headers={
            "ce-specversion": "1.0", "ce-id": "quiet-2", "ce-source": "/logs", "ce-type": "t",
            "content-type": "application/json"}),
        client.post("/events", json=[{**event, "id": "quiet-3"}],
                    headers={"content-type": "application/cloudevents-batch+json"}),
        client.post("/webhooks/github", json=GITHUB_PING, headers={
            "x-github-event": "ping", "x-github-delivery": "quiet-4"}),
    ]
    assert [answer.status_code for answer in answers] == [202] * len(answers)
    assert [record.getMessage() for record in caplog.records
            if record.name.startswith("dora_cloudevents")] == []
