"""The ingest endpoints in the OpenAPI document (they bypass FastAPI, so it cannot see them)."""

from __future__ import annotations

from typing import Any

_PROBLEM = {"content": {"application/problem+json": {"schema": {
    "$ref": "#/components/schemas/Problem"}}}}
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; `detail` says precisely what is wrong.",
    "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                   "status": {"type": "integer"}, "detail": {"type": "string"},
                   "instance": {"type": "string"}},
    "required": ["type", "title", "status", "detail"],
}
_ACCEPTED = {
    "description": "Stored (committed) before this answer; duplicates are re-deliveries of "
                   "events already stored (same source and id).",
    "content": {"application/json": {"schema": {
        "type": "object", "properties": {"accepted": {"type": "integer"},
                                         "duplicates": {"type": "integer"}},
        "required": ["accepted", "duplicates"]}}},
}
_ERRORS = {
    "400": {"description": "Malformed JSON, a missing or invalid attribute, an invalid "
                           "CDEvent, JSON nested deeper than `max_json_depth`, more than "
                           "`max_extension_attributes` extensions, a string with U+0000",
            **_PROBLEM},
    "401": {"description": "Credentials needed", **_PROBLEM},
    "403": {"description": "Credentials wrong", **_PROBLEM},
    "408": {"description": "The body took longer than `body_read_timeout_seconds`",
            **_PROBLEM},
    "413": {"description": "Body over `max_body_bytes` or batch over `max_batch_events`",
            **_PROBLEM},
    "415": {"description": "Not a CloudEvents content type", **_PROBLEM},
    "431": {"description": "More than `max_headers` header fields or `max_header_bytes` "
                           "header bytes", **_PROBLEM},
    "503": {"description": "The store is unavailable; retry after `Retry-After`", **_PROBLEM},
}
_CLOUDEVENTS_BODY = {
    "required": True,
    "description": "CloudEvents 1.0 or 0.3: binary mode (`ce-*` headers, the body is the "
                   "data), structured mode, or a batch (all or nothing).",
    "content": {media: {"schema": {"type": schema}} for media, schema in (
        ("application/cloudevents+json", "object"),
        ("application/cloudevents-batch+json", "array"),
        ("application/json", "object"),
    )},
}


def _post(summary: str, description: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"post": {"tags": ["ingest"], "summary": summary, "description": description,
                     "requestBody": body, "responses": {"202": _ACCEPTED, **_ERRORS}}}


def ingest_paths() -> dict[str, Any]:
    cloudevents = _post("Ingest CloudEvents", "Any CloudEvent; routed to CDEvents later.",
                        _CLOUDEVENTS_BODY)
    paths: dict[str, Any] = {"/": cloudevents, "/events": cloudevents}
    paths["/cdevents"] = _post(
        "Ingest CDEvents", "Only valid CDEvents of spec 0.4.x or 0.5.x; the CloudEvent's "
        "id, source and type must equal the CDEvent context's. A bare CDEvent "
        "(application/json) is accepted too.", _CLOUDEVENTS_BODY)
    for source, credential in (
        ("github", "X-Hub-Signature-256 (HMAC-SHA256) when github_webhook_secret is set"),
        ("gitlab", "X-Gitlab-Token when gitlab_webhook_token is set"),
        ("pagerduty", "X-PagerDuty-Signature (v1= HMAC-SHA256) when "
                      "pagerduty_webhook_secret is set"),
        ("alertmanager", "a bearer ingest token when ingest_tokens is set"),
    ):
        paths[f"/webhooks/{source}"] = _post(
            f"{source} webhook", f"The native payload, stored as the CloudEvent the Knative "
            f"source would send. Credential: {credential}.",
            {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}})
    return paths


def document_problems(schema: dict[str, Any], with_ingest: bool) -> dict[str, Any]:
    """Add the ingest paths (when served), and say 400 (problem+json) where FastAPI says 422:
    the app answers bad parameters with 400."""
    if with_ingest:
        schema.setdefault("paths", {}).update(ingest_paths())
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for path_item in schema["paths"].values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                del responses["422"]
                responses["400"] = {"description": "A bad parameter", **_PROBLEM}
    return schema
