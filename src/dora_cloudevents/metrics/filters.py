"""The selection every metric is computed over: a time window and service/environment filters.

DESIGN.md §7: window ``[from, to)``, default ``to`` = now and ``from`` = ``to`` - 90 days;
``service``, ``team`` (the services config ``services:`` gives that team) and ``environment``
(default: the configured production environments; when none are configured, all of them).
Every time is UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from dora_cloudevents.config import Settings
from dora_cloudevents.events import parse_rfc3339
from dora_cloudevents.metrics.catalog import ServiceCatalog

DEFAULT_WINDOW = timedelta(days=90)
# Window bounds far from datetime's limits, so the default window and the series' buckets
# (next month, next year) never step outside them (an OverflowError: a 500, not a 400).
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)
ALL = "*"
"""``environment=*`` selects every environment even when production environments are set."""


class FilterError(ValueError):
    """A filter or window the caller gave cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Window:
    """The half-open interval ``[start, end)``, both timezone-aware UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.start >= self.end:
            raise FilterError(f"'from' ({_show(self.start)}) must be before 'to' "
                              f"({_show(self.end)})")

    @property
    def days(self) -> float:
        """The window's length in days (fractional when the bounds are not midnight-aligned)."""
        return (self.end - self.start) / timedelta(days=1)

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment < self.end


@dataclass(frozen=True)
class Selection:
    """What to compute over. ``None`` means "no restriction" for services and environments."""

    window: Window
    services: frozenset[str] | None = None
    environments: frozenset[str] | None = None

    def with_services(self, services: frozenset[str] | None) -> Selection:
        return Selection(self.window, services, self.environments)


def _show(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_moment(value: str, name: str) -> datetime:
    """An RFC 3339 date-time (or a bare ``YYYY-MM-DD``, read as midnight UTC), in UTC."""
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
        return parse_rfc3339(text)
    except ValueError:
        raise FilterError(f"'{name}' must be an RFC 3339 date-time such as "
                          f"2024-05-01T00:00:00Z, not {value!r}") from None


def resolve_window(start: str | datetime | None, end: str | datetime | None,
                   now: datetime | None = None) -> Window:
    """``[from, to)`` from optional bounds: ``to`` defaults to now, ``from`` to ``to`` - 90 days."""
    end_at = _moment(end, "to") or (now or datetime.now(UTC)).astimezone(UTC)
    start_at = _moment(start, "from") or end_at - DEFAULT_WINDOW
    return Window(start_at, end_at)


def _moment(value: str | datetime | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise FilterError(f"'{name}' must carry a time zone (an RFC 3339 offset or Z)")
        moment = value.astimezone(UTC)
    else:
        moment = parse_moment(value, name)
    if not EARLIEST <= moment <= LATEST:
        raise FilterError(f"'{name}' must lie between {_show(EARLIEST)} and {_show(LATEST)}, "
                          f"not {_show(moment)}")
    return moment


def _names(value: str | None) -> list[str]:
    """A comma-separated filter value as a list of names (empty when absent)."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def team_services(settings: Settings, team: str) -> frozenset[str]:
    """The services config ``services:`` assigns to ``team``; FilterError for an unknown team."""
    members = frozenset(ServiceCatalog.from_settings(settings).services_of(team))
    if not members:
        known = sorted({config.team for config in settings.services.values() if config.team})
        raise FilterError(f"unknown team {team!r}: no service in the configuration belongs to it"
                          + (f" (teams: {', '.join(known)})" if known else
                             " (the configuration names no teams)"))
    return members


def resolve_selection(
    settings: Settings,
    *,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    service: str | None = None,
    team: str | None = None,
    environment: str | None = None,
    now: datetime | None = None,
) -> Selection:
    """Turn the query parameters (or CLI options) into a Selection; FilterError when unusable.

    ``service`` and ``environment`` may name several values, comma-separated; a service may be
    given by one of its aliases (case-insensitive, as the projector maps them). ``service`` and
    ``team`` together select their intersection. ``environment=*`` selects every environment.
    """
    window = resolve_window(start, end, now)
    catalog = ServiceCatalog.from_settings(settings)
    services: frozenset[str] | None = None
    if _names(service):
        services = frozenset(catalog.canonical(name) for name in _names(service))
    if _names(team):
        members = frozenset().union(*(team_services(settings, name) for name in _names(team)))
        services = members if services is None else services & members
    environments: frozenset[str] | None
    names = _names(environment)
    if ALL in names:
        environments = None
    elif names:
        environments = frozenset(names)
    else:
        environments = frozenset(settings.production_environments) or None
    return Selection(window, services, environments)
