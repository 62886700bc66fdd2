"""Who can reach what: the auth matrix as data, the requests that exercise it, and its table.

The live test (test_auth_matrix.py) sends every request below to a real server and compares
the status with ``expected``; docs/security.md and docs/reliability.md carry the table that
``render_tables()`` makes of the same data, and a test checks they are equal, so the
documentation cannot drift from what the server does. Regenerate the docs' tables with:

    .venv/bin/python -m tests.security.auth_matrix
"""

from __future__ import annotations

import hashlib
import hmac
import re
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from dora_cloudevents.cdevents.build import new_cdevent
from dora_cloudevents.config import Settings

PROJECT = Path(__file__).resolve().parents[2]
DOCS = (PROJECT / "docs" / "security.md", PROJECT / "docs" / "reliability.md")
BEGIN, END = "<!-- auth-matrix:begin -->", "<!-- auth-matrix:end -->"

# Two tokens per role: the matrix uses the newer one, the rotation test both.
TOKENS = {
    "ingest": ("ingest-previous-5e1f0b", "ingest-current-9a7c2d"),
    "read": ("read-previous-0d4e8a", "read-current-c3b9f1"),
    "metrics": ("metrics-previous-7b2a6e", "metrics-current-41f8d0"),
}
WEBHOOK_SECRETS = {
    "github": ("gh-previous-secret", "gh-current-secret"),
    "gitlab": ("gl-previous-token", "gl-current-token"),
    "pagerduty": ("pd-previous-secret", "pd-current-secret"),
}
WRONG = "not-a-token-of-this-server"
CREDENTIALS = ("none", "wrong", "ingest", "read", "metrics")
SIGNATURES = ("none", "wrong", "ingest token only", "current secret", "previous secret")
_SIGNATURE_HEADINGS = ("none", "wrong signature", "ingest token, no signature",
                       "signed with current secret", "signed with previous secret")


def token_settings(**extra: Any) -> Settings:
    """Every role has tokens (as comma-separated environment values would give them)."""
    return Settings.model_validate({
        "ingest_tokens": ",".join(TOKENS["ingest"]), "read_tokens": ",".join(TOKENS["read"]),
        "metrics_token": ",".join(TOKENS["metrics"]), **extra})


def webhook_settings() -> Settings:
    """Tokens for every role, and each webhook's own secret (two, as during a rotation)."""
    return token_settings(
        github_webhook_secret=",".join(WEBHOOK_SECRETS["github"]),
        gitlab_webhook_token=",".join(WEBHOOK_SECRETS["gitlab"]),
        pagerduty_webhook_secret=",".join(WEBHOOK_SECRETS["pagerduty"]))


def bearer(credential: str, which: int = 1) -> dict[str, str]:
    if credential == "none":
        return {}
    token = WRONG if credential == "wrong" else TOKENS[credential][which]
    return {"authorization": f"Bearer {token}"}


# --- valid requests, one per route ---------------------------------------------------------------

Body = Callable[[], tuple[bytes, dict[str, str]]]


def _cloudevent() -> tuple[bytes, dict[str, str]]:
    event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/auth-matrix",
             "type": "com.example.matrix", "data": {"ok": True}}
    return orjson.dumps(event), {"content-type": "application/cloudevents+json"}


def _cdevent() -> tuple[bytes, dict[str, str]]:
    cdevent = new_cdevent("service.deployed", key=("auth-matrix", str(uuid.uuid4())),
                          source="/auth-matrix", timestamp="2024-05-01T10:00:00Z",
                          subject_id="shop", content={"environment": {"id": "prod"},
                                                      "artifactId": "pkg:generic/shop@1"})
    return orjson.dumps(cdevent), {"content-type": "application/json"}


def _github() -> tuple[bytes, dict[str, str]]:
    return orjson.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}), {
        "content-type": "application/json", "x-github-event": "ping",
        "x-github-delivery": str(uuid.uuid4())}


def _gitlab() -> tuple[bytes, dict[str, str]]:
    return orjson.dumps({"object_kind": "push", "checkout_sha": uuid.uuid4().hex,
                         "project": {"web_url": "https://gitlab.example/acme/shop"}}), {
        "content-type": "application/json", "x-gitlab-event": "Push Hook"}


def _pagerduty() -> tuple[bytes, dict[str, str]]:
    return orjson.dumps({"event": {
        "id": str(uuid.uuid4()), "event_type": "incident.triggered",
        "occurred_at": "2024-05-01T10:00:00Z", "data": {"id": "Q1", "type": "incident"}}}), {
        "content-type": "application/json"}


def _alertmanager() -> tuple[bytes, dict[str, str]]:
    return orjson.dumps({"version": "4", "status": "firing", "alerts": [],
                         "groupKey": str(uuid.uuid4())}), {"content-type": "application/json"}


def sign(source: str, secret: str, body: bytes) -> dict[str, str]:
    """The header ``source`` authenticates a delivery with."""
    if source == "gitlab":
        return {"x-gitlab-token": secret}
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if source == "github":
        return {"x-hub-signature-256": f"sha256={digest}"}
    return {"x-pagerduty-signature": f"v1={digest}"}


# --- the matrix ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    group: str
    method: str
    path: str           # what the request is sent to
    role: str           # "ingest", "read", "metrics", "ui" (read, by sign-in) or "open"
    template: str = ""  # the /openapi.json path, when it differs from ``path``
    body: Body | None = None
    needs: str = ""     # a module that must exist for the route to be served (the UI)
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return 202 if self.method == "POST" else 200

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


ROUTES: tuple[Route, ...] = (
    Route("ingest", "POST", "/", "ingest", body=_cloudevent),
    Route("ingest", "POST", "/events", "ingest", body=_cloudevent),
    Route("ingest", "POST", "/cdevents", "ingest", body=_cdevent),
    Route("webhook", "POST", "/webhooks/github", "ingest", body=_github),
    Route("webhook", "POST", "/webhooks/gitlab", "ingest", body=_gitlab),
    Route("webhook", "POST", "/webhooks/pagerduty", "ingest", body=_pagerduty),
    Route("webhook", "POST", "/webhooks/alertmanager", "ingest", body=_alertmanager),
    Route("read API", "GET", "/api/v1/dora", "read"),
    Route("read API", "GET", "/api/v1/metrics/lead-time", "read",
          template="/api/v1/metrics/{name}"),
    Route("read API", "GET", "/api/v1/deployments", "read"),
    Route("read API", "GET", "/api/v1/changes", "read"),
    Route("read API", "GET", "/api/v1/incidents", "read"),
    Route("read API", "GET", "/api/v1/events", "read"),
    Route("read API", "GET", "/api/v1/events?status=failed", "read",
          template="/api/v1/events"),
    Route("read API", "GET", "/api/v1/cdevents", "read"),
    Route("read API", "GET", "/deploy-frequency/week", "read",
          template="/deploy-frequency/{bucket}"),
    Route("read API", "GET", "/api/v1/events/1", "read", template="/api/v1/events/{seq}"),
    Route("read API", "GET", "/api/v1/events/stream", "read"),
    Route("web UI", "GET", "/", "ui", needs="dora_cloudevents.ui"),
    Route("web UI", "GET", "/events", "ui", needs="dora_cloudevents.ui"),
    Route("web UI", "GET", "/deployments", "ui", needs="dora_cloudevents.ui"),
    Route("web UI", "GET", "/changes", "ui", needs="dora_cloudevents.ui"),
    Route("web UI", "GET", "/incidents", "ui", needs="dora_cloudevents.ui"),
    Route("Prometheus", "GET", "/metrics", "metrics"),
    Route("probes", "GET", "/healthz", "open"),
    Route("probes", "GET", "/readyz", "open"),
    Route("schema", "GET", "/openapi.json", "open"),
)
SIGNED_WEBHOOKS = ("github", "gitlab", "pagerduty")


def expected(route: Route, credential: str) -> int:
    """What ``route`` answers ``credential`` with when every role has tokens configured."""
    if route.role == "open" or credential == route.role:
        return route.ok
    if route.role == "ui":  # a browser page: the read token, or a redirect to the sign-in form
        return route.ok if credential == "read" else 303
    return 401 if credential == "none" else 403


def expected_signed(source: str, credential: str) -> int:
    """What /webhooks/``source`` answers when its own secret is configured (bearer tokens are
    then not its credential: a request without the signature header is unauthenticated)."""
    if credential in ("current secret", "previous secret"):
        return 202
    return 403 if credential == "wrong" else 401


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def render_tables() -> str:
    """The two Markdown tables the docs carry between the auth-matrix markers."""
    lines = ["With tokens configured for every role (`ingest_tokens`, `read_tokens`, "
             "`metrics_token`) and no webhook secrets:", "",
             _row(["group", "request", *[f"{c} token" if c in TOKENS else c
                                         for c in CREDENTIALS]]),
             _row(["---"] * (2 + len(CREDENTIALS)))]
    for route in ROUTES:
        lines.append(_row([route.group, f"`{route.label}`",
                           *[str(expected(route, c)) for c in CREDENTIALS]]))
    lines += ["", "With a webhook's own secret configured as well (`github_webhook_secret`, "
              "`gitlab_webhook_token`, `pagerduty_webhook_secret`, each listing a previous and "
              "a current secret):", "",
              _row(["request", *_SIGNATURE_HEADINGS]),
              _row(["---"] * (1 + len(SIGNATURES)))]
    for source in SIGNED_WEBHOOKS:
        lines.append(_row([f"`POST /webhooks/{source}`",
                           *[str(expected_signed(source, c)) for c in SIGNATURES]]))
    lines += ["", "The web UI's pages take the read token (as a bearer header, or as the "
              "cookie the sign-in form at `/signin` sets) and send anyone else to that form "
              "(303).", "",
              "With nothing configured every route answers 200/202 to anyone: tokens are "
              "opt-in, for a laptop or a trusted network."]
    return "\n".join(lines)


def documented_table(path: Path) -> str:
    """The text between the markers in ``path``."""
    match = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), path.read_text(),
                      re.DOTALL)
    if match is None:
        raise AssertionError(f"{path} has no {BEGIN} ... {END} section")
    return match.group(1)


def write_docs() -> None:
    for path in DOCS:
        text = path.read_text()
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        path.write_text(text[:start] + "\n" + render_tables() + "\n" + text[end:])


if __name__ == "__main__":
    write_docs() if "--print" not in sys.argv else print(render_tables())
