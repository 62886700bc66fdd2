"""Bearer-token checks shared by the ingest endpoints and the read API."""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Sequence

from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from starlette.requests import Request

from dora_cloudevents.config import Settings
from dora_cloudevents.problems import Problem


def token_matches(candidate: str, tokens: Sequence[SecretStr]) -> bool:
    """Constant-time comparison against every configured token (all are tried, always)."""
    given = candidate.encode()
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, token.get_secret_value().encode())
    return matched


def require_bearer(request: Request, tokens: Sequence[SecretStr], realm: str) -> None:
    """Raise 401 without credentials and 403 with wrong ones; no-op when no tokens are set."""
    if not tokens:
        return
    header = request.headers.get("authorization", "")
    scheme, _, candidate = header.partition(" ")
    if scheme.lower() != "bearer" or not candidate.strip():
        raise Problem(401, f"this endpoint needs a bearer token ({realm})",
                      headers={"WWW-Authenticate": f'Bearer realm="{realm}"'})
    if not token_matches(candidate.strip(), tokens):
        raise Problem(403, f"the bearer token is not valid for {realm}")


READ_COOKIE = "dora_read_session"
"""The browser's read credential: set by the UI's sign-in form (EventSource sends no headers)."""


def read_session_value(token: str) -> str:
    """The cookie value for a read token: derived from it, so the cookie is not the token."""
    return hmac.new(token.encode(), b"dora-cloudevents ui session", "sha256").hexdigest()


def has_read_session(request: Request, tokens: Sequence[SecretStr]) -> bool:
    """Whether the request carries the sign-in cookie of one of ``tokens``."""
    given = request.cookies.get(READ_COOKIE, "").encode()
    matched = False
    for token in tokens:
        expected = read_session_value(token.get_secret_value()).encode()
        matched |= hmac.compare_digest(given, expected)
    return matched


def require_reader(request: Request, tokens: Sequence[SecretStr]) -> None:
    """The read API and UI: a bearer token, or the UI's sign-in cookie; no-op without tokens."""
    if tokens and not has_read_session(request, tokens):
        require_bearer(request, tokens, "read API")


def configured_secrets(settings: Settings) -> list[str]:
    """Every credential value the settings hold (each part of a comma-separated list too, and
    the database password), for the log formatter to mask should one ever reach a log line."""
    values = [token.get_secret_value() for token in
              (*settings.ingest_tokens, *settings.read_tokens, *settings.metrics_token)]
    for secret in (settings.github_webhook_secret, settings.gitlab_webhook_token,
                   settings.pagerduty_webhook_secret):
        if secret is not None:
            values += [part.strip() for part in secret.get_secret_value().split(",")]
    with contextlib.suppress(ArgumentError):  # a bad URL is reported where it is used
        values.append(make_url(settings.database_url).password or "")
    return [value for value in values if value]
