"""PagerDuty Webhooks v3: incidents triggered, reopened and resolved become CDEvents incidents."""

from __future__ import annotations

from typing import Any

from dora_cloudevents.cdevents.build import new_cdevent
from dora_cloudevents.events import CDEvent, CloudEvent
from dora_cloudevents.transformers.base import (
    Transformer,
    TransformError,
    dig,
    dig_text,
    json_data,
    url_origin,
    utc_as_sent,
)

NAME = "pagerduty"
TYPE_PREFIX = "com.pagerduty."
# PagerDuty has no environment field: incidents are in production unless the CloudEvent carries
# an `environment` extension attribute (e.g. set by whoever forwards a staging account's hooks).
DEFAULT_ENVIRONMENT = "production"
ENVIRONMENT_EXTENSION = "environment"
# A reopened incident is an outage again: it opens the incident anew under the same subject id.
_CDEVENT_NAMES = {
    "incident.triggered": "incident.detected",
    "incident.reopened": "incident.detected",
    "incident.resolved": "incident.resolved",
}


def cloudevent_type(body: dict[str, Any]) -> str:
    """``com.pagerduty.<event_type>`` for a webhook body; TransformError if it has no type."""
    event_type = dig(body, "event", "event_type")
    if not isinstance(event_type, str) or not event_type:
        raise TransformError("not a PagerDuty v3 webhook: event.event_type is missing")
    return TYPE_PREFIX + event_type


def cloudevent_source(body: dict[str, Any]) -> str:
    """``https://<subdomain>.pagerduty.com`` from the body's web URLs, else the API's origin."""
    for path in (("html_url",), ("incident", "html_url"), ("self",)):
        origin = url_origin(dig(body, "event", "data", *path))
        if origin:
            return origin
    return "https://api.pagerduty.com"


def _required_text(incident: dict[str, Any], field: str) -> str:
    value = incident.get(field)
    if not isinstance(value, str) or not value:
        raise TransformError(f"event.data.{field} is missing")
    return value


def _environment(event: CloudEvent) -> str:
    override = event.get(ENVIRONMENT_EXTENSION)
    return override if isinstance(override, str) and override else DEFAULT_ENVIRONMENT


def _content(event: CloudEvent, incident: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = {"environment": {"id": _environment(event)}}
    # The service name is what users alias in config `services:`; the id only if it has no name.
    service = dig_text(incident, "service", "summary") or dig_text(incident, "service", "id")
    if service:
        content["service"] = {"id": service}
        service_url = dig_text(incident, "service", "html_url")
        if service_url:
            content["service"]["source"] = service_url
    title = incident.get("title")
    if isinstance(title, str):
        content["description"] = title
    return content


def _custom_data(incident: dict[str, Any], url: str) -> dict[str, Any]:
    values = {
        "url": url,
        "title": incident.get("title"),
        "number": incident.get("number"),
        "incidentKey": incident.get("incident_key"),
        "urgency": incident.get("urgency"),
        "priority": dig(incident, "priority", "summary"),
    }
    return {key: value for key, value in values.items() if value is not None}


def transform(event: CloudEvent) -> list[CDEvent]:
    """The incident CDEvent of a PagerDuty v3 webhook CloudEvent (``com.pagerduty.*``).

    ``incident.triggered`` and ``incident.reopened`` give ``incident.detected``,
    ``incident.resolved`` gives ``incident.resolved``, every other event type nothing. The
    subject id is the incident's web URL; service is the PagerDuty service's name.
    """
    body = json_data(event)
    pd_event = body.get("event")
    if not isinstance(pd_event, dict):
        raise TransformError("not a PagerDuty v3 webhook: the body has no 'event' object")
    event_type = pd_event.get("event_type")
    if not isinstance(event_type, str) or event_type not in _CDEVENT_NAMES:
        return []
    incident = pd_event.get("data")
    if not isinstance(incident, dict):
        raise TransformError(f"{event_type} without an event.data incident object")
    incident_id = _required_text(incident, "id")
    url = _required_text(incident, "html_url")
    occurred_at = utc_as_sent(pd_event.get("occurred_at"), "event.occurred_at")
    # v3 has no resolved_at: a resolution (or reopening) happened when its event occurred. A
    # trigger's created_at is when PagerDuty opened the incident, which occurred_at may lag.
    timestamp = occurred_at
    if event_type == "incident.triggered" and incident.get("created_at") is not None:
        timestamp = utc_as_sent(incident["created_at"], "event.data.created_at")
    return [new_cdevent(
        _CDEVENT_NAMES[event_type],
        # occurred_at tells reopen/resolve cycles apart; redeliveries of one event share it.
        key=(NAME, incident_id, event_type, occurred_at),
        source=event["source"],
        timestamp=timestamp,
        subject_id=url,
        content=_content(event, incident),
        custom_data=_custom_data(incident, url),
    )]


TRANSFORMERS = [Transformer(NAME, transform, "PagerDuty v3 incident webhooks → incident.*")]
