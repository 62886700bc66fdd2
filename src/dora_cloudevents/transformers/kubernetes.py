"""Kubernetes Deployments seen by a Knative ApiServerSource (Resource mode) as deployments."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from dora_cloudevents.cdevents.build import new_cdevent
from dora_cloudevents.events import CDEvent, CloudEvent
from dora_cloudevents.transformers.base import (
    Transformer,
    TransformError,
    dig,
    dig_list,
    event_source,
    first_time,
    image_purl,
    json_data,
    required_text,
    split_image,
    strings,
)

NAME = "kubernetes-deployment"
# Knative's ApiServerSource types in Resource mode (data = the whole object); Ref mode
# (dev.knative.apiserver.ref.*) carries only a reference, from which nothing can be told.
TYPE_PREFIX = "dev.knative.apiserver.resource."

# Set by the Deployment controller; it changes only when the pod template changes (not on
# scaling), so (uid, revision) names one rollout however many status updates repeat it.
K8S_REVISION = "deployment.kubernetes.io/revision"
SERVICE = "dora-cloudevents.dev/service"
ENVIRONMENT = "dora-cloudevents.dev/environment"
CONTAINER = "dora-cloudevents.dev/container"
REVISION = "dora-cloudevents.dev/revision"
# Hook for `kubectl rollout undo` wrappers: annotate the Deployment with "true" (remove it
# before the next normal rollout) or with the revision number the undo creates, which
# needs no clean-up; the rollout that completes under it is reported as service.rolledback.
ROLLBACK = "dora-cloudevents.dev/rollback"
OCI_REVISION = "org.opencontainers.image.revision"
OCI_SOURCE = "org.opencontainers.image.source"
APP_VERSION = "app.kubernetes.io/version"

# A git SHA (7-40 hex digits), optionally as docker/metadata-action's "sha-<sha>" tag. At
# least one letter is required so that dates and build numbers (20230805) are not taken.
_SHA = re.compile(r"(?:sha-)?((?=[0-9]*[a-f])[0-9a-f]{7,40})\Z")
# "Scaled up replica set web-5d4b9c7f8 to 3" (Kubernetes < 1.26 ends there; later adds " from 1").
_SCALED_UP = re.compile(r"Scaled up replica set (\S+) to \d+")


def transform(event: CloudEvent) -> list[CDEvent]:
    """CDEvents for one ApiServerSource event: Deployments, or ScalingReplicaSet Events."""
    event_type = str(event.get("type", ""))
    action = event_type[len(TYPE_PREFIX):]
    if not event_type.startswith(TYPE_PREFIX) or action not in ("add", "update", "delete"):
        return []
    obj = json_data(event)
    if obj.get("kind") == "Deployment" and obj.get("apiVersion") == "apps/v1":
        return _deployment(event, obj, action)
    # An Event object being deleted is its expiry (TTL), not news about the Deployment.
    if obj.get("kind") == "Event" and action != "delete":
        return _scaling_event(event, obj)
    return []


def _deployment(event: CloudEvent, obj: dict[str, Any], action: str) -> list[CDEvent]:
    uid, name, namespace = (required_text(obj, "metadata", key)
                            for key in ("uid", "name", "namespace"))
    annotations = strings(dig(obj, "metadata", "annotations"))
    service = annotations.get(SERVICE) or name
    environment = {"id": annotations.get(ENVIRONMENT) or namespace}
    if action == "delete":
        when = first_time(event, dig(obj, "metadata", "deletionTimestamp"))
        return [new_cdevent("service.removed", key=(NAME, uid, "removed"),
                            source=event_source(event), timestamp=when, subject_id=service,
                            content={"environment": environment})]
    revision = annotations.get(K8S_REVISION)
    # Without the revision annotation the controller has not handled the object yet.
    if not revision or not _rollout_complete(obj):
        return []
    image = _image(obj, annotations.get(CONTAINER))
    kind = "service.deployed" if revision == "1" else "service.upgraded"
    if annotations.get(ROLLBACK) in ("true", revision):
        kind = "service.rolledback"
    custom = {"revision": _commit(obj, annotations, image),
              "repository": _template_or_deployment(obj, annotations, OCI_SOURCE),
              "image": image}
    return [new_cdevent(kind, key=(NAME, uid, revision), source=event_source(event),
                        timestamp=_completion_time(event, obj), subject_id=service,
                        content={"environment": environment, "artifactId": image_purl(image)},
                        custom_data={k: v for k, v in custom.items() if v})]


def _rollout_complete(obj: dict[str, Any]) -> bool:
    """The controller's own "complete" test (as `kubectl rollout status` waits for it)."""
    status = _mapping(obj.get("status"))
    wanted = _int(dig(obj, "spec", "replicas"), default=1)
    if _int(status.get("observedGeneration")) < _int(dig(obj, "metadata", "generation")):
        return False
    # status.replicas counts old ReplicaSets' pods too: equal means none are left.
    if not _int(status.get("updatedReplicas")) == wanted == _int(status.get("replicas")):
        return False
    if _int(status.get("availableReplicas")) < wanted:
        return False
    progressing = _condition(status, "Progressing")
    return not (progressing.get("status") == "False"
                or progressing.get("reason") == "ProgressDeadlineExceeded")


def _completion_time(event: CloudEvent, obj: dict[str, Any]) -> str:
    status = _mapping(obj.get("status"))
    progressing, available = _condition(status, "Progressing"), _condition(status, "Available")
    # The controller stamps Progressing when it switches to NewReplicaSetAvailable, i.e. at
    # completion; scaling later leaves it alone, so every later update repeats the same time.
    done = progressing.get("lastUpdateTime") if (
        progressing.get("reason") == "NewReplicaSetAvailable") else None
    since = available.get("lastTransitionTime") if available.get("status") == "True" else None
    return first_time(event, done, since)


def _image(obj: dict[str, Any], wanted: str | None) -> str:
    containers = [c for c in dig_list(obj, "spec", "template", "spec", "containers")
                  if isinstance(c, dict)]
    if wanted:
        containers = [c for c in containers if c.get("name") == wanted]
        if not containers:
            raise TransformError(f"annotation {CONTAINER} names container {wanted!r}, "
                                 "which the Deployment's pod template does not have")
    image = containers[0].get("image") if containers else None
    if not isinstance(image, str) or not image:
        raise TransformError("the Deployment's container has no image")
    return image


def _commit(obj: dict[str, Any], annotations: dict[str, str], image: str) -> str | None:
    """The commit the rollout shipped: explicit annotations first, then SHA-like values."""
    explicit = (_template_or_deployment(obj, annotations, REVISION)
                or _template_or_deployment(obj, annotations, OCI_REVISION))
    if explicit:
        return explicit
    template = _mapping(dig(obj, "spec", "template", "metadata"))
    candidates = (strings(template.get("labels")).get(APP_VERSION),
                  strings(template.get("annotations")).get(APP_VERSION),
                  strings(dig(obj, "metadata", "labels")).get(APP_VERSION),
                  annotations.get(APP_VERSION), split_image(image)[2])
    for candidate in candidates:
        match = _SHA.match(candidate or "")
        if match:
            return match.group(1)
    return None


def _template_or_deployment(obj: dict[str, Any], annotations: dict[str, str],
                            key: str) -> str | None:
    # The pod template's annotation changes with each rollout; the Deployment's own can go
    # stale (e.g. after `kubectl set image`), so it only comes second.
    template = strings(dig(obj, "spec", "template", "metadata", "annotations"))
    return template.get(key) or annotations.get(key)


def _scaling_event(event: CloudEvent, obj: dict[str, Any]) -> list[CDEvent]:
    """The original tutorial's set-up: one deployment per ReplicaSet a Deployment scales up."""
    # core/v1 Events name these involvedObject/message; events.k8s.io/v1 regarding/note.
    involved = _mapping(obj.get("involvedObject") or obj.get("regarding"))
    if involved.get("kind") != "Deployment" or obj.get("reason") != "ScalingReplicaSet":
        return []
    match = _SCALED_UP.match(str(obj.get("message") or obj.get("note") or ""))
    if not match:
        return []
    replica_set = match.group(1)
    uid, name, namespace = (required_text(involved, key) for key in ("uid", "name", "namespace"))
    # An Event names no image: the ReplicaSet's pod-template-hash suffix is the only version
    # it tells, so the artifact is a generic purl of the Deployment at that hash.
    template_hash = (replica_set[len(name) + 1:] if replica_set.startswith(f"{name}-")
                     else replica_set.rsplit("-", 1)[-1])
    # Later scale-ups of the same ReplicaSet (and count updates of the Event) share the key.
    # Known limits of this mode: the time is the rollout's start, not its completion, and
    # `kubectl rollout undo` scales an old ReplicaSet up again, which is not seen as new.
    when = first_time(event, obj.get("eventTime"), obj.get("firstTimestamp"),
                      obj.get("lastTimestamp"), dig(obj, "metadata", "creationTimestamp"))
    artifact = f"pkg:generic/{quote(name, safe='')}@{quote(template_hash, safe='')}"
    return [new_cdevent("service.deployed", key=(NAME, uid, "replicaset", replica_set),
                        source=event_source(event), timestamp=when, subject_id=name,
                        content={"environment": {"id": namespace}, "artifactId": artifact})]


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in dig_list(status, "conditions"):
        if isinstance(condition, dict) and condition.get("type") == kind:
            return condition
    return {}


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


TRANSFORMERS = [
    Transformer(
        NAME,
        transform,
        "Knative ApiServerSource (Resource mode) Deployments: one service.deployed/upgraded per "
        "completed rollout, service.removed on delete; v1 ScalingReplicaSet Events as deployments",
    )
]
