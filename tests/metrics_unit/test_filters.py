"""The selection: window defaults and errors, services, teams, environments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dora_cloudevents.config import Settings
from dora_cloudevents.metrics.filters import FilterError, Selection, Window, resolve_selection

NOW = datetime(2024, 6, 1, 12, 30, tzinfo=UTC)
CONFIG = Settings.model_validate({
    "services": {"shop": {"aliases": ["acme/shop", "Shop-Deploy"], "team": "payments"},
                 "cart": {"team": "checkout"}, "ledger": {"team": "payments"}},
    "production_environments": ["production", "prod-eu"],
})


def test_default_window_is_the_last_90_days() -> None:
    window = resolve_selection(Settings(), now=NOW).window
    assert window == Window(NOW - timedelta(days=90), NOW)
    assert window.days == 90


def test_only_one_bound() -> None:
    assert resolve_selection(Settings(), end="2024-03-01T00:00:00Z", now=NOW).window.start == \
        datetime(2023, 12, 2, tzinfo=UTC)
    assert resolve_selection(Settings(), start="2024-05-01", now=NOW).window == Window(
        datetime(2024, 5, 1, tzinfo=UTC), NOW)


def test_offsets_become_utc() -> None:
    window = resolve_selection(Settings(), start="2024-05-01T02:00:00+02:00",
                               end="2024-05-02T00:00:00.5-01:00").window
    assert window.start == datetime(2024, 5, 1, tzinfo=UTC)
    assert window.end == datetime(2024, 5, 2, 1, 0, 0, 500000, tzinfo=UTC)


@pytest.mark.parametrize(("start", "end", "words"), [
    ("yesterday", None, ["'from'", "RFC 3339"]),
    (None, "2024-13-45T00:00:00Z", ["'to'"]),
    ("2024-05-01T00:00:00", None, ["'from'"]),  # no offset: not RFC 3339
    ("2024-05-02", "2024-05-01", ["'from'", "before 'to'"]),
    ("2024-05-01", "2024-05-01", ["before"]),
])
def test_bad_windows(start: str | None, end: str | None, words: list[str]) -> None:
    with pytest.raises(FilterError) as raised:
        resolve_selection(Settings(), start=start, end=end, now=NOW)
    for word in words:
        assert word in str(raised.value)


def select(settings: Settings = CONFIG, **filters: str) -> Selection:
    return resolve_selection(settings, **filters)  # type: ignore[arg-type]


def test_environments_default_to_production_else_all() -> None:
    assert select().environments == frozenset({"production", "prod-eu"})
    assert resolve_selection(Settings()).environments is None
    assert select(environment="staging").environments == frozenset({"staging"})
    assert select(environment="staging, qa").environments == frozenset({"staging", "qa"})
    assert select(environment="*").environments is None


def test_services_by_name_or_alias() -> None:
    assert select().services is None
    assert select(service="shop-deploy").services == frozenset({"shop"})
    assert select(service="acme/shop,cart").services == frozenset({"shop", "cart"})
    assert select(service="unknown").services == frozenset({"unknown"})


def test_teams_and_their_intersection_with_services() -> None:
    assert select(team="payments").services == frozenset({"shop", "ledger"})
    assert select(team="payments", service="shop").services == frozenset({"shop"})
    assert select(team="payments", service="cart").services == frozenset()
    with pytest.raises(FilterError, match=r"unknown team 'nobody'.*checkout, payments"):
        select(team="nobody")
