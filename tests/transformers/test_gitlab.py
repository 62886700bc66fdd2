"""GitLab transformer: header-to-type table, natural-key ids, time formats and payload errors."""

from __future__ import annotations

import base64
import copy
import json
from functools import partial
from pathlib import Path

import pytest

from dora_cloudevents.transformers import builtin_transformers
from dora_cloudevents.transformers.base import TransformError
from dora_cloudevents.transformers.gitlab import EVENT_TYPES, transform_gitlab
from tests.transformers.support import delete, golden_event, redelivered, single_cdevent

FIXTURES = Path(__file__).parent / "gitlab"
PROJECT = "https://gitlab.example.com/acme/shop/checkout-service"

webhook = partial(golden_event, FIXTURES)
one = partial(single_cdevent, transform_gitlab)


def test_registered_under_its_name() -> None:
    assert builtin_transformers()["gitlab"].transform is transform_gitlab


# --- EVENT_TYPES ---------------------------------------------------------------------------------


def knative_rule(header: str) -> str:
    """eventing-gitlab's gitlabEventHeaderToEventType: drop " Hook", lower case, "_" for " "."""
    return "dev.knative.sources.gitlab." + header.removesuffix(" Hook").lower().replace(" ", "_")


def test_event_types_follow_the_knative_gitlab_source() -> None:
    assert EVENT_TYPES["Push Hook"] == "dev.knative.sources.gitlab.push"
    assert EVENT_TYPES["Tag Push Hook"] == "dev.knative.sources.gitlab.tag_push"
    assert EVENT_TYPES["Merge Request Hook"] == "dev.knative.sources.gitlab.merge_request"
    assert EVENT_TYPES["Pipeline Hook"] == "dev.knative.sources.gitlab.pipeline"
    assert EVENT_TYPES["Deployment Hook"] == "dev.knative.sources.gitlab.deployment"
    assert EVENT_TYPES["Issue Hook"] == "dev.knative.sources.gitlab.issue"
    assert EVENT_TYPES["Job Hook"] == "dev.knative.sources.gitlab.job"
    for header, event_type in EVENT_TYPES.items():
        assert header.endswith(" Hook")
        assert event_type == knative_rule(header)


def test_every_fixture_carries_the_type_of_its_header() -> None:
    for path in sorted(FIXTURES.glob("*.input.json")):
        event = json.loads(path.read_text())["event"]
        assert EVENT_TYPES[event["comgitlabevent"]] == event["type"], path.name


# --- idempotence ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", [
    "push-default-branch", "mr-opened", "mr-merged", "mr-approved", "mr-closed",
    "deployment-success", "incident-opened", "incident-closed-work-item", "pipeline-success",
])
def test_redelivery_gives_identical_cdevents(case: str) -> None:
    first = webhook(case)
    assert transform_gitlab(redelivered(first)) == transform_gitlab(first)


def test_native_endpoint_and_knative_source_give_the_same_ids() -> None:
    knative = webhook("mr-merged")
    native = {"specversion": "1.0", "id": "native-1", "source": PROJECT,
              "type": EVENT_TYPES["Merge Request Hook"], "data": knative["data"]}
    assert one(native)["context"]["id"] == one(knative)["context"]["id"]


def test_different_facts_about_one_merge_request_get_different_ids() -> None:
    cases = ("mr-opened", "mr-updated-new-commit", "mr-approved", "mr-merged")
    ids = {one(webhook(case))["context"]["id"] for case in cases}
    assert len(ids) == len(cases)


def test_created_and_pending_pipeline_are_one_queued_fact() -> None:
    created, pending = one(webhook("pipeline-created")), one(webhook("pipeline-pending"))
    assert created == pending


def test_approval_and_approved_by_the_same_user_are_one_review() -> None:
    approved = webhook("mr-approved")
    approval = copy.deepcopy(approved)
    approval["data"]["object_attributes"]["action"] = "approval"
    assert one(approval)["context"]["id"] == one(approved)["context"]["id"]


def test_incident_keeps_its_subject_from_issue_to_work_item_payloads() -> None:
    opened, closed = one(webhook("incident-opened")), one(webhook("incident-closed-work-item"))
    assert opened["subject"]["id"] == closed["subject"]["id"] == f"{PROJECT}/-/issues/57"
    assert closed["customData"]["url"] == f"{PROJECT}/-/work_items/57"


# --- what is emitted -----------------------------------------------------------------------------


def test_push_commits_are_sorted_oldest_first_whatever_gitlab_sent() -> None:
    event = webhook("push-default-branch")
    event["data"]["commits"].reverse()
    commits = one(event)["customData"]["commits"]
    assert [c["timestamp"] for c in commits] == sorted(c["timestamp"] for c in commits)
    assert commits == one(webhook("push-default-branch"))["customData"]["commits"]


def test_merged_push_links_to_the_merge_request_through_its_merge_commit() -> None:
    push, merge = one(webhook("push-default-branch")), one(webhook("mr-merged"))
    assert push["context"]["type"] == "dev.cdevents.change.merged.0.2.0"
    assert merge["customData"]["mergeCommitSha"] == push["customData"]["headSha"]
    assert merge["customData"]["mergeCommitSha"] in {c["id"] for c in push["customData"]["commits"]}


def test_squash_and_merge_commit_keeps_the_merge_commit_and_reports_the_squash() -> None:
    event = webhook("mr-squash-merged")
    event["data"]["object_attributes"]["merge_commit_sha"] = "b" * 40
    custom = one(event)["customData"]
    assert custom["mergeCommitSha"] == "b" * 40
    assert custom["squashCommitSha"] == event["data"]["object_attributes"]["squash_commit_sha"]


def test_merge_action_without_merged_state_is_not_a_merge() -> None:
    event = webhook("mr-merged")
    event["data"]["object_attributes"]["state"] = "opened"
    assert transform_gitlab(event) == []


def test_deployment_uses_the_full_sha_of_commit_url() -> None:
    cdevent = one(webhook("deployment-success"))
    sha = cdevent["customData"]["revision"]
    assert len(sha) == 40
    assert sha.startswith(webhook("deployment-success")["data"]["short_sha"])
    artifact = cdevent["subject"]["content"]["artifactId"]
    assert artifact == f"pkg:gitlab/acme/shop/checkout-service@{sha}"
    assert cdevent["subject"]["id"] == "checkout-service"


def test_deployment_without_commit_url_falls_back_to_short_sha() -> None:
    event = webhook("deployment-success")
    event["data"]["commit_url"] = None
    assert one(event)["customData"]["revision"] == event["data"]["short_sha"]


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-03-11 15:20:05 +0100", "2025-03-11T14:20:05Z"),
    ("2025-03-11 14:20:05 UTC", "2025-03-11T14:20:05Z"),
    ("2025-03-11T15:20:05+01:00", "2025-03-11T14:20:05Z"),
    ("2025-03-11T14:20:05.250Z", "2025-03-11T14:20:05.250000Z"),
])
def test_gitlab_time_formats_become_rfc3339_utc(text: str, expected: str) -> None:
    event = webhook("deployment-success")
    event["data"]["status_changed_at"] = text
    assert one(event)["context"]["timestamp"] == expected


def test_old_knative_type_names_are_handled_by_object_kind() -> None:
    event = webhook("push-feature-branch")
    event["type"] = "dev.knative.sources.gitlabsource.Push Hook"  # eventing-gitlab before 2021
    assert one(event) == one(webhook("push-feature-branch"))


def test_base64_data_is_decoded() -> None:
    event = webhook("pipeline-failed")
    event["data_base64"] = base64.b64encode(json.dumps(event.pop("data")).encode()).decode()
    assert one(event) == one(webhook("pipeline-failed"))


@pytest.mark.parametrize("kind", ["note", "build", "release", "wiki_page", "tag_push", None])
def test_other_object_kinds_give_nothing(kind: str | None) -> None:
    event = webhook("note-on-merge-request")
    event["data"]["object_kind"] = kind
    assert transform_gitlab(event) == []


# --- malformed payloads --------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "path", "field"), [
    ("push-default-branch", ("after",), "after"),
    ("push-default-branch", ("project", "default_branch"), "project.default_branch"),
    ("push-default-branch", ("commits", 2, "timestamp"), "commits[2].timestamp"),
    ("mr-merged", ("object_attributes", "url"), "object_attributes.url"),
    ("mr-merged", ("object_attributes", "updated_at"), "object_attributes.updated_at"),
    ("mr-opened", ("object_attributes", "iid"), "object_attributes.iid"),
    ("deployment-success", ("environment",), "environment"),
    ("deployment-success", ("status_changed_at",), "status_changed_at"),
    ("deployment-success", ("project", "path_with_namespace"), "project.path_with_namespace"),
    ("incident-opened", ("object_attributes", "created_at"), "object_attributes.created_at"),
    ("pipeline-success", ("object_attributes", "sha"), "object_attributes.sha"),
    ("pipeline-success", ("object_attributes", "status"), "object_attributes.status"),
])
def test_missing_field_is_named(case: str, path: tuple[str | int, ...], field: str) -> None:
    event = webhook(case)
    delete(event["data"], path)
    with pytest.raises(TransformError) as raised:
        transform_gitlab(event)
    assert f"lacks {field}" in str(raised.value)


def test_bad_time_is_named() -> None:
    event = webhook("mr-opened")
    event["data"]["object_attributes"]["created_at"] = "yesterday"
    with pytest.raises(TransformError, match=r"object_attributes\.created_at"):
        transform_gitlab(event)


def test_wrongly_typed_field_is_named() -> None:
    event = webhook("push-default-branch")
    event["data"]["ref"] = ["refs/heads/main"]
    with pytest.raises(TransformError, match="ref must be a string"):
        transform_gitlab(event)


def test_deployment_without_any_sha_is_an_error() -> None:
    event = webhook("deployment-success")
    event["data"]["commit_url"] = None
    del event["data"]["short_sha"]
    with pytest.raises(TransformError, match="short_sha"):
        transform_gitlab(event)


def test_data_that_is_not_an_object_is_an_error() -> None:
    event = webhook("push-default-branch")
    event["data"] = ["not", "an", "object"]
    with pytest.raises(TransformError, match="JSON object"):
        transform_gitlab(event)


def test_event_without_source_is_an_error() -> None:
    event = webhook("mr-opened")
    del event["source"]
    with pytest.raises(TransformError, match="source"):
        transform_gitlab(event)
