"""A seeded, made-up company: its services, teams, and months of what their tools reported.

Per service, pull requests merge at a steady rate (commits hours or days before), deploys
ship whatever merged since the last one (to staging, then production), some deploys fail
(a PagerDuty incident, sometimes a Kubernetes rollback) and get fixed, CI runs on every
merge, and now and then an event arrives that no route matches or a pipeline is
misconfigured. The same seed and end time give the same events, byte for byte.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from dora_cloudevents.demo import sources
from dora_cloudevents.events import format_rfc3339

Deployer = Literal["kubernetes", "tekton", "cdevents"]
Path = Literal["/events", "/cdevents", "/webhooks/pagerduty"]


@dataclass(frozen=True)
class Profile:
    """How one service's team works; the numbers set the DORA level it lands in."""

    name: str
    team: str
    deployer: Deployer
    deploys_per_week: float
    merges_per_deploy: float
    commit_to_merge_hours: tuple[float, float]
    failure_rate: float
    recovery_hours: tuple[float, float]
    pagerduty: str


SERVICES = (
    Profile("web", "storefront", "kubernetes", 14.0, 1.2, (0.5, 8), 0.04, (0.2, 1.5),
            "Web Storefront"),
    Profile("catalog", "storefront", "kubernetes", 4.0, 1.6, (4, 48), 0.09, (1, 12),
            "Catalog API"),
    Profile("checkout", "payments", "tekton", 3.0, 1.8, (6, 72), 0.12, (2, 30),
            "Checkout API"),
    Profile("billing", "payments", "tekton", 0.8, 3.0, (24, 200), 0.2, (12, 100), "Billing"),
    Profile("search", "platform", "cdevents", 1.5, 2.0, (8, 96), 0.07, (0.5, 8), "Search"),
)
AUTHORS = ("amara", "bruno", "chen", "dana", "emil", "farah", "goran", "hana")
TOPICS = ("retry budget", "cart totals", "price rounding", "search ranking", "image cache",
          "checkout flow", "invoice PDFs", "rate limits", "feature flags", "login page",
          "inventory sync", "currency display", "timeouts", "dependency bumps", "logging")


def demo_services() -> dict[str, dict[str, Any]]:
    """The config file's ``services:`` for the demo: aliases (repository, PagerDuty) and team."""
    return {profile.name: {"aliases": [f"{sources.ORG}/{profile.name}", profile.pagerduty],
                           "team": profile.team} for profile in SERVICES}


@dataclass(frozen=True)
class Delivery:
    """One thing a tool sent: a CloudEvent, a CDEvent or a webhook body, and where to."""

    at: datetime
    path: Path
    body: dict[str, Any]


@dataclass
class _Merge:
    at: datetime
    sha: str


@dataclass
class _Service:
    profile: Profile
    merges: list[_Merge] = field(default_factory=list)
    main_sha: str = ""
    pr_number: int = 100
    revisions: dict[str, int] = field(default_factory=dict)
    uids: dict[str, str] = field(default_factory=dict)
    image: str = ""
    previous_image: str = ""


class History:
    """Generates the deliveries of ``days`` days up to ``end`` from ``seed``."""

    def __init__(self, seed: int, end: datetime, days: int) -> None:
        self.rng = random.Random(seed)
        self.end = end.astimezone(UTC)
        self.start = self.end - timedelta(days=days)
        self.deliveries: list[Delivery] = []
        self.incident_number = 4000

    # --- randomness ------------------------------------------------------------------------

    def _id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _sha(self) -> str:
        while True:
            sha = f"{self.rng.getrandbits(160):040x}"
            # Image tags carry 12 characters; a tag of digits only would read as a build number.
            if any(c in "abcdef" for c in sha[:12]):
                return sha

    def _poisson(self, mean: float) -> int:
        limit, count, product = math.exp(-mean), 0, self.rng.random()
        while product > limit:
            count += 1
            product *= self.rng.random()
        return count

    def _hours(self, span: tuple[float, float]) -> timedelta:
        # Log-uniform: most changes are quick, a few take much longer (as in real teams).
        low, high = (math.log(value) for value in span)
        return timedelta(hours=math.exp(self.rng.uniform(low, high)))

    def _working_moments(self, per_week: float) -> list[datetime]:
        """Random moments in working hours (UTC, Monday to Friday), ``per_week`` on average."""
        moments = []
        day = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        while day < self.end:
            if day.weekday() < 5:
                for _ in range(self._poisson(per_week / 5)):
                    seconds = self.rng.uniform(8.5 * 3600, 18 * 3600)
                    moments.append(day + timedelta(seconds=round(seconds)))
            day += timedelta(days=1)
        return sorted(moment for moment in moments if self.start < moment < self.end)

    def _send(self, at: datetime, path: Path, body: dict[str, Any]) -> None:
        if at <= self.end:
            self.deliveries.append(Delivery(at, path, body))

    # --- the story -------------------------------------------------------------------------

    def generate(self) -> list[Delivery]:
        for profile in SERVICES:
            service = _Service(profile, main_sha=self._sha())
            service.image = self._image(service, service.main_sha)
            for moment in self._working_moments(profile.deploys_per_week
                                                * profile.merges_per_deploy):
                self._merge(service, moment)
            previous: str | None = None
            for moment in self._working_moments(profile.deploys_per_week):
                shipped = [merge for merge in service.merges
                           if merge.at < moment - timedelta(minutes=15)]
                if not shipped or shipped[-1].sha == previous:
                    continue  # nothing new merged: no deploy
                previous = shipped[-1].sha
                self._release(service, shipped[-1].sha, moment)
            for moment in self._working_moments(0.15):
                self._incident(service, moment, cause="alert")
        self._noise()
        self.deliveries.sort(key=lambda delivery: delivery.at)
        return self.deliveries

    def _merge(self, service: _Service, merged_at: datetime) -> None:
        """A pull request: feature-branch push, opened, merged, and the push to main."""
        repo, author = service.profile.name, self.rng.choice(AUTHORS)
        service.pr_number += 1
        number = service.pr_number
        topic = self.rng.choice(TOPICS)
        branch = f"{author}/{topic.replace(' ', '-')}-{number}"
        first = merged_at - self._hours(service.profile.commit_to_merge_hours)
        commits = sorted(first + (merged_at - first) * self.rng.uniform(0, 0.8)
                         for _ in range(self.rng.randint(0, 3)))
        commits = [first, *commits]
        shas = [(self._sha(), at.replace(microsecond=0), f"{topic}: step {i + 1}")
                for i, at in enumerate(commits)]
        self._send(shas[-1][1] + timedelta(seconds=20), "/events", sources.github_push(
            self._id(), repo, branch, "0" * 40, shas, author))
        opened = shas[0][1] + timedelta(minutes=self.rng.randint(5, 90))
        opened = min(opened, merged_at - timedelta(minutes=2))
        title = f"{topic.capitalize()} for {repo}"
        self._send(opened, "/events", sources.github_pull_request(
            self._id(), repo, number, "opened", title, author, branch, shas[-1][0], opened,
            opened))
        merge_sha = self._sha()
        self._send(merged_at, "/events", sources.github_pull_request(
            self._id(), repo, number, "closed", title, author, branch, shas[-1][0], opened,
            merged_at, merge_sha=merge_sha))
        pushed = [(merge_sha, merged_at, f"Merge pull request #{number} from {sources.ORG}/"
                   f"{branch}")]
        self._send(merged_at + timedelta(seconds=20), "/events", sources.github_push(
            self._id(), repo, "main", service.main_sha, pushed, author))
        service.main_sha = merge_sha
        service.merges.append(_Merge(merged_at, merge_sha))
        self._ci(service, merge_sha, merged_at + timedelta(seconds=40))

    def _ci(self, service: _Service, sha: str, started: datetime) -> None:
        phase = "failed" if self.rng.random() < 0.06 else "successful"
        name = f"build-{service.profile.name}-{self._id()[:5]}"
        params = {"git-url": f"https://github.com/{sources.ORG}/{service.profile.name}",
                  "git-revision": sha}
        done = started + timedelta(seconds=self.rng.randint(180, 900))
        self._send(done, "/events", sources.tekton_run(
            self._id(), phase, name, self._id(), "build", params, started, done))

    def _image(self, service: _Service, sha: str) -> str:
        return f"ghcr.io/{sources.ORG}/{service.profile.name}:{sha[:12]}"

    def _release(self, service: _Service, sha: str, at: datetime) -> None:
        """Staging first, production when it looks good; then maybe an incident."""
        staged = at - timedelta(minutes=self.rng.randint(20, 120))
        self._deploy(service, sha, "staging", staged)
        self._deploy(service, sha, "production", at)
        if self.rng.random() < service.profile.failure_rate:
            detected = at + timedelta(minutes=self.rng.randint(4, 90))
            self._incident(service, detected, cause="deploy")

    def _deploy(self, service: _Service, sha: str, environment: str, at: datetime,
                rollback_to: str | None = None) -> None:
        profile = service.profile
        image = rollback_to or self._image(service, sha)
        repo_url = f"https://github.com/{sources.ORG}/{profile.name}"
        if profile.deployer == "kubernetes" or rollback_to:
            revision = service.revisions.get(environment, 0) + 1
            service.revisions[environment] = revision
            uid = service.uids.setdefault(environment, self._id())
            midway = at - timedelta(seconds=self.rng.randint(30, 150))
            self._send(midway, "/events", sources.kubernetes_rollout(
                self._id(), profile.name, environment, uid, revision, image, repo_url, midway,
                complete=False))
            self._send(at, "/events", sources.kubernetes_rollout(
                self._id(), profile.name, environment, uid, revision, image, repo_url, at,
                complete=True, rollback=rollback_to is not None))
        elif profile.deployer == "tekton":
            name, uid = f"deploy-{profile.name}-{self._id()[:5]}", self._id()
            started = at - timedelta(seconds=self.rng.randint(120, 420))
            params = {"deploy-service": profile.name, "deploy-environment": environment,
                      "image": image, "git-url": repo_url, "git-revision": sha}
            for phase, moment in (("started", started), ("successful", at)):
                self._send(moment, "/events", sources.tekton_run(
                    self._id(), phase, name, uid, "deploy", params, started, moment))
        else:
            artifact = f"pkg:oci/{profile.name}@sha256:{sha}{sha[:24]}"
            self._send(at, "/cdevents", sources.cdevent_deployed(
                self._id(), profile.name, environment, artifact, sha, repo_url, at))
        if environment == "production" and not rollback_to:
            service.previous_image, service.image = service.image, image

    def _incident(self, service: _Service, detected: datetime, cause: str) -> None:
        profile = service.profile
        self.incident_number += 1
        incident_id = f"Q{self.rng.getrandbits(48):012X}"
        service_id = "P" + profile.name.upper()[:6]
        symptom = ("error rate above 5%" if cause == "deploy" else
                   self.rng.choice(("latency p99 above SLO", "upstream timeouts")))
        title = f"{profile.pagerduty}: {symptom}"
        resolved = detected + self._hours(profile.recovery_hours)
        for event_type, at in (("incident.triggered", detected),
                               ("incident.resolved", resolved)):
            self._send(at, "/webhooks/pagerduty", sources.pagerduty_webhook(
                self._id(), event_type, incident_id, self.incident_number, title,
                profile.pagerduty, service_id, detected, at))
        if cause == "deploy" and profile.deployer == "kubernetes" and self.rng.random() < 0.4:
            self._deploy(service, "", "production",
                         detected + timedelta(minutes=self.rng.randint(5, 25)),
                         rollback_to=service.previous_image)

    def _noise(self) -> None:
        """What real streams carry too: a chat bot nobody routed, a misconfigured pipeline."""
        for moment in self._working_moments(1.0):
            self._send(moment, "/events", {
                "specversion": "1.0", "id": self._id(), "source": "/acme/chatops",
                "type": "com.acme.chatops.command", "time": format_rfc3339(moment),
                "data": {"command": "/deploy status", "user": self.rng.choice(AUTHORS)}})
        for moment in self._working_moments(0.3)[:3]:
            name = f"deploy-legacy-{self._id()[:5]}"
            self._send(moment, "/events", sources.tekton_run(
                self._id(), "successful", name, self._id(), "deploy-legacy",
                {"image": "ghcr.io/acme/legacy:2.4.1"}, moment - timedelta(minutes=3), moment,
                labels={"dora-cloudevents.dev/deploy": "true"}))


def generate(seed: int, end: datetime, days: int) -> list[Delivery]:
    """Every delivery of the demo history, oldest first."""
    return History(seed, end, days).generate()


def chunks(deliveries: list[Delivery], size: int) -> Iterator[tuple[Path, list[dict[str, Any]]]]:
    """Consecutive CloudEvents, at most ``size`` at a time; CDEvents and webhooks one by one."""
    batch: list[dict[str, Any]] = []
    path: Path | None = None
    for delivery in deliveries:
        if batch and (delivery.path != path or len(batch) >= size or path != "/events"):
            assert path is not None
            yield path, batch
            batch = []
        path = delivery.path
        batch.append(delivery.body)
    if batch and path is not None:
        yield path, batch
