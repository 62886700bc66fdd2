"""Which partitions a batch of new facts affects, and from when (what linking recomputes).

A new or changed deployment or incident affects its partition from its own time (linking
widens that to any earlier deployment an incident moves off or onto); so does a commit for
every deployment whose revision it is, and an artifact link for every deployment of that
artifact. A commit, a merge commit or a pull request's head-branch push otherwise changes
only what one deployment per partition shipped: the first whose line had shipped up to
the commit's time (no watermark moves: they follow revisions, not commits).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from dora_cloudevents.metrics.chunking import chunks, grouped
from dora_cloudevents.metrics.linking import Line, Partition
from dora_cloudevents.metrics.links import linking_deployments
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
    linked: set[str] = field(default_factory=set)  # events (or chains) with new links or refs

    def partition_from(self, partition: Partition, moment: datetime) -> None:
        known = self.since.get(partition)
        self.since[partition] = moment if known is None else min(known, moment)


@dataclass
class Affected:
    """Partitions to re-link from a time, and deployments whose shipped changes alone moved."""

    since: dict[Partition, datetime]
    reship: dict[Partition, set[int]]


def affected(connection: Connection, touched: Touched) -> Affected:
    """Each affected partition with the earliest time from which it must be re-linked, and
    the deployments that ship a new commit (or a commit whose owner may have changed)."""
    found = Touched(since=dict(touched.since))
    shas = set(touched.shas) | _pull_request_commits(connection, touched.changes)
    reship: dict[Partition, set[int]] = {}
    for partition, seq in _shipping(connection, _commit_times(connection, shas)):
        reship.setdefault(partition, set()).add(seq)
    for row in _revisions(connection, shas):
        found.partition_from((row.service, row.environment), row.time)
    _from_earliest(connection, found, deployments.c.artifact_key, touched.artifacts)
    _from_earliest(connection, found, deployments.c.cdevent_seq,
                   linking_deployments(connection, touched.linked, touched.artifacts))
    return Affected(found.since, reship)


def _from_earliest(connection: Connection, found: Touched, column: Any, keys: set[Any]
                   ) -> None:
    """Re-link each partition from its earliest deployment whose ``column`` is in ``keys``."""
    table = deployments.c
    for chunk in chunks(sorted(keys)):
        for row in connection.execute(
                select(table.service, table.environment, func.min(table.time).label("time"))
                .where(column.in_(chunk)).group_by(table.service, table.environment)):
            found.partition_from((row.service, row.environment), row.time)


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


def _commit_times(connection: Connection, shas: set[str]) -> dict[Line, list[datetime]]:
    """The timestamps of these commits on each line (repository, branch), sorted."""
    times: dict[Line, list[datetime]] = {}
    for chunk in chunks(sorted(shas)):
        for row in connection.execute(select(commits.c.repository, commits.c.branch,
                                             commits.c.timestamp)
                                      .where(commits.c.sha.in_(chunk))):
            times.setdefault((row.repository, row.branch), []).append(row.timestamp)
    return {line: sorted(moments) for line, moments in times.items()}


def _shipping(connection: Connection, lines: dict[Line, list[datetime]]
              ) -> Iterator[tuple[Partition, int]]:
    """For each commit and partition, the deployment that ships it: the first on its line
    whose watermark (how far the line had shipped after it) reached the commit's time."""
    table = deployments.c
    for (repository, branch), moments in sorted(lines.items()):
        query = (select(table.service, table.environment, table.cdevent_seq, table.watermark)
                 .where(table.repository == repository, table.branch == branch,
                        table.watermark >= moments[0])
                 .order_by(table.service, table.environment, table.time, table.cdevent_seq))
        chains: dict[Partition, list[Any]] = {}
        for row in connection.execute(query):
            chains.setdefault((row.service, row.environment), []).append(row)
        for partition, chain in chains.items():
            marks = [row.watermark for row in chain]  # never decreasing along the chain
            for position in {bisect_left(marks, moment) for moment in moments}:
                if position < len(chain):
                    yield partition, chain[position].cdevent_seq


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
