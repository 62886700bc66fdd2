"""The UI's response headers (a strict Content-Security-Policy) and its read-token gate."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from dora_cloudevents.auth import has_read_session, token_matches

# Event data is untrusted: no inline script or style may run, whatever a payload contains.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def protect(response: Response) -> Response:
    response.headers.update(HEADERS)
    return response


class ProtectedStaticFiles(StaticFiles):
    """Static files with the UI's headers (nosniff matters for scripts)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        return protect(await super().get_response(path, scope))


def may_read(request: Request) -> bool:
    """No read tokens configured, or the sign-in cookie, or a bearer token."""
    tokens = request.app.state.settings.read_tokens
    if not tokens or has_read_session(request, tokens):
        return True
    scheme, _, candidate = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and token_matches(candidate.strip(), tokens)


def sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return protect(RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303))


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
