"""Helpers for the DORA acceptance scenarios, written from DESIGN.md §6-§8 as an oracle.

Three kinds of helpers live here:

* **builders** of CDEvents (0.4.1, through ``new_cdevent``) shaped the way
  ``docs/cdevents-conventions.md`` says the transformers shape them: ``push``,
  ``pr_opened``, ``pr_merged``, ``deploy``, ``detected``, ``resolved``, ``incident``;
* the **expected answer** of ``GET /api/v1/dora`` (``expected_dora``), built from numbers
  the tests derive by hand, and the comparison (``assert_dora``);
* a **live server** over the test's database (``running``) that posts events, waits until
  the router and the projector have processed them, and queries the API.

Where §7 does not say how to compute something, the choice is made in ONE place below and
marked ``ASSUMPTION``, so it can be adjusted if the engine documents another method:
``median`` / ``p90`` (percentile method), ``overall_level`` (the top-level ``level``),
``nonempty_points`` (series without empty buckets), and the meaning of
``time_to_restore.incidents`` (see ``expected_dora``).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from dora_cloudevents.app import create_app
from dora_cloudevents.cdevents.build import new_cdevent
from dora_cloudevents.config import Settings
from dora_cloudevents.store.schema import cdevents_raw, cloudevents_raw
from tests.conftest import LiveServer

BATCH = {"content-type": "application/cloudevents-batch+json"}
PROCESSING_DEADLINE = 20.0  # seconds for the router and projector to drain the raw logs
HOUR = 3600
DAY = 24 * HOUR

CDEvent = dict[str, Any]
Json = dict[str, Any]


# ---------------------------------------------------------------------------------------
# Times and ids


def at(moment: str) -> str:
    """``"2024-03-04T09:00"`` -> ``"2024-03-04T09:00:00Z"`` (RFC 3339, UTC)."""
    return parse_time(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    """An RFC 3339 / ISO 8601 time as an aware UTC datetime (naive input is taken as UTC)."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def hours(value: float) -> float:
    return value * HOUR


def sha(label: str) -> str:
    """A fixed, realistic 40-hex commit id for a readable label (``sha("c1")``)."""
    return hashlib.sha1(label.encode()).hexdigest()


@dataclass(frozen=True)
class Window:
    """The query window ``[start, end)``; ``params`` are the ``from``/``to`` query parameters."""

    start: str
    end: str

    @property
    def params(self) -> dict[str, str]:
        return {"from": at(self.start), "to": at(self.end)}

    @property
    def days(self) -> float:
        return (parse_time(self.end) - parse_time(self.start)) / timedelta(days=1)


# ---------------------------------------------------------------------------------------
# CDEvent builders (0.4.1, deterministic ids), shaped like the built-in transformers' output


def _repo_url(repo: str) -> str:
    return f"https://github.com/{repo}"


def push(repo: str, commits: Sequence[tuple[str, str]], *, branch: str = "main",
         default_branch: str = "main", moment: str | None = None) -> CDEvent:
    """A push of ``commits`` [(sha, time), oldest first] to ``branch`` of ``repo`` ("o/r").

    As the GitHub transformer does: a push to the default branch is ``change.merged``, to
    another branch ``change.updated``; its time is the head commit's (or ``moment``).
    """
    url = _repo_url(repo)
    head = commits[-1][0]
    name = "change.merged" if branch == default_branch else "change.updated"
    return new_cdevent(
        name, key=("test-push", repo, branch, head), source=url,
        timestamp=at(moment or commits[-1][1]), subject_id=f"{url}/commit/{head}",
        subject_source=url, content={"repository": {"id": repo, "source": url}},
        custom_data={"repository": url, "branch": branch, "headSha": head,
                     "commits": [{"id": c, "timestamp": at(t)} for c, t in commits],
                     "push": True})


def _pr(name: str, repo: str, number: int, head_branch: str, moment: str,
        extra: Mapping[str, Any], content: Mapping[str, Any] | None = None) -> CDEvent:
    url = _repo_url(repo)
    return new_cdevent(
        name, key=("test-pr", repo, str(number), name, moment), source=url,
        timestamp=at(moment), subject_id=f"{url}/pull/{number}", subject_source=url,
        content={"repository": {"id": repo, "source": url}, **(content or {})},
        custom_data={"repository": url, "branch": "main", "headBranch": head_branch,
                     "number": number, **extra})


def pr_opened(repo: str, number: int, head_branch: str, moment: str) -> CDEvent:
    """``change.created`` of pull request ``number`` from ``head_branch`` into main."""
    return _pr("change.created", repo, number, head_branch, moment, {},
               {"description": f"PR #{number}"})


def pr_merged(repo: str, number: int, head_branch: str, merge_sha: str, moment: str,
              head_sha: str | None = None) -> CDEvent:
    """``change.merged`` of a pull request (GitHub ``merged == true``), naming its merge or
    squash commit on main (``mergeCommitSha``)."""
    extra = {"mergeCommitSha": merge_sha, **({"headSha": head_sha} if head_sha else {})}
    return _pr("change.merged", repo, number, head_branch, moment, extra)


def deploy(service: str, env: str, revision: str | None, moment: str, *,
           kind: str = "deployed", artifact: str | None = None, repo: str | None = None,
           source: str = "/ci/deploy") -> CDEvent:
    """A ``service.<kind>`` (deployed, upgraded, rolledback) of ``service`` (its subject id,
    alias or canonical name) to ``env`` at ``moment``; ``customData.revision`` links it to
    the commits it shipped. Without a revision the artifact version is not a commit id."""
    version = revision or "build-" + at(moment).replace(":", "").replace("-", "")
    custom: dict[str, Any] = {}
    if revision:
        custom["revision"] = revision
    if repo:
        custom["repository"] = _repo_url(repo)
    return new_cdevent(
        f"service.{kind}", key=("test-deploy", service, env, kind, moment), source=source,
        timestamp=at(moment), subject_id=service, subject_source=source,
        content={"environment": {"id": env},
                 "artifactId": artifact or f"pkg:generic/{service}@{version}"},
        custom_data=custom or None)


def artifact_of(deployment: CDEvent) -> str:
    artifact: str = deployment["subject"]["content"]["artifactId"]
    return artifact


def _incident_event(name: str, key: str, service: str, env: str, moment: str,
                    artifact: str | None, source: str) -> CDEvent:
    content: dict[str, Any] = {"description": f"incident {key}", "environment": {"id": env},
                               "service": {"id": service}}
    if artifact:
        content["artifactId"] = artifact
    return new_cdevent(name, key=("test-incident", name, key, moment, source), source=source,
                       timestamp=at(moment), subject_id=key, subject_source=source,
                       content=content)


def detected(key: str, service: str, env: str, moment: str, *, artifact: str | None = None,
             source: str = "/monitoring") -> CDEvent:
    """``incident.detected`` of incident ``key`` (its subject id) at ``moment``."""
    return _incident_event("incident.detected", key, service, env, moment, artifact, source)


def resolved(key: str, service: str, env: str, moment: str, *, artifact: str | None = None,
             source: str = "/monitoring") -> CDEvent:
    """``incident.resolved`` of incident ``key`` at ``moment``."""
    return _incident_event("incident.resolved", key, service, env, moment, artifact, source)


def incident(key: str, service: str, env: str, detected_at: str,
             resolved_at: str | None = None, artifact: str | None = None) -> list[CDEvent]:
    """The detection, and the resolution if ``resolved_at`` is given, of one incident."""
    events = [detected(key, service, env, detected_at, artifact=artifact)]
    if resolved_at:
        events.append(resolved(key, service, env, resolved_at, artifact=artifact))
    return events


def cloudevent(cdevent: CDEvent) -> Json:
    """The CloudEvent carrying ``cdevent`` per the binding rules (id/source/type = context)."""
    context = cdevent["context"]
    return {"specversion": "1.0", "id": context["id"], "source": context["source"],
            "type": context["type"], "time": context["timestamp"],
            "datacontenttype": "application/json", "data": cdevent}


def by_time(events: Iterable[CDEvent], *, reverse: bool = False) -> list[CDEvent]:
    """Events ordered by ``context.timestamp`` (ties keep their order)."""
    return sorted(events, key=lambda e: parse_time(e["context"]["timestamp"]), reverse=reverse)


# ---------------------------------------------------------------------------------------
# Statistics and levels (§7)


def median(values: Sequence[float]) -> float | None:
    """ASSUMPTION (§7 says "median" only): the middle value of the sorted values, the mean
    of the two middle ones for an even count; None without values."""
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def p90(values: Sequence[float]) -> float | None:
    """ASSUMPTION (§7 says "p90" only): nearest rank, the value at rank ceil(0.9*n) of the
    sorted values (1-based); None without values."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


LEVELS = ("elite", "high", "medium", "low")  # best first
FREQUENCY_LEVEL = {"on-demand": "elite", "daily": "high", "weekly": "high",
                   "monthly": "medium", "yearly": "low", "none": None}


def lead_time_level(median_seconds: float | None) -> str | None:
    """§7 default table: < 1 day elite, < 1 week high, < 30 days medium, else low."""
    if median_seconds is None:
        return None
    for level, limit in (("elite", DAY), ("high", 7 * DAY), ("medium", 30 * DAY)):
        if median_seconds < limit:
            return level
    return "low"


def failure_rate_level(rate: float | None) -> str | None:
    """§7 default table: ≤ 5 % elite, ≤ 10 % high, ≤ 15 % medium, else low."""
    if rate is None:
        return None
    for level, limit in (("elite", 0.05), ("high", 0.10), ("medium", 0.15)):
        if rate <= limit:
            return level
    return "low"


def recovery_level(median_seconds: float | None) -> str | None:
    """§7 default table: < 1 hour elite, < 1 day high, < 1 week medium, else low."""
    if median_seconds is None:
        return None
    for level, limit in (("elite", HOUR), ("high", DAY), ("medium", 7 * DAY)):
        if median_seconds < limit:
            return level
    return "low"


def overall_level(levels: Iterable[str | None]) -> str | None:
    """ASSUMPTION (§7/§8 show a top-level ``level`` but do not define it): the lowest
    (worst) of the four metric levels (deployment frequency, lead time, change failure
    rate, failed deployment recovery time) that have data; null when none has data.
    (Alternative reading: null as soon as any of the four is null.)"""
    known = [level for level in levels if level is not None]
    if not known:
        return None
    return max(known, key=LEVELS.index)


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def expected_dora(window: Window, *, deployments: int = 0, deployment_days: int = 0,
                  per_week: float = 0.0, category: str = "none",
                  lead_times: Sequence[float] = (), failed: int = 0,
                  recovery_times: Sequence[float] = (), restore_times: Sequence[float] = (),
                  open_incidents: int = 0, rework: int = 0) -> Json:
    """The §8 answer of ``GET /api/v1/dora`` for hand-derived facts.

    ``lead_times``: one value per (change, environment); ``failed``: failed deployments;
    ``recovery_times``: one value per failed deployment; ``restore_times``: resolved -
    detected of each resolved incident detected in the window; ``rework``: rework
    deployments. ASSUMPTION: ``time_to_restore.incidents`` counts the resolved incidents
    the median is taken over, ``open_incidents`` the unresolved ones ("counted apart").
    """
    lead_median = median(lead_times)
    failure_rate = rate(failed, deployments)
    recovery_median = median(recovery_times)
    levels = {
        "deployment_frequency": FREQUENCY_LEVEL[category],
        "lead_time_for_changes": lead_time_level(lead_median),
        "change_failure_rate": failure_rate_level(failure_rate),
        "failed_deployment_recovery_time": recovery_level(recovery_median),
    }
    return {
        "window": {"from": at(window.start), "to": at(window.end)},
        "deployment_frequency": {
            "deployments": deployments, "deployment_days": deployment_days,
            "per_week": per_week, "category": category,
            "level": levels["deployment_frequency"]},
        "lead_time_for_changes": {
            "median_seconds": lead_median, "p90_seconds": p90(lead_times),
            "changes": len(lead_times), "level": levels["lead_time_for_changes"]},
        "change_failure_rate": {
            "failed_deployments": failed, "deployments": deployments, "rate": failure_rate,
            "level": levels["change_failure_rate"]},
        "failed_deployment_recovery_time": {
            "median_seconds": recovery_median, "failed_deployments": len(recovery_times),
            "level": levels["failed_deployment_recovery_time"]},
        "time_to_restore": {
            "median_seconds": median(restore_times), "incidents": len(restore_times),
            "open_incidents": open_incidents},
        "deployment_rework_rate": {
            "rework_deployments": rework, "deployments": deployments,
            "rate": rate(rework, deployments)},
        "level": overall_level(levels.values()),
    }


def same(actual: Any, expected: Any) -> bool:
    """Equal JSON values; numbers compare by value (18000 == 18000.0) up to rounding."""
    if expected is None or isinstance(expected, bool | str):
        return actual is expected or (actual == expected and type(actual) is type(expected))
    if isinstance(expected, int | float):
        return (isinstance(actual, int | float) and not isinstance(actual, bool)
                and actual == pytest.approx(expected, rel=1e-9, abs=1e-9))
    return bool(actual == expected)


def assert_dora(actual: Json, expected: Json) -> None:
    """Every field of the §8 shape equals the expectation (extra fields are allowed: the
    contract may be extended). The overall ``level`` is checked last, on its own, because
    its rule is an assumption (``overall_level``)."""
    problems = []
    for section, fields in expected.items():
        if section == "level":
            continue
        got = actual.get(section)
        if not isinstance(got, dict):
            problems.append(f"{section}: missing or not an object: {got!r}")
            continue
        for name, want in fields.items():
            if name not in got:
                problems.append(f"{section}.{name}: missing (expected {want!r})")
            elif section == "window":
                if not isinstance(got[name], str) or parse_time(got[name]) != parse_time(want):
                    problems.append(f"window.{name}: {got[name]!r}, expected {want!r}")
            elif not same(got[name], want):
                problems.append(f"{section}.{name}: {got[name]!r}, expected {want!r}")
    assert not problems, "GET /api/v1/dora differs:\n  " + "\n  ".join(problems) + (
        "\nfull answer: " + json.dumps(actual, indent=1))
    assert "level" in actual, "the top-level `level` is missing"
    assert same(actual["level"], expected["level"]), (
        f"ASSUMPTION (overall level = worst known metric level, see overall_level): "
        f"got {actual['level']!r}, expected {expected['level']!r}")


# ---------------------------------------------------------------------------------------
# §7 frequency category, as a self-check of the scenario designs (not of the engine)


def blocks(window: Window, size_days: int) -> list[tuple[datetime, datetime]]:
    """Consecutive ``size_days`` blocks ending at ``to``; an incomplete leading block is
    dropped. Oldest first."""
    end = parse_time(window.end)
    count = int(window.days // size_days)
    size = timedelta(days=size_days)
    return [(end - (k + 1) * size, end - k * size) for k in reversed(range(count))]


def frequency_category(times: Iterable[str], window: Window) -> str:
    """§7's category, transcribed literally, for deployments at ``times``."""
    start, end = parse_time(window.start), parse_time(window.end)
    moments = sorted(t for t in map(parse_time, times) if start <= t < end)
    if not moments:
        return "none"
    weeks = blocks(window, 7)
    in_weeks = [[t for t in moments if a <= t < b] for a, b in weeks]
    days_per_week = [len({t.date() for t in week}) for week in in_weeks]
    per_day = Counter(t.date() for week in in_weeks for t in week)
    if weeks and (median(days_per_week) or 0) >= 3:
        return "on-demand" if (median(list(per_day.values())) or 0) >= 2 else "daily"
    if weeks and 2 * sum(1 for n in days_per_week if n) >= len(weeks):
        return "weekly"
    months = blocks(window, 30)
    with_deployment = sum(1 for a, b in months if any(a <= t < b for t in moments))
    if months and 2 * with_deployment >= len(months):
        return "monthly"
    return "yearly"


# ---------------------------------------------------------------------------------------
# The live server


def wait_processed(engine: Engine, deadline: float = PROCESSING_DEADLINE) -> None:
    """Wait until no raw CloudEvent and no CDEvent is pending; then nothing may have failed."""
    started = time.monotonic()
    while True:
        with engine.connect() as connection:
            # Raw first: the router writes the CDEvents in the transaction that marks the raw
            # event routed, so a CDEvent can only appear before the second query runs.
            raw = connection.execute(select(cloudevents_raw.c.event_id).where(
                cloudevents_raw.c.status == "pending")).scalars().all()
            cdevents = connection.execute(select(cdevents_raw.c.event_id).where(
                cdevents_raw.c.status == "pending")).scalars().all()
        if not raw and not cdevents:
            break
        assert time.monotonic() - started < deadline, (
            f"after {deadline} s, {len(raw)} raw CloudEvents and {len(cdevents)} CDEvents are "
            "still pending: are the router and the projector running in create_app?")
        time.sleep(0.05)
    with engine.connect() as connection:
        failed = connection.execute(select(cdevents_raw.c.event_id, cdevents_raw.c.error).where(
            cdevents_raw.c.status == "failed")).all()
        raw_failed = connection.execute(select(
            cloudevents_raw.c.event_id, cloudevents_raw.c.error).where(
            cloudevents_raw.c.status == "failed")).all()
    assert not failed, f"the projector failed on CDEvents: {[tuple(row) for row in failed]}"
    assert not raw_failed, f"the router failed on: {[tuple(row) for row in raw_failed]}"


class Dora:
    """A client of a running server (ingest, router, projector, API) over one database."""

    def __init__(self, http: httpx.Client, engine: Engine) -> None:
        self.http = http
        self.engine = engine

    def send(self, *cdevents: CDEvent) -> None:
        """POST CDEvents to /cdevents (one batch) and wait until they are projected."""
        body = json.dumps([cloudevent(c) for c in cdevents])
        response = self.http.post("/cdevents", content=body, headers=BATCH)
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == len(cdevents), response.text
        wait_processed(self.engine)

    def send_raw(self, *events: Json) -> None:
        """POST raw CloudEvents to /events (one batch) and wait until routed and projected."""
        response = self.http.post("/events", content=json.dumps(list(events)), headers=BATCH)
        assert response.status_code == 202, response.text
        wait_processed(self.engine)

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params={k: v for k, v in params.items()
                                               if v is not None})
        assert response.status_code == 200, f"GET {path} {params}: {response.status_code} " \
                                            f"{response.text}"
        return response.json()

    def dora(self, window: Window, **filters: str) -> Json:
        answer: Json = self.get("/api/v1/dora", **window.params, **filters)
        return answer


@contextmanager
def running(engine: Engine, settings: Settings | None = None) -> Iterator[Dora]:
    """The full default application over ``engine``; fails at once if the metrics API is not
    there (rather than after waiting for a projector that does not exist)."""
    app = create_app(settings or Settings(), engine)
    with LiveServer(app) as live, httpx.Client(base_url=live.url, timeout=10) as http:
        probe = http.get("/api/v1/dora", params=Window("2024-01-01", "2024-01-02").params)
        assert probe.status_code == 200, (
            f"GET /api/v1/dora answered {probe.status_code}: the metrics engine is not there "
            f"(yet): {probe.text[:300]}")
        yield Dora(http, engine)


def settings(**values: Any) -> Settings:
    return Settings.model_validate(values)


# ---------------------------------------------------------------------------------------
# Time series and errors


def nonempty_points(series: Sequence[Json], group: str | None = None) -> list[tuple[Any, ...]]:
    """``(time, [group value,] value)`` of the points that carry data, sorted.

    ASSUMPTION (§8 is silent on empty buckets): a series may list empty buckets or not;
    points whose value is null or 0 are taken as empty and left out. Every point's time
    must be an RFC 3339 UTC time (the bucket's start). ASSUMPTION: a grouped point names
    its group under the ``group_by`` name (``"service": "shop"``) or under ``"group"``.
    """
    points = []
    for point in series:
        moment = parse_time(point["time"])
        assert moment.utcoffset() == timedelta(0)
        if point["value"] in (None, 0):
            continue
        if group:
            assert group in point or "group" in point, f"a point without its {group}: {point}"
            key: tuple[Any, ...] = (moment, point.get(group, point.get("group")))
        else:
            key = (moment,)
        points.append((*key, point["value"]))
    return sorted(points, key=lambda p: p[:-1])


def assert_problem(response: httpx.Response, status: int, *words: str) -> Json:
    """An RFC 9457 problem with ``status`` whose detail names each of ``words``."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), (
        response.headers["content-type"])
    problem: Json = response.json()
    assert problem["status"] == status
    detail = str(problem.get("detail", "")).lower()
    for word in words:
        assert word.lower() in detail, f"the problem detail does not name {word!r}: {problem}"
    return problem
