"""Linking one partition (service, environment) from a time on: shipped changes, failures,
incidents, rework.

Everything derived for the deployments at or after the partition's previous deployment
before ``since`` is recomputed from the facts as they stand, so the result does not depend
on the order in which events arrived (DESIGN.md §6, docs/metrics.md), and what came before
is read back from what earlier linking stored (each deployment's line watermark), so the
cost follows the new events, not the history. metrics/affected.py decides ``since``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    and_,
    bindparam,
    case,
    delete,
    func,
    or_,
    select,
    update,
)

from dora_cloudevents.metrics.chunking import chunks, grouped
from dora_cloudevents.metrics.durations import duration_seconds
from dora_cloudevents.metrics.expressions import unindexed
from dora_cloudevents.metrics.links import linked_changes
from dora_cloudevents.metrics.rollups import DailyCounts, lead_bucket
from dora_cloudevents.store.schema import (
    artifact_changes,
    changes,
    commits,
    deployment_changes,
    deployments,
    first_deployments,
    incidents,
)

Partition = tuple[str, str]
Line = tuple[str, str]  # (repository, branch)
@dataclass
class Deployment:
    seq: int
    kind: str
    time: datetime
    artifact_key: str | None
    revision_sha: str | None
    stored: tuple[Any, ...] = ()  # the derived columns as last stored, to write only changes
    repository: str | None = None
    branch: str | None = None
    revision_time: datetime | None = None
    watermark: datetime | None = None
    failed_by: set[str] = field(default_factory=set)
    recovered_at: datetime | None = None
    rework: bool = False
    shipped: set[str] = field(default_factory=set)

    @property
    def line(self) -> Line | None:
        if self.revision_time is None or self.branch is None:
            return None
        return self.repository or "", self.branch

    def derived(self) -> tuple[Any, ...]:
        """The derived columns, in the order of ``stored`` (``FAILED``, ``REWORK``: flags)."""
        return (self.repository, self.branch, self.revision_time, self.watermark,
                bool(self.failed_by), _failed_by(self), self.recovered_at, self.rework)


FAILED, REWORK = 4, 7  # positions in Deployment.derived() and .stored


@dataclass
class Incident:
    key: str
    detected_at: datetime
    resolved_at: datetime | None
    artifact_key: str | None
    stored: tuple[Any, ...]  # derived() as last stored, to write only changes
    deployment: Deployment | None = None  # when it is one of the re-linked range's
    deployment_seq: int | None = None

    def derived(self) -> tuple[Any, ...]:
        """(resolved_at, deployment_seq, restore_seconds): the columns linking derives.
        The seconds follow detected_at too, which a late, earlier detection moves."""
        return (self.resolved_at, self.deployment_seq,
                duration_seconds(self.detected_at, self.resolved_at))


class Expand(Exception):
    """Linking reaches a deployment before the re-linked range: start earlier."""

    def __init__(self, time: datetime) -> None:
        self.time = time


def relink(connection: Connection, partition: Partition, since: datetime,
           window: timedelta, touched_incidents: set[str], counts: DailyCounts) -> None:
    """Re-link ``partition`` for everything at or after ``since`` (see the module doc)."""
    while True:
        start = _start(connection, partition, since)
        chain = _deployments(connection, partition, start)
        known = _incidents(connection, partition, start, chain)
        try:
            _attribute(connection, partition, known, chain, start, window, touched_incidents)
        except Expand as earlier:
            since = earlier.time
            continue
        break
    _resolve_revisions(connection, chain)
    lines = {line for d in chain if (line := d.line) is not None}
    _ship_changes(connection, chain, _watermarks(connection, partition, lines, start))
    _mark_rollbacks(chain)
    _recovery(chain, known)
    _mark_rework(chain, known)
    _store(connection, partition, chain, known, counts)


def _start(connection: Connection, partition: Partition, since: datetime) -> datetime:
    """The time of the deployment before ``since`` (a rollback at ``since`` fails it, an
    incident after it may be its), else ``since``."""
    service, environment = partition
    before = connection.execute(select(func.max(deployments.c.time)).where(
        deployments.c.service == service, deployments.c.environment == environment,
        deployments.c.time < since)).scalar()
    return _aware(before) or since


def _deployments(connection: Connection, partition: Partition, start: datetime
                 ) -> list[Deployment]:
    service, environment = partition
    table = deployments.c
    query = (select(table.cdevent_seq, table.kind, table.time, table.artifact_key,
                    table.revision_sha, table.repository, table.branch, table.revision_time,
                    table.watermark, table.failed, table.failed_by, table.recovered_at,
                    table.rework)
             .where(table.service == service, table.environment == environment,
                    table.time >= start)
             .order_by(table.time, table.cdevent_seq))
    return [Deployment(row.cdevent_seq, row.kind, row.time, row.artifact_key, row.revision_sha,
                       stored=tuple(row[5:]))
            for row in connection.execute(query)]


def _sha_matches(column: Any, sha: str) -> Any:
    # A full SHA matches itself; an abbreviated one every SHA it prefixes. The range keeps
    # the index usable on both back-ends ("g" sorts after every hex digit).
    return (column == sha) if len(sha) == 40 else and_(column >= sha, column < sha + "g")


def _matching(connection: Connection, columns: Sequence[Any], column: Any,
              shas: set[str]) -> list[Row[Any, Any]]:
    """Rows whose ``column`` matches any of ``shas`` (full SHAs in chunks, prefixes apart)."""
    full = sorted(sha for sha in shas if len(sha) == 40)
    found = [row for chunk in chunks(full) for row in connection.execute(
        select(*columns).where(column.in_(chunk)))]
    for prefix in sorted(shas.difference(full)):
        found.extend(connection.execute(select(*columns).where(_sha_matches(column, prefix))))
    return found


def _resolve_revisions(connection: Connection, chain: list[Deployment]) -> None:
    """Find each deployment's revision commit: its repository, branch and time."""
    wanted = {d.revision_sha for d in chain if d.revision_sha is not None}
    if not wanted:
        return
    commit_rows = _matching(connection, (commits.c.repository, commits.c.branch, commits.c.sha,
                                         commits.c.timestamp, commits.c.on_default_branch),
                            commits.c.sha, wanted)
    merge_rows = _matching(connection, (changes.c.key, changes.c.repository,
                                        changes.c.merge_commit_sha),
                           changes.c.merge_commit_sha, wanted)
    for deployment in chain:
        sha = deployment.revision_sha
        if sha is None:
            continue
        rows = [row for row in commit_rows if row.sha.startswith(sha)]
        if rows:
            # The main line wins over a feature branch the same commit was pushed to.
            best = max(rows, key=lambda row: (row.on_default_branch, row.timestamp))
            deployment.repository, deployment.branch = best.repository, best.branch
            deployment.revision_time = best.timestamp
            continue
        merged = sorted((row for row in merge_rows if row.merge_commit_sha.startswith(sha)),
                        key=lambda row: row.key)
        if merged:
            deployment.repository = merged[0].repository
            deployment.shipped.add(merged[0].key)


def _watermarks(connection: Connection, partition: Partition, lines: set[Line],
                start: datetime, seq: int | None = None) -> dict[Line, datetime]:
    """Each line's watermark as the partition's last deployment on it before ``start``
    (and, at ``start``, before deployment ``seq``) left it: the latest revision time any
    earlier deployment shipped up to."""
    service, environment = partition
    table = deployments.c
    earlier = table.time < start
    if seq is not None:
        earlier = or_(earlier, and_(table.time == start, table.cdevent_seq < seq))
    found: dict[Line, datetime] = {}
    for repository, branch in sorted(lines):
        watermark = connection.execute(
            select(table.watermark).where(
                table.service == service, table.environment == environment,
                table.repository == repository, table.branch == branch, earlier,
                table.watermark.is_not(None))
            .order_by(table.time.desc(), table.cdevent_seq.desc()).limit(1)).scalar()
        if watermark is not None:
            found[(repository, branch)] = _aware(watermark)  # type: ignore[assignment]
    return found


def reship(connection: Connection, partition: Partition, seqs: set[int],
           counts: DailyCounts) -> None:
    """Re-derive what these deployments shipped, and only that: a commit (or its owner)
    that arrived late changes what the deployment whose line range holds it shipped, but
    no watermark, failure or incident (section 4.1 of docs/metrics.md)."""
    table = deployments.c
    found: list[Deployment] = []
    for chunk in chunks(sorted(seqs)):
        found.extend(Deployment(row.cdevent_seq, row.kind, row.time, row.artifact_key,
                                row.revision_sha)
                     for row in connection.execute(
                         select(table.cdevent_seq, table.kind, table.time, table.artifact_key,
                                table.revision_sha).where(table.cdevent_seq.in_(chunk))))
    _resolve_revisions(connection, found)
    for deployment in found:
        line = deployment.line
        watermarks = {} if line is None else _watermarks(
            connection, partition, {line}, deployment.time, deployment.seq)
        _ship_changes(connection, [deployment], watermarks)
    _store_shipped(connection, partition, found, counts)


def _ship_changes(connection: Connection, chain: list[Deployment],
                  watermarks: dict[Line, datetime]) -> None:
    """Each deployment ships the commits of its branch up to its revision that no earlier
    deployment of this partition shipped (batched deploys ship several changes)."""
    keys = sorted({d.artifact_key for d in chain if d.artifact_key})
    by_artifact: dict[str, set[str]] = {}
    for chunk in chunks(keys):
        for row in connection.execute(select(artifact_changes.c.artifact_key,
                                             artifact_changes.c.change_key)
                                      .where(artifact_changes.c.artifact_key.in_(chunk))):
            by_artifact.setdefault(row.artifact_key, set()).add(row.change_key)
    lines: set[Line] = {line for d in chain if (line := d.line) is not None}
    shipped_shas: dict[int, tuple[str, list[Row[Any, Any]]]] = {}
    for line in sorted(lines):
        on_line = [d for d in chain if d.line == line]
        since = watermarks.get(line)
        upto = max(d.revision_time for d in on_line if d.revision_time is not None)
        found = _line_commits(connection, line, since, upto)
        times = [row.timestamp for row in found]
        for deployment in on_line:
            assert deployment.revision_time is not None
            if since is None or deployment.revision_time > since:
                low = 0 if since is None else bisect_right(times, since)
                high = bisect_right(times, deployment.revision_time)
                shipped_shas[deployment.seq] = (line[0], found[low:high])
                since = deployment.revision_time
            # else a rollback or redeploy of something already shipped
            deployment.watermark = since
    owners = _owners(connection, shipped_shas.values())
    linked = linked_changes(connection, [deployment.seq for deployment in chain])
    for deployment in chain:
        deployment.shipped.update(by_artifact.get(deployment.artifact_key or "", ()))
        deployment.shipped.update(linked.get(deployment.seq, ()))
        if deployment.seq in shipped_shas:
            repository, rows = shipped_shas[deployment.seq]
            deployment.shipped.update(owners.get((repository, row.sha), row.change_key)
                                      for row in rows)


def _line_commits(connection: Connection, line: Line, since: datetime | None,
                  upto: datetime) -> list[Row[Any, Any]]:
    query = (select(commits.c.sha, commits.c.timestamp, commits.c.change_key)
             .where(commits.c.repository == line[0], commits.c.branch == line[1],
                    commits.c.timestamp <= upto)
             .order_by(commits.c.timestamp, commits.c.sha))
    if since is not None:
        query = query.where(commits.c.timestamp > since)
    return list(connection.execute(query))


def _owners(connection: Connection, shipped: Iterable[tuple[str, list[Row[Any, Any]]]]
            ) -> dict[tuple[str, str], str]:
    """The PR/MR each shipped commit belongs to, if any: the one whose merge (or squash)
    commit it is, else one whose head branch it was pushed to (else the push that brought
    it owns it). Ties between PRs go to the lowest key."""
    wanted = ((repository, row.sha) for repository, rows in shipped for row in rows)
    owner: dict[tuple[str, str], str] = {}
    # Looked up by SHA alone, the repository checked here: given the repository too, the
    # SQLite planner may walk the repository's whole history instead of the SHA index.
    for repository, chunk in grouped(wanted):
        branches: dict[str, set[str]] = {}
        for row in connection.execute(select(commits.c.repository, commits.c.branch,
                                             commits.c.sha).where(commits.c.sha.in_(chunk))):
            if row.repository == repository:
                branches.setdefault(row.branch, set()).add(row.sha)
        for part in chunks(sorted(branches)):
            query = (select(changes.c.head_branch, func.min(changes.c.key).label("key"))
                     .where(changes.c.repository == repository,
                            changes.c.head_branch.in_(part), changes.c.kind == "pull_request")
                     .group_by(changes.c.head_branch))
            for found in connection.execute(query):
                key: str = found.key
                for sha in branches[found.head_branch]:
                    known = owner.get((repository, sha))
                    owner[(repository, sha)] = key if known is None else min(known, key)
        merges: dict[str, str] = {}
        for row in connection.execute(select(changes.c.repository, changes.c.merge_commit_sha,
                                             changes.c.key)
                                      .where(changes.c.merge_commit_sha.in_(chunk))):
            if row.repository == repository:
                known = merges.get(row.merge_commit_sha)
                merges[row.merge_commit_sha] = row.key if known is None else min(known, row.key)
        owner.update({(repository, sha): key for sha, key in merges.items()})
    return owner


def _incidents(connection: Connection, partition: Partition, start: datetime,
               chain: list[Deployment]) -> list[Incident]:
    """The incidents whose attribution or whose effect on rework the re-linked range can
    change: detected in it, open when it starts, attributed to or naming one of its
    deployments."""
    service, environment = partition
    table = incidents.c
    resolved = _resolved(table.last_resolved_at, table.last_detected_at)
    conditions = [table.detected_at >= start,
                  or_(resolved.is_(None), resolved > start)]
    seqs = [d.seq for d in chain]
    artifacts = sorted({d.artifact_key for d in chain if d.artifact_key})
    conditions += [table.deployment_seq.in_(chunk) for chunk in chunks(seqs)]
    conditions += [table.artifact_key.in_(chunk) for chunk in chunks(artifacts)]
    query = (select(table.key, table.detected_at, table.last_detected_at,
                    table.last_resolved_at, table.artifact_key, table.resolved_at,
                    table.deployment_seq, table.restore_seconds)
             .where(table.service == service, table.environment == environment,
                    table.detected_at.is_not(None), or_(*conditions))
             .order_by(table.detected_at, table.key))
    found = []
    for row in connection.execute(query):
        ends = row.last_resolved_at
        if ends is not None and ends < row.last_detected_at:
            ends = None  # detected again after its last resolution: open
        found.append(Incident(row.key, row.detected_at, ends, row.artifact_key,
                              (row.resolved_at, row.deployment_seq, row.restore_seconds)))
    return found


def _resolved(last_resolved: Any, last_detected: Any) -> Any:
    return case((last_resolved < last_detected, None), else_=last_resolved)


def _mark_rollbacks(chain: list[Deployment]) -> None:
    for deployment, following in pairwise(chain):
        if following.kind == "rolledback":
            deployment.failed_by.add("rollback")
            deployment.recovered_at = following.time


def _attribute(connection: Connection, partition: Partition, known: list[Incident],
               chain: list[Deployment], start: datetime, window: timedelta,
               touched: set[str]) -> None:
    """Attribute each incident; raises Expand when that changes a deployment before
    ``start`` (an incident moving off it, or onto it, or changing while on it)."""
    times = [deployment.time for deployment in chain]
    mine = {deployment.seq: deployment for deployment in chain}
    earlier = _earlier_by_artifact(connection, partition, known, start)
    reach: list[int] = []
    for incident in known:
        old = incident.stored[1]
        explicit = _explicit(incident, earlier + chain)
        new: int | None
        if explicit is not None:
            new = explicit.seq
        elif incident.detected_at >= start:
            latest = _latest_before(incident, chain, times, window)
            new = latest.seq if latest else None
        else:
            new = old  # attributed before the range, by rules nothing here changed
        for seq in (old, new):
            if seq is not None and seq not in mine and (old != new or incident.key in touched):
                reach.append(seq)
        incident.deployment_seq = new
        incident.deployment = mine.get(new) if new is not None else None
    if reach:
        first = connection.execute(select(func.min(deployments.c.time)).where(
            deployments.c.cdevent_seq.in_(reach))).scalar_one()
        raise Expand(first)
    for incident in known:
        if incident.deployment is not None:
            incident.deployment.failed_by.add("incident")


def _earlier_by_artifact(connection: Connection, partition: Partition,
                         known: list[Incident], start: datetime) -> list[Deployment]:
    """Deployments before ``start`` with an artifact the incidents name (explicit links)."""
    service, environment = partition
    keys = sorted({incident.artifact_key for incident in known if incident.artifact_key})
    found: list[Deployment] = []
    table = deployments.c
    for chunk in chunks(keys):
        # An artifact names one or two deployments; without statistics SQLite would rather
        # walk the partition's whole history before ``start``.
        query = (select(table.cdevent_seq, table.kind, table.time, table.artifact_key)
                 .where(unindexed(table.service) == service,
                        unindexed(table.environment) == environment,
                        table.artifact_key.in_(chunk), table.time < start))
        found.extend(Deployment(row.cdevent_seq, row.kind, row.time, row.artifact_key, None)
                     for row in connection.execute(query))
    return sorted(found, key=lambda d: (d.time, d.seq))


def _explicit(incident: Incident, chain: list[Deployment]) -> Deployment | None:
    if incident.artifact_key is None:
        return None
    same = [d for d in chain if d.artifact_key == incident.artifact_key]
    before = [d for d in same if d.time <= incident.detected_at]
    return before[-1] if before else (same[0] if same else None)


def _latest_before(incident: Incident, chain: list[Deployment], times: list[datetime],
                   window: timedelta) -> Deployment | None:
    index = bisect_right(times, incident.detected_at) - 1
    if index < 0 or incident.detected_at - chain[index].time > window:
        return None
    return chain[index]


def _recovery(chain: list[Deployment], known: list[Incident]) -> None:
    for deployment in chain:
        mine = [incident for incident in known if incident.deployment is deployment]
        if mine:
            # Recovered when the last of its incidents is resolved; open means not yet.
            resolutions = [incident.resolved_at for incident in mine]
            deployment.recovered_at = (None if None in resolutions
                                       else max(r for r in resolutions if r is not None))


def _mark_rework(chain: list[Deployment], known: list[Incident]) -> None:
    for deployment in chain:
        deployment.rework = deployment.kind == "rolledback" or any(
            incident.detected_at <= deployment.time
            and (incident.resolved_at is None or deployment.time < incident.resolved_at)
            for incident in known)


def _failed_by(deployment: Deployment) -> str | None:
    if not deployment.failed_by:
        return None
    return "both" if len(deployment.failed_by) > 1 else next(iter(deployment.failed_by))


def _store(connection: Connection, partition: Partition, chain: list[Deployment],
           known: list[Incident], counts: DailyCounts) -> None:
    changed = [d for d in chain if d.derived() != d.stored]
    for d in changed:
        _count_flags(counts, partition, d)
    if changed:
        connection.execute(
            update(deployments).where(deployments.c.cdevent_seq == bindparam("b_seq")).values(
                repository=bindparam("b_repository"), branch=bindparam("b_branch"),
                revision_time=bindparam("b_revision_time"), watermark=bindparam("b_watermark"),
                failed=bindparam("b_failed"), failed_by=bindparam("b_failed_by"),
                recovered_at=bindparam("b_recovered"), rework=bindparam("b_rework"),
                recovery_seconds=bindparam("b_recovery_seconds")),
            [{**dict(zip(("b_seq", "b_repository", "b_branch", "b_revision_time", "b_watermark",
                          "b_failed", "b_failed_by", "b_recovered", "b_rework"),
                         (d.seq, *d.derived()), strict=True)),
              "b_recovery_seconds": duration_seconds(d.time, d.recovered_at)} for d in changed])
    moved = [i for i in known if i.derived() != i.stored]
    if moved:
        connection.execute(
            update(incidents).where(incidents.c.key == bindparam("b_key")).values(
                resolved_at=bindparam("b_resolved"), deployment_seq=bindparam("b_deployment"),
                restore_seconds=bindparam("b_restore_seconds")),
            [dict(zip(("b_key", "b_resolved", "b_deployment", "b_restore_seconds"),
                      (i.key, *i.derived()), strict=True)) for i in moved])
    _store_shipped(connection, partition, chain, counts)


def _count_flags(counts: DailyCounts, partition: Partition, deployment: Deployment) -> None:
    """What storing ``deployment`` changes in its day's failed and rework counts."""
    failed, rework = deployment.derived()[FAILED], deployment.derived()[REWORK]
    was_failed, was_rework = deployment.stored[FAILED], deployment.stored[REWORK]
    counts.deployment(partition[1], deployment.time, failed=int(failed) - int(was_failed),
                      rework=int(rework) - int(was_rework))


def _store_shipped(connection: Connection, partition: Partition, chain: list[Deployment],
                   counts: DailyCounts) -> None:
    """Rewrite these deployments' shipped changes; refresh only what moved."""
    service, environment = partition
    table = deployment_changes
    before = {(row.change_key, row.deployment_seq)
              for chunk in chunks([d.seq for d in chain]) for row in connection.execute(
                  select(table.c.change_key, table.c.deployment_seq).where(
                      table.c.deployment_seq.in_(chunk)))}
    after = {(key, d.seq) for d in chain for key in d.shipped}
    if before == after:
        return
    gone = sorted(before - after)
    if gone:
        connection.execute(delete(table).where(
            table.c.change_key == bindparam("b_key"), table.c.deployment_seq == bindparam("b_seq")),
            [{"b_key": key, "b_seq": seq} for key, seq in gone])
    times = {d.seq: d.time for d in chain}
    added = sorted(after - before)
    if added:
        connection.execute(table.insert(), [
            {"deployment_seq": seq, "change_key": key, "service": service,
             "environment": environment, "deployed_at": times[seq]} for key, seq in added])
    refresh_first_deployments(connection, {key for key, _ in before ^ after}, [environment],
                              counts)


def refresh_first_deployments(connection: Connection, keys: set[str],
                              environments: list[str] | None, counts: DailyCounts) -> None:
    """Recompute first_deployments for ``keys`` (in ``environments``, or all of them)."""
    if not keys:
        return
    shipped = deployment_changes.c
    for chunk in chunks(sorted(keys)):
        scope = [first_deployments.c.change_key.in_(chunk)]
        query = select(shipped.change_key, shipped.environment, shipped.service,
                       shipped.deployment_seq, shipped.deployed_at).where(
            shipped.change_key.in_(chunk))
        if environments is not None:
            scope.append(first_deployments.c.environment.in_(environments))
            query = query.where(shipped.environment.in_(environments))
        first: dict[tuple[str, str], Any] = {}
        for row in connection.execute(query):
            pair = (row.change_key, row.environment)
            if pair not in first or (row.deployed_at, row.deployment_seq) < (
                    first[pair].deployed_at, first[pair].deployment_seq):
                first[pair] = row
        change_times = dict(connection.execute(select(changes.c.key, func.coalesce(
            changes.c.earliest_commit_at, changes.c.created_at, changes.c.merged_at))
            .where(changes.c.key.in_(chunk))).all())
        stored = first_deployments.c
        counts.lead_times_of(connection.execute(
            select(stored.environment, stored.deployed_at, stored.lead_bucket).where(*scope)), -1)
        connection.execute(delete(first_deployments).where(*scope))
        rows = []
        for (key, environment), row in sorted(first.items()):
            began = _aware(change_times.get(key))
            lead = duration_seconds(began, row.deployed_at)
            rows.append({"change_key": key, "environment": environment,
                         "service": row.service, "deployment_seq": row.deployment_seq,
                         "deployed_at": row.deployed_at, "change_time": began,
                         "lead_seconds": lead,
                         "lead_bucket": None if lead is None else lead_bucket(lead)})
        if rows:
            connection.execute(first_deployments.insert(), rows)
            counts.lead_times_of(((row["environment"], row["deployed_at"], row["lead_bucket"])
                                  for row in rows), 1)


def _aware(moment: datetime | None) -> datetime | None:
    # Aggregates over timestamps lose the column type, so SQLite hands back naive UTC
    # (or text, for MIN/MAX).
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def update_change_times(connection: Connection, keys: set[str]) -> None:
    """A change's time is its earliest known commit: its own, or its PR branch's commits
    pushed before it merged (how squash-merged PRs keep their real lead time)."""
    updates = []
    for chunk in chunks(sorted(keys)):
        found = list(connection.execute(select(changes.c.key, changes.c.repository,
                                               changes.c.kind, changes.c.head_branch,
                                               changes.c.merged_at)
                                        .where(changes.c.key.in_(chunk))))
        own = dict(connection.execute(select(commits.c.change_key, func.min(commits.c.timestamp))
                                      .where(commits.c.change_key.in_(chunk))
                                      .group_by(commits.c.change_key)).all())
        branches = sorted({(c.repository, c.head_branch) for c in found
                           if c.kind == "pull_request" and c.head_branch})
        pushed: dict[Line, list[datetime]] = {}
        for repository, part in grouped(branches):
            for row in connection.execute(select(commits.c.branch, commits.c.timestamp)
                                          .where(commits.c.repository == repository,
                                                 commits.c.branch.in_(part))):
                pushed.setdefault((repository, row.branch), []).append(row.timestamp)
        for change in found:
            candidates = [_aware(own.get(change.key))]
            if change.kind == "pull_request" and change.head_branch:
                branch = sorted(pushed.get((change.repository, change.head_branch), []))
                if change.merged_at is not None:
                    branch = branch[:bisect_right(branch, change.merged_at)]
                candidates.append(branch[0] if branch else None)
            known = [moment for moment in candidates if moment is not None]
            updates.append({"b_key": change.key, "b_earliest": min(known) if known else None})
    if updates:
        connection.execute(update(changes).where(changes.c.key == bindparam("b_key")).values(
            earliest_commit_at=bindparam("b_earliest")), updates)

