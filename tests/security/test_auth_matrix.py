"""The auth matrix, executed: every route group x every credential against a live server."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from dora_cloudevents.app import create_app
from dora_cloudevents.config import Settings, load_settings
from tests.conftest import LiveServer
from tests.reliability.figures import record
from tests.security.auth_matrix import (
    CREDENTIALS,
    DOCS,
    ROUTES,
    SIGNATURES,
    SIGNED_WEBHOOKS,
    TOKENS,
    WEBHOOK_SECRETS,
    WRONG,
    Route,
    bearer,
    documented_table,
    expected,
    expected_signed,
    render_tables,
    sign,
    token_settings,
    webhook_settings,
)

SECRETS = [WRONG, *(t for pair in TOKENS.values() for t in pair),
           *(s for pair in WEBHOOK_SECRETS.values() for s in pair)]


def served(route: Route) -> bool:
    return not route.needs or importlib.util.find_spec(route.needs) is not None


def send(http: httpx.Client, route: Route, headers: dict[str, str]) -> httpx.Response:
    """The route's answer; an event stream is closed after its headers (it never ends)."""
    body, body_headers = route.body() if route.body is not None else (None, {})
    request = http.build_request(route.method, route.path, content=body,
                                 headers={**body_headers, **headers})
    response = http.send(request, stream=True)
    try:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
    finally:
        response.close()
    return response


def assert_refusal(response: httpx.Response) -> None:
    """A 401/403 is problem+json, names the scheme on 401, and echoes no credential."""
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == response.status_code
    if response.status_code == 401:
        assert response.headers["www-authenticate"]
    for secret in SECRETS:
        assert secret not in response.text
        assert all(secret not in value for value in response.headers.values())


def client_for(engine: Engine, settings: Settings) -> Iterator[httpx.Client]:
    with LiveServer(create_app(settings, engine)) as live, httpx.Client(
        base_url=live.url, timeout=10
    ) as http:
        yield http


@pytest.fixture
def tokens(engine: Engine) -> Iterator[httpx.Client]:
    yield from client_for(engine, token_settings())


@pytest.fixture
def signed(engine: Engine) -> Iterator[httpx.Client]:
    yield from client_for(engine, webhook_settings())


def test_every_route_answers_every_credential_as_the_matrix_says(
        tokens: httpx.Client, engine: Engine) -> None:
    observed: dict[str, dict[str, int]] = {}
    wanted: dict[str, dict[str, int]] = {}
    for route in filter(served, ROUTES):
        observed[route.label], wanted[route.label] = {}, {}
        for credential in CREDENTIALS:
            response = send(tokens, route, bearer(credential))
            observed[route.label][credential] = response.status_code
            wanted[route.label][credential] = expected(route, credential)
            if response.status_code in (401, 403):
                assert_refusal(response)
    assert observed == wanted
    record(f"auth_matrix.{engine.dialect.name}", {
        "routes": len(observed), "requests": len(observed) * len(CREDENTIALS),
        "unexpected": 0, "skipped": [r.label for r in ROUTES if not served(r)]})


def test_nothing_configured_means_open(engine: Engine) -> None:
    for http in client_for(engine, Settings()):
        for route in filter(served, ROUTES):
            for credential in CREDENTIALS:
                response = send(http, route, bearer(credential))
                assert response.status_code == route.ok, (route.label, credential)


def test_previous_tokens_still_work_while_rotating(tokens: httpx.Client) -> None:
    for route in ROUTES:
        if route.role in TOKENS and served(route):
            response = send(tokens, route, bearer(route.role, which=0))
            assert response.status_code == route.ok, (route.label, response.text)


def test_webhook_secrets_replace_bearer_tokens(signed: httpx.Client) -> None:
    observed: dict[str, dict[str, int]] = {}
    for source in SIGNED_WEBHOOKS:
        route = next(r for r in ROUTES if r.path == f"/webhooks/{source}")
        observed[source] = {}
        for credential in SIGNATURES:
            assert route.body is not None
            body, headers = route.body()
            if credential == "wrong":
                headers |= sign(source, "not-the-secret", body)
            elif credential == "ingest token only":
                headers |= bearer("ingest")
            elif credential != "none":
                secret = WEBHOOK_SECRETS[source][credential == "current secret"]
                headers |= sign(source, secret, body)
            response = signed.post(route.path, content=body, headers=headers)
            observed[source][credential] = response.status_code
            if response.status_code in (401, 403):
                assert_refusal(response)
    assert observed == {source: {c: expected_signed(source, c) for c in SIGNATURES}
                        for source in SIGNED_WEBHOOKS}


def test_every_documented_read_route_refuses_strangers(tokens: httpx.Client) -> None:
    """Routes added later are covered too: any GET in /openapi.json under the read API."""
    paths = tokens.get("/openapi.json").json()["paths"]
    read_paths = [p for p, ops in paths.items() if "get" in ops
                  and (p.startswith("/api/") or p.startswith("/deploy-frequency"))]
    covered = {r.template or r.path for r in ROUTES}
    assert covered >= {p for p, ops in paths.items() if not p.startswith("/transform")}, (
        "a route in /openapi.json is missing from tests/security/auth_matrix.py")
    for template in read_paths:
        path = re.sub(r"\{[^}]+\}", "day", template)
        assert tokens.get(path).status_code == 401, path
        assert tokens.get(path, headers=bearer("wrong")).status_code == 403, path
        assert tokens.get(path, headers=bearer("ingest")).status_code == 403, path


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_carry_the_matrix_the_server_enforces(doc: Path) -> None:
    assert documented_table(doc) == render_tables(), (
        f"{doc.name} is out of date: run .venv/bin/python -m tests.security.auth_matrix")


def test_tokens_come_from_environment_or_config_file(tmp_path: Path) -> None:
    config = tmp_path / "dora.yaml"
    config.write_text("ingest_tokens: [file-a, file-b]\nread_tokens: [file-r]\n"
                      "metrics_token: file-m\n")
    from_file = load_settings(config, environ={})
    assert [t.get_secret_value() for t in from_file.ingest_tokens] == ["file-a", "file-b"]
    assert [t.get_secret_value() for t in from_file.metrics_token] == ["file-m"]
    from_env = load_settings(config, environ={"DORA_INGEST_TOKENS": " env-a , env-b ",
                                              "DORA_METRICS_TOKEN": "m-old,m-new"})
    assert [t.get_secret_value() for t in from_env.ingest_tokens] == ["env-a", "env-b"]
    assert [t.get_secret_value() for t in from_env.read_tokens] == ["file-r"]
    assert [t.get_secret_value() for t in from_env.metrics_token] == ["m-old", "m-new"]
    shown = repr(from_env) + str(from_env) + from_env.model_dump_json()
    for secret in ("env-a", "env-b", "file-r", "m-old", "m-new"):
        assert secret not in shown
