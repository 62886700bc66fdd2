"""Alertmanager transformer: episodes per fingerprint, repeats collapsing, opt-out, errors."""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from dora_cloudevents.transformers import builtin_transformers
from dora_cloudevents.transformers.alertmanager import CLOUDEVENT_TYPE, fingerprint, transform
from dora_cloudevents.transformers.base import TransformError
from tests.transformers.support import checked, golden_events

FIXTURES = Path(__file__).parent / "alertmanager"
SOURCE = "http://alertmanager.monitoring.svc:9093"
ZERO = "0001-01-01T00:00:00Z"

run = partial(checked, transform)


def notifications() -> list[dict[str, Any]]:
    """The four notifications of the golden case: firing, repeat, resolved, firing again."""
    return golden_events(FIXTURES, "episodes")


def cloudevent(*alerts: dict[str, Any], source: str = SOURCE) -> dict[str, Any]:
    body = {"receiver": "dora", "status": "firing", "alerts": list(alerts), "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": source, "version": "4",
            "groupKey": "{}:{}", "truncatedAlerts": 0}
    return {"specversion": "1.0", "id": "n1", "source": source, "type": CLOUDEVENT_TYPE,
            "data": body}


def alert(status: str = "firing", starts_at: str = "2024-05-14T09:02:30.481Z",
          ends_at: str = ZERO, **labels: str) -> dict[str, Any]:
    labels = {"alertname": "CheckoutHighErrorRate", **labels}
    return {"status": status, "labels": labels, "annotations": {}, "startsAt": starts_at,
            "endsAt": ends_at, "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
            "fingerprint": fingerprint(labels)}


def ids(cdevents: list[dict[str, Any]]) -> list[str]:
    return [cdevent["context"]["id"] for cdevent in cdevents]


def test_registered_under_its_name() -> None:
    assert builtin_transformers()["alertmanager"].transform is transform


def test_one_incident_per_alert() -> None:
    first = run(notifications()[0])
    assert [c["context"]["type"] for c in first] == ["dev.cdevents.incident.detected.0.2.0"] * 2
    assert [c["subject"]["id"] for c in first] == [
        "alertmanager:af89e8f3a6742ac7:2024-05-14T09:02:30.481Z",
        "alertmanager:624873c0b7167754:2024-05-14T09:04:15.102Z",
    ]
    assert [c["context"]["timestamp"] for c in first] == [
        "2024-05-14T09:02:30.481Z", "2024-05-14T09:04:15.102Z"]


def test_repeated_notifications_of_an_episode_collapse() -> None:
    first, repeat = notifications()[:2]
    # The repeat is another notification (own id, time, re-templated annotation) of the same alerts.
    assert repeat["id"] != first["id"] and repeat["data"] != first["data"]
    assert ids(run(repeat)) == ids(run(first))


def test_replicas_of_an_ha_pair_collapse() -> None:
    event = cloudevent(alert(service="checkout"))
    other = cloudevent(alert(service="checkout"), source="http://alertmanager-1.monitoring:9093")
    assert ids(run(other)) == ids(run(event))


def test_resolved_closes_the_same_subject_at_ends_at() -> None:
    detected, resolved = run(notifications()[0]), run(notifications()[2])
    assert [c["context"]["type"] for c in resolved] == ["dev.cdevents.incident.resolved.0.2.0"] * 2
    assert [c["subject"]["id"] for c in resolved] == [c["subject"]["id"] for c in detected]
    assert [c["context"]["timestamp"] for c in resolved] == [
        "2024-05-14T13:36:30.481Z", "2024-05-14T13:38:45.102Z"]
    assert not set(ids(resolved)) & set(ids(detected))


def test_firing_again_later_is_a_new_incident() -> None:
    first, again = run(notifications()[0])[0], run(notifications()[3])[0]
    assert again["customData"]["labels"] == first["customData"]["labels"]  # same fingerprint
    assert again["subject"]["id"] == "alertmanager:af89e8f3a6742ac7:2024-05-15T02:11:30.481Z"
    assert again["context"]["id"] != first["context"]["id"]


def test_start_times_are_normalised_to_utc_keeping_every_digit() -> None:
    utc = run(cloudevent(alert(starts_at="2018-08-03T07:52:26.739266876Z")))[0]
    local = run(cloudevent(alert(starts_at="2018-08-03T09:52:26.739266876+02:00")))[0]
    assert local["subject"]["id"] == utc["subject"]["id"]
    assert local["subject"]["id"].endswith(":2018-08-03T07:52:26.739266876Z")
    assert local["context"] == utc["context"]


@pytest.mark.parametrize("value", ["false", "False", "FALSE"])
def test_opted_out_alerts_are_skipped(value: str) -> None:
    event = cloudevent(alert(alertname="Watchdog", dora_incident=value), alert(service="checkout"))
    assert [c["customData"]["title"] for c in run(event)] == ["CheckoutHighErrorRate"]


def test_only_false_opts_out() -> None:
    assert len(run(cloudevent(alert(dora_incident="true")))) == 1


def test_opted_out_resolutions_are_skipped_too() -> None:
    assert run(cloudevent(alert("resolved", ends_at="2024-05-14T10:00:00Z",
                                dora_incident="false"))) == []


@pytest.mark.parametrize(("labels", "service", "environment"), [
    ({"service": "a", "app": "b", "app_kubernetes_io_name": "c", "job": "d"}, "a", "production"),
    ({"app": "b", "app_kubernetes_io_name": "c", "job": "d", "namespace": "shop"}, "b", "shop"),
    ({"app_kubernetes_io_name": "c", "job": "d", "env": "qa", "namespace": "x"}, "c", "qa"),
    ({"job": "d", "environment": "prod", "env": "qa"}, "d", "prod"),
    ({"service": "", "job": "d"}, "d", "production"),  # empty values do not count
])
def test_service_and_environment_labels(labels: dict[str, str], service: str,
                                        environment: str) -> None:
    content = run(cloudevent(alert(**labels)))[0]["subject"]["content"]
    assert content["service"] == {"id": service}
    assert content["environment"] == {"id": environment}


def test_without_a_service_label_there_is_no_service() -> None:
    content = run(cloudevent(alert()))[0]["subject"]["content"]
    assert "service" not in content and content["environment"] == {"id": "production"}


@pytest.mark.parametrize(("annotations", "description"), [
    ({"summary": "S", "description": "D"}, "S"),
    ({"description": "D"}, "D"),
    ({"summary": "", "runbook_url": "https://r"}, "CheckoutHighErrorRate"),
])
def test_description(annotations: dict[str, str], description: str) -> None:
    firing = alert()
    firing["annotations"] = annotations
    assert run(cloudevent(firing))[0]["subject"]["content"]["description"] == description


def test_custom_data() -> None:
    firing = alert(service="checkout", severity="critical")
    assert run(cloudevent(firing))[0]["customData"] == {
        "url": "http://prometheus:9090/graph?g0.expr=up",
        "severity": "critical",
        "title": "CheckoutHighErrorRate",
        "labels": {"alertname": "CheckoutHighErrorRate", "service": "checkout",
                   "severity": "critical"},
    }
    firing["generatorURL"] = ""  # alerts pushed by other clients than Prometheus
    assert "url" not in run(cloudevent(firing))[0]["customData"]


def test_fingerprint_is_prometheus_label_set_fingerprint() -> None:
    # Test vectors of prometheus/common model (signature_test.go: TestMetricToFingerprint).
    assert fingerprint({}) == f"{14695981039346656037:016x}"
    assert fingerprint({"name": "garland, briggs", "fear": "love is not enough"}) == (
        f"{5799056148416392346:016x}")


def test_alerts_without_fingerprint_get_the_one_alertmanager_would_give() -> None:
    with_fingerprint = alert(service="checkout")
    without = copy.deepcopy(with_fingerprint)
    del without["fingerprint"]
    assert ids(run(cloudevent(without))) == ids(run(cloudevent(with_fingerprint)))


def test_an_empty_notification_gives_nothing() -> None:
    assert run(cloudevent()) == []


@pytest.mark.parametrize(("change", "message"), [
    (lambda a: a.update(status="pending"), r"alerts\[0\].status 'pending'"),
    (lambda a: a.update(labels={"alertname": 1}), r"alerts\[0\].labels must be"),
    (lambda a: a.pop("startsAt"), r"alerts\[0\].startsAt is missing"),
    (lambda a: a.update(startsAt="now"), "not an RFC 3339 time"),
    (lambda a: a.update(status="resolved"), r"alerts\[0\].endsAt is not set"),
])
def test_malformed_alerts_raise(change: Any, message: str) -> None:
    broken = alert()
    change(broken)
    with pytest.raises(TransformError, match=message):
        transform(cloudevent(broken))


def test_a_body_without_alerts_raises() -> None:
    event = cloudevent()
    del event["data"]["alerts"]
    with pytest.raises(TransformError, match="no 'alerts' list"):
        transform(event)
