"""A seeded, realistic delivery history as CDEvents 0.4.1, for bench/metrics.py.

Per service (``svc-000`` ...), one GitHub repository ``https://github.com/acme/<service>``:

* direct pushes to ``main`` (``change.merged``, ``push: true``, 1-3 commits);
* pull requests: pushes to the head branch (``change.updated``, ``push: true``), then
  ``change.created``, maybe more head-branch pushes, then ``change.merged`` (naming the merge
  or squash commit, ``mergeCommitSha``) and the push of that commit to ``main`` (for merge
  commits with the branch's commits, for squash merges the squash commit only); 5% are
  abandoned instead;
* deployments to ``production`` (and some to ``staging``) whose ``customData.revision`` is
  the head of ``main`` when the build started, so one deployment ships every change merged
  since the previous one; 3% are followed by a ``service.rolledback`` to the previous revision;
* incidents detected a few minutes to a day after a production deployment and resolved
  minutes to days later (3% stay open), half naming the deployment's ``artifactId``.

Shapes follow docs/cdevents-conventions.md (and tests/metrics/scenario.py). Everything comes
from one ``random.Random(seed)``: the same seed and scale give the same events, ids included.
Events are returned in time order (ties: service, then order of generation).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dora_cloudevents.cdevents.build import EMITTED_SPEC_VERSION, new_cdevent
from dora_cloudevents.store.events import cdevent_row

START = datetime(2024, 1, 1, tzinfo=UTC)
YEAR_DAYS = 366  # 2024-01-01 .. 2025-01-01
YEAR_SECONDS = YEAR_DAYS * 86400
FULL_SERVICES = 200
SERVICES_PER_TEAM = 10

# Per service and year, at activity 1.0 (each service draws an activity in [0.5, 1.5]).
DIRECT_PUSHES = 600
PULL_REQUESTS = 560
PRODUCTION_DEPLOYS = 520
STAGING_DEPLOYS = 130
INCIDENTS = 30
ROLLBACK_SHARE = 0.03
ABANDONED_SHARE = 0.05
SQUASH_SHARE = 0.4
OPEN_INCIDENT_SHARE = 0.03
INCIDENT_WITH_ARTIFACT_SHARE = 0.5
# Events per service per day at activity 1.0 (to size the continuation; see horizon_days).
EVENTS_PER_SERVICE_DAY = (DIRECT_PUSHES + PULL_REQUESTS * 4.95 + PRODUCTION_DEPLOYS
                          + STAGING_DEPLOYS + INCIDENTS * 2) / YEAR_DAYS

Spec = tuple[int, int, int, str, tuple[Any, ...]]  # (second, service, order, kind, args)


def stamp(second: int) -> str:
    return (START + timedelta(seconds=second)).strftime("%Y-%m-%dT%H:%M:%SZ")


def service_name(index: int) -> str:
    return f"svc-{index:03d}"


def team_name(index: int) -> str:
    return f"team-{index // SERVICES_PER_TEAM:02d}"


def repo_url(service: str) -> str:
    return f"https://github.com/acme/{service}"


@dataclass
class ServiceHistory:
    """What one service's simulation produced (lightweight specs, built into CDEvents later)."""

    index: int
    rng: random.Random
    horizon: int
    specs: list[Spec] = field(default_factory=list)
    order: int = 0
    heads: list[tuple[int, str]] = field(default_factory=list)  # (on main since, head sha)

    @property
    def name(self) -> str:
        return service_name(self.index)

    def add(self, second: int, kind: str, *args: Any) -> None:
        self.order += 1
        self.specs.append((second, self.index, self.order, kind, args))

    def sha(self) -> str:
        return f"{self.rng.getrandbits(160):040x}"

    def work_time(self) -> int:
        """A moment in working hours (UTC 07-19 on weekdays; weekends now and then)."""
        while True:
            day = self.rng.randrange(self.horizon // 86400)
            weekday = (START + timedelta(days=day)).weekday()
            if weekday < 5 or self.rng.random() < 0.15:
                return day * 86400 + self.rng.randrange(7 * 3600, 19 * 3600)

    def authored(self, pushed_at: int, count: int) -> list[tuple[str, int]]:
        """``count`` commits authored before ``pushed_at``, oldest first, the last at it."""
        offsets = sorted((self.rng.randrange(60, 3 * 3600) for _ in range(count - 1)),
                         reverse=True)
        return [(self.sha(), pushed_at - offset) for offset in offsets] + [
            (self.sha(), pushed_at)]


def _count(rng: random.Random, per_year: float, activity: float, horizon: int) -> int:
    expected = per_year * activity * horizon / YEAR_SECONDS
    return max(0, round(rng.gauss(expected, math.sqrt(expected))))


def simulate_service(index: int, seed: int, horizon: int) -> ServiceHistory:
    rng = random.Random(f"{seed}:{index}")
    history = ServiceHistory(index, rng, horizon)
    activity = rng.uniform(0.5, 1.5)
    main_heads: list[tuple[int, str]] = []

    for number in range(_count(rng, DIRECT_PUSHES, activity, horizon)):
        pushed = history.work_time()
        commits = history.authored(pushed, rng.choice((1, 1, 1, 2, 3)))
        history.add(pushed, "push", "main", commits, f"p{number}")
        main_heads.append((pushed, commits[-1][0]))

    for number in range(1, _count(rng, PULL_REQUESTS, activity, horizon) + 1):
        opened = history.work_time()
        branch = f"feature/{number}-{rng.choice(('fix', 'add', 'tune', 'drop', 'docs'))}"
        first_push = opened - rng.randrange(300, 3 * 3600)
        branch_commits = history.authored(first_push, rng.choice((1, 1, 2, 3)))
        history.add(first_push, "push", branch, list(branch_commits), f"b{number}.0")
        history.add(opened, "pr_created", number, branch)
        # Review time: median ~4 h, a long tail up to two weeks.
        closed = opened + min(int(rng.lognormvariate(math.log(4 * 3600), 1.2)), 14 * 86400)
        closed = max(closed, opened + 120)
        for extra in range(1, rng.choice((0, 1, 1, 2)) + 1):
            pushed = rng.randrange(opened + 60, closed)
            more = history.authored(pushed, rng.choice((1, 1, 2)))
            history.add(pushed, "push", branch, more, f"b{number}.{extra}")
            branch_commits.extend(more)
        if rng.random() < ABANDONED_SHARE:
            history.add(closed, "pr_abandoned", number, branch)
            continue
        merge_sha = history.sha()
        history.add(closed, "pr_merged", number, branch, merge_sha)
        if rng.random() < SQUASH_SHARE:
            on_main = [(merge_sha, closed)]
        else:
            on_main = [*sorted(branch_commits, key=lambda commit: commit[1]), (merge_sha, closed)]
        history.add(closed + 1, "push", "main", on_main, f"m{number}")
        main_heads.append((closed + 1, merge_sha))

    main_heads.sort()
    history.heads = main_heads
    times = [moment for moment, _ in main_heads]

    def revision_at(moment: int) -> str | None:
        position = bisect.bisect_right(times, moment) - 1
        return main_heads[position][1] if position >= 0 else None

    production: list[tuple[int, str]] = []
    for moment in sorted(history.work_time() for _ in range(
            _count(rng, PRODUCTION_DEPLOYS, activity, horizon))):
        revision = revision_at(moment - rng.randrange(300, 1800))  # build and rollout time
        if revision is None:
            continue
        history.add(moment, "deploy", "production", "deployed", revision)
        production.append((moment, revision))
        if len(production) > 1 and rng.random() < ROLLBACK_SHARE:
            back_at = moment + rng.randrange(600, 5400)
            history.add(back_at, "deploy", "production", "rolledback", production[-2][1])
    for moment in (history.work_time() for _ in range(
            _count(rng, STAGING_DEPLOYS, activity, horizon))):
        revision = revision_at(moment - rng.randrange(300, 1800))
        if revision is not None:
            history.add(moment, "deploy", "staging", "deployed", revision)

    for number in range(_count(rng, INCIDENTS, activity, horizon) if production else 0):
        deployed_at, revision = production[rng.randrange(len(production))]
        detected = deployed_at + rng.randrange(300, 20 * 3600)
        artifact = (artifact_id(history.name, revision)
                    if rng.random() < INCIDENT_WITH_ARTIFACT_SHARE else None)
        key = f"https://acme.pagerduty.com/incidents/{history.name}-{number}"
        history.add(detected, "incident", "detected", key, artifact)
        if rng.random() >= OPEN_INCIDENT_SHARE:
            lasted = min(int(rng.lognormvariate(math.log(90 * 60), 1.3)), 5 * 86400)
            history.add(detected + max(lasted, 120), "incident", "resolved", key, artifact)
    return history


def artifact_id(service: str, revision: str) -> str:
    digest = hashlib.sha256(revision.encode()).hexdigest()
    return f"pkg:oci/{service}@sha256:{digest}?repository_url=ghcr.io/acme/{service}"


# ---- Building the CDEvents ----------------------------------------------------------------

def build(spec: Spec) -> dict[str, Any]:
    second, index, order, kind, args = spec
    service = service_name(index)
    url = repo_url(service)
    repository = {"id": f"acme/{service}", "source": url}
    when = stamp(second)
    if kind == "push":
        branch, commits, label = args
        head = commits[-1][0]
        return new_cdevent(
            "change.merged" if branch == "main" else "change.updated",
            key=("bench-push", url, branch, head, label), source=url, timestamp=when,
            subject_id=f"{url}/commit/{head}", subject_source=url,
            content={"repository": repository},
            custom_data={"repository": url, "branch": branch, "headSha": head,
                         "commits": [{"id": sha, "timestamp": stamp(moment)}
                                     for sha, moment in commits], "push": True})
    if kind in ("pr_created", "pr_merged", "pr_abandoned"):
        number, branch = args[0], args[1]
        predicate = kind.removeprefix("pr_")
        custom: dict[str, Any] = {"repository": url, "branch": "main", "headBranch": branch,
                                  "number": number}
        content: dict[str, Any] = {"repository": repository}
        if kind == "pr_created":
            content["description"] = f"{service}: pull request {number}"
        if kind == "pr_merged":
            custom["mergeCommitSha"] = args[2]
        return new_cdevent(
            f"change.{predicate}", key=("bench-pr", url, str(number), predicate), source=url,
            timestamp=when, subject_id=f"{url}/pull/{number}", subject_source=url,
            content=content, custom_data=custom)
    if kind == "deploy":
        environment, predicate, revision = args
        return new_cdevent(
            f"service.{predicate}", key=("bench-deploy", service, str(order)),
            source="/argocd/acme", timestamp=when, subject_id=service,
            subject_source="/argocd/acme",
            content={"environment": {"id": environment},
                     "artifactId": artifact_id(service, revision)},
            custom_data={"revision": revision, "repository": url})
    if kind == "incident":
        predicate, key, artifact = args
        incident_content: dict[str, Any] = {
            "description": f"{service} degraded", "service": {"id": service},
            "environment": {"id": "production"}}
        if artifact:
            incident_content["artifactId"] = artifact
        return new_cdevent(
            f"incident.{predicate}", key=("bench-incident", key, predicate), source="/pagerduty",
            timestamp=when, subject_id=key, subject_source="/pagerduty",
            content=incident_content, custom_data={"url": key, "severity": "high"})
    raise ValueError(kind)


def rows(specs: list[Spec]) -> Iterator[dict[str, Any]]:
    """cdevents_raw rows of ``specs`` (received a second after they happened)."""
    for spec in specs:
        event = build(spec)
        received = START + timedelta(seconds=spec[0] + 1)
        yield cdevent_row(event, EMITTED_SPEC_VERSION, received)


# ---- The whole history ---------------------------------------------------------------------

@dataclass
class History:
    services: int
    history: list[Spec]      # before START + one year
    increment: list[Spec]    # the next events after it, continuing the same history

    def counts(self, specs: list[Spec]) -> dict[str, int]:
        found: dict[str, int] = {}
        for spec in specs:
            kind, args = spec[3], spec[4]
            name = kind
            if kind == "deploy":
                name = f"deploy {args[0]} {args[1]}"
            elif kind == "incident":
                name = f"incident {args[0]}"
            found[name] = found.get(name, 0) + 1
        return found


def services_for(scale: float) -> int:
    return max(2, round(FULL_SERVICES * scale))


def horizon_seconds(services: int, increment: int) -> int:
    """A year, plus enough days that ``increment`` events (and a margin) follow it."""
    extra_days = math.ceil(1.6 * increment / (EVENTS_PER_SERVICE_DAY * services)) + 2
    return YEAR_SECONDS + extra_days * 86400


def generate(scale: float, seed: int, increment: int) -> History:
    services = services_for(scale)
    horizon = horizon_seconds(services, increment)
    specs: list[Spec] = []
    for index in range(services):
        specs.extend(simulate_service(index, seed, horizon).specs)
    specs.sort(key=lambda spec: spec[:3])
    cut = bisect.bisect_left(specs, (YEAR_SECONDS,), key=lambda spec: spec[:1])
    later = specs[cut:cut + increment]
    if len(later) < increment:
        raise RuntimeError(f"only {len(later)} events after the year; widen the horizon")
    return History(services, specs[:cut], later)
