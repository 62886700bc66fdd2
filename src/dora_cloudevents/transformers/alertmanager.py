"""Prometheus Alertmanager webhooks: one CDEvents incident per alert and firing episode."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dora_cloudevents.cdevents.build import new_cdevent
from dora_cloudevents.events import CDEvent, CloudEvent
from dora_cloudevents.transformers.base import (
    Transformer,
    TransformError,
    json_data,
    utc_as_sent,
)

NAME = "alertmanager"
# What the native endpoint gives a notification (source: externalURL, id: a hash of the body).
CLOUDEVENT_TYPE = "io.prometheus.alertmanager.notification"
# Every alert is an incident unless labelled dora_incident="false" (e.g. Watchdog, info alerts).
OPT_OUT_LABEL = "dora_incident"
# First label present wins; app_kubernetes_io_name is app.kubernetes.io/name after relabelling.
SERVICE_LABELS = ("service", "app", "app_kubernetes_io_name", "job")
ENVIRONMENT_LABELS = ("environment", "env", "namespace")
DEFAULT_ENVIRONMENT = "production"
_STATUSES = {"firing": "incident.detected", "resolved": "incident.resolved"}
# prometheus/common model.LabelSet.Fingerprint: 64-bit FNV-1a over sorted name/value pairs.
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = b"\xff"
_MASK = 2**64 - 1


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set, for payloads from versions that omit it."""
    digest = _FNV_OFFSET
    for name in sorted(labels):
        for byte in name.encode() + _SEPARATOR + labels[name].encode() + _SEPARATOR:
            digest = ((digest ^ byte) * _FNV_PRIME) & _MASK
    return f"{digest:016x}"


def _utc(value: Any, what: str) -> str:
    """``value`` in UTC with every fraction digit: Go's RFC3339Nano, as Alertmanager writes."""
    # UTC, so an episode keeps its subject id whatever zone the sender wrote.
    text = utc_as_sent(value, what)
    # Go's zero time (0001-01-01T00:00:00Z) is how Alertmanager says "not set".
    if text.startswith("0001-"):
        raise TransformError(f"{what} is not set")
    return text


def _labels(alert: dict[str, Any], where: str) -> dict[str, str]:
    labels = alert.get("labels")
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise TransformError(f"{where}.labels must be an object of strings")
    return labels


def _first(labels: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    return next((labels[name] for name in names if labels.get(name)), None)


def _content(labels: Mapping[str, str], annotations: Mapping[str, Any]) -> dict[str, Any]:
    environment = _first(labels, ENVIRONMENT_LABELS) or DEFAULT_ENVIRONMENT
    content: dict[str, Any] = {"environment": {"id": environment}}
    service = _first(labels, SERVICE_LABELS)
    if service:
        content["service"] = {"id": service}
    description = next((annotations[name] for name in ("summary", "description")
                        if isinstance(annotations.get(name), str) and annotations[name]),
                       labels.get("alertname"))
    if description:
        content["description"] = description
    return content


def _custom_data(alert: dict[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    values = {
        "url": alert.get("generatorURL") or None,
        "severity": labels.get("severity"),
        "title": labels.get("alertname"),
        "labels": dict(labels),
    }
    return {key: value for key, value in values.items() if value is not None}


def _incident(alert: Any, where: str, source: str) -> CDEvent | None:
    if not isinstance(alert, dict):
        raise TransformError(f"{where} is not an object")
    labels = _labels(alert, where)
    if labels.get(OPT_OUT_LABEL, "").lower() == "false":
        return None
    status = alert.get("status")
    if not isinstance(status, str) or status not in _STATUSES:
        raise TransformError(f"{where}.status {status!r} is neither 'firing' nor 'resolved'")
    starts_at = _utc(alert.get("startsAt"), f"{where}.startsAt")
    given = alert.get("fingerprint")
    alert_fingerprint = given if isinstance(given, str) and given else fingerprint(labels)
    subject_id = f"alertmanager:{alert_fingerprint}:{starts_at}"
    ends_at = _utc(alert.get("endsAt"), f"{where}.endsAt") if status == "resolved" else None
    annotations = alert.get("annotations")
    return new_cdevent(
        _STATUSES[status],
        # Not the notification: each repeat of an episode's notification has other ids and times.
        key=(NAME, subject_id, status),
        source=source,
        timestamp=ends_at or starts_at,
        subject_id=subject_id,
        content=_content(labels, annotations if isinstance(annotations, dict) else {}),
        custom_data=_custom_data(alert, labels),
    )


def transform(event: CloudEvent) -> list[CDEvent]:
    """One incident CDEvent per alert of an Alertmanager notification (webhook payload version 4).

    The subject id ``alertmanager:<fingerprint>:<startsAt>`` names a firing episode: the
    notifications Alertmanager repeats every ``repeat_interval`` keep fingerprint and
    ``startsAt``, so they collapse, while the alert firing again after it resolved starts a new
    incident. Firing gives ``incident.detected`` at ``startsAt``, resolved ``incident.resolved``
    at ``endsAt``; alerts labelled ``dora_incident="false"`` give nothing.
    """
    body = json_data(event)
    alerts = body.get("alerts")
    if not isinstance(alerts, list):
        raise TransformError("not an Alertmanager notification: the body has no 'alerts' list")
    incidents = (_incident(alert, f"alerts[{index}]", event["source"])
                 for index, alert in enumerate(alerts))
    return [incident for incident in incidents if incident is not None]


TRANSFORMERS = [Transformer(NAME, transform, "Prometheus Alertmanager webhooks → incident.*")]
