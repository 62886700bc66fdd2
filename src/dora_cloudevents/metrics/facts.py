"""Reading the facts the metrics need out of one CDEvent (spec 0.4.x or 0.5.x)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from dora_cloudevents.events import CDEvent, parse_rfc3339

_SHA = re.compile(r"[0-9a-f]{7,40}\Z")
_TYPE = re.compile(r"dev\.cdevents\.([a-z]+)\.([a-z]+)\.")
DEPLOYMENT_KINDS = {"deployed": "deployed", "upgraded": "upgraded", "rolledback": "rolledback"}


def event_kind(cdevent: CDEvent) -> tuple[str, str]:
    """(subject, predicate) of a CDEvent type, e.g. ("service", "deployed")."""
    match = _TYPE.match(cdevent["context"]["type"])
    return (match.group(1), match.group(2)) if match else ("", "")


def artifact_key(artifact_id: str | None) -> str | None:
    """A purl without qualifiers and subpath, lower-cased: what two artifacts compare on."""
    if not artifact_id:
        return None
    return artifact_id.split("?", 1)[0].split("#", 1)[0].lower()


def commit_sha(value: Any) -> str | None:
    """``value`` lower-cased when it looks like a full or abbreviated (7+) git SHA."""
    if isinstance(value, str) and _SHA.match(value.lower()):
        return value.lower()
    return None


def _time(value: Any) -> datetime | None:
    try:
        return parse_rfc3339(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _custom(cdevent: CDEvent) -> dict[str, Any]:
    custom = cdevent.get("customData")
    return custom if isinstance(custom, dict) else {}


def _content(cdevent: CDEvent) -> dict[str, Any]:
    content = cdevent["subject"].get("content")
    return content if isinstance(content, dict) else {}


def _ref_id(value: Any) -> str | None:
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


# Which end of each kind of CDEvents link names the other event (links spec, 0.4+).
_LINK_ENDS = {"PATH": "from", "END": "from", "RELATION": "target"}


def linked_event_ids(cdevent: CDEvent) -> list[str]:
    """The context ids of the events ``cdevent`` links to, and ``chain:<chainId>``."""
    context = cdevent["context"]
    found = []
    links = context.get("links")
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict):
            continue
        end = link.get(_LINK_ENDS.get(str(link.get("linkType")), ""))
        target = end.get("contextId") if isinstance(end, dict) else None
        if isinstance(target, str) and target:
            found.append(target)
    chain = chain_node(cdevent)
    if chain is not None:
        found.append(chain)
    return found


def chain_node(cdevent: CDEvent) -> str | None:
    """``chain:<chainId>``: the node every event of one chain is linked through."""
    chain = cdevent["context"].get("chainId")
    return f"chain:{chain}" if isinstance(chain, str) and chain else None


@dataclass(frozen=True)
class DeploymentFact:
    service: str
    environment: str
    kind: str
    time: datetime
    artifact_id: str | None
    revision: str | None


def purl_version(artifact_id: str | None) -> str | None:
    """The version of a purl (``pkg:github/o/r@<sha>`` -> ``<sha>``), percent-decoded."""
    if not artifact_id or "@" not in artifact_id:
        return None
    return unquote(artifact_id.split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[1]) or None


def deployment_fact(cdevent: CDEvent, predicate: str) -> DeploymentFact:
    content, custom = _content(cdevent), _custom(cdevent)
    # DESIGN §6: the revision, else the artifact's version when it is a commit SHA.
    revision = custom.get("revision") or custom.get("commit") or commit_sha(
        purl_version(content.get("artifactId")))
    return DeploymentFact(
        service=cdevent["subject"]["id"],
        environment=_ref_id(content.get("environment")) or "unknown",
        kind=DEPLOYMENT_KINDS[predicate],
        time=parse_rfc3339(cdevent["context"]["timestamp"]),
        artifact_id=content.get("artifactId"),
        revision=str(revision) if revision else None,
    )


@dataclass(frozen=True)
class CommitFact:
    sha: str
    timestamp: datetime


@dataclass
class ChangeFact:
    key: str
    predicate: str
    time: datetime
    repository: str | None
    kind: str
    title: str | None
    branch: str | None
    head_branch: str | None
    merge_commit_sha: str | None
    on_default_branch: bool
    commits: list[CommitFact] = field(default_factory=list)


def _repository(cdevent: CDEvent, custom: dict[str, Any]) -> str | None:
    repository = custom.get("repository")
    if isinstance(repository, str):
        return repository
    content_repository = _content(cdevent).get("repository")
    if isinstance(content_repository, dict):
        source = content_repository.get("source")
        return str(source) if isinstance(source, str) else _ref_id(content_repository)
    return None


def change_fact(cdevent: CDEvent, predicate: str) -> ChangeFact:
    custom = _custom(cdevent)
    is_push = bool(custom.get("push"))
    commits = [CommitFact(sha, moment) for item in custom.get("commits") or []
               if isinstance(item, dict)
               and (sha := commit_sha(item.get("id"))) is not None
               and (moment := _time(item.get("timestamp"))) is not None]
    head_branch = custom.get("headBranch")
    squash = commit_sha(custom.get("squashCommitSha"))
    if squash and head_branch and predicate == "merged":
        # A squash commit lands on the target branch but is the PR's own work: recording it
        # with the PR's branch commits makes it belong to the PR when a deployment ships it.
        commits.append(CommitFact(squash, parse_rfc3339(cdevent["context"]["timestamp"])))
    return ChangeFact(
        key=cdevent["subject"]["id"],
        predicate=predicate,
        time=parse_rfc3339(cdevent["context"]["timestamp"]),
        repository=_repository(cdevent, custom),
        kind="push" if is_push else ("pull_request" if head_branch else "other"),
        title=_content(cdevent).get("description") or custom.get("title"),
        branch=custom.get("branch"),
        head_branch=head_branch,
        merge_commit_sha=commit_sha(custom.get("mergeCommitSha")),
        # A push that merged (to the default branch) puts its commits on the main line.
        on_default_branch=is_push and predicate == "merged",
        commits=commits,
    )


@dataclass(frozen=True)
class IncidentFact:
    key: str
    predicate: str
    time: datetime
    service: str | None
    environment: str | None
    artifact_id: str | None
    description: str | None


def incident_fact(cdevent: CDEvent, predicate: str) -> IncidentFact:
    content = _content(cdevent)
    return IncidentFact(
        key=cdevent["subject"]["id"],
        predicate=predicate,
        time=parse_rfc3339(cdevent["context"]["timestamp"]),
        service=_ref_id(content.get("service")),
        environment=_ref_id(content.get("environment")),
        artifact_id=content.get("artifactId"),
        description=content.get("description"),
    )


def artifact_change(cdevent: CDEvent) -> tuple[str, str] | None:
    """(artifact key, change id) of an artifact.packaged/published naming its change."""
    change = _ref_id(_content(cdevent).get("change"))
    key = artifact_key(cdevent["subject"]["id"])
    return (key, change) if change and key else None
