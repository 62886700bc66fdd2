"""End to end in a real browser: Debian's chromium driven by Playwright, after `dora-ce demo`.

Screenshots go to test-artifacts/ui/ (git-ignored). Every page load also checks that no
Content-Security-Policy violation happened, no console error was logged and no dialog
(alert) fired.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import CliRunner
from pydantic import SecretStr

from dora_cloudevents.app import create_app
from dora_cloudevents.cli import main
from dora_cloudevents.config import load_settings
from dora_cloudevents.store.db import make_engine
from dora_cloudevents.ui.tiles import duration, per_week, percent
from tests.conftest import PROJECT, LiveServer
from tests.ui.support import (
    IMAGE,
    LINK,
    SCRIPT,
    hostile_cdevent,
    hostile_cloudevent,
    post,
    post_cdevent,
    rollout,
    until,
)

CHROMIUM = os.environ.get("DORA_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = PROJECT / "test-artifacts" / "ui"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                               "(pip install -e '.[test]')")
if not shutil.which(CHROMIUM):
    pytest.skip(f"no chromium at {CHROMIUM}: the browser tests drive Debian's chromium "
                "(apt-get install chromium; .ci/run installs it)", allow_module_level=True)

pytestmark = pytest.mark.slow

WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
  (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server over a database `dora-ce demo` filled (SQLite; the demo's own tests cover
    PostgreSQL), with the demo's config file."""
    folder = tmp_path_factory.mktemp("demo")
    database, config = f"sqlite:///{folder / 'demo.db'}", folder / "dora-demo.yaml"
    result = CliRunner().invoke(main, ["demo", "--db", database, "--days", "75",
                                       "--write-config", str(config)])
    assert result.exit_code == 0, result.output
    settings = load_settings(config, {"database_url": database})
    engine = make_engine(database)
    with LiveServer(create_app(settings, engine)) as live:
        yield live.url
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


class Watched:
    """A page with its dialogs, console errors and CSP violations recorded."""

    def __init__(self, browser: Any, **context: Any) -> None:
        self.context = browser.new_context(**context)
        self.context.add_init_script(WATCH)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def clean(self) -> None:
        """Nothing ran that should not have, nothing was blocked, nothing broke."""
        violations = self.page.evaluate("window.__violations")
        assert violations == [], violations
        assert self.dialogs == []
        assert self.errors == []

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    page = Watched(browser, viewport={"width": 1440, "height": 900})
    yield page
    page.close()


def _tile_values(page: Any) -> dict[str, tuple[str, str]]:
    """tile key -> (data-value, shown text) of every tile on the page."""
    values = {}
    for tile in page.locator("article.tile").all():
        number = tile.locator(".number")
        values[tile.get_attribute("data-metric")] = (number.get_attribute("data-value"),
                                                     number.inner_text())
    return values


def _expected(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """What the tiles must show for an /api/v1/dora answer."""
    def raw(value: Any) -> str:
        return "" if value is None else str(value)

    frequency = report["deployment_frequency"]
    lead = report["lead_time_for_changes"]["median_seconds"]
    failure = report["change_failure_rate"]["rate"]
    recovery = report["failed_deployment_recovery_time"]["median_seconds"]
    rework = report["deployment_rework_rate"]["rate"]
    return {
        "deployment_frequency": (raw(frequency["per_week"]),
                                 per_week(frequency["per_week"]) if frequency["deployments"]
                                 else "—"),
        "lead_time_for_changes": (raw(lead), duration(lead)),
        "change_failure_rate": (raw(failure), percent(failure)),
        "failed_deployment_recovery_time": (raw(recovery), duration(recovery)),
        "deployment_rework_rate": (raw(rework), percent(rework)),
    }


def _same_numbers(page: Any, base: str) -> dict[str, tuple[str, str]]:
    query = urlsplit(page.url).query
    report = httpx.get(f"{base}/api/v1/dora?{query}", timeout=10).json()
    shown = _tile_values(page)
    assert shown == _expected(report)
    levels = [badge.inner_text() for badge in page.locator("article.tile .level .badge").all()]
    assert levels[:4] == [report[key]["level"] or "no data" for key in (
        "deployment_frequency", "lead_time_for_changes", "change_failure_rate",
        "failed_deployment_recovery_time")]
    assert levels[4] == "no benchmark"
    return shown


def test_the_dashboard_shows_the_api_numbers_and_charts(demo: str, watched: Watched) -> None:
    page = watched.page
    page.goto(f"{demo}/")
    page.wait_for_selector("body[data-charts=ready]", timeout=20_000)
    shown = _same_numbers(page, demo)
    assert all(text != "—" for _, text in shown.values())  # the demo fills every tile
    assert page.locator(".chart .main-svg").count() >= 5  # plotly drew every trend
    assert page.locator("#benchmarks tbody tr").count() == 4
    assert page.locator("#overall-level").inner_text().startswith("overall: ")
    watched.shot("dashboard-laptop")
    watched.clean()

    page.click("text=month")  # the bucket switch is in the URL too
    page.wait_for_selector("body[data-charts=ready]", timeout=20_000)
    assert parse_qs(urlsplit(page.url).query)["bucket"] == ["month"]
    assert page.locator(".chart[data-bucket=month]").count() == 5
    watched.clean()


def test_changing_a_filter_changes_the_numbers_and_the_url(demo: str, watched: Watched
                                                           ) -> None:
    page = watched.page
    page.goto(f"{demo}/")
    before = _tile_values(page)
    with page.expect_navigation():
        page.select_option("select[name=service]", "billing")
    assert parse_qs(urlsplit(page.url).query) == {"service": ["billing"]}
    after = _same_numbers(page, demo)
    assert after != before
    with page.expect_navigation():
        page.select_option("select[name=team]", "payments")
    assert parse_qs(urlsplit(page.url).query) == {"service": ["billing"], "team": ["payments"]}
    _same_numbers(page, demo)
    # A shared link opens the same view.
    other = Watched(page.context.browser, viewport={"width": 1200, "height": 800})
    other.page.goto(page.url)
    assert _tile_values(other.page) == _tile_values(page)
    assert other.page.locator("select[name=team]").input_value() == "payments"
    other.close()
    watched.clean()


def test_drill_down_from_a_tile_to_the_deployments_behind_it(demo: str, watched: Watched
                                                             ) -> None:
    page = watched.page
    page.goto(f"{demo}/?service=web")
    page.click("#tile-change_failure_rate >> text=See the failed deployments")
    assert urlsplit(page.url).path == "/deployments"
    assert parse_qs(urlsplit(page.url).query) == {"service": ["web"], "failed": ["true"]}
    api = httpx.get(f"{demo}/api/v1/deployments?service=web&failed=true", timeout=10).json()
    assert page.locator("h1 .count").inner_text() == f"({api['total']})"
    rows = page.locator("#drilldown tbody tr")
    assert rows.count() == min(api["total"], 50) > 0
    assert "failed" in rows.first.inner_text()
    page.click("#drilldown tbody tr >> nth=0 >> a")  # the deployment's CDEvent, whole
    assert page.locator("#event-json").inner_text().lstrip().startswith("{")
    for path in ("changes", "incidents"):
        page.goto(f"{demo}/{path}?service=web")
        assert page.locator("#drilldown tbody tr").count() > 0
    watched.shot("drilldown-incidents")
    watched.clean()


def test_the_monitor_shows_a_posted_event_live_and_its_cdevent(demo: str, watched: Watched
                                                               ) -> None:
    page = watched.page
    page.goto(f"{demo}/events")
    page.wait_for_selector("#live.on", timeout=10_000)
    event = rollout(service="live-shop")
    with httpx.Client(base_url=demo, timeout=10) as client:
        post(client, event)
    row = page.locator("#monitor-rows tr", has_text="https://10.96.0.1:443").first
    row.locator("a.chip", has_text="dev.cdevents.service.deployed").wait_for(timeout=15_000)
    assert "routed" in row.locator(".badge").inner_text()
    watched.shot("monitor-live")
    row.locator("td").nth(1).click()  # anywhere on the row opens the whole event
    page.wait_for_url("**/events/*")
    assert event["id"] in page.locator("#event-json").inner_text()
    assert "service.deployed" in page.locator("#produced").inner_text()
    watched.clean()


def test_the_monitor_filters_by_type(demo: str, watched: Watched) -> None:
    page = watched.page
    page.goto(f"{demo}/events")
    page.fill("input[name=type]", "com.acme.chatops.command")
    with page.expect_navigation():
        page.click("text=Filter")
    types = page.locator("#monitor-rows tr td:nth-child(3)").all_inner_texts()
    assert types and set(types) == {"com.acme.chatops.command"}
    assert "no route matches" in page.locator("#monitor-rows").inner_text()
    watched.clean()


def test_hostile_data_is_text_on_every_view(demo: str, watched: Watched) -> None:
    page = watched.page
    page.goto(f"{demo}/events")
    page.wait_for_selector("#live.on", timeout=10_000)
    with httpx.Client(base_url=demo, timeout=10) as client:
        post(client, hostile_cloudevent())
        post_cdevent(client, hostile_cdevent())
        # Live, through the stream and the page's script:
        page.locator("#monitor-rows td", has_text=SCRIPT).first.wait_for(timeout=15_000)
        page.locator("#monitor-rows td", has_text=LINK).first.wait_for(timeout=15_000)
        until(lambda: client.get("/api/v1/deployments", params={"service": IMAGE}).json()
              ["total"])
        raw_seq = client.get("/api/v1/events", params={"source": LINK}).json()[0]["seq"]
        cd_seq = client.get("/api/v1/deployments", params={"service": IMAGE}).json()[
            "items"][0]["id"]
    watched.shot("hostile-monitor-live")
    views = [f"/events?source={LINK}", "/events", f"/events/{raw_seq}", f"/cdevents/{cd_seq}",
             "/", f"/?service={IMAGE}", f"/deployments?service={IMAGE}", "/deployments"]
    for view in views:
        page.goto(f"{demo}{view}")
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)
        text = page.locator("body").inner_text()
        if view.startswith(("/events", "/cdevents")):
            assert SCRIPT in text or LINK in text, view
        if "deployments" in view or "cdevents" in view:
            assert IMAGE in text, view
        assert page.locator("img[src=x]").count() == 0, view
        assert page.locator("a[href^='javascript:']").count() == 0, view
        assert page.locator("script:not([src])").count() == 0, view
        watched.clean()
    page.goto(f"{demo}/?service={IMAGE}")
    assert page.locator("select[name=service] option", has_text=IMAGE).count() == 1
    watched.shot("hostile-dashboard")
    watched.clean()


def test_a_phone_sized_screen(demo: str, browser: Any) -> None:
    phone = Watched(browser, viewport={"width": 390, "height": 844}, is_mobile=True,
                    device_scale_factor=2)
    for path, name in (("/", "dashboard-phone"), ("/events", "monitor-phone")):
        phone.page.goto(f"{demo}{path}")
        if path == "/":
            phone.page.wait_for_selector("body[data-charts=ready]", timeout=20_000)
        # Nothing wider than the screen but the tables, which scroll in their own box.
        width = phone.page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        phone.shot(name)
        phone.clean()
    phone.close()


def test_sign_in_in_the_browser_then_the_monitor_streams(tmp_path: Path, browser: Any
                                                         ) -> None:
    from dora_cloudevents.config import Settings
    from dora_cloudevents.store.migrate import upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'dora.db'}")
    upgrade(engine)
    settings = Settings(read_tokens=[SecretStr("let-me-in")])
    with LiveServer(create_app(settings, engine)) as live:
        user = Watched(browser, viewport={"width": 1200, "height": 800})
        user.page.goto(f"{live.url}/events")
        assert urlsplit(user.page.url).path == "/signin"
        user.page.fill("#token", "wrong")
        user.page.click("button[type=submit]")
        assert "not one of the read tokens" in user.page.locator("body").inner_text()
        user.errors.clear()  # the 403 answer itself is logged as a console error
        user.page.fill("#token", "let-me-in")
        user.page.click("button[type=submit]")
        user.page.wait_for_url(f"{live.url}/events")
        user.page.wait_for_selector("#live.on", timeout=10_000)  # EventSource got through
        cookie = next(c for c in user.context.cookies() if c["name"] == "dora_read_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        with httpx.Client(base_url=live.url, timeout=10) as client:
            post(client, rollout(service="signed-in"))
        user.page.locator("#monitor-rows tr").first.wait_for(timeout=15_000)
        user.clean()
        user.close()
    engine.dispose()
