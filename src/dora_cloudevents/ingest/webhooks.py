"""POST /webhooks/{github,gitlab,pagerduty,alertmanager}: native payloads stored as CloudEvents."""

# Each payload is wrapped into the CloudEvent the Knative source would have made of it (same
# type, source and subject; ids that stay the same when a delivery is retried), so the same
# transformers give the same CDEvents with or without Knative. It is stored in cloudevents_raw
# through the same group committer as /events.
#
# Credentials. GitHub, GitLab and PagerDuty cannot send an Authorization header, so bearer
# ingest tokens are not asked of them: their own credential is (X-Hub-Signature-256, an HMAC of
# the body; X-Gitlab-Token; X-PagerDuty-Signature, HMACs of the body, several while a secret is
# rotated) once DORA_GITHUB_WEBHOOK_SECRET, DORA_GITLAB_WEBHOOK_TOKEN or
# DORA_PAGERDUTY_WEBHOOK_SECRET is set. Without it the endpoint falls back to the /events rule
# (a bearer ingest token when DORA_INGEST_TOKENS is set), so setting ingest tokens never leaves
# a webhook endpoint open to anyone. Alertmanager sends `Authorization: Bearer` (http_config),
# so /webhooks/alertmanager takes the ingest tokens like /events.

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson
from pydantic import SecretStr

from dora_cloudevents.cdevents import is_uri_reference
from dora_cloudevents.config import Settings
from dora_cloudevents.events import CloudEvent, format_rfc3339, parse_rfc3339
from dora_cloudevents.ingest.cloudevents import check_attributes, load_json, media_type
from dora_cloudevents.ingest.routes import IngestEndpoint, IngestRequest, Rows, bearer_tokens
from dora_cloudevents.problems import Problem
from dora_cloudevents.store.events import cloudevent_row
from dora_cloudevents.store.schema import cloudevents_raw
from dora_cloudevents.transformers import alertmanager, gitlab, pagerduty
from dora_cloudevents.transformers.base import TransformError, dig, url_origin
from dora_cloudevents.transformers.github import TYPE_PREFIX as GITHUB_TYPE_PREFIX

Headers = Mapping[str, str]
Verifier = Callable[[Headers, bytes, SecretStr], None]

GITLAB_TYPE_PREFIX = "dev.knative.sources.gitlab."
FORM = "application/x-www-form-urlencoded"
_JSON_KINDS = {list: "an array", str: "a string", int: "a number", float: "a number",
               bool: "a boolean", type(None): "null"}


# --- shared -------------------------------------------------------------------------------------


def _header(headers: Headers, name: str) -> str:
    value = headers.get(name.lower(), "").strip()
    if not value:
        raise Problem(400, f"required header {name} is missing")
    return value


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    payload = load_json(body, what)
    if not isinstance(payload, dict):
        kind = _JSON_KINDS.get(type(payload), type(payload).__name__)
        raise Problem(400, f"{what} must be a JSON object, got {kind}")
    return payload


def _text(value: Any) -> str | None:
    """A payload value as an attribute string; None where it is absent, empty or not scalar."""
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


def _source(*candidates: Any, default: str) -> str:
    """The first candidate that is a URI reference, which a CloudEvent's source must be (a
    payload's web URL may be anything), else ``default``."""
    for candidate in candidates:
        text = _text(candidate)
        if text is not None and is_uri_reference(text):
            return text
    return default


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _cloudevent(event_id: str, source: str, event_type: str, data: dict[str, Any], *,
                time: str, subject: str | None = None,
                extensions: Mapping[str, str] | None = None) -> CloudEvent:
    """The structured CloudEvent, attributes in the order the Go SDK writes them."""
    event: CloudEvent = {"specversion": "1.0", "id": event_id, "source": source,
                         "type": event_type}
    if subject is not None:
        event["subject"] = subject
    event["datacontenttype"] = "application/json"
    event["time"] = time
    event.update(extensions or {})
    event["data"] = data
    return check_attributes(event, "the CloudEvent made from the webhook")


def _unauthorized(detail: str, header: str, realm: str) -> Problem:
    # 401 must name a scheme: the header that carries this source's credential.
    return Problem(401, detail, headers={"WWW-Authenticate": f'{header} realm="{realm}"'})


def _hmac_sha256(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def _secrets(setting: SecretStr) -> list[str]:
    """The comma-separated secrets of a setting: old and new both work during a rotation."""
    return [part.strip() for part in setting.get_secret_value().split(",") if part.strip()]


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        return b""  # matches no digest


# --- GitHub -------------------------------------------------------------------------------------


def _at(*path: str) -> Callable[[dict[str, Any]], Any]:
    return lambda payload: dig(payload, *path)


def _last_segment(*path: str) -> Callable[[dict[str, Any]], Any]:
    """After the last "/": a comment's ``2#issuecomment-1``, a push's ``a10867b...000000``."""
    def segment(payload: dict[str, Any]) -> Any:
        url = dig(payload, *path)
        return url.rsplit("/", 1)[1] if isinstance(url, str) and "/" in url else None
    return segment


def _page_names(payload: dict[str, Any]) -> Any:
    pages = payload.get("pages")
    names = [dig(page, "page_name") for page in pages] if isinstance(pages, list) else []
    return ",".join(name for name in names if isinstance(name, str)) or None


# The subject knative-extensions/eventing-github gives each event (pkg/common/events.go,
# SubjectAndExtensionsFromGitHubEvent). Its extensions are left out: the adapter passes
# pointers the SDK refuses, so real GitHubSource events carry none (see the tutorial's capture).
# GitHubSource refuses events not listed (workflow_run...); here they come without a subject.
_GITHUB_SUBJECTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "check_run": _at("check_run", "id"),
    "check_suite": _at("check_suite", "id"),
    "commit_comment": _last_segment("comment", "html_url"),
    "create": _at("ref_type"),
    "delete": _at("ref_type"),
    "deployment": _at("deployment", "id"),
    "deployment_status": _at("deployment", "id"),
    "discussion": _at("discussion", "id"),
    "fork": _at("forkee", "id"),
    "gollum": _page_names,
    "installation": _at("installation", "id"),
    "installation_repositories": _at("installation", "id"),
    "issue_comment": _last_segment("comment", "html_url"),
    "issues": _at("issue", "number"),
    "label": _at("label", "name"),
    "member": _at("member", "id"),
    "membership": _at("member", "id"),
    "milestone": _at("milestone", "number"),
    "organization": _at("action"),
    "org_block": _at("action"),
    "page_build": _at("id"),
    "ping": _at("hook_id"),
    "project_card": _at("action"),
    "project_column": _at("action"),
    "project": _at("action"),
    "public": _at("repository", "id"),
    "pull_request": _at("pull_request", "number"),
    "pull_request_review_comment": _at("comment", "id"),
    "pull_request_review": _at("review", "id"),
    "push": _last_segment("compare"),
    "release": _at("release", "tag_name"),
    "repository": _at("repository", "id"),
    "repository_vulnerability_alert": _at("alert", "id"),
    "security_advisory": _at("security_advisory", "ghsa_id"),
    "status": _at("sha"),
    "team": _at("team", "id"),
    "team_add": _at("repository", "id"),
    "watch": _at("repository", "id"),
}


def github_subject(kind: str, payload: dict[str, Any]) -> str | None:
    subject = _GITHUB_SUBJECTS.get(kind)
    return _text(subject(payload)) if subject else None


def github_source(payload: dict[str, Any]) -> str:
    """The repository's web URL, as GitHubSource's ``https://github.com/<owner>/<repo>``."""
    repository = _source(dig(payload, "repository", "html_url"), default="")
    if repository:
        return repository
    # Organisation hooks: GitHubSource's owner-only form, on the sender's host (GitHub Enterprise).
    web = url_origin(dig(payload, "sender", "html_url")) or "https://github.com"
    login = _text(dig(payload, "organization", "login"))
    return _source(f"{web}/{login}" if login else web, default="https://github.com")


def _github_payload(headers: Headers, body: bytes) -> dict[str, Any]:
    if media_type(headers.get("content-type")) != FORM:
        return _json_object(body, "the GitHub payload")
    # A hook set to application/x-www-form-urlencoded sends the JSON as the `payload` field.
    try:
        fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise Problem(400, "the form-encoded GitHub body is not a valid form") from None
    if len(fields.get("payload", ())) != 1:
        raise Problem(400, "the form-encoded GitHub body must have one 'payload' field")
    return _json_object(fields["payload"][0].encode(), "the GitHub 'payload' form field")


def verify_github(headers: Headers, body: bytes, secret: SecretStr) -> None:
    given = headers.get("x-hub-signature-256", "").strip()
    if not given:
        raise _unauthorized("X-Hub-Signature-256 is missing: this endpoint has a webhook secret, "
                            "set the same secret on the GitHub webhook", "X-Hub-Signature-256",
                            "github")
    scheme, _, digest = given.partition("=")
    matched = False
    for key in _secrets(secret):  # several while the secret is rotated; all are compared
        matched |= hmac.compare_digest(_hex(digest), _hmac_sha256(key, body))
    if not (matched and scheme == "sha256"):
        raise Problem(403, "X-Hub-Signature-256 does not match the body: the webhook's secret "
                      "differs from DORA_GITHUB_WEBHOOK_SECRET, or the body was altered")


def github_cloudevent(headers: Headers, body: bytes, now: datetime) -> CloudEvent:
    kind = _header(headers, "X-GitHub-Event")
    delivery = _header(headers, "X-GitHub-Delivery")
    payload = _github_payload(headers, body)
    return _cloudevent(delivery, github_source(payload), GITHUB_TYPE_PREFIX + kind, payload,
                       time=format_rfc3339(now), subject=github_subject(kind, payload))


# --- GitLab -------------------------------------------------------------------------------------


def gitlab_type(header: str) -> str:
    """The CloudEvent type of an X-Gitlab-Event, by eventing-gitlab's rule for unlisted ones."""
    known = gitlab.EVENT_TYPES.get(header)
    if known:
        return known
    if not header.endswith(" Hook"):
        raise Problem(400, f"X-Gitlab-Event {header[:100]!r} is not a GitLab webhook event "
                      "(those end in ' Hook')")
    return GITLAB_TYPE_PREFIX + header.removesuffix(" Hook").lower().replace(" ", "_")


def gitlab_source(headers: Headers, payload: dict[str, Any]) -> str:
    return _source(dig(payload, "project", "web_url"), dig(payload, "repository", "homepage"),
                   headers.get("x-gitlab-instance", "").strip(), default="gitlab")


def gitlab_id(headers: Headers, body: bytes) -> str:
    # Idempotency-Key (GitLab 17.4+) is kept across automatic and manual retries. Not
    # X-Gitlab-Event-UUID: it is drawn anew when a failed delivery is retried, and is shared
    # by every hook a webhook-triggered request fires (recursion detection), so it would
    # neither collapse retries nor keep distinct events apart. Else a retry resends the body.
    return headers.get("idempotency-key", "").strip() or _digest(body)


def verify_gitlab(headers: Headers, body: bytes, secret: SecretStr) -> None:
    given = headers.get("x-gitlab-token", "")
    if not given:
        raise _unauthorized("X-Gitlab-Token is missing: this endpoint has a webhook token, set "
                            "it as the GitLab webhook's secret token", "X-Gitlab-Token", "gitlab")
    matched = False
    for key in _secrets(secret):  # several while the token is rotated; all are compared
        matched |= hmac.compare_digest(given.encode(), key.encode())
    if not matched:
        raise Problem(403, "X-Gitlab-Token is not the token in DORA_GITLAB_WEBHOOK_TOKEN")


def gitlab_cloudevent(headers: Headers, body: bytes, now: datetime) -> CloudEvent:
    kind = _header(headers, "X-Gitlab-Event")
    event_type = gitlab_type(kind)
    payload = _json_object(body, "the GitLab payload")
    # comgitlabevent: the extension eventing-gitlab copies the header into.
    return _cloudevent(gitlab_id(headers, body), gitlab_source(headers, payload), event_type,
                       payload, time=format_rfc3339(now), extensions={"comgitlabevent": kind})


# --- PagerDuty ----------------------------------------------------------------------------------


def verify_pagerduty(headers: Headers, body: bytes, secret: SecretStr) -> None:
    given = headers.get("x-pagerduty-signature", "").strip()
    if not given:
        raise _unauthorized("X-PagerDuty-Signature is missing: this endpoint has a webhook "
                            "secret, so PagerDuty must sign its deliveries",
                            "X-PagerDuty-Signature", "pagerduty")
    # PagerDuty signs with each of its secrets during a rotation ("v1=…,v1=…"); the setting may
    # list several secrets too (comma-separated) so ours can be rotated without downtime.
    signatures = [_hex(part.strip()[3:]) for part in given.split(",")
                  if part.strip().startswith("v1=")]
    matched = False
    for key in _secrets(secret):  # every pair is compared: timing tells not which matched
        expected = _hmac_sha256(key, body)
        for signature in signatures:
            matched |= hmac.compare_digest(signature, expected)
    if not matched:
        raise Problem(403, "no v1 signature in X-PagerDuty-Signature matches the body signed "
                      "with DORA_PAGERDUTY_WEBHOOK_SECRET")


def _occurred_at(event: dict[str, Any], now: datetime) -> str:
    occurred = event.get("occurred_at")
    if isinstance(occurred, str):
        try:
            parse_rfc3339(occurred)
            return occurred
        except ValueError:
            pass
    return format_rfc3339(now)


def pagerduty_cloudevent(headers: Headers, body: bytes, now: datetime) -> CloudEvent:
    payload = _json_object(body, "the PagerDuty payload")
    event = payload.get("event")
    if not isinstance(event, dict):
        raise Problem(400, "not a PagerDuty v3 webhook: the body has no 'event' object")
    try:
        event_type = pagerduty.cloudevent_type(payload)
    except TransformError as error:
        raise Problem(400, str(error)) from None
    event_id = _text(event.get("id"))
    if event_id is None:
        raise Problem(400, "not a PagerDuty v3 webhook: event.id is missing")
    return _cloudevent(event_id, pagerduty.cloudevent_source(payload), event_type, payload,
                       time=_occurred_at(event, now))


# --- Alertmanager -------------------------------------------------------------------------------


def alertmanager_cloudevent(headers: Headers, body: bytes, now: datetime) -> CloudEvent:
    payload = _json_object(body, "the Alertmanager notification")
    if not isinstance(payload.get("alerts"), list):
        raise Problem(400, "not an Alertmanager notification: the body has no 'alerts' list")
    # Alertmanager re-sends a group's notification every repeat_interval; identical ones get
    # one id (a hash of the canonical JSON, so key order and spacing do not matter) and collapse.
    event_id = _digest(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))
    source = _source(payload.get("externalURL"), default="alertmanager")
    return _cloudevent(event_id, source, alertmanager.CLOUDEVENT_TYPE, payload,
                       time=format_rfc3339(now))


# --- endpoints ----------------------------------------------------------------------------------


Wrap = Callable[[Headers, bytes, datetime], CloudEvent]


class WebhookEndpoints:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def endpoints(self) -> dict[str, IngestEndpoint]:
        """The endpoints by path."""
        settings = self.settings
        return {
            "/webhooks/github": self._endpoint(
                github_cloudevent, settings.github_webhook_secret, verify_github),
            "/webhooks/gitlab": self._endpoint(
                gitlab_cloudevent, settings.gitlab_webhook_token, verify_gitlab),
            "/webhooks/pagerduty": self._endpoint(
                pagerduty_cloudevent, settings.pagerduty_webhook_secret, verify_pagerduty),
            "/webhooks/alertmanager": self._endpoint(alertmanager_cloudevent),
        }

    def _endpoint(self, wrap: Wrap, secret: SecretStr | None = None,
                  verify: Verifier | None = None) -> IngestEndpoint:
        """A source's endpoint: with its own secret, the signature of the body is checked
        once the body is read; without one, an ingest token is asked for before."""

        def convert(request: IngestRequest, body: bytes) -> Rows:
            if secret is not None and verify is not None:
                verify(request.headers, body, secret)
            now = datetime.now(UTC)
            return cloudevents_raw, [cloudevent_row(wrap(request.headers, body, now), now)]

        tokens = self.settings.ingest_tokens if secret is None else []
        return IngestEndpoint(bearer_tokens(tokens), convert)
