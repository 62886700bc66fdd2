"""PagerDuty v3 transformer: which events open and close incidents, their times, ids and errors."""

from __future__ import annotations

import base64
import copy
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from dora_cloudevents.transformers import builtin_transformers
from dora_cloudevents.transformers.base import TransformError
from dora_cloudevents.transformers.pagerduty import cloudevent_source, cloudevent_type, transform
from tests.transformers.support import golden_event, single_cdevent

FIXTURES = Path(__file__).parent / "pagerduty"

webhook = partial(golden_event, FIXTURES)
one = partial(single_cdevent, transform)


def test_registered_under_its_name() -> None:
    assert builtin_transformers()["pagerduty"].transform is transform


def test_triggered_is_detected_at_the_incident_creation_time() -> None:
    cdevent = one(webhook("triggered"))
    assert cdevent["context"]["type"] == "dev.cdevents.incident.detected.0.2.0"
    assert cdevent["context"]["timestamp"] == "2024-05-14T09:12:03Z"  # data.created_at


def test_triggered_without_created_at_falls_back_to_occurred_at() -> None:
    event = webhook("triggered")
    del event["data"]["event"]["data"]["created_at"]
    assert one(event)["context"]["timestamp"] == "2024-05-14T09:12:04.316Z"


def test_resolved_uses_occurred_at_of_the_resolved_event() -> None:
    event = webhook("resolved")
    event["time"] = "2024-05-14T10:30:00Z"  # a late delivery must not move the resolution
    cdevent = one(event)
    assert cdevent["context"]["type"] == "dev.cdevents.incident.resolved.0.2.0"
    assert cdevent["context"]["timestamp"] == "2024-05-14T09:58:41.902Z"


def test_occurred_at_with_an_offset_is_given_in_utc() -> None:
    event = webhook("resolved")
    event["data"]["event"]["occurred_at"] = "2024-05-14T11:58:41.902+02:00"
    assert one(event)["context"]["timestamp"] == "2024-05-14T09:58:41.902Z"


def test_reopened_is_detected_again_at_occurred_at() -> None:
    reopened, triggered = one(webhook("reopened")), one(webhook("triggered"))
    assert reopened["context"]["type"] == "dev.cdevents.incident.detected.0.2.0"
    assert reopened["context"]["timestamp"] == "2024-05-14T11:03:10.448Z"
    assert reopened["subject"]["id"] == triggered["subject"]["id"]
    assert reopened["context"]["id"] != triggered["context"]["id"]


def test_all_events_of_an_incident_share_its_web_url_as_subject() -> None:
    cases = ("triggered", "resolved", "reopened")
    subjects = {one(webhook(case))["subject"]["id"] for case in cases}
    assert subjects == {"https://acme.pagerduty.com/incidents/Q2DE07SGS1FQ3L"}


def test_redelivery_collapses_to_the_same_cdevent() -> None:
    first = webhook("resolved")
    again = copy.deepcopy(first)
    again["time"] = "2024-05-14T10:05:00Z"  # PagerDuty retried the delivery later
    assert transform(again) == transform(first)


def test_each_resolve_of_a_reopened_incident_is_its_own_event() -> None:
    first = webhook("resolved")
    second = copy.deepcopy(first)
    second["id"] = second["data"]["event"]["id"] = "01EXMV2RZ9D8G1H0KJ7Q5N3WXA"
    second["data"]["event"]["occurred_at"] = "2024-05-14T11:40:12.007Z"
    assert one(first)["context"]["id"] != one(second)["context"]["id"]


@pytest.mark.parametrize("event_type", ["incident.acknowledged", "incident.unacknowledged",
                                        "incident.priority_updated", "incident.escalated"])
def test_other_incident_events_give_nothing(event_type: str) -> None:
    event = webhook("acknowledged")
    event["data"]["event"]["event_type"] = event_type
    assert transform(event) == []


def test_non_incident_events_give_nothing() -> None:
    body = {"event": {"id": "01BRB6ZP4M6T8ZG4X6BP63ZB9O", "event_type": "service.updated",
                      "resource_type": "service", "occurred_at": "2021-03-02T13:35:11.682Z",
                      "agent": None, "client": None,
                      "data": {"id": "PF9KMXH", "type": "service", "summary": "checkout-api"}}}
    event = {"specversion": "1.0", "id": "01BRB6ZP4M6T8ZG4X6BP63ZB9O",
             "type": cloudevent_type(body), "source": cloudevent_source(body), "data": body}
    assert transform(event) == []


def test_content_and_custom_data() -> None:
    cdevent = one(webhook("triggered"))
    assert cdevent["subject"]["content"] == {
        "environment": {"id": "production"},
        "service": {"id": "checkout-api", "source": "https://acme.pagerduty.com/services/PF9KMXH"},
        "description": "Checkout error rate above 5% (checkout-api)",
    }
    assert cdevent["customData"] == {
        "url": "https://acme.pagerduty.com/incidents/Q2DE07SGS1FQ3L",
        "title": "Checkout error rate above 5% (checkout-api)",
        "number": 1287,
        "incidentKey": "9f3c2a7e51d04b0c8e6f1a2b3c4d5e6f",
        "urgency": "high",
        "priority": "P1",
    }


def test_environment_extension_overrides_production() -> None:
    event = webhook("triggered")
    event["environment"] = "staging"
    assert one(event)["subject"]["content"]["environment"] == {"id": "staging"}


def test_unknown_values_are_left_out() -> None:
    event = webhook("triggered")
    incident = event["data"]["event"]["data"]
    incident["priority"] = None  # accounts without priorities send null
    del incident["service"]["summary"], incident["service"]["html_url"], incident["title"]
    cdevent = one(event)
    assert cdevent["subject"]["content"]["service"] == {"id": "PF9KMXH"}
    assert "description" not in cdevent["subject"]["content"]
    assert "priority" not in cdevent["customData"]
    assert "title" not in cdevent["customData"]


def test_data_base64_is_decoded() -> None:
    event = webhook("triggered")
    body = event.pop("data")
    event["data_base64"] = base64.b64encode(json.dumps(body).encode()).decode()
    assert transform(event) == transform(webhook("triggered"))


def test_cloudevent_type_and_source_for_the_endpoint() -> None:
    body = webhook("reopened")["data"]
    assert cloudevent_type(body) == "com.pagerduty.incident.reopened"
    assert cloudevent_source(body) == "https://acme.pagerduty.com"
    note = {"event": {"event_type": "incident.annotated", "data": {
        "type": "incident_note",
        "incident": {"html_url": "https://acme.pagerduty.com/incidents/PGR0VU2"}}}}
    assert cloudevent_source(note) == "https://acme.pagerduty.com"
    assert cloudevent_source({"event": {"event_type": "x", "data": {}}}) == (
        "https://api.pagerduty.com")
    for malformed in ("https://[acme.pagerduty.com", "https://acme pagerduty.com/x"):
        body = {"event": {"event_type": "x", "data": {"html_url": malformed}}}
        assert cloudevent_source(body) == "https://api.pagerduty.com"
    with pytest.raises(TransformError, match="event_type"):
        cloudevent_type({"messages": []})  # a v2 webhook


@pytest.mark.parametrize(("change", "message"), [
    (lambda body: body.pop("event"), "no 'event' object"),
    (lambda body: body["event"].pop("data"), "event.data"),
    (lambda body: body["event"]["data"].pop("html_url"), "event.data.html_url is missing"),
    (lambda body: body["event"]["data"].pop("id"), "event.data.id is missing"),
    (lambda body: body["event"].pop("occurred_at"), "event.occurred_at is missing"),
    (lambda body: body["event"].update(occurred_at="yesterday"), "not an RFC 3339 time"),
])
def test_malformed_webhooks_raise(change: Any, message: str) -> None:
    event = webhook("resolved")
    change(event["data"])
    with pytest.raises(TransformError, match=message):
        transform(event)
