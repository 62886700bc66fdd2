"""GitHub transformer: what merged means, ids stable across redeliveries, errors, commit order."""

from __future__ import annotations

import base64
import contextlib
import copy
import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from dora_cloudevents.transformers import builtin_transformers
from dora_cloudevents.transformers.base import TransformError
from dora_cloudevents.transformers.github import transform_github
from tests.transformers.support import (
    checked,
    delete,
    golden_event,
    golden_events,
    redelivered,
    single_cdevent,
)

FIXTURES = Path(__file__).parent / "github"

webhook = partial(golden_event, FIXTURES)
transform = partial(checked, transform_github)
one = partial(single_cdevent, transform_github)


def test_registered_under_its_name() -> None:
    assert builtin_transformers()["github"].transform is transform_github


# --- merged means merged == true ---------------------------------------------------------------


def test_open_pull_request_with_a_merge_commit_sha_is_not_merged() -> None:
    event = webhook("pull-request-synchronize")
    event["data"]["pull_request"]["merge_commit_sha"] = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"
    cdevent = one(event)
    assert cdevent["context"]["type"] == "dev.cdevents.change.updated.0.2.0"
    assert "mergeCommitSha" not in cdevent["customData"]


def test_closed_pull_request_with_merge_commit_sha_but_not_merged_is_abandoned() -> None:
    event = webhook("pull-request-closed")
    assert event["data"]["pull_request"]["merge_commit_sha"]  # GitHub's test merge
    cdevent = one(event)
    assert cdevent["context"]["type"] == "dev.cdevents.change.abandoned.0.2.0"
    assert "mergeCommitSha" not in cdevent["customData"]


def test_closed_pull_request_with_merged_true_is_merged_at_merged_at() -> None:
    cdevent = one(webhook("pull-request-merged"))
    assert cdevent["context"]["type"] == "dev.cdevents.change.merged.0.2.0"
    assert cdevent["context"]["timestamp"] == "2024-03-04T11:00:00Z"
    assert cdevent["customData"]["mergeCommitSha"] == "8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c"


@pytest.mark.parametrize("merged", [None, "true", 1])
def test_closed_pull_request_without_a_boolean_merged_is_not_guessed(merged: Any) -> None:
    event = webhook("pull-request-merged")
    event["data"]["pull_request"]["merged"] = merged
    with pytest.raises(TransformError, match=r"pull_request\.merged"):
        transform(event)


# --- identity ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["push-feature-branch", "pull-request-merged",
                                  "pull-request-closed", "pull-request-synchronize",
                                  "deployment-status-success", "incident-opened",
                                  "incident-labelled-later", "incident-closed",
                                  "workflow-run-completed", "workflow-run-in-progress"])
def test_redelivery_gives_identical_cdevents(case: str) -> None:
    event = webhook(case)
    assert transform(redelivered(event)) == transform(event)


def test_the_same_commit_pushed_to_two_branches_is_two_facts() -> None:
    feature = webhook("push-feature-branch")
    main = copy.deepcopy(feature)
    main["data"]["ref"] = "refs/heads/main"
    [updated], [merged] = transform(feature), transform(main)
    assert merged["context"]["type"] == "dev.cdevents.change.merged.0.2.0"
    assert updated["subject"]["id"] == merged["subject"]["id"]
    assert updated["context"]["id"] != merged["context"]["id"]


def test_every_synchronize_is_its_own_update() -> None:
    first = webhook("pull-request-synchronize")
    second = copy.deepcopy(first)
    second["data"]["pull_request"]["head"]["sha"] = "1" * 40
    second["data"]["pull_request"]["updated_at"] = "2019-05-15T15:25:00Z"
    assert one(first)["context"]["id"] != one(second)["context"]["id"]


def test_issue_created_with_the_incident_label_is_detected_once() -> None:
    opened, labelled = webhook("incident-created-with-label"), webhook(
        "incident-created-with-label", 1)
    assert transform(opened) == transform(labelled)


def test_reopened_incident_is_detected_again_under_the_same_subject() -> None:
    first, again = one(webhook("incident-opened")), one(webhook("incident-reopened"))
    assert again["context"]["type"] == first["context"]["type"]
    assert again["subject"]["id"] == first["subject"]["id"]
    assert again["context"]["id"] != first["context"]["id"]
    assert again["context"]["timestamp"] == "2024-03-04T13:00:00Z"


def test_repeated_success_statuses_of_one_deployment_are_one_deployment() -> None:
    event = webhook("deployment-status-success")
    later = copy.deepcopy(event)
    later["data"]["deployment_status"]["id"] += 1
    later["data"]["deployment_status"]["created_at"] = "2019-05-15T15:30:00Z"
    assert one(event)["context"]["id"] == one(later)["context"]["id"]


# --- malformed payloads --------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "path", "field"), [
    ("push-feature-branch", ("after",), "after"),
    ("push-feature-branch", ("ref",), "ref"),
    ("push-feature-branch", ("repository", "default_branch"), "repository.default_branch"),
    ("push-feature-branch", ("commits", 1, "timestamp"), r"commits\[1\]\.timestamp"),
    ("push-feature-branch", ("commits", 0, "id"), r"commits\[0\]\.id"),
    ("pull-request-opened", ("pull_request", "html_url"), r"pull_request\.html_url"),
    ("pull-request-opened", ("action",), "action"),
    ("pull-request-review-submitted", ("review", "id"), r"review\.id"),
    ("deployment-status-success", ("deployment", "sha"), r"deployment\.sha"),
    ("deployment-status-success", ("deployment_status", "state"), r"deployment_status\.state"),
    ("incident-opened", ("issue", "html_url"), r"issue\.html_url"),
    ("workflow-run-completed", ("workflow_run", "conclusion"), r"workflow_run\.conclusion"),
    ("workflow-run-completed", ("workflow_run", "html_url"), r"workflow_run\.html_url"),
])
def test_malformed_payload_names_the_missing_field(case: str, path: tuple[Any, ...],
                                                   field: str) -> None:
    event = webhook(case)
    delete(event["data"], path)
    with pytest.raises(TransformError, match=field):
        transform(event)


def test_unparseable_timestamp_is_an_error_naming_the_field() -> None:
    event = webhook("pull-request-merged")
    event["data"]["pull_request"]["merged_at"] = "yesterday"
    with pytest.raises(TransformError, match=r"pull_request\.merged_at"):
        transform(event)


def test_an_event_that_is_not_from_github_is_refused() -> None:
    event = webhook("push-feature-branch")
    event["type"] = "dev.knative.sources.gitlab.push"
    with pytest.raises(TransformError, match="not a GitHub event"):
        transform(event)


def test_events_that_report_no_delivery_fact_give_nothing() -> None:
    event = webhook("ping")
    for kind in ("ping", "star", "release", "check_suite", "issue_comment"):
        event["type"] = f"dev.knative.source.github.{kind}"
        assert transform(event) == []


# --- commits and times ---------------------------------------------------------------------------


def test_commits_are_oldest_first_in_utc() -> None:
    commits = one(webhook("push-feature-branch"))["customData"]["commits"]
    assert [commit["timestamp"] for commit in commits] == [
        "2024-03-04T08:50:00Z", "2024-03-04T09:05:00Z", "2024-03-04T09:30:00Z"]


def test_commit_order_does_not_depend_on_the_payload_order() -> None:
    event = webhook("push-feature-branch")
    reordered = copy.deepcopy(event)
    reordered["data"]["commits"].reverse()
    assert transform(reordered) == transform(event)


def test_push_time_falls_back_to_the_latest_commit_then_the_event_time() -> None:
    event = webhook("push-feature-branch")
    event["data"]["head_commit"] = None
    event["data"]["commits"].pop()
    assert one(event)["context"]["timestamp"] == "2024-03-04T09:05:00Z"
    del event["data"]["commits"]
    cdevent = one(event)
    assert cdevent["context"]["timestamp"] == "2024-03-04T09:31:02Z"
    assert "commits" not in cdevent["customData"]


def test_a_push_without_any_time_is_an_error_naming_what_is_missing() -> None:
    event = webhook("push-feature-branch")
    event["data"]["head_commit"] = None
    del event["data"]["commits"]
    del event["time"]
    with pytest.raises(TransformError, match=r"no head_commit\.timestamp or commits and the "
                                             "event has no time"):
        transform(event)


def test_a_malformed_source_url_is_an_error_not_a_crash() -> None:
    event = webhook("push-feature-branch")
    del event["data"]["repository"]
    event["source"] = "http://[x"  # urlsplit raises on it
    with pytest.raises(TransformError, match=r"repository\.full_name"):
        transform(event)


def test_pull_request_commits_are_carried_only_when_listed() -> None:
    event = webhook("pull-request-merged")
    assert "commits" not in one(event)["customData"]  # pull_request.commits is a count
    event["data"]["commits"] = [{"id": "b" * 40, "timestamp": "2024-03-04T10:00:00+02:00"},
                                {"id": "a" * 40, "timestamp": "2024-03-04T07:00:00Z"}]
    assert one(event)["customData"]["commits"] == [
        {"id": "a" * 40, "timestamp": "2024-03-04T07:00:00Z"},
        {"id": "b" * 40, "timestamp": "2024-03-04T08:00:00Z"}]


def test_incident_labelled_later_is_detected_when_labelled() -> None:
    cdevent = one(webhook("incident-labelled-later"))
    assert cdevent["context"]["timestamp"] == "2024-03-04T11:45:00Z"  # issue.updated_at
    assert cdevent["subject"]["content"]["service"] == {"id": "shop"}
    assert cdevent["subject"]["content"]["environment"] == {"id": "production"}


# --- envelopes -----------------------------------------------------------------------------------


def test_data_as_json_text_or_base64_gives_the_same_cdevents() -> None:
    event = webhook("pull-request-merged")
    text = copy.deepcopy(event)
    text["data"] = json.dumps(event["data"])
    binary = copy.deepcopy(event)
    del binary["data"]
    binary["data_base64"] = base64.b64encode(json.dumps(event["data"]).encode()).decode()
    assert transform(text) == transform(binary) == transform(event)


def test_payload_without_repository_uses_the_event_source() -> None:
    event = webhook("pull-request-merged")
    del event["data"]["repository"]
    cdevent = one(event)
    assert cdevent["subject"]["content"]["repository"] == {
        "id": "acme/shop", "source": "https://github.com/acme/shop"}


CASES = sorted(path.name.removesuffix(".input.json") for path in FIXTURES.glob("*.input.json"))


@pytest.mark.parametrize("case", CASES)
def test_mistyped_payload_parts_give_cdevents_or_a_transform_error(case: str) -> None:
    """Whatever part of a payload is mangled, the answer is CDEvents or TransformError."""
    for event in golden_events(FIXTURES, case):
        for key in [key for key, value in event["data"].items() if isinstance(value, dict)]:
            for junk in ("x", None, [], 7):
                mangled = copy.deepcopy(event)
                mangled["data"][key] = junk
                with contextlib.suppress(TransformError):
                    transform(mangled)
