"""The Kubernetes transformer: one deployment per completed rollout, however often repeated."""

from __future__ import annotations

import copy
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from dora_cloudevents.events import CDEvent
from dora_cloudevents.transformers import TransformError
from dora_cloudevents.transformers.kubernetes import transform
from tests.conftest import shared_fixture
from tests.oracle import assert_valid_cdevent
from tests.transformers.support import golden_event, golden_events, single_cdevent

HERE = Path(__file__).parent / "kubernetes"
DEPLOYED, UPGRADED = "dev.cdevents.service.deployed.0.2.0", "dev.cdevents.service.upgraded.0.2.0"
REMOVED, ROLLEDBACK = "dev.cdevents.service.removed.0.2.0", "dev.cdevents.service.rolledback.0.2.0"

only = partial(single_cdevent, transform)


def rollout_events() -> list[dict[str, Any]]:
    return golden_events(HERE, "deployment-rollouts")


def scaling_events() -> list[dict[str, Any]]:
    return golden_events(HERE, "event-scaling")


def completed() -> dict[str, Any]:
    """The update that completes the first rollout (nginx:1.14.2, revision 1)."""
    return golden_event(HERE, "deployment-rollouts", 3)


def stored(events: list[dict[str, Any]]) -> list[CDEvent]:
    """What storage keeps of the outputs: the first CDEvent of each id."""
    kept: dict[str, CDEvent] = {}
    for event in events:
        for cdevent in transform(event):
            kept.setdefault(cdevent["context"]["id"], cdevent)
    return list(kept.values())


def test_one_deployment_per_rollout_across_the_whole_sequence() -> None:
    kept = stored(rollout_events())
    assert [e["context"]["type"] for e in kept] == [DEPLOYED, UPGRADED, REMOVED]
    deployed, upgraded, removed = kept
    assert deployed["context"]["timestamp"] == "2024-05-14T09:00:07Z"
    assert deployed["subject"]["content"]["artifactId"].startswith("pkg:oci/nginx@1.14.2?")
    assert upgraded["context"]["timestamp"] == "2024-05-14T10:00:12Z"
    assert upgraded["customData"] == {"image": "nginx:1.16.1"}
    assert removed["subject"] == {"id": "nginx-deployment", "type": "service",
                                  "content": {"environment": {"id": "default"}}}


def test_updates_repeating_a_finished_rollout_give_the_identical_cdevent() -> None:
    events = rollout_events()
    outputs = [transform(event) for event in events]
    repeats = [out for out in outputs if out and out[0]["context"]["type"] == DEPLOYED]
    # The completing update, the resync, and the end of the scale to 3 replicas.
    assert len(repeats) == 3
    assert repeats[0] == repeats[1] == repeats[2]


def test_scaling_is_not_a_deployment() -> None:
    events = rollout_events()
    first = transform(events[3])
    for index in (5, 6, 7):  # kubectl scale --replicas=3, mid-way and done
        assert transform(events[index]) in ([], first)
    assert stored(events[:8]) == first


def test_new_pod_template_before_the_controller_sees_it_is_nothing() -> None:
    # kubectl set image: generation 3, still revision 1, status of generation 2 (complete).
    event = rollout_events()[8]
    assert event["data"]["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.16.1"
    assert transform(event) == []


def test_seed_capture_of_an_apiserversource_event_is_ignored() -> None:
    path = shared_fixture("seed-examples", "cloudevent-api-server-source.json")
    assert transform(json.loads(path.read_text())) == []


@pytest.mark.parametrize("event_type", ["dev.knative.apiserver.ref.update",
                                        "dev.knative.apiserver.resource.unknown"])
def test_other_types_are_ignored(event_type: str) -> None:
    assert transform({**completed(), "type": event_type}) == []


def test_other_kinds_are_ignored() -> None:
    event = completed()
    event["data"]["kind"] = "StatefulSet"
    assert transform(event) == []


def test_stalled_rollout_is_not_a_deployment() -> None:
    event = completed()
    progressing = event["data"]["status"]["conditions"][1]
    progressing.update(status="False", reason="ProgressDeadlineExceeded")
    assert transform(event) == []


def test_annotations_override_service_environment_and_container() -> None:
    event = completed()
    data = event["data"]
    data["metadata"]["annotations"].update({
        "dora-cloudevents.dev/service": "web", "dora-cloudevents.dev/environment": "production",
        "dora-cloudevents.dev/container": "app"})
    data["spec"]["template"]["spec"]["containers"].append(
        {"name": "app", "image": "ghcr.io/acme/web@sha256:" + "ab" * 32})
    cdevent = only(event)
    assert cdevent["subject"]["id"] == "web"
    assert cdevent["subject"]["content"] == {
        "environment": {"id": "production"},
        "artifactId": "pkg:oci/web@sha256%3A" + "ab" * 32 + "?repository_url=ghcr.io/acme/web"}
    assert cdevent["context"]["id"] == only(completed())["context"]["id"]


def test_missing_named_container_is_an_error() -> None:
    event = completed()
    event["data"]["metadata"]["annotations"]["dora-cloudevents.dev/container"] = "sidecar"
    with pytest.raises(TransformError, match="sidecar"):
        transform(event)


SHA = "0123abcd4567ef890123abcd4567ef890123abcd"


@pytest.mark.parametrize(("where", "expected"), [
    ({"template_annotations": {"dora-cloudevents.dev/revision": "from-template",
                               "org.opencontainers.image.revision": "oci"},
      "annotations": {"dora-cloudevents.dev/revision": "from-deployment"}}, "from-template"),
    ({"annotations": {"dora-cloudevents.dev/revision": "from-deployment"},
      "template_annotations": {"org.opencontainers.image.revision": "oci"}}, "from-deployment"),
    ({"template_annotations": {"org.opencontainers.image.revision": "oci"},
      "template_labels": {"app.kubernetes.io/version": SHA}}, "oci"),
    ({"template_labels": {"app.kubernetes.io/version": SHA[:7]}, "image": f"nginx:{SHA}"},
     SHA[:7]),
    ({"labels": {"app.kubernetes.io/version": "1.4.2"}, "image": f"nginx:{SHA}"}, SHA),
    ({"image": "ghcr.io/acme/web:sha-0a1b2c3"}, "0a1b2c3"),
    ({"image": "ghcr.io/acme/web:20240514"}, None),  # a date, not a commit
    ({"image": "nginx:1.14.2"}, None),
])
def test_revision_lookup_order(where: dict[str, Any], expected: str | None) -> None:
    event = completed()
    data = event["data"]
    data["metadata"]["annotations"].update(where.get("annotations", {}))
    data["metadata"]["labels"].update(where.get("labels", {}))
    template = data["spec"]["template"]["metadata"]
    template.setdefault("annotations", {}).update(where.get("template_annotations", {}))
    template["labels"].update(where.get("template_labels", {}))
    if "image" in where:
        data["spec"]["template"]["spec"]["containers"][0]["image"] = where["image"]
    assert only(event).get("customData", {}).get("revision") == expected


def test_oci_source_annotation_is_the_repository() -> None:
    event = completed()
    event["data"]["spec"]["template"]["metadata"]["annotations"] = {
        "org.opencontainers.image.source": "https://github.com/acme/web"}
    assert only(event)["customData"]["repository"] == "https://github.com/acme/web"


# "true", or the number of the revision the undo creates; a stale number (an older revision) is not.
@pytest.mark.parametrize(("value", "kind"), [("true", ROLLEDBACK), ("2", ROLLEDBACK),
                                             ("1", UPGRADED)])
def test_rollback_annotation(value: str, kind: str) -> None:
    event = copy.deepcopy(rollout_events()[12])  # the completed second rollout, revision 2
    event["data"]["metadata"]["annotations"]["dora-cloudevents.dev/rollback"] = value
    cdevent = only(event)
    assert cdevent["context"]["type"] == kind
    # Same fact, same id: the annotation only changes how the rollout is reported.
    assert cdevent["context"]["id"] == only(rollout_events()[12])["context"]["id"]


def test_replayed_add_after_a_source_restart_is_the_same_deployment() -> None:
    # On (re)start the ApiServerSource lists every object again as "add" events.
    event = completed()
    event.update(type="dev.knative.apiserver.resource.add", id="another-id",
                 time="2024-06-01T00:00:00Z")
    assert transform(event) == transform(completed())


def test_event_mode_gives_one_deployment_per_new_replica_set() -> None:
    kept = stored(scaling_events())
    assert [e["subject"]["content"]["artifactId"] for e in kept] == [
        "pkg:generic/nginx-deployment@66b6c48dd5", "pkg:generic/nginx-deployment@559d658b74"]
    assert [e["context"]["timestamp"] for e in kept] == ["2024-05-14T09:00:00Z",
                                                        "2024-05-14T10:00:00Z"]
    for cdevent in kept:
        assert_valid_cdevent(cdevent)


def test_event_mode_ignores_scale_downs_and_expired_events() -> None:
    events = scaling_events()
    assert transform(events[3]) == []  # Scaled down
    assert transform({**events[0], "type": "dev.knative.apiserver.resource.delete"}) == []


def test_event_mode_reads_events_k8s_io_events() -> None:
    event = copy.deepcopy(scaling_events()[2])
    data = event["data"]
    data["apiVersion"] = "events.k8s.io/v1"
    data["regarding"], data["note"] = data.pop("involvedObject"), data.pop("message")
    data["eventTime"] = "2024-05-14T10:00:00.123456Z"
    cdevent = only(event)
    assert cdevent["context"]["timestamp"] == "2024-05-14T10:00:00.123456Z"
    assert cdevent["context"]["id"] == transform(scaling_events()[2])[0]["context"]["id"]
