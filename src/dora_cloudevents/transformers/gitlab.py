"""GitLab webhooks (Knative source or /webhooks/gitlab) as change, deploy, incident CDEvents."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from dora_cloudevents.cdevents.build import new_cdevent
from dora_cloudevents.events import CDEvent, CloudEvent, format_rfc3339, parse_rfc3339
from dora_cloudevents.transformers.base import (
    Transformer,
    TransformError,
    dig,
    event_source,
    json_data,
)

NAME = "gitlab"

# X-Gitlab-Event header -> CloudEvent type. knative-extensions/eventing-gitlab
# (pkg/adapter/receive_adapter.go, gitlabEventHeaderToEventType) drops " Hook", lower-cases
# and joins words with "_" under "dev.knative.sources.gitlab."; /webhooks/gitlab uses this
# table so both paths give the same CloudEvent. Headers as listed in GitLab's webhook docs.
EVENT_TYPES: dict[str, str] = {
    "Push Hook": "dev.knative.sources.gitlab.push",
    "Tag Push Hook": "dev.knative.sources.gitlab.tag_push",
    "Issue Hook": "dev.knative.sources.gitlab.issue",
    "Confidential Issue Hook": "dev.knative.sources.gitlab.confidential_issue",
    "Note Hook": "dev.knative.sources.gitlab.note",
    "Confidential Note Hook": "dev.knative.sources.gitlab.confidential_note",
    "Merge Request Hook": "dev.knative.sources.gitlab.merge_request",
    "Wiki Page Hook": "dev.knative.sources.gitlab.wiki_page",
    "Pipeline Hook": "dev.knative.sources.gitlab.pipeline",
    "Job Hook": "dev.knative.sources.gitlab.job",
    "Deployment Hook": "dev.knative.sources.gitlab.deployment",
    "Feature Flag Hook": "dev.knative.sources.gitlab.feature_flag",
    "Release Hook": "dev.knative.sources.gitlab.release",
    "Milestone Hook": "dev.knative.sources.gitlab.milestone",
    "Emoji Hook": "dev.knative.sources.gitlab.emoji",
    "Resource Access Token Hook": "dev.knative.sources.gitlab.resource_access_token",
    "Member Hook": "dev.knative.sources.gitlab.member",
    "Project Hook": "dev.knative.sources.gitlab.project",
    "Subgroup Hook": "dev.knative.sources.gitlab.subgroup",
    "Vulnerability Hook": "dev.knative.sources.gitlab.vulnerability",
}

Data = dict[str, Any]
Path = tuple[str | int, ...]

# GitLab writes times as "2021-04-28 21:50:00 +0200" or "2016-08-12 15:23:28 UTC" in most
# hooks and RFC 3339 in others (and the Knative adapter re-encodes some as RFC 3339).
_GITLAB_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?) ?(UTC|Z|[+-]\d{2}:?\d{2})\Z")
_FULL_SHA = re.compile(r"/commit/([0-9a-f]{40}|[0-9a-f]{64})(?:[/?#]|\Z)")
_QUEUED = ("created", "waiting_for_resource", "preparing", "pending")
_FINISHED = {"success": "success", "failed": "failure", "canceled": "cancel"}
_MERGE_REQUEST_TYPES = {
    "open": "change.created",
    "update": "change.updated",
    "reopen": "change.updated",
    "merge": "change.merged",
    "close": "change.abandoned",
    # "approved" is sent when the MR is fully approved, "approval" for each approver; both
    # are a review and get the same id for the same approver and head commit.
    "approved": "change.reviewed",
    "approval": "change.reviewed",
}


def _name(path: Path) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path)[1:]


def _need(data: Data, *path: str | int) -> str:
    """The string (or number) at ``path``; a TransformError naming the field if it is absent."""
    value = dig(data, *path)
    if value is None or value == "":
        raise TransformError(f"GitLab {data.get('object_kind')} payload lacks {_name(path)}")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TransformError(f"GitLab payload field {_name(path)} must be a string, "
                             f"got {type(value).__name__}")
    return str(value)


def _optional(data: Data, *path: str | int) -> str | None:
    return _need(data, *path) if dig(data, *path) not in (None, "") else None


def _time(data: Data, *path: str | int) -> str:
    """The RFC 3339 UTC form of the GitLab time at ``path``."""
    text = _need(data, *path).strip()
    match = _GITLAB_TIME.match(text)
    if match:
        day, clock, zone = match.groups()
        zone = "Z" if zone in ("UTC", "Z") else f"{zone[:3]}:{zone[-2:]}"
        text = f"{day}T{clock}{zone}"
    try:
        return format_rfc3339(parse_rfc3339(text))
    except ValueError:
        problem = f"GitLab payload field {_name(path)} is not a time: {text!r}"
        raise TransformError(problem) from None


def _optional_time(data: Data, *path: str | int) -> str | None:
    return _time(data, *path) if dig(data, *path) not in (None, "") else None


def _number(data: Data, *path: str | int) -> int:
    text = _need(data, *path)
    if not text.isdigit():
        raise TransformError(f"GitLab payload field {_name(path)} must be a number, got {text!r}")
    return int(text)


def _repository(data: Data) -> tuple[str, str]:
    """The project's web URL and ``namespace/path``."""
    return _need(data, "project", "web_url"), _need(data, "project", "path_with_namespace")


def _change(name: str, event: CloudEvent, data: Data, *, key: tuple[str, ...], subject_id: str,
            timestamp: str, custom: Mapping[str, Any], description: str | None = None) -> CDEvent:
    url, path = _repository(data)
    content: dict[str, Any] = {"repository": {"id": path, "source": url}}
    if description:
        content["description"] = description
    return new_cdevent(
        name, key=(NAME, *key), source=event_source(event), timestamp=timestamp,
        subject_id=subject_id, subject_source=url, content=content,
        custom_data={"repository": url, **{k: v for k, v in custom.items() if v is not None}},
    )


def _commits(data: Data) -> list[dict[str, str]]:
    """The pushed commits, oldest first. GitLab sends at most the newest 20, in no order
    to rely on (its docs show oldest first, older releases sent newest first)."""
    commits = dig(data, "commits", default=[])
    if not isinstance(commits, list):
        raise TransformError("GitLab payload field commits must be a list")
    found = [{"id": _need(data, "commits", index, "id"),
              "timestamp": _time(data, "commits", index, "timestamp")}
             for index in range(len(commits))]
    return sorted(found, key=lambda commit: parse_rfc3339(commit["timestamp"]))


def _push(event: CloudEvent, data: Data) -> list[CDEvent]:
    ref, after = _need(data, "ref"), _need(data, "after")
    # A deleted branch reports no change; tags are not changes (they come as tag_push anyway).
    if set(after) == {"0"} or not ref.startswith("refs/heads/"):
        return []
    commits = _commits(data)
    if not commits:  # a branch created at an existing commit: nothing new was pushed
        return []
    url = _repository(data)[0]
    branch = ref.removeprefix("refs/heads/")
    default = _need(data, "project", "default_branch")
    before = _optional(data, "before")
    before = None if before is None or set(before) == {"0"} else before
    head = next((c for c in commits if c["id"] == after), commits[-1])
    custom = {"branch": branch, "headSha": after, "before": before, "commits": commits,
              "push": True}
    return [_change("change.merged" if branch == default else "change.updated", event, data,
                    key=(url, "push", ref, before or "", after), subject_id=f"{url}/commit/{after}",
                    timestamp=head["timestamp"], custom=custom)]


def _merge_request(event: CloudEvent, data: Data) -> list[CDEvent]:
    attrs = ("object_attributes",)
    name = _MERGE_REQUEST_TYPES.get(str(dig(data, *attrs, "action")))
    # Only a completed merge is a merge; edits and approvals after it change nothing.
    if name is None or (name == "change.merged") != (dig(data, *attrs, "state") == "merged"):
        return []  # unapproval, unapproved: nothing to report
    mr_url = _need(data, *attrs, "url")
    head = _optional(data, *attrs, "last_commit", "id")
    merge_sha = _optional(data, *attrs, "merge_commit_sha")
    # A squash merge without a merge commit leaves only the squash commit on the target branch.
    squash_sha = _optional(data, *attrs, "squash_commit_sha")
    merged = name == "change.merged"
    custom = {
        "branch": _need(data, *attrs, "target_branch"),
        "headBranch": _need(data, *attrs, "source_branch"),
        "headSha": head,
        "mergeCommitSha": (merge_sha or squash_sha) if merged else None,
        "squashCommitSha": squash_sha if merged and merge_sha and squash_sha != merge_sha else None,
        "number": _number(data, *attrs, "iid"),
    }
    updated = _time(data, *attrs, "updated_at")
    keys = {
        "change.created": (),
        "change.merged": (),
        "change.abandoned": (updated,),
        "change.updated": (str(dig(data, *attrs, "action")), updated, head or ""),
        "change.reviewed": (str(dig(data, "user", "username", default="")), head or ""),
    }
    timestamp = _time(data, *attrs, "created_at") if name == "change.created" else updated
    title = _optional(data, *attrs, "title") if name == "change.created" else None
    return [_change(name, event, data, key=(mr_url, name, *keys[name]), subject_id=mr_url,
                    timestamp=timestamp, custom=custom, description=title)]


def _deployed_sha(data: Data) -> str:
    """The deployed commit: GitLab sends only ``short_sha``, but ``commit_url`` ends in the
    full SHA, which links the deployment to pushed commits without prefix matching."""
    commit_url = _optional(data, "commit_url") or ""
    short = _optional(data, "short_sha")
    match = _FULL_SHA.search(commit_url)
    if match and (short is None or match.group(1).startswith(short)):
        return match.group(1)
    if short is None:
        raise TransformError("GitLab deployment payload lacks short_sha (and commit_url)")
    return short


def _deployment(event: CloudEvent, data: Data) -> list[CDEvent]:
    if _need(data, "status") != "success":
        return []  # running, failed, canceled: nothing was deployed
    url, path = _repository(data)
    sha = _deployed_sha(data)
    # purl namespace/name are case-insensitive on GitLab, lower-cased as for pkg:github.
    purl_path = "/".join(quote(part, safe="") for part in path.lower().split("/"))
    return [new_cdevent(
        "service.deployed",
        key=(NAME, url, "deployment", _need(data, "deployment_id"), "success"),
        source=event_source(event), timestamp=_time(data, "status_changed_at"),
        subject_id=path.rsplit("/", 1)[-1],
        content={"environment": {"id": _need(data, "environment")},
                 "artifactId": f"pkg:gitlab/{purl_path}@{sha}"},
        custom_data={"revision": sha, "repository": url},
    )]


def _titles(labels: object) -> list[str]:
    """Label titles from GitLab's label objects (or plain strings)."""
    items = labels if isinstance(labels, list) else []
    titles = [item.get("title") if isinstance(item, dict) else item for item in items]
    return [title.strip() for title in titles if isinstance(title, str)]


def _labels(data: Data) -> list[str]:
    return _titles(dig(data, "labels") or dig(data, "object_attributes", "labels"))


def _label_value(labels: list[str], prefix: str) -> str | None:
    """``x`` of a ``prefix:x`` label (or GitLab scoped label ``prefix::x``)."""
    for label in labels:
        key, colon, value = label.partition(":")
        if colon and key.strip().lower() == prefix and value.lstrip(":").strip():
            return value.lstrip(":").strip()
    return None


def _has_incident_label(labels: list[str]) -> bool:
    return any(label.lower() == "incident" for label in labels)


def _is_incident(data: Data) -> bool:
    # GitLab incidents carry object_attributes.type "Incident" (17.2+); issue_type is kept
    # for older payloads; anything labelled "incident" counts too.
    kinds = (dig(data, "object_attributes", "type"), dig(data, "object_attributes", "issue_type"))
    return (any(isinstance(kind, str) and kind.lower() == "incident" for kind in kinds)
            or _has_incident_label(_labels(data)))


def _incident_facts(data: Data) -> list[tuple[str, str]]:
    """The CDEvent types and when they happened, for an incident issue event."""
    action, attrs = dig(data, "object_attributes", "action"), ("object_attributes",)
    created = _time(data, *attrs, "created_at")
    if action == "open":
        return [("incident.detected", created)]
    if action == "reopen":  # the reopening is the issue's last update
        return [("incident.detected", _time(data, *attrs, "updated_at"))]
    closed = ("incident.resolved", _optional_time(data, *attrs, "closed_at")
              or _time(data, *attrs, "updated_at"))
    if action == "close":
        return [closed]
    changes = ("changes", "labels")
    newly_labelled = (_has_incident_label(_titles(dig(data, *changes, "current")))
                      and not _has_incident_label(_titles(dig(data, *changes, "previous"))))
    if action != "update" or not newly_labelled:
        return []
    if dig(data, *attrs, "state") == "closed":
        # Labelled after the fact (a post-mortem): the issue's life is the incident's, with
        # the ids an incident opened and closed as such would have had (as for GitHub).
        return [("incident.detected", created), closed]
    # Labelling an open issue makes it an incident from then on.
    return [("incident.detected", _time(data, *attrs, "updated_at"))]


def _issue(event: CloudEvent, data: Data) -> list[CDEvent]:
    if not _is_incident(data):
        return []
    return [_incident(event, data, name, timestamp)
            for name, timestamp in _incident_facts(data)]


def _incident(event: CloudEvent, data: Data, name: str, timestamp: str) -> CDEvent:
    url, path = _repository(data)
    # The same incident is sent as /-/issues/N or /-/work_items/N depending on where it was
    # edited; the project URL and iid give an id that stays the same from open to close.
    incident_id = f"{url}/-/issues/{_number(data, 'object_attributes', 'iid')}"
    labels = _labels(data)
    title = _optional(data, "object_attributes", "title")
    severity = _optional(data, "object_attributes", "severity")  # GitLab incidents have one
    content: dict[str, Any] = {
        "service": {"id": _label_value(labels, "service") or path.rsplit("/", 1)[-1]},
        "environment": {"id": _label_value(labels, "env") or "production"},
    }
    if title:
        content["description"] = title
    custom = {"url": _optional(data, "object_attributes", "url") or incident_id,
              "severity": severity if severity and severity.lower() != "unknown"
              else _label_value(labels, "severity"),
              "title": title}
    return new_cdevent(
        name, key=(NAME, incident_id, name, timestamp), source=event_source(event),
        timestamp=timestamp, subject_id=incident_id, content=content,
        custom_data={k: v for k, v in custom.items() if v is not None},
    )


def _pipeline_errors(data: Data) -> str | None:
    builds = dig(data, "builds", default=[])
    failed = [f"{build.get('name')}: {build.get('failure_reason') or 'failed'}"
              for build in (builds if isinstance(builds, list) else [])
              if isinstance(build, dict) and build.get("status") == "failed"
              and not build.get("allow_failure")]
    return "; ".join(sorted(failed)) or None


def _build_times(data: Data, field: str) -> list[str]:
    """``field`` of each of the pipeline's jobs that has it (the hook has no start time)."""
    builds = dig(data, "builds", default=[])
    indexes = range(len(builds)) if isinstance(builds, list) else range(0)
    return [_time(data, "builds", index, field) for index in indexes
            if dig(data, "builds", index, field) not in (None, "")]


def _pipeline_timing(data: Data, status: str) -> tuple[str, str, str | None] | None:
    """CDEvent type, when it happened and the outcome, for a pipeline status."""
    attrs = ("object_attributes",)
    if status in _FINISHED:
        last_job = max(_build_times(data, "finished_at"), key=parse_rfc3339, default=None)
        finished = (_optional_time(data, *attrs, "finished_at") or last_job
                    or _time(data, *attrs, "created_at"))
        return "pipelinerun.finished", finished, _FINISHED[status]
    if status == "running":
        first_job = min(_build_times(data, "started_at"), key=parse_rfc3339, default=None)
        return "pipelinerun.started", first_job or _time(data, *attrs, "created_at"), None
    if status in _QUEUED:
        return "pipelinerun.queued", _time(data, *attrs, "created_at"), None
    return None  # skipped, manual, scheduled, canceling


def _pipeline(event: CloudEvent, data: Data) -> list[CDEvent]:
    timing = _pipeline_timing(data, _need(data, "object_attributes", "status"))
    if timing is None:
        return []
    name, timestamp, outcome = timing
    url, path = _repository(data)
    run_url = (_optional(data, "object_attributes", "url")
               or f"{url}/-/pipelines/{_need(data, 'object_attributes', 'id')}")
    content: dict[str, Any] = {
        "pipelineName": _optional(data, "object_attributes", "name") or path, "url": run_url}
    if outcome:
        content["outcome"] = outcome
        if outcome == "failure" and (errors := _pipeline_errors(data)):
            content["errors"] = errors
    # Queued is one fact however many of created/pending/... report it: no status in the key.
    key = (NAME, run_url, name, outcome or "", timestamp if name != "pipelinerun.queued" else "")
    return [new_cdevent(
        name, key=key, source=event_source(event), timestamp=timestamp, subject_id=run_url,
        content=content,
        custom_data={"revision": _need(data, "object_attributes", "sha"), "repository": url},
    )]


_HANDLERS: dict[str, Callable[[CloudEvent, Data], list[CDEvent]]] = {
    "push": _push,
    "merge_request": _merge_request,
    "deployment": _deployment,
    "issue": _issue,
    # Incidents edited as work items arrive with object_kind "work_item" (same Issue Hook).
    "work_item": _issue,
    "pipeline": _pipeline,
}


def transform_gitlab(event: CloudEvent) -> list[CDEvent]:
    """CDEvents for one GitLab webhook event; dispatch on the payload's ``object_kind``
    (not the CloudEvent type, which older Knative GitLab sources spelled differently)."""
    data = json_data(event)
    handler = _HANDLERS.get(str(data.get("object_kind")))
    return handler(event, data) if handler else []


TRANSFORMERS = [
    Transformer(
        NAME, transform_gitlab,
        "GitLab push, merge request, deployment, incident issue and pipeline webhooks "
        "(dev.knative.sources.gitlab.* or /webhooks/gitlab) as CDEvents",
    )
]
