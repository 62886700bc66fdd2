"""The Argo CD transformer, and the notifications template that makes Argo CD send its events."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dora_cloudevents.transformers import TransformError
from dora_cloudevents.transformers.argocd import (
    DEGRADED,
    DEPLOYED,
    NOTIFICATIONS_TEMPLATE,
    transform,
)
from dora_cloudevents.transformers.base import dig
from tests.oracle import assert_valid_cdevent

PROJECT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "argocd" / "app-deployed.input.json"

# What Argo CD's notifications controller gives a template: the Application and the context.
SAMPLE_VARIABLES: dict[str, Any] = {
    "context": {"argocdUrl": "https://argocd.example.com"},
    "app": {
        "metadata": {"name": "guestbook", "namespace": "argocd",
                     "uid": "6b1f8a3e-2c4d-4e5f-9a7b-8c9d0e1f2a3b"},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://github.com/argoproj/argocd-example-apps.git",
                       "path": "guestbook", "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "guestbook"},
        },
        "status": {
            "sync": {"status": "Synced", "revision": "53e28ff20cc530b9ada2173fbbd64d48338583ba"},
            "health": {"status": "Healthy", "lastTransitionTime": "2024-05-14T09:21:19Z"},
            "summary": {"images": ["gcr.io/heptio-images/ks-guestbook-demo:0.2"]},
            "operationState": {
                "phase": "Succeeded", "message": "successfully synced (all tasks run)",
                "startedAt": "2024-05-14T09:21:02Z", "finishedAt": "2024-05-14T09:21:07Z",
                "syncResult": {"revision": "53e28ff20cc530b9ada2173fbbd64d48338583ba"},
            },
        },
    },
}

# The three placeholder forms the template uses: {{ .a.b }}, {{ toJson .a.b }} and
# {{ .a.b | default "x" }}. A missing field renders as Go's text/template does: "<no value>".
_PLACEHOLDER = re.compile(
    r'\{\{\s*(toJson\s+)?\.([\w.]+)(?:\s*\|\s*default\s+"([^"]*)")?\s*\}\}'
)


def render(body: str, variables: dict[str, Any]) -> str:
    """Substitute the template's placeholders with values from ``variables``."""

    def value(match: re.Match[str]) -> str:
        found = dig(variables, *match.group(2).split("."))
        if match.group(1):
            return json.dumps(found)
        if found in (None, "") and match.group(3) is not None:
            return match.group(3)
        return "<no value>" if found is None else str(found)

    rendered = _PLACEHOLDER.sub(value, body)
    assert "{{" not in rendered, f"a placeholder the test cannot render: {rendered}"
    return rendered


def deployed_body() -> str:
    template = yaml.safe_load(yaml.safe_load(NOTIFICATIONS_TEMPLATE)["template.dora-app-deployed"])
    body: str = template["webhook"]["dora-cloudevents"]["body"]
    return body


def rendered_event(variables: dict[str, Any] = SAMPLE_VARIABLES) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(render(deployed_body(), variables))
    return event


def test_template_renders_a_valid_structured_cloudevent() -> None:
    event = rendered_event()
    assert event["specversion"] == "1.0" and event["type"] == DEPLOYED
    assert event["source"] == "https://argocd.example.com"
    assert event["id"] == ("6b1f8a3e-2c4d-4e5f-9a7b-8c9d0e1f2a3b-"
                           "53e28ff20cc530b9ada2173fbbd64d48338583ba-2024-05-14T09:21:07Z")
    assert event["data"]["images"] == ["gcr.io/heptio-images/ks-guestbook-demo:0.2"]


def test_golden_input_is_what_the_template_renders() -> None:
    assert json.loads(GOLDEN.read_text())["event"] == rendered_event()


def test_template_still_renders_json_for_a_sparse_application() -> None:
    # No context URL, a multi-source app (no spec.source, no sync.revision), no images.
    variables = copy.deepcopy(SAMPLE_VARIABLES)
    variables["context"] = {}
    del variables["app"]["spec"]["source"], variables["app"]["status"]["summary"]
    del variables["app"]["status"]["sync"]["revision"]
    event = rendered_event(variables)
    assert event["source"] == "argocd"
    assert event["data"]["repoURL"] == "<no value>" and event["data"]["images"] is None
    (deployed,) = transform(event)
    assert_valid_cdevent(deployed)
    assert deployed["subject"]["content"]["artifactId"] == "pkg:generic/guestbook"
    assert deployed["customData"] == {}


def test_deployed_event_becomes_service_deployed() -> None:
    (deployed,) = transform(rendered_event())
    assert_valid_cdevent(deployed)
    assert deployed["context"]["type"] == "dev.cdevents.service.deployed.0.2.0"
    assert deployed["context"]["timestamp"] == "2024-05-14T09:21:07Z"
    assert deployed["subject"]["id"] == "guestbook"
    assert deployed["subject"]["content"] == {
        "environment": {"id": "guestbook"},
        "artifactId": "pkg:oci/ks-guestbook-demo@0.2"
                      "?repository_url=gcr.io/heptio-images/ks-guestbook-demo",
    }
    assert deployed["customData"] == {
        "revision": "53e28ff20cc530b9ada2173fbbd64d48338583ba",
        "repository": "https://github.com/argoproj/argocd-example-apps",
        "image": "gcr.io/heptio-images/ks-guestbook-demo:0.2",
    }


def test_same_revision_deployed_again_later_is_a_new_deployment() -> None:
    first = rendered_event()
    again = copy.deepcopy(SAMPLE_VARIABLES)
    again["app"]["status"]["operationState"]["finishedAt"] = "2024-05-15T10:00:00Z"
    second = rendered_event(again)
    assert first["id"] != second["id"]
    assert transform(first)[0]["context"]["id"] != transform(second)[0]["context"]["id"]
    assert transform(first) == transform(copy.deepcopy(first))


def test_scp_like_repository_becomes_a_web_url() -> None:
    variables = copy.deepcopy(SAMPLE_VARIABLES)
    variables["app"]["spec"]["source"]["repoURL"] = "git@github.com:acme/deploy-config.git"
    (deployed,) = transform(rendered_event(variables))
    assert deployed["customData"]["repository"] == "https://github.com/acme/deploy-config"


def test_degraded_and_other_events_yield_nothing() -> None:
    degraded = {**rendered_event(), "type": DEGRADED}
    assert transform(degraded) == []
    assert transform({**rendered_event(), "type": "io.argoproj.argocd.app.created"}) == []


def test_missing_destination_is_an_error() -> None:
    event = rendered_event()
    event["data"]["destination"] = {"namespace": "<no value>", "server": "<no value>",
                                    "name": "<no value>"}
    with pytest.raises(TransformError, match="destination"):
        transform(event)


def test_deploy_manifest_carries_the_same_entries() -> None:
    manifest = yaml.safe_load((PROJECT / "deploy" / "argocd" / "notifications-cm.yaml").read_text())
    assert manifest["kind"] == "ConfigMap"
    assert manifest["metadata"]["name"] == "argocd-notifications-cm"
    assert manifest["data"] == yaml.safe_load(NOTIFICATIONS_TEMPLATE)


def test_trigger_fires_once_per_revision_and_sends_the_template() -> None:
    (trigger,) = yaml.safe_load(yaml.safe_load(NOTIFICATIONS_TEMPLATE)["trigger.dora-on-deployed"])
    assert trigger["send"] == ["dora-app-deployed"]
    assert trigger["oncePer"] == "app.status.operationState?.syncResult?.revision"
    assert "app.status.health.status == 'Healthy'" in trigger["when"]
