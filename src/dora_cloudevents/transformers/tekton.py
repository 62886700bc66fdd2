"""Tekton's CloudEvents as pipeline and task run CDEvents, and deploy pipelines as deploys."""

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
    dig_text,
    event_source,
    first_time,
    image_purl,
    json_data,
    required_text,
    strings,
)

NAME = "tekton"
# Tekton's types (pkg/reconciler/events/cloudevent): "started" is sent when the reconciler
# first picks the run up, "running" once its pods exist, "unknown" for other Unknown states.
_TYPE = re.compile(
    r"dev\.tekton\.event\.(pipelinerun|taskrun)\.(started|running|successful|failed|unknown)\.v1"
)
# Looked up in this order of names (not of the run's params); the first non-empty wins.
REVISION_PARAMS = ("revision", "gitrevision", "git-revision", "commit", "git-commit", "sha")
REPOSITORY_PARAMS = ("url", "git-url", "repo-url")
# Deploy pipelines: a PipelineRun labelled or annotated DEPLOY: "true" (Tekton copies the
# Pipeline's labels and annotations to its runs), or one with a non-empty DEPLOY_SERVICE param
# (so one Pipeline can deploy only when its runs name a service).
DEPLOY = "dora-cloudevents.dev/deploy"
DEPLOY_SERVICE = "deploy-service"
DEPLOY_ENVIRONMENT = "deploy-environment"
SERVICE = "dora-cloudevents.dev/service"
ENVIRONMENT = "dora-cloudevents.dev/environment"
URL = "dora-cloudevents.dev/url"
# Condition reasons of runs that ended without succeeding: stopped by a user, or ran and
# failed (timeouts included). Any other reason (validation, missing Pipeline...) is an error.
_CANCEL_REASONS = frozenset({"Cancelled", "CancelledRunFinally", "StoppedRunFinally",
                             "PipelineRunCancelled", "TaskRunCancelled"})
_FAILURE_REASONS = frozenset({"Failed", "PipelineRunTimeout", "TaskRunTimeout"})


def transform(event: CloudEvent) -> list[CDEvent]:
    """CDEvents for one Tekton CloudEvent (ids keyed on the run's uid: repeats collapse)."""
    match = _TYPE.fullmatch(str(event.get("type", "")))
    if not match:
        return []
    kind, phase = match.groups()
    field = "pipelineRun" if kind == "pipelinerun" else "taskRun"
    run = json_data(event).get(field)
    if not isinstance(run, dict):
        raise TransformError(f"{event['type']} data has no {field!r} object")
    if kind == "pipelinerun":
        return _pipeline_run(event, run, phase)
    return _task_run(event, run, phase)


def _pipeline_run(event: CloudEvent, run: dict[str, Any], phase: str) -> list[CDEvent]:
    meta = _Meta(run, "pipelineruns")
    pipeline = (dig_text(run, "spec", "pipelineRef", "name")
                or meta.labels.get("tekton.dev/pipeline") or meta.name)
    params = _params(run, "pipelineSpec")
    custom = _custom_data(params)
    content: dict[str, Any] = {"pipelineName": pipeline, "url": meta.url}
    # Tekton's own CDEvents mapping: picked up ("started") is queued, pods running is started.
    if phase == "started":
        when = first_time(event, dig(run, "metadata", "creationTimestamp"),
                          dig(run, "status", "startTime"))
        return [meta.cdevent("pipelinerun.queued", event, when, content, custom)]
    if phase == "running":
        when = first_time(event, dig(run, "status", "startTime"))
        return [meta.cdevent("pipelinerun.started", event, when, content, custom)]
    if phase == "unknown":
        return []
    content.update(_outcome(run, phase))
    when = _finish_time(event, run)
    events = [meta.cdevent("pipelinerun.finished", event, when, content, custom)]
    deploys = (meta.labels.get(DEPLOY) == "true" or meta.annotations.get(DEPLOY) == "true"
               or bool(params.get(DEPLOY_SERVICE)))
    if deploys and content["outcome"] == "success":
        events.append(_deployment(event, meta, params, when))
    return events


def _deployment(event: CloudEvent, meta: _Meta, params: dict[str, str], when: str) -> CDEvent:
    service = params.get(DEPLOY_SERVICE) or meta.annotations.get(SERVICE)
    if not service:
        raise TransformError(f"deploy pipeline run {meta.namespace}/{meta.name} names no service:"
                             f" give it a {DEPLOY_SERVICE!r} param or a {SERVICE} annotation")
    environment = (params.get(DEPLOY_ENVIRONMENT) or meta.annotations.get(ENVIRONMENT)
                   or meta.namespace)
    revision = _first_param(params, REVISION_PARAMS)
    image = params.get("image")
    if image:
        artifact = image_purl(image)
    else:
        artifact = f"pkg:generic/{quote(service, safe='')}"
        if revision:
            artifact += f"@{quote(revision, safe='')}"
    custom = _custom_data(params)
    if image:
        custom["image"] = image
    return new_cdevent("service.deployed", key=(NAME, meta.uid, "deployed"),
                       source=event_source(event), timestamp=when, subject_id=service,
                       content={"environment": {"id": environment}, "artifactId": artifact},
                       custom_data=custom)


def _task_run(event: CloudEvent, run: dict[str, Any], phase: str) -> list[CDEvent]:
    meta = _Meta(run, "taskruns")
    task = (dig_text(run, "spec", "taskRef", "name") or meta.labels.get("tekton.dev/task")
            or meta.labels.get("tekton.dev/pipelineTask") or meta.name)
    content: dict[str, Any] = {"taskName": task, "url": meta.url}
    pipeline_run = meta.labels.get("tekton.dev/pipelineRun")
    if pipeline_run:
        content["pipelineRun"] = {"id": f"{meta.namespace}/{pipeline_run}"}
    custom = _custom_data(_params(run, "taskSpec"))
    # Both "started" and "running" mean started; they share one key, so one is stored.
    if phase in ("started", "running"):
        when = first_time(event, dig(run, "status", "startTime"))
        return [meta.cdevent("taskrun.started", event, when, content, custom)]
    if phase == "unknown":
        return []
    content.update(_outcome(run, phase))
    return [meta.cdevent("taskrun.finished", event, _finish_time(event, run), content, custom)]


class _Meta:
    """What every CDEvent about one run needs from its metadata."""

    def __init__(self, run: dict[str, Any], resource: str) -> None:
        self.uid, self.name, self.namespace = (
            required_text(run, "metadata", key, owner="the run")
            for key in ("uid", "name", "namespace"))
        self.labels = strings(dig(run, "metadata", "labels"))
        self.annotations = strings(dig(run, "metadata", "annotations"))
        # CDEvents 0.4 requires a url on pipelinerun.started; no dashboard address is known,
        # so without the annotation it is the run's API path (relative to the API server).
        self.url = (self.annotations.get(URL)
                    or f"/apis/tekton.dev/v1/namespaces/{self.namespace}/{resource}/{self.name}")

    def cdevent(self, name: str, event: CloudEvent, when: str, content: dict[str, Any],
                custom: dict[str, str]) -> CDEvent:
        predicate = name.split(".", 1)[1]
        return new_cdevent(name, key=(NAME, self.uid, predicate), source=event_source(event),
                           timestamp=when, subject_id=f"{self.namespace}/{self.name}",
                           content=content, custom_data=custom or None)


def _outcome(run: dict[str, Any], phase: str) -> dict[str, str]:
    if phase == "successful":
        return {"outcome": "success"}
    condition = _succeeded_condition(run)
    reason = dig_text(condition, "reason")
    if reason in _CANCEL_REASONS:
        return {"outcome": "cancel"}
    outcome = {"outcome": "failure" if reason in _FAILURE_REASONS else "error"}
    message = condition.get("message")
    if isinstance(message, str) and message:
        outcome["errors"] = message
    return outcome


def _finish_time(event: CloudEvent, run: dict[str, Any]) -> str:
    return first_time(event, dig(run, "status", "completionTime"),
                      _succeeded_condition(run).get("lastTransitionTime"))


def _succeeded_condition(run: dict[str, Any]) -> dict[str, Any]:
    for condition in dig_list(run, "status", "conditions"):
        if isinstance(condition, dict) and condition.get("type") == "Succeeded":
            return condition
    return {}


def _params(run: dict[str, Any], spec_field: str) -> dict[str, str]:
    """String params: the resolved spec's defaults, overridden by the values the run gives."""
    params: dict[str, str] = {}
    for field, entries in (("default", dig_list(run, "status", spec_field, "params")),
                           ("value", dig_list(run, "spec", "params"))):
        for entry in entries:
            if (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                    and isinstance(entry.get(field), str)):
                params[entry["name"]] = entry[field]
    return params


def _first_param(params: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((params[name] for name in names if params.get(name)), None)


def _custom_data(params: dict[str, str]) -> dict[str, str]:
    custom = {"revision": _first_param(params, REVISION_PARAMS),
              "repository": _first_param(params, REPOSITORY_PARAMS)}
    return {key: value for key, value in custom.items() if value}


TRANSFORMERS = [
    Transformer(
        NAME,
        transform,
        "Tekton PipelineRun/TaskRun CloudEvents: pipelinerun.queued/started/finished, "
        "taskrun.started/finished, and service.deployed when a deploy pipeline succeeds",
    )
]
