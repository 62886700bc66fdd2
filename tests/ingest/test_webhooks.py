"""POST /webhooks/*: native payloads stored as the Knative source's CloudEvents, and credentials."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import Engine

from dora_cloudevents.app import create_app
from dora_cloudevents.config import Settings
from dora_cloudevents.ingest.webhooks import (
    alertmanager_cloudevent,
    github_cloudevent,
    github_source,
    gitlab_source,
    gitlab_type,
)
from dora_cloudevents.problems import Problem
from dora_cloudevents.transformers import builtin_transformers
from tests.conftest import LiveServer, shared_fixture
from tests.ingest.test_cloudevents_endpoint import assert_problem, stored
from tests.oracle import assert_valid_cdevent

GITHUB_SECRET = "gh-webhook-secret-7f3a"
GITLAB_TOKEN = "gl-webhook-token-91c2"
PAGERDUTY_SECRETS = ("pd-secret-old-4b1e", "pd-secret-new-c8d0")
INGEST_TOKEN = "ingest-token-5e6f"
SECURED = Settings(
    github_webhook_secret=SecretStr(GITHUB_SECRET),
    gitlab_webhook_token=SecretStr(GITLAB_TOKEN),
    # Both accepted: rotation on our side.
    pagerduty_webhook_secret=SecretStr(" , ".join(PAGERDUTY_SECRETS)),
    ingest_tokens=[SecretStr(INGEST_TOKEN)],
)
JSON = {"content-type": "application/json"}
Serve = Callable[[Settings], httpx.Client]


@pytest.fixture
def serve(engine: Engine) -> Iterator[Serve]:
    """Start a server with the given settings over the test database (both back-ends)."""
    with ExitStack() as stack:
        def start(settings: Settings) -> httpx.Client:
            live = stack.enter_context(LiveServer(create_app(settings, engine)))
            return stack.enter_context(httpx.Client(base_url=live.url, timeout=10))
        yield start


@pytest.fixture
def secured(serve: Serve) -> httpx.Client:
    return serve(SECURED)


def hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def the_event(client: httpx.Client) -> dict[str, Any]:
    [item] = stored(client)
    event: dict[str, Any] = item["event"]
    assert (item["id"], item["source"], item["type"]) == (
        event["id"], event["source"], event["type"])
    return event


def cdevent_types(transformer: str, event: dict[str, Any]) -> list[str]:
    """Route the stored CloudEvent through the built-in transformer: the end-to-end shape."""
    cdevents = builtin_transformers()[transformer](event)
    for cdevent in cdevents:
        assert_valid_cdevent(cdevent)
    return [cdevent["context"]["type"] for cdevent in cdevents]


def assert_secret_free(response: httpx.Response, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in response.text
        assert secret not in json.dumps(dict(response.headers))


# --- GitHub -------------------------------------------------------------------------------------


def github_body(kind: str, name: str) -> bytes:
    return shared_fixture("github-webhooks", kind, name).read_bytes()


def github_headers(kind: str, delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958",
                   body: bytes | None = None, **extra: str) -> dict[str, str]:
    headers = {"X-GitHub-Event": kind, "X-GitHub-Delivery": delivery, **JSON, **extra}
    if body is not None:
        headers["X-Hub-Signature-256"] = "sha256=" + hmac_hex(GITHUB_SECRET, body)
    return headers


@pytest.mark.parametrize(("kind", "name", "subject", "cdevents"), [
    ("pull_request", "opened.payload.json", "2", ["dev.cdevents.change.created.0.3.0"]),
    ("push", "with-new-branch.payload.json", "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
     ["dev.cdevents.change.merged.0.2.0"]),
    ("deployment_status", "payload.json", "145988746", ["dev.cdevents.service.deployed.0.2.0"]),
    # GitHubSource knows no subject for workflow_run (it refuses the event): none is set.
    ("workflow_run", "completed.payload.json", None, ["dev.cdevents.pipelinerun.finished.0.2.0"]),
    ("issues", "opened.payload.json", "1", []),  # not labelled incident: kept, gives nothing
])
def test_github_delivery_is_stored_as_githubsource_would(
    client: httpx.Client, kind: str, name: str, subject: str | None, cdevents: list[str],
) -> None:
    body = github_body(kind, name)
    response = client.post("/webhooks/github", content=body, headers=github_headers(kind))
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": 1, "duplicates": 0}
    event = the_event(client)
    payload = json.loads(body)
    assert event["specversion"] == "1.0"
    assert event["id"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert event["type"] == f"dev.knative.source.github.{kind}"
    assert event["source"] == payload["repository"]["html_url"]
    assert event.get("subject") == subject
    assert event["datacontenttype"] == "application/json"
    assert event["time"].endswith("Z")
    assert event["data"] == payload
    assert cdevent_types("github", event) == cdevents


def test_github_redelivery_is_a_duplicate(client: httpx.Client) -> None:
    body = github_body("pull_request", "opened.payload.json")
    for expected in ({"accepted": 1, "duplicates": 0}, {"accepted": 0, "duplicates": 1}):
        response = client.post("/webhooks/github", content=body,
                               headers=github_headers("pull_request"))
        assert response.json() == expected
    # Another delivery id is another delivery, even with the same payload.
    response = client.post("/webhooks/github", content=body,
                           headers=github_headers("pull_request", delivery="other"))
    assert response.json() == {"accepted": 1, "duplicates": 0}


def test_github_signature(secured: httpx.Client) -> None:
    body = github_body("pull_request", "opened.payload.json")
    expected = hmac_hex(GITHUB_SECRET, body)
    missing = secured.post("/webhooks/github", content=body, headers=github_headers("pull_request"))
    assert_problem(missing, 401, "X-Hub-Signature-256", "missing")
    assert missing.headers["www-authenticate"].startswith("X-Hub-Signature-256")
    wrong = github_headers("pull_request")
    wrong["X-Hub-Signature-256"] = "sha256=" + hmac_hex("not-the-secret", body)
    for headers in (wrong, {**wrong, "X-Hub-Signature-256": "sha1=" + expected},
                    {**wrong, "X-Hub-Signature-256": "sha256=zz"}):
        response = secured.post("/webhooks/github", content=body, headers=headers)
        assert_problem(response, 403, "X-Hub-Signature-256")
        assert_secret_free(response, GITHUB_SECRET, expected)
    # Signed, but the body was altered on the way.
    altered = secured.post("/webhooks/github", content=body + b" ",
                           headers=github_headers("pull_request", body=body))
    assert_problem(altered, 403, "does not match")
    assert stored(secured) == []
    good = secured.post("/webhooks/github", content=body,
                        headers=github_headers("pull_request", body=body))
    assert good.status_code == 202, good.text  # no bearer token: the signature is the credential
    assert the_event(secured)["data"] == json.loads(body)


def test_github_form_encoded_payload(secured: httpx.Client) -> None:
    payload = json.loads(github_body("pull_request", "opened.payload.json"))
    form = urlencode({"payload": json.dumps(payload)}).encode()
    headers = github_headers("pull_request", body=form,
                             **{"content-type": "application/x-www-form-urlencoded"})
    response = secured.post("/webhooks/github", content=form, headers=headers)
    assert response.status_code == 202, response.text
    event = the_event(secured)
    assert event["data"] == payload
    assert event["datacontenttype"] == "application/json"
    assert cdevent_types("github", event) == ["dev.cdevents.change.created.0.3.0"]
    no_field = urlencode({"other": "x"}).encode()
    response = secured.post("/webhooks/github", content=no_field, headers={
        **headers, "X-Hub-Signature-256": "sha256=" + hmac_hex(GITHUB_SECRET, no_field)})
    assert_problem(response, 400, "'payload' field")


@pytest.mark.parametrize(("drop", "word"), [("X-GitHub-Event", "X-GitHub-Event"),
                                            ("X-GitHub-Delivery", "X-GitHub-Delivery")])
def test_github_missing_header_is_named(client: httpx.Client, drop: str, word: str) -> None:
    headers = github_headers("pull_request")
    del headers[drop]
    response = client.post("/webhooks/github", content=b"{}", headers=headers)
    assert_problem(response, 400, word, "missing")


def test_github_source_without_a_repository() -> None:
    org = {"organization": {"login": "octo-org"},
           "sender": {"html_url": "https://ghe.example.com/octocat"}}
    assert github_source(org) == "https://ghe.example.com/octo-org"
    assert github_source({"organization": {"login": "octo-org"}}) == "https://github.com/octo-org"
    assert github_source({}) == "https://github.com"


def test_a_source_is_a_uri_reference_whatever_the_payload_says() -> None:
    """A CloudEvent's source must be a URI reference; a payload's web URL may be anything,
    and one that is not falls back as if it were missing."""
    assert github_source({"repository": {"html_url": "not a url"}}) == "https://github.com"
    # urlsplit raises on an unbalanced "[" (it was a 500).
    assert github_source({"organization": {"login": "octo-org"},
                          "sender": {"html_url": "http://[x"}}) == "https://github.com/octo-org"
    assert github_source({"organization": {"login": "octo org"}}) == "https://github.com"
    assert gitlab_source({}, {"project": {"web_url": "é☃"}, "repository": {
        "homepage": "https://gitlab.example.com/acme/shop"}}) == (
        "https://gitlab.example.com/acme/shop")
    assert gitlab_source({}, {"project": {"web_url": "2024-03-04T10:00:00Z"}}) == "gitlab"
    notification = b'{"alerts": [], "externalURL": "http://am.example.com:9093"}'
    now = datetime(2024, 5, 1, tzinfo=UTC)
    assert alertmanager_cloudevent({}, notification, now)["source"] == (
        "http://am.example.com:9093")
    notification = b'{"alerts": [], "externalURL": "am at 10.0.0.1"}'
    assert alertmanager_cloudevent({}, notification, now)["source"] == "alertmanager"


def test_malformed_urls_in_payloads_are_accepted_not_500(client: httpx.Client) -> None:
    org_hook = {"organization": {"login": "octo-org"}, "sender": {"html_url": "http://[x"}}
    response = client.post("/webhooks/github", content=json.dumps(org_hook),
                           headers=github_headers("ping"))
    assert response.status_code == 202, response.text
    incident = pagerduty_triggered()
    incident["event"]["data"]["html_url"] = "https://[acme.pagerduty.com/incidents/Q2"
    response = client.post("/webhooks/pagerduty", content=json.dumps(incident), headers=JSON)
    assert response.status_code == 202, response.text
    sources = {item["type"]: item["source"] for item in stored(client)}
    assert sources == {"dev.knative.source.github.ping": "https://github.com/octo-org",
                       "com.pagerduty.incident.triggered": "https://api.pagerduty.com"}


def test_github_subjects_follow_githubsource() -> None:
    def subject(kind: str, payload: dict[str, Any]) -> Any:
        headers = {"x-github-event": kind, "x-github-delivery": "d"}
        event = github_cloudevent(headers, json.dumps(payload).encode(), datetime.now(UTC))
        return event.get("subject")

    assert subject("push", {"compare": "https://github.com/o/r/compare/a10867b14bb7...000000000000"}
                   ) == "a10867b14bb7...000000000000"
    assert subject("issue_comment", {"comment": {
        "html_url": "https://github.com/o/r/issues/2#issuecomment-393304133"}}
                   ) == "2#issuecomment-393304133"
    assert subject("release", {"release": {"tag_name": "v1.2.0"}}) == "v1.2.0"
    assert subject("gollum", {"pages": [{"page_name": "Home"}, {"page_name": "Main"}]}
                   ) == "Home,Main"
    assert subject("ping", {"hook_id": 42}) == "42"
    assert subject("pull_request", {}) is None  # absent rather than GitHubSource's "0"


# --- GitLab -------------------------------------------------------------------------------------


def gitlab_merged() -> dict[str, Any]:
    web_url = "https://gitlab.example.com/acme/checkout"
    return {
        "object_kind": "merge_request", "event_type": "merge_request",
        "user": {"username": "mkovacs"},
        "project": {"id": 42, "web_url": web_url, "path_with_namespace": "acme/checkout",
                    "default_branch": "main"},
        "repository": {"homepage": web_url},
        "object_attributes": {
            "iid": 17, "action": "merge", "state": "merged", "target_branch": "main",
            "source_branch": "feature/apple-pay", "url": f"{web_url}/-/merge_requests/17",
            "title": "Add Apple Pay", "created_at": "2025-03-10 09:52:44 UTC",
            "updated_at": "2025-03-11 14:02:31 UTC",
            "merge_commit_sha": "b83d6e391c22777fca1ed3012fce84f633d7fed0",
            "last_commit": {"id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"},
        },
    }


def gitlab_headers(token: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"X-Gitlab-Event": "Merge Request Hook", **JSON, **extra}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return headers


def test_gitlab_hook_is_stored_as_the_gitlab_source_would(client: httpx.Client) -> None:
    body = json.dumps(gitlab_merged()).encode()
    response = client.post("/webhooks/gitlab", content=body, headers=gitlab_headers())
    assert response.json() == {"accepted": 1, "duplicates": 0}
    event = the_event(client)
    assert event["type"] == "dev.knative.sources.gitlab.merge_request"
    assert event["source"] == "https://gitlab.example.com/acme/checkout"
    assert event["id"] == hashlib.sha256(body).hexdigest()  # so a retried delivery collapses
    assert event["comgitlabevent"] == "Merge Request Hook"
    assert event["data"] == gitlab_merged()
    assert cdevent_types("gitlab", event) == ["dev.cdevents.change.merged.0.2.0"]
    again = client.post("/webhooks/gitlab", content=body, headers=gitlab_headers())
    assert again.json() == {"accepted": 0, "duplicates": 1}


def test_gitlab_idempotency_key_is_the_id(client: httpx.Client) -> None:
    body = json.dumps(gitlab_merged()).encode()
    key = "908a6d9e-45fd-46c8-97e6-c4f350f219dd"
    # X-Gitlab-Event-UUID changes between retries of one delivery; Idempotency-Key does not.
    for uuid in ("uuid-of-attempt-1", "uuid-of-attempt-2"):
        client.post("/webhooks/gitlab", content=body, headers=gitlab_headers(
            **{"Idempotency-Key": key, "X-Gitlab-Event-UUID": uuid}))
    [item] = stored(client)
    assert item["id"] == key


def test_gitlab_event_types(client: httpx.Client) -> None:
    assert gitlab_type("Pipeline Hook") == "dev.knative.sources.gitlab.pipeline"
    # Not in the table: eventing-gitlab's rule (drop " Hook", lower-case, "_" for spaces).
    assert gitlab_type("Some Future Hook") == "dev.knative.sources.gitlab.some_future"
    with pytest.raises(Problem, match="not a GitLab webhook event"):
        gitlab_type("Push")
    response = client.post("/webhooks/gitlab", content=b"{}", headers=gitlab_headers(
        **{"X-Gitlab-Event": "Push"}))
    assert_problem(response, 400, "X-Gitlab-Event", "'Push'")
    missing = client.post("/webhooks/gitlab", content=b"{}", headers=JSON)
    assert_problem(missing, 400, "X-Gitlab-Event", "missing")


def test_gitlab_token(secured: httpx.Client) -> None:
    body = json.dumps(gitlab_merged()).encode()
    missing = secured.post("/webhooks/gitlab", content=body, headers=gitlab_headers())
    assert_problem(missing, 401, "X-Gitlab-Token", "missing")
    wrong = secured.post("/webhooks/gitlab", content=body, headers=gitlab_headers("guess"))
    assert_problem(wrong, 403, "X-Gitlab-Token")
    assert_secret_free(wrong, GITLAB_TOKEN)
    assert stored(secured) == []
    good = secured.post("/webhooks/gitlab", content=body, headers=gitlab_headers(GITLAB_TOKEN))
    assert good.status_code == 202, good.text
    assert the_event(secured)["type"] == "dev.knative.sources.gitlab.merge_request"


# --- PagerDuty ----------------------------------------------------------------------------------


def pagerduty_triggered() -> dict[str, Any]:
    return {"event": {
        "id": "01EXMJ8Q4BQ2ZP0XHHD4HT1WVN", "event_type": "incident.triggered",
        "resource_type": "incident", "occurred_at": "2024-05-14T09:12:04.316Z",
        "data": {
            "id": "Q2DE07SGS1FQ3L", "type": "incident", "number": 1287, "status": "triggered",
            "self": "https://api.pagerduty.com/incidents/Q2DE07SGS1FQ3L",
            "html_url": "https://acme.pagerduty.com/incidents/Q2DE07SGS1FQ3L",
            "created_at": "2024-05-14T09:12:03Z", "title": "Checkout error rate above 5%",
            "service": {"id": "PF9KMXH", "summary": "checkout-api",
                        "html_url": "https://acme.pagerduty.com/services/PF9KMXH"},
            "urgency": "high",
        },
    }}


def signed_by(*secrets: str, body: bytes) -> dict[str, str]:
    signature = ",".join(f"v1={hmac_hex(secret, body)}" for secret in secrets)
    return {**JSON, "X-PagerDuty-Signature": signature}


def test_pagerduty_webhook_is_stored_as_a_cloudevent(client: httpx.Client) -> None:
    body = json.dumps(pagerduty_triggered()).encode()
    response = client.post("/webhooks/pagerduty", content=body, headers=JSON)
    assert response.json() == {"accepted": 1, "duplicates": 0}
    event = the_event(client)
    assert event["type"] == "com.pagerduty.incident.triggered"
    assert event["source"] == "https://acme.pagerduty.com"
    assert event["id"] == "01EXMJ8Q4BQ2ZP0XHHD4HT1WVN"
    assert event["time"] == "2024-05-14T09:12:04.316Z"
    assert cdevent_types("pagerduty", event) == ["dev.cdevents.incident.detected.0.2.0"]
    again = client.post("/webhooks/pagerduty", content=body, headers=JSON)
    assert again.json() == {"accepted": 0, "duplicates": 1}


def test_pagerduty_signatures_with_rotation_on_both_sides(secured: httpx.Client) -> None:
    body = json.dumps(pagerduty_triggered()).encode()
    missing = secured.post("/webhooks/pagerduty", content=body, headers=JSON)
    assert_problem(missing, 401, "X-PagerDuty-Signature", "missing")
    expected = [hmac_hex(secret, body) for secret in PAGERDUTY_SECRETS]
    altered = body + b" "
    for headers in (signed_by("unknown", body=body), signed_by(*PAGERDUTY_SECRETS, body=altered),
                    {**JSON, "X-PagerDuty-Signature": "v0=" + expected[0]},
                    {**JSON, "X-PagerDuty-Signature": "garbage"}):
        response = secured.post("/webhooks/pagerduty", content=body, headers=headers)
        assert_problem(response, 403, "X-PagerDuty-Signature")
        assert_secret_free(response, *PAGERDUTY_SECRETS, *expected)
    assert stored(secured) == []
    # PagerDuty rotating its secret: two signatures, one of them by a secret we know.
    response = secured.post("/webhooks/pagerduty", content=body,
                            headers=signed_by("pagerduty-new-unknown", PAGERDUTY_SECRETS[1],
                                              body=body))
    assert response.json() == {"accepted": 1, "duplicates": 0}
    # Us rotating: a delivery signed with the other configured secret is accepted too.
    response = secured.post("/webhooks/pagerduty", content=body,
                            headers=signed_by(PAGERDUTY_SECRETS[0], body=body))
    assert response.json() == {"accepted": 0, "duplicates": 1}


# --- Alertmanager -------------------------------------------------------------------------------


def alertmanager_firing() -> dict[str, Any]:
    return {
        "version": "4", "receiver": "dora-cloudevents", "status": "firing",
        "externalURL": "http://alertmanager.monitoring.svc:9093",
        "groupKey": '{}:{alertname="CheckoutHighErrorRate"}', "truncatedAlerts": 0,
        "groupLabels": {"alertname": "CheckoutHighErrorRate"},
        "commonLabels": {}, "commonAnnotations": {},
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "CheckoutHighErrorRate", "service": "checkout",
                       "environment": "production", "severity": "critical"},
            "annotations": {"summary": "Checkout 5xx ratio above 5%"},
            "startsAt": "2024-05-14T09:02:30.481Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": "af89e8f3a6742ac7",
        }],
    }


def test_alertmanager_notification_with_ingest_tokens(secured: httpx.Client) -> None:
    notification = alertmanager_firing()
    body = json.dumps(notification).encode()
    assert_problem(secured.post("/webhooks/alertmanager", content=body, headers=JSON),
                   401, "bearer")
    wrong = secured.post("/webhooks/alertmanager", content=body,
                         headers={**JSON, "Authorization": "Bearer guess"})
    assert_problem(wrong, 403, "bearer")
    bearer = {**JSON, "Authorization": f"Bearer {INGEST_TOKEN}"}
    response = secured.post("/webhooks/alertmanager", content=body, headers=bearer)
    assert response.json() == {"accepted": 1, "duplicates": 0}
    event = the_event(secured)
    assert event["type"] == "io.prometheus.alertmanager.notification"
    assert event["source"] == "http://alertmanager.monitoring.svc:9093"
    assert event["data"] == notification
    assert cdevent_types("alertmanager", event) == ["dev.cdevents.incident.detected.0.2.0"]
    # The repeat_interval re-send, serialised differently: the same notification.
    resent = json.dumps(notification, indent=2, sort_keys=True).encode()
    response = secured.post("/webhooks/alertmanager", content=resent, headers=bearer)
    assert response.json() == {"accepted": 0, "duplicates": 1}


def test_alertmanager_without_external_url(client: httpx.Client) -> None:
    notification = alertmanager_firing()
    del notification["externalURL"]
    client.post("/webhooks/alertmanager", content=json.dumps(notification), headers=JSON)
    assert the_event(client)["source"] == "alertmanager"


# --- common -------------------------------------------------------------------------------------


def test_unconfigured_source_falls_back_to_ingest_tokens(serve: Serve) -> None:
    client = serve(Settings(ingest_tokens=[SecretStr(INGEST_TOKEN)]))
    body = github_body("pull_request", "opened.payload.json")
    response = client.post("/webhooks/github", content=body, headers=github_headers("pull_request"))
    assert_problem(response, 401, "bearer")
    response = client.post("/webhooks/github", content=body, headers=github_headers(
        "pull_request", Authorization=f"Bearer {INGEST_TOKEN}"))
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("path", ["/webhooks/github", "/webhooks/gitlab", "/webhooks/pagerduty",
                                  "/webhooks/alertmanager"])
@pytest.mark.parametrize(("body", "words"), [
    (b"{not json", ("not valid JSON",)),
    (b"", ("not valid JSON",)),
    (b"[1, 2]", ("must be a JSON object", "array")),
    (b'"text"', ("must be a JSON object", "string")),
])
def test_bad_bodies_are_refused_precisely(
    client: httpx.Client, path: str, body: bytes, words: tuple[str, ...],
) -> None:
    headers = {**github_headers("push"), **gitlab_headers()}
    assert_problem(client.post(path, content=body, headers=headers), 400, *words)
    assert stored(client) == []


@pytest.mark.parametrize(("path", "body", "words"), [
    ("/webhooks/pagerduty", {"messages": []}, ("PagerDuty v3", "'event'")),
    ("/webhooks/pagerduty", {"event": {"id": "E1"}}, ("event.event_type",)),
    ("/webhooks/pagerduty", {"event": {"event_type": "incident.triggered"}}, ("event.id",)),
    ("/webhooks/alertmanager", {"status": "firing"}, ("'alerts'",)),
])
def test_payloads_of_the_wrong_shape(
    client: httpx.Client, path: str, body: dict[str, Any], words: tuple[str, ...],
) -> None:
    assert_problem(client.post(path, content=json.dumps(body), headers=JSON), 400, *words)


def test_oversized_webhook_is_refused(secured: httpx.Client) -> None:
    big = json.dumps({**gitlab_merged(), "blob": "x" * (1024 * 1024)}).encode()
    response = secured.post("/webhooks/gitlab", content=big, headers=gitlab_headers(GITLAB_TOKEN))
    assert_problem(response, 413, "limit")
    chunked = secured.post("/webhooks/github", content=iter([big]),
                           headers=github_headers("push", body=big))
    assert_problem(chunked, 413, "limit")
    assert stored(secured) == []


def test_webhooks_take_only_post(client: httpx.Client) -> None:
    response = client.get("/webhooks/github")
    assert_problem(response, 405, "GET")
    assert response.headers["allow"] == "POST"
