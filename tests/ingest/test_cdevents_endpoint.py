"""POST /cdevents: only valid CDEvents (0.4.x, 0.5.x), bound to their CloudEvent envelope."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from dora_cloudevents.cdevents.binding import as_cloudevent
from tests.conftest import FIXTURES, shared_fixture
from tests.ingest.test_cloudevents_endpoint import BATCH, STRUCTURED, assert_problem

CONFORMANCE = sorted(FIXTURES.glob("cdevents-spec/v*/conformance/*.json"))


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


envelope = as_cloudevent  # the binding rules, as the project applies them


def conformance(version: str, name: str) -> dict[str, Any]:
    return load(shared_fixture("cdevents-spec", version, "conformance", name))


def stored_cdevents(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/cdevents", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()
    return items


def test_every_conformance_example_is_accepted_in_one_batch(client: httpx.Client) -> None:
    if not CONFORMANCE:
        pytest.skip("the CDEvents conformance examples (../shared/fixtures) are not available")
    # Both versions share context ids, so make each (source, id) unique per file.
    events = []
    for path in CONFORMANCE:
        cdevent = load(path)
        cdevent["context"]["id"] = f"{path.parent.parent.name}-{path.stem}"
        events.append(envelope(cdevent))
    response = client.post("/cdevents", content=json.dumps(events), headers=BATCH)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": len(events), "duplicates": 0}
    assert len(stored_cdevents(client, limit=1000)) == len(events)


def test_binary_structured_and_bare_modes(client: httpx.Client) -> None:
    deployed = conformance("v0.4.1", "service_deployed.json")
    context = deployed["context"]
    binary = {"ce-specversion": "1.0", "ce-id": context["id"], "ce-source": context["source"],
              "ce-type": context["type"], "content-type": "application/json"}
    assert client.post("/cdevents", content=json.dumps(deployed), headers=binary
                       ).json() == {"accepted": 1, "duplicates": 0}
    upgraded = conformance("v0.5.1", "service_upgraded.json")
    upgraded["context"]["id"] = "upgraded-1"  # the examples all share one context id
    assert client.post("/cdevents", content=json.dumps(envelope(upgraded)), headers=STRUCTURED
                       ).json() == {"accepted": 1, "duplicates": 0}
    removed = conformance("v0.5.1", "service_removed.json")
    removed["context"]["id"] = "bare-1"
    assert client.post("/cdevents", json=removed).json() == {"accepted": 1, "duplicates": 0}
    assert client.post("/cdevents", json=removed).json() == {"accepted": 0, "duplicates": 1}
    newest = stored_cdevents(client)
    assert newest[0] == removed  # returned whole
    assert [e["context"]["type"] for e in newest] == [
        removed["context"]["type"], upgraded["context"]["type"], context["type"]]


def test_type_filter_with_and_without_version(client: httpx.Client) -> None:
    deployed = conformance("v0.4.1", "service_deployed.json")
    changed = conformance("v0.4.1", "change_merged.json")
    changed["context"]["id"] = "merged-1"
    client.post("/cdevents", content=json.dumps([envelope(deployed), envelope(changed)]),
                headers=BATCH)
    assert [e["context"]["type"] for e in stored_cdevents(
        client, type="dev.cdevents.service.deployed")] == [deployed["context"]["type"]]
    assert len(stored_cdevents(client, type=deployed["context"]["type"])) == 1
    assert stored_cdevents(client, type="dev.cdevents.service") == []


def test_invalid_cdevents_are_refused_with_the_reason(client: httpx.Client) -> None:
    deployed = conformance("v0.4.1", "service_deployed.json")
    del deployed["subject"]["content"]["environment"]
    assert_problem(client.post("/cdevents", content=json.dumps(envelope(deployed)),
                               headers=STRUCTURED), 400, "environment")

    plain = {"specversion": "1.0", "id": "x", "source": "/s", "type": "t", "data": {"a": 1}}
    assert_problem(client.post("/cdevents", content=json.dumps(plain), headers=STRUCTURED),
                   400, "valid CDEvent")

    mismatched = envelope(conformance("v0.5.1", "service_deployed.json"))
    mismatched["id"] = "something-else"
    assert_problem(client.post("/cdevents", content=json.dumps(mismatched), headers=STRUCTURED),
                   400, "context.id")

    assert_problem(client.post("/cdevents", json={"hello": "world"}), 400, "context")
    assert stored_cdevents(client) == []


def test_one_invalid_cdevent_rejects_the_whole_batch(client: httpx.Client) -> None:
    good = envelope(conformance("v0.5.1", "service_deployed.json"))
    bad = envelope(conformance("v0.5.1", "change_merged.json"))
    bad["data"]["context"]["timestamp"] = "not a time"
    response = client.post("/cdevents", content=json.dumps([good, bad]), headers=BATCH)
    assert_problem(response, 400, "event [1]", "timestamp")
    assert stored_cdevents(client) == []


def test_pages_follow_the_link_header(client: httpx.Client) -> None:
    events = []
    for n in range(5):
        cdevent = conformance("v0.5.1", "service_deployed.json")
        cdevent["context"]["id"] = f"page-{n}"
        events.append(envelope(cdevent))
    client.post("/cdevents", content=json.dumps(events), headers=BATCH)
    seen, url = [], "/api/v1/cdevents?limit=2"
    while url:
        response = client.get(url)
        seen += [e["context"]["id"] for e in response.json()]
        url = response.links.get("next", {}).get("url", "")
    assert seen == [f"page-{n}" for n in reversed(range(5))]
