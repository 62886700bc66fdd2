"""The UI's pages over real HTTP: headers, escaping, empty and error states, sign-in."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from dora_cloudevents.app import create_app
from dora_cloudevents.auth import READ_COOKIE
from dora_cloudevents.config import Settings
from dora_cloudevents.demo import sources
from dora_cloudevents.ui.security import CONTENT_SECURITY_POLICY
from tests.conftest import LiveServer
from tests.ui.support import (
    IMAGE,
    hostile_cdevent,
    hostile_cloudevent,
    ping,
    post,
    post_cdevent,
    until,
)

PAGES = ("/", "/events", "/deployments", "/changes", "/incidents", "/signin")


def _client(engine: Engine, settings: Settings) -> Iterator[httpx.Client]:
    with LiveServer(create_app(settings, engine)) as live, httpx.Client(
            base_url=live.url, timeout=10) as client:
        yield client


@pytest.fixture
def ui(engine: Engine) -> Iterator[httpx.Client]:
    yield from _client(engine, Settings(production_environments=["production"]))


def test_every_page_and_script_is_served_with_a_strict_csp(ui: httpx.Client) -> None:
    for path in (*PAGES, "/static/app.css", "/static/dashboard.js", "/static/monitor.js",
                 "/static/vendor/plotly.min.js"):
        response = ui.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    # No inline script or style anywhere: what the CSP forbids is not needed either.
    for path in PAGES:
        text = ui.get(path).text
        assert "<script>" not in text and "<style" not in text and " style=" not in text
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", text), path  # no inline handlers
    assert ui.get("/static/vendor/plotly.min.js").text.startswith("/**\n* plotly.js v")


def test_the_empty_states_say_what_to_do(ui: httpx.Client) -> None:
    dashboard = ui.get("/").text
    assert "No events have arrived yet" in dashboard and "dora-ce demo" in dashboard
    assert "curl -i " in dashboard
    monitor = ui.get("/events").text
    assert "No events yet" in monitor and "application/cloudevents+json" in monitor
    post(ui, ping("com.example.unrouted"))
    until(lambda: ui.get("/api/v1/events", params={"status": "unrouted"}).json())
    dashboard = ui.get("/").text
    assert "has received 1 raw events (1 unrouted)" in dashboard
    assert "event monitor" in dashboard


def test_a_failing_source_is_named_with_its_error(ui: httpx.Client) -> None:
    broken = sources.tekton_run("run-1", "successful", "deploy-x", "uid-1", "deploy",
                                {"image": "ghcr.io/acme/x:1"}, *(2 * [datetime.now(UTC)]),
                                labels={"dora-cloudevents.dev/deploy": "true"})
    post(ui, broken)
    until(lambda: ui.get("/api/v1/events", params={"status": "failed"}).json())
    monitor = ui.get("/events").text
    assert "Needs attention" in monitor and html.escape(broken["source"]) in monitor
    assert "names no service" in monitor
    detail = ui.get("/events/1").text
    assert "the transformer failed" in detail and "dora-ce replay --failed" in detail


def test_bad_filters_and_missing_events_get_a_page_that_says_why(ui: httpx.Client) -> None:
    response = ui.get("/", params={"from": "yesterday"})
    assert response.status_code == 400
    assert "must be an RFC 3339 date-time" in response.text and 'id="filter-error"' in response.text
    assert ui.get("/deployments", params={"team": "nobody"}).status_code == 400
    missing = ui.get("/events/999")
    assert missing.status_code == 404 and "no raw event with seq 999" in missing.text


def _wait_projected(client: httpx.Client) -> None:
    until(lambda: client.get("/api/v1/deployments",
                             params={"environment": "*"}).json()["total"] >= 1)
    until(lambda: all(event["status"] != "pending"
                      for event in client.get("/api/v1/events").json()))


def test_hostile_event_data_is_shown_as_text_on_every_page(ui: httpx.Client) -> None:
    post(ui, hostile_cloudevent())
    post_cdevent(ui, hostile_cdevent())
    _wait_projected(ui)
    cdevent_seq = ui.get("/api/v1/deployments").json()["items"][0]["id"]
    pages = ["/", "/events", "/events/1", f"/cdevents/{cdevent_seq}",
             f"/deployments?service={quote(IMAGE)}", "/deployments"]
    for path in pages:
        text = ui.get(path).text
        assert "<script>alert" not in text and "<img src=x" not in text, path
        assert 'href="javascript:' not in text, path
    # ... and is there, as text.
    assert "&lt;script&gt;alert(" in ui.get("/events").text
    assert "&lt;img src=x onerror=alert(" in ui.get("/deployments").text
    assert "javascript:alert(" in ui.get(f"/cdevents/{cdevent_seq}").text
    detail = ui.get("/events/1").text
    assert detail.count("&lt;script&gt;alert(") >= 2  # the type, and in the data


@pytest.fixture
def guarded(engine: Engine) -> Iterator[httpx.Client]:
    yield from _client(engine, Settings(read_tokens=[SecretStr("s3cret")]))


def test_read_tokens_guard_the_pages_and_a_sign_in_cookie_opens_them(guarded: httpx.Client
                                                                     ) -> None:
    response = guarded.get("/events?type=x")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fevents%3Ftype%3Dx"
    assert guarded.get("/api/v1/dora").status_code == 401
    wrong = guarded.post("/signin", data={"token": "guess", "next": "/events"})
    assert wrong.status_code == 403 and "not one of the read tokens" in wrong.text
    assert READ_COOKIE not in wrong.cookies

    right = guarded.post("/signin", data={"token": "s3cret", "next": "/events?type=x"})
    assert right.status_code == 303 and right.headers["location"] == "/events?type=x"
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "s3cret" not in cookie  # derived from the token, not the token
    for path in ("/", "/events", "/api/v1/dora", "/api/v1/events"):
        assert guarded.get(path).status_code == 200, path
    with guarded.stream("GET", "/api/v1/events/stream") as stream:
        assert stream.status_code == 200
    # The bearer header still works for scripts, and a forged cookie does not.
    fresh = httpx.Client(base_url=str(guarded.base_url), timeout=10)
    assert fresh.get("/api/v1/dora", headers={"authorization": "Bearer s3cret"}).status_code == 200
    assert fresh.get("/", headers={"authorization": "Bearer s3cret"}).status_code == 200
    fresh.cookies.set(READ_COOKIE, "forged")
    assert fresh.get("/api/v1/dora").status_code == 401
    assert fresh.get("/").status_code == 303
    fresh.close()
    signed_out = guarded.get("/signout")
    assert signed_out.status_code == 303 and guarded.get("/").status_code == 303


@pytest.mark.parametrize(("trusted", "forwarded", "secure"), [
    (None, "https", True),  # uvicorn's default: the proxy on loopback is believed
    (None, None, False),
    ("10.0.0.9", "https", False),  # a header from a client that is not a trusted proxy
])
def test_the_sign_in_cookie_is_secure_behind_a_trusted_https_proxy(
        engine: Engine, monkeypatch: pytest.MonkeyPatch, trusted: str | None,
        forwarded: str | None, secure: bool) -> None:
    if trusted is None:
        monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    else:
        monkeypatch.setenv("FORWARDED_ALLOW_IPS", trusted)
    headers = {"x-forwarded-proto": forwarded} if forwarded else {}
    for client in _client(engine, Settings(read_tokens=[SecretStr("s3cret")])):
        response = client.post("/signin", data={"token": "s3cret"}, headers=headers)
        assert response.status_code == 303
        assert ("; secure" in response.headers["set-cookie"].lower()) is secure


def test_sign_in_only_sends_people_back_to_this_site(guarded: httpx.Client) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        response = guarded.post("/signin", data={"token": "s3cret", "next": target})
        assert response.headers["location"] == "/"
