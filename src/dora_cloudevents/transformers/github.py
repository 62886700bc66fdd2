"""GitHub webhooks (Knative GitHubSource or the native endpoint) as CDEvents 0.4.1."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from dora_cloudevents.cdevents.build import new_cdevent
from dora_cloudevents.events import CDEvent, CloudEvent, format_rfc3339, parse_rfc3339
from dora_cloudevents.transformers.base import (
    Transformer,
    TransformError,
    dig,
    dig_text,
    json_data,
    url_parts,
)

NAME = "github"
TYPE_PREFIX = "dev.knative.source.github."

INCIDENT_LABELS = frozenset({"incident"})
"""An issue is an incident while one of its labels is one of these (compared ignoring case)."""
SERVICE_LABEL = "service:"
"""Label prefix naming an incident's service (``service:checkout``); else the repository name."""
ENVIRONMENT_LABEL = "env:"
"""Label prefix naming an incident's environment (``env:staging``); else DEFAULT_ENVIRONMENT."""
SEVERITY_LABEL = "severity:"
"""Label prefix giving an incident's severity (``severity:sev1``), copied to customData."""
DEFAULT_ENVIRONMENT = "production"

# Creating an issue with labels sends `opened`, then one `labeled` per label: a label added
# this soon after creation is part of the creation (same detection, same event id).
_LABELLED_AT_CREATION = timedelta(minutes=1)
_NO_COMMIT = "0" * 40
# opened: created; closed: merged or abandoned; the others: updated.
_PULL_REQUEST_ACTIONS = frozenset({"opened", "synchronize", "edited", "reopened",
                                   "ready_for_review", "closed"})
_WORKFLOW_RUN_PREDICATES = {"requested": "queued", "in_progress": "started",
                            "completed": "finished"}
_WORKFLOW_OUTCOMES = {"success": "success", "failure": "failure", "timed_out": "failure",
                      "startup_failure": "failure", "cancelled": "cancel"}


def _dotted(path: Sequence[str | int]) -> str:
    return ".".join(str(step) for step in path)


def _utc(value: Any, field: str) -> str:
    """GitHub mixes UTC and local offsets (push commits): emit UTC, as the conventions say."""
    if not isinstance(value, str):
        raise TransformError(f"{field} is not an RFC 3339 timestamp: {value!r}")
    try:
        return format_rfc3339(parse_rfc3339(value))
    except ValueError as error:
        raise TransformError(f"{field}: {error}") from None


@dataclass(frozen=True)
class _Hook:
    """One delivery: the CloudEvent, its payload and the repository it concerns."""

    event: CloudEvent
    kind: str  # the X-GitHub-Event name, e.g. "pull_request"
    data: dict[str, Any]
    repo_url: str
    repo_id: str  # "owner/name"

    def get(self, *path: str | int) -> Any:
        return dig(self.data, *path)

    def require(self, *path: str | int) -> Any:
        value = dig(self.data, *path)
        if value is None or value == "":
            raise TransformError(f"the GitHub {self.kind} payload has no {_dotted(path)}")
        return value

    def text(self, *path: str | int) -> str:
        return str(self.require(*path))

    def time(self, *paths: Sequence[str]) -> str:
        """The first of ``paths`` present, else the CloudEvent's time (when it was sent)."""
        for path in paths:
            value = dig(self.data, *path)
            if value not in (None, ""):
                return _utc(value, _dotted(path))
        if self.event.get("time"):
            return _utc(self.event["time"], "time")
        missing = " or ".join(_dotted(path) for path in paths)
        raise TransformError(f"the GitHub {self.kind} payload has no {missing} "
                             "and the event has no time")

    def commits(self, value: Any, field: str) -> list[dict[str, str]] | None:
        """``[{id, timestamp}]`` oldest first, or None where the payload lists none."""
        if not isinstance(value, list):
            return None  # a pull request's `commits` is a count, not a list
        commits = []
        for index, item in enumerate(value):
            sha = dig(item, "id") or dig(item, "sha")
            if not sha:
                raise TransformError(f"the GitHub {self.kind} payload has no {field}[{index}].id")
            when = _utc(dig(item, "timestamp"), f"{field}[{index}].timestamp")
            commits.append({"id": str(sha), "timestamp": when})
        # Stable: commits with the same second keep the payload's (topological) order.
        return sorted(commits, key=lambda commit: parse_rfc3339(commit["timestamp"]))

    def repository(self) -> dict[str, str]:
        return {"id": self.repo_id, "source": self.repo_url}

    def emit(self, name: str, key: Sequence[str], subject_id: str, timestamp: str,
             content: Mapping[str, Any], custom: Mapping[str, Any]) -> CDEvent:
        return new_cdevent(
            name, key=(NAME, self.kind, *key), source=self.event["source"], timestamp=timestamp,
            subject_id=subject_id, subject_source=self.repo_url, content=content,
            custom_data={k: v for k, v in custom.items() if v is not None},
        )


def _hook(event: CloudEvent, kind: str) -> _Hook:
    data = json_data(event)
    if not event.get("source"):
        raise TransformError("the event has no source")
    # GitHubSource and the native endpoint both set the source to the repository's web URL,
    # so a payload without `repository` still says which repository it is about.
    url = dig_text(data, "repository", "html_url") or event["source"]
    parts = url_parts(str(url))
    repo_id = dig_text(data, "repository", "full_name") or (parts.path.strip("/") if parts else "")
    if not repo_id:
        raise TransformError(f"the GitHub {kind} payload has no repository.full_name")
    return _Hook(event, kind, data, str(url), str(repo_id))


# --- changes -------------------------------------------------------------------------------------


def _push(hook: _Hook) -> list[CDEvent]:
    ref, after = hook.text("ref"), hook.text("after")
    # Tags are releases, not changes; a deleted branch brings no code anywhere.
    if not ref.startswith("refs/heads/") or hook.get("deleted") is True or after == _NO_COMMIT:
        return []
    branch = ref.removeprefix("refs/heads/")
    default_branch = hook.get("repository", "default_branch") or hook.get(
        "repository", "master_branch")
    if not default_branch:
        raise TransformError("the GitHub push payload has no repository.default_branch")
    commits = hook.commits(hook.get("commits"), "commits")
    timestamp = _push_time(hook, commits)
    custom = {"repository": hook.repo_url, "branch": branch, "headSha": after,
              "before": hook.get("before"), "commits": commits, "push": True}
    name = "change.merged" if branch == default_branch else "change.updated"
    return [hook.emit(name, (hook.repo_url, ref, after), f"{hook.repo_url}/commit/{after}",
                      timestamp, {"repository": hook.repository()}, custom)]


def _push_time(hook: _Hook, commits: list[dict[str, str]] | None) -> str:
    head_time = hook.get("head_commit", "timestamp")
    if head_time:
        return _utc(head_time, "head_commit.timestamp")
    if commits:
        return commits[-1]["timestamp"]
    return hook.time(("head_commit", "timestamp"), ("commits",))


def _change_data(hook: _Hook, pull: dict[str, Any], merge_sha: Any = None) -> dict[str, Any]:
    return {
        "repository": hook.repo_url,
        "branch": dig(pull, "base", "ref"),
        "headBranch": dig(pull, "head", "ref"),
        "headSha": dig(pull, "head", "sha"),
        "mergeCommitSha": merge_sha,
        "commits": hook.commits(hook.get("commits"), "commits")
        or hook.commits(pull.get("commits"), "pull_request.commits"),
        "number": hook.get("number") or pull.get("number"),
    }


def _pull_request(hook: _Hook) -> list[CDEvent]:
    action = hook.text("action")
    if action not in _PULL_REQUEST_ACTIONS:
        return []  # labels, assignees, review requests: not a change to the code
    pull: dict[str, Any] = hook.require("pull_request")
    url = hook.text("pull_request", "html_url")
    predicate, timestamp, key = _pull_request_fact(hook, action, url)
    content: dict[str, Any] = {"repository": hook.repository()}
    title = pull.get("title")
    if predicate == "created" and isinstance(title, str) and title:
        content["description"] = title
    merge_sha = pull.get("merge_commit_sha") if predicate == "merged" else None
    return [hook.emit(f"change.{predicate}", key, url, timestamp, content,
                      _change_data(hook, pull, merge_sha))]


def _pull_request_fact(hook: _Hook, action: str, url: str) -> tuple[str, str, tuple[str, ...]]:
    """The change predicate, when it happened and the natural key of that fact."""
    if action == "opened":
        return "created", hook.time(("pull_request", "created_at")), (url, "created")
    if action != "closed":
        when = hook.time(("pull_request", "updated_at"))
        head = str(hook.get("pull_request", "head", "sha") or "")
        return "updated", when, (url, "updated", action, head, when)
    # GitHub sets `merge_commit_sha` (a test merge) on open and unmerged PRs too: only
    # `merged` says whether the code landed, and guessing would invent or lose a change.
    merged = hook.require("pull_request", "merged")
    if not isinstance(merged, bool):
        raise TransformError(f"pull_request.merged is not a boolean: {merged!r}")
    if merged:
        when = hook.time(("pull_request", "merged_at"), ("pull_request", "closed_at"))
        return "merged", when, (url, "merged")
    when = hook.time(("pull_request", "closed_at"))
    return "abandoned", when, (url, "abandoned", when)  # closed, reopened, closed: two facts


def _pull_request_review(hook: _Hook) -> list[CDEvent]:
    if hook.text("action") != "submitted":
        return []
    pull: dict[str, Any] = hook.require("pull_request")
    url = hook.text("pull_request", "html_url")
    timestamp = hook.time(("review", "submitted_at"))
    return [hook.emit("change.reviewed", (url, "reviewed", hook.text("review", "id")), url,
                      timestamp, {"repository": hook.repository()}, _change_data(hook, pull))]


# --- deployments ---------------------------------------------------------------------------------


def _deployment_status(hook: _Hook) -> list[CDEvent]:
    # Only success is a deployment: a failed or errored deploy changed nothing that runs.
    if hook.text("deployment_status", "state") != "success":
        return []
    sha = hook.text("deployment", "sha")
    environment = hook.get("deployment", "environment") or hook.text(
        "deployment_status", "environment")
    service = hook.get("repository", "name") or hook.repo_id.rsplit("/", 1)[-1]
    # purl's github type is case-insensitive and canonically lowercase.
    artifact = f"pkg:github/{hook.repo_id.lower()}@{sha}"
    timestamp = hook.time(("deployment_status", "created_at"),
                          ("deployment_status", "updated_at"))
    # One deployment is one fact however many `success` statuses report it.
    key = (hook.repo_url, hook.text("deployment", "id"))
    content = {"environment": {"id": str(environment)}, "artifactId": artifact}
    return [hook.emit("service.deployed", key, str(service), timestamp, content,
                      {"revision": sha, "repository": hook.repo_url})]


# --- incidents -----------------------------------------------------------------------------------


def _label_names(hook: _Hook) -> list[str]:
    labels = hook.get("issue", "labels")
    names = (dig(label, "name") if isinstance(label, dict) else label
             for label in (labels if isinstance(labels, list) else []))
    return [name for name in names if isinstance(name, str)]


def _labelled(names: list[str], prefix: str) -> str | None:
    for name in names:
        if name.lower().startswith(prefix) and name[len(prefix):].strip():
            return name[len(prefix):].strip()
    return None


def _issues(hook: _Hook) -> list[CDEvent]:
    action = hook.text("action")
    hook.require("issue", "html_url")
    if not any(name.lower() in INCIDENT_LABELS for name in _label_names(hook)):
        return []
    created = ("issue", "created_at")
    if action == "opened":
        return [_incident(hook, "detected", hook.time(created))]
    if action == "reopened":
        # The reopening is what updated the issue last: updated_at is when it happened.
        return [_incident(hook, "detected", hook.time(("issue", "updated_at")))]
    if action == "closed":
        return [_incident(hook, "resolved", hook.time(("issue", "closed_at")))]
    if action == "labeled" and str(hook.get("label", "name")).lower() in INCIDENT_LABELS:
        return _labelled_incident(hook)
    return []


def _labelled_incident(hook: _Hook) -> list[CDEvent]:
    created = hook.time(("issue", "created_at"))
    if hook.get("issue", "state") == "closed":
        # Labelled after the fact (e.g. in a post-mortem): the issue's life is the incident's.
        return [_incident(hook, "detected", created),
                _incident(hook, "resolved", hook.time(("issue", "closed_at")))]
    # Labelling updates the issue, so updated_at is when it became an incident; unlike the
    # delivery time it is the same on every redelivery.
    labelled = hook.time(("issue", "updated_at"))
    if parse_rfc3339(labelled) - parse_rfc3339(created) <= _LABELLED_AT_CREATION:
        labelled = created  # the `labeled` twin of `opened`: same detection, same id
    return [_incident(hook, "detected", labelled)]


def _incident(hook: _Hook, predicate: str, timestamp: str) -> CDEvent:
    url = hook.text("issue", "html_url")
    names = _label_names(hook)
    service = _labelled(names, SERVICE_LABEL) or hook.get("repository", "name") or (
        hook.repo_id.rsplit("/", 1)[-1])
    content: dict[str, Any] = {
        "environment": {"id": _labelled(names, ENVIRONMENT_LABEL) or DEFAULT_ENVIRONMENT},
        "service": {"id": str(service)},
    }
    title = hook.get("issue", "title")
    title = title if isinstance(title, str) and title else None
    if title:
        content["description"] = title
    custom = {"url": url, "severity": _labelled(names, SEVERITY_LABEL), "title": title}
    return hook.emit(f"incident.{predicate}", (url, predicate, timestamp), url, timestamp,
                     content, custom)


# --- pipelines -----------------------------------------------------------------------------------


def _workflow_run(hook: _Hook) -> list[CDEvent]:
    predicate = _WORKFLOW_RUN_PREDICATES.get(hook.text("action"))
    if predicate is None:
        return []
    url = hook.text("workflow_run", "html_url")
    attempt = hook.get("workflow_run", "run_attempt")
    # A re-run keeps the run's id and URL: each attempt is a pipeline run of its own.
    subject_id = f"{url}/attempts/{attempt}" if attempt else url
    # Runs of workflows without a `name:` have an empty name; the workflow then has its path.
    name = (hook.get("workflow_run", "name") or hook.get("workflow", "name")
            or hook.get("workflow_run", "path") or hook.get("workflow", "path") or "")
    content: dict[str, Any] = {"pipelineName": str(name), "url": url}
    if predicate == "queued":
        timestamp = hook.time(("workflow_run", "created_at"))
    elif predicate == "started":
        timestamp = hook.time(("workflow_run", "run_started_at"), ("workflow_run", "updated_at"))
    else:
        timestamp = hook.time(("workflow_run", "updated_at"))
        content.update(_outcome(hook.text("workflow_run", "conclusion")))
    custom = {"revision": hook.get("workflow_run", "head_sha"), "repository": hook.repo_url}
    return [hook.emit(f"pipelinerun.{predicate}", (subject_id, predicate), subject_id,
                      timestamp, content, custom)]


def _outcome(conclusion: str) -> dict[str, str]:
    outcome = _WORKFLOW_OUTCOMES.get(conclusion, "error")
    if outcome in ("success", "cancel"):
        return {"outcome": outcome}
    return {"outcome": outcome, "errors": f"workflow run concluded {conclusion}"}


# --- dispatch ------------------------------------------------------------------------------------

_HANDLERS: dict[str, Callable[[_Hook], list[CDEvent]]] = {
    "push": _push,
    "pull_request": _pull_request,
    "pull_request_review": _pull_request_review,
    "deployment_status": _deployment_status,
    "issues": _issues,
    "workflow_run": _workflow_run,
}


def transform_github(event: CloudEvent) -> list[CDEvent]:
    """CDEvents for one GitHub webhook; events that say nothing about delivery give ``[]``."""
    event_type = str(event.get("type", ""))
    if not event_type.startswith(TYPE_PREFIX):
        raise TransformError(f"not a GitHub event: type {event_type!r} lacks {TYPE_PREFIX!r}")
    kind = event_type.removeprefix(TYPE_PREFIX)
    handler = _HANDLERS.get(kind)
    return handler(_hook(event, kind)) if handler else []


TRANSFORMERS = [
    Transformer(NAME, transform_github,
                "GitHub webhooks: pushes and pull requests as changes, successful deployment "
                "statuses as deployments, issues labelled incident as incidents, workflow runs "
                "as pipeline runs"),
]
