"""The Tekton transformer: run lifecycles, outcomes, params, and deploy pipelines."""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from dora_cloudevents.events import CDEvent
from dora_cloudevents.transformers import TransformError
from dora_cloudevents.transformers.tekton import transform
from tests.oracle import assert_valid_cdevent
from tests.transformers.support import golden_events

HERE = Path(__file__).parent / "tekton"

case = partial(golden_events, HERE)


def succeeded_run() -> dict[str, Any]:
    return case("pipelinerun-lifecycle")[3]


def kinds(cdevents: list[CDEvent]) -> list[str]:
    return [e["context"]["type"].split(".")[2] + "." + e["context"]["type"].split(".")[3]
            for e in cdevents]


def with_params(event: dict[str, Any], params: list[tuple[str, Any]]) -> dict[str, Any]:
    run = event["data"]["pipelineRun"]
    run["spec"]["params"] = [{"name": name, "value": value} for name, value in params]
    return event


def test_lifecycle_stores_queued_started_finished_once_each() -> None:
    kept: dict[str, CDEvent] = {}
    for event in case("pipelinerun-lifecycle"):
        for cdevent in transform(event):
            assert_valid_cdevent(cdevent)
            kept.setdefault(cdevent["context"]["id"], cdevent)
    assert kinds(list(kept.values())) == ["pipelinerun.queued", "pipelinerun.started",
                                         "pipelinerun.finished"]
    assert [e["context"]["timestamp"] for e in kept.values()] == [
        "2024-05-14T12:00:00Z", "2024-05-14T12:00:01Z", "2024-05-14T12:03:41Z"]


@pytest.mark.parametrize(("params", "expected"), [
    ([("sha", "s"), ("git-commit", "gc"), ("commit", "c"), ("git-revision", "gr"),
      ("gitrevision", "g"), ("revision", "r")], "r"),
    ([("sha", "s"), ("commit", "c"), ("gitrevision", "g")], "g"),
    ([("sha", "s"), ("git-commit", "gc"), ("git-revision", "gr")], "gr"),
    ([("sha", "s"), ("git-commit", "gc"), ("commit", "c")], "c"),
    ([("sha", "s"), ("git-commit", "gc")], "gc"),
    ([("revision", ""), ("sha", "s")], "s"),  # empty values do not count
    ([("revision", ["a", "b"]), ("commit", "c")], "c"),  # nor array params
    ([("branch", "main")], None),
])
def test_revision_param_lookup_order(params: list[tuple[str, Any]], expected: str | None) -> None:
    (finished,) = transform(with_params(succeeded_run(), params))
    assert finished.get("customData", {}).get("revision") == expected


def test_repository_param_lookup_order() -> None:
    params = [("repo-url", "https://r"), ("git-url", "https://g"), ("url", "https://u")]
    (finished,) = transform(with_params(succeeded_run(), params))
    assert finished["customData"] == {"repository": "https://u"}
    (finished,) = transform(with_params(succeeded_run(), params[:2]))
    assert finished["customData"] == {"repository": "https://g"}


def test_params_given_override_pipeline_defaults() -> None:
    event = with_params(succeeded_run(), [("revision", "given")])
    event["data"]["pipelineRun"]["status"]["pipelineSpec"] = {"params": [
        {"name": "revision", "type": "string", "default": "default"},
        {"name": "url", "type": "string", "default": "https://github.com/acme/default"}]}
    (finished,) = transform(event)
    assert finished["customData"] == {"revision": "given",
                                      "repository": "https://github.com/acme/default"}


@pytest.mark.parametrize(("reason", "outcome", "errors"), [
    ("Failed", "failure", True),
    ("PipelineRunTimeout", "failure", True),
    ("Cancelled", "cancel", False),
    ("CancelledRunFinally", "cancel", False),
    ("StoppedRunFinally", "cancel", False),
    ("PipelineValidationFailed", "error", True),
    ("CouldntGetPipeline", "error", True),
])
def test_outcome_from_condition_reason(reason: str, outcome: str, errors: bool) -> None:
    (event,) = case("pipelinerun-failed")
    condition = event["data"]["pipelineRun"]["status"]["conditions"][0]
    condition["reason"] = reason
    (finished,) = transform(event)
    assert_valid_cdevent(finished)
    content = finished["subject"]["content"]
    assert content["outcome"] == outcome
    assert ("errors" in content) is errors
    if errors:
        assert content["errors"] == condition["message"]


def test_unknown_events_yield_nothing() -> None:
    event = succeeded_run()
    event["type"] = "dev.tekton.event.pipelinerun.unknown.v1"
    assert transform(event) == []
    event["type"] = "dev.tekton.event.customrun.running.v1"
    assert transform(event) == []


def test_pipeline_name_falls_back_to_the_label() -> None:
    event = succeeded_run()
    del event["data"]["pipelineRun"]["spec"]["pipelineRef"]  # e.g. an embedded pipelineSpec
    (finished,) = transform(event)
    assert finished["subject"]["content"]["pipelineName"] == "build-and-test"


def test_url_annotation_replaces_the_api_path() -> None:
    event = succeeded_run()
    assert transform(event)[0]["subject"]["content"]["url"] == (
        "/apis/tekton.dev/v1/namespaces/ci/pipelineruns/build-and-test-x7k2p")
    event["data"]["pipelineRun"]["metadata"]["annotations"] = {
        "dora-cloudevents.dev/url": "https://dashboard.example.com/run/1"}
    assert transform(event)[0]["subject"]["content"]["url"] == "https://dashboard.example.com/run/1"


def test_taskrun_started_and_running_are_one_started() -> None:
    (finished_event,) = case("taskrun-successful")
    run = finished_event["data"]["taskRun"]
    started = copy.deepcopy(finished_event)
    started["type"] = "dev.tekton.event.taskrun.started.v1"
    running = copy.deepcopy(started)
    running["type"] = "dev.tekton.event.taskrun.running.v1"
    for event in (started, running):
        event["data"]["taskRun"]["status"] = {"startTime": run["status"]["startTime"],
                                              "podName": run["status"]["podName"]}
    (first,), (second,) = transform(started), transform(running)
    assert first == second
    assert_valid_cdevent(first)
    assert first["subject"]["content"] == {
        "taskName": "git-clone", "pipelineRun": {"id": "ci/build-and-test-x7k2p"},
        "url": "/apis/tekton.dev/v1/namespaces/ci/taskruns/build-and-test-x7k2p-fetch-source"}


@pytest.mark.parametrize(("reason", "outcome"), [("TaskRunTimeout", "failure"),
                                                 ("TaskRunCancelled", "cancel"),
                                                 ("TaskRunImagePullFailed", "error")])
def test_taskrun_outcomes(reason: str, outcome: str) -> None:
    (event,) = case("taskrun-successful")
    event["type"] = "dev.tekton.event.taskrun.failed.v1"
    event["data"]["taskRun"]["status"]["conditions"][0].update(status="False", reason=reason)
    (finished,) = transform(event)
    assert finished["subject"]["content"]["outcome"] == outcome


def test_deploy_pipeline_emits_a_deployment_only_on_success() -> None:
    (event,) = case("deploy-pipeline-succeeded")
    assert kinds(transform(event)) == ["pipelinerun.finished", "service.deployed"]
    event["type"] = "dev.tekton.event.pipelinerun.failed.v1"
    event["data"]["pipelineRun"]["status"]["conditions"][0].update(status="False",
                                                                  reason="Failed")
    assert kinds(transform(event)) == ["pipelinerun.finished"]


def test_deploy_service_param_wins_over_the_annotation() -> None:
    (event,) = case("deploy-pipeline-succeeded")
    event["data"]["pipelineRun"]["metadata"]["annotations"] = {
        "dora-cloudevents.dev/service": "other", "dora-cloudevents.dev/environment": "staging"}
    deployed = transform(event)[1]
    assert deployed["subject"]["id"] == "web"
    # the param's pipeline default ("production") still beats the annotation
    assert deployed["subject"]["content"]["environment"] == {"id": "production"}


def test_deploy_without_image_or_revision_is_a_generic_versionless_artifact() -> None:
    event = with_params(succeeded_run(), [("deploy-service", "web")])
    finished, deployed = transform(event)
    assert_valid_cdevent(deployed)
    assert deployed["subject"]["content"] == {"environment": {"id": "ci"},
                                              "artifactId": "pkg:generic/web"}
    assert "customData" not in finished


def test_empty_deploy_service_param_is_not_a_deploy() -> None:
    event = with_params(succeeded_run(), [("deploy-service", ""), ("revision", "r")])
    assert kinds(transform(event)) == ["pipelinerun.finished"]


def test_deploy_label_without_a_service_is_an_error() -> None:
    event = succeeded_run()
    event["data"]["pipelineRun"]["metadata"]["labels"]["dora-cloudevents.dev/deploy"] = "true"
    with pytest.raises(TransformError, match="names no service"):
        transform(event)


def test_data_without_the_run_is_an_error() -> None:
    event = succeeded_run()
    event["data"] = {"taskRun": {}}
    with pytest.raises(TransformError, match="pipelineRun"):
        transform(event)
