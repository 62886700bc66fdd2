"""/openapi.json documents every route, the ingest endpoints included, with 400 problems."""

from __future__ import annotations

import httpx


def test_openapi_documents_every_route(client: httpx.Client) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/", "/events", "/cdevents", "/webhooks/github", "/webhooks/gitlab",
                 "/webhooks/pagerduty", "/webhooks/alertmanager", "/api/v1/events",
                 "/api/v1/cdevents", "/api/v1/dora", "/api/v1/metrics/{name}",
                 "/api/v1/deployments", "/api/v1/changes", "/api/v1/incidents",
                 "/deploy-frequency/{bucket}", "/metrics", "/healthz", "/readyz"):
        assert path in paths, path
    assert set(paths["/events"]["post"]["responses"]) >= {"202", "400", "413", "415", "503"}
    for path_item in paths.values():
        for operation in path_item.values():
            assert "422" not in operation.get("responses", {})
    dora = schema["components"]["schemas"]
    assert "Problem" in dora
