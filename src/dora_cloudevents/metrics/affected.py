"""Which partitions a batch of new facts affects, and from when (what linking recomputes).

A new or changed deployment or incident affects its partition from its own time (linking
widens that to any earlier deployment an incident moves off or onto). A commit, a merge
commit or a pull request's head-branch push affects the first deployment of each partition
whose revision line reached past the commit (the one that shipped, or now ships, it) and
every deployment whose revision the commit is; an artifact link every deployment of that
artifact. Everything before is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from dora_cloudevents.metrics.linking import Line, Partition, chunks, grouped
from dora_cloudevents.store.schema import changes, commits, deployments


@dataclass
class Touched:
    """What a batch changed."""

    since: dict[Partition, datetime] = field(default_factory=dict)
    incidents: set[str] = field(default_factory=set)
    shas: set[str] = field(default_factory=set)  # new commits, merge commits (old and new)
    artifacts: set[str] = field(default_factory=set)
    changes: set[str] = field(default_factory=set)
    branches: set[Line] = field(default_factory=set)

    def partition_from(self, partition: Partition, moment: datetime) -> None:
        known = self.since.get(partition)
        self.since[partition] = moment if known is None else min(known, moment)


def affected(connection: Connection, touched: Touched) -> dict[Partition, datetime]:
    """Each affected partition with the earliest time from which it must be re-linked."""
    found = Touched(since=dict(touched.since))
    shas = set(touched.shas) | _pull_request_commits(connection, touched.changes)
    for row in _rows(connection, _earliest_on_lines(connection, shas)):
        found.partition_from((row.service, row.environment), row.time)
    for row in _revisions(connection, shas):
        found.partition_from((row.service, row.environment), row.time)
    for chunk in chunks(sorted(touched.artifacts)):
        for row in connection.execute(_earliest().where(deployments.c.artifact_key.in_(chunk))
                                      .group_by(deployments.c.service,
                                                deployments.c.environment)):
            found.partition_from((row.service, row.environment), row.time)
    return found.since


def _earliest() -> Any:
    table = deployments.c
    return select(table.service, table.environment, func.min(table.time).label("time"))


def _pull_request_commits(connection: Connection, keys: set[str]) -> set[str]:
    """The merge commits of the changes, and the commits pushed to their head branches
    (their owner may have just become known)."""
    found: set[str] = set()
    branches: set[Line] = set()
    for chunk in chunks(sorted(keys)):
        for row in connection.execute(select(changes.c.repository, changes.c.head_branch,
                                             changes.c.merge_commit_sha, changes.c.kind)
                                      .where(changes.c.key.in_(chunk))):
            if row.merge_commit_sha:
                found.add(row.merge_commit_sha)
            if row.kind == "pull_request" and row.repository and row.head_branch:
                branches.add((row.repository, row.head_branch))
    for repository, chunk in grouped(branches):
        found.update(connection.execute(select(commits.c.sha).where(
            commits.c.repository == repository, commits.c.branch.in_(chunk))).scalars())
    return found


def _earliest_on_lines(connection: Connection, shas: set[str]) -> dict[Line, datetime]:
    """The earliest timestamp of these commits on each line (repository, branch)."""
    earliest: dict[Line, datetime] = {}
    for chunk in chunks(sorted(shas)):
        for row in connection.execute(select(commits.c.repository, commits.c.branch,
                                             func.min(commits.c.timestamp).label("time"))
                                      .where(commits.c.sha.in_(chunk))
                                      .group_by(commits.c.repository, commits.c.branch)):
            line = (row.repository, row.branch)
            earliest[line] = min(earliest.get(line, row.time), row.time)
    return earliest


def _rows(connection: Connection, lines: dict[Line, datetime]) -> Iterable[Any]:
    """Per partition, the first deployment whose line had reached past a commit's time."""
    table = deployments.c
    by_repository: dict[str, dict[str, datetime]] = {}
    for (repository, branch), moment in lines.items():
        by_repository.setdefault(repository, {})[branch] = moment
    for repository, branches in sorted(by_repository.items()):
        query = (select(table.service, table.environment, table.branch, table.revision_time,
                        table.time)
                 .where(table.repository == repository,
                        table.revision_time >= min(branches.values()),
                        table.branch.in_(sorted(branches))))
        for row in connection.execute(query):
            if row.revision_time >= branches[row.branch]:
                yield row


def _revisions(connection: Connection, shas: set[str]) -> list[Any]:
    """Deployments whose revision is one of ``shas`` or abbreviates it."""
    table = deployments.c
    by_prefix: dict[str, list[str]] = {}
    for sha in shas:
        by_prefix.setdefault(sha[:7], []).append(sha)
    found = []
    for chunk in chunks(sorted(by_prefix)):
        for row in connection.execute(select(table.service, table.environment, table.time,
                                             table.revision_sha)
                                      .where(table.revision_prefix.in_(chunk))):
            if any(sha.startswith(row.revision_sha) for sha in by_prefix[row.revision_sha[:7]]):
                found.append(row)
    return found
