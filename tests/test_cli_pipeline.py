"""The pipeline commands of dora-ce on both databases: route --once, replay, transform.

Raw events are stored with the store functions the ingest endpoints use; the commands run
through click's CliRunner against the same database URL, with a config file whose jq
mapping can be made to fail (``error("boom")``) and then fixed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from sqlalchemy import Engine, select

from dora_cloudevents.cli import main
from dora_cloudevents.store.db import write_transaction
from dora_cloudevents.store.events import cloudevent_row, insert_groups
from dora_cloudevents.store.schema import cdevents_raw, cloudevents_raw
from tests.conftest import shared_fixture
from tests.oracle import assert_valid_cdevent
from tests.transformers.test_fixtures import HERE as GOLDEN
from tests.transformers.test_fixtures import load_case

GITHUB_PUSH = "dev.knative.source.github.push"
RELEASE = "com.example.release"
UNKNOWN = "com.example.unknown"
BOOM = 'error("boom")'
DEPLOYED = """
    {context: {type: "dev.cdevents.service.deployed.0.2.0"},
     subject: {id: .data.service, type: "service",
               content: {environment: {id: "production"},
                         artifactId: "pkg:generic/\\(.data.service)@\\(.data.n)"}}}
"""


def golden(case: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The single input CloudEvent of a golden case and the CDEvents expected of it."""
    _, [event], _ = load_case(GOLDEN / f"{case}.input.json")
    expected = json.loads((GOLDEN / f"{case}.expected.json").read_text())
    return event, expected


def release(n: int) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"r-{n}", "source": "/releases", "type": RELEASE,
            "time": "2024-05-01T10:00:00Z", "data": {"service": "shop", "n": n}}


def unknown_event() -> dict[str, Any]:
    return {"specversion": "1.0", "id": "u-1", "source": "/elsewhere", "type": UNKNOWN,
            "time": "2024-05-01T10:00:00Z", "data": {}}


def write_config(path: Path, release_jq: str) -> str:
    """A config routing GitHub to the built-in transformer and releases to a jq mapping."""
    path.write_text(yaml.safe_dump({
        "routes": [{"match": {"type": "dev.knative.source.github.*"}, "to": ["github"]},
                   {"match": {"type": RELEASE}, "to": ["release"]}],
        "mappings": {"release": {"jq": release_jq}},
    }))
    return str(path)


def dora_ce(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=stdin)


def succeeded(result: Result) -> list[str]:
    """The standard output lines of a command that must have exited 0."""
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def store_raw(engine: Engine, events: list[dict[str, Any]]) -> None:
    with write_transaction(engine) as connection:
        [outcome] = insert_groups(connection, cloudevents_raw,
                                  [[cloudevent_row(e, datetime.now(UTC)) for e in events]])
    assert outcome.accepted == len(events)


def raw_state(engine: Engine) -> dict[str, tuple[str, int, str | None]]:
    """(status, attempts, error) of each raw event, by CloudEvent id."""
    with engine.connect() as connection:
        rows = connection.execute(select(cloudevents_raw.c.event_id, cloudevents_raw.c.status,
                                         cloudevents_raw.c.attempts, cloudevents_raw.c.error))
        return {event_id: (status, attempts, error) for event_id, status, attempts, error in rows}


def stored_cdevents(engine: Engine) -> dict[str, tuple[int, dict[str, Any]]]:
    """(row seq, CDEvent) of each stored CDEvent, by context id."""
    with engine.connect() as connection:
        rows = connection.execute(select(cdevents_raw.c.event_id, cdevents_raw.c.seq,
                                         cdevents_raw.c.event))
        return {event_id: (seq, event) for event_id, seq, event in rows}


@pytest.fixture(autouse=True)
def no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DORA_CONFIG", "DORA_DATABASE_URL", "DORA_ROUTES", "DORA_MAPPINGS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def push() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return golden("github/push-feature-branch")


@pytest.fixture
def three_raw_events(engine: Engine, push: tuple[dict[str, Any], list[dict[str, Any]]]
                     ) -> Iterator[None]:
    """A GitHub push (routable), a release (through the mapping) and an unroutable event."""
    store_raw(engine, [push[0], release(1), unknown_event()])
    yield


@pytest.mark.usefixtures("three_raw_events")
def test_route_once_routes_what_is_pending_and_prints_the_counts(
        database_url: str, engine: Engine, tmp_path: Path,
        push: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    config = write_config(tmp_path / "dora.yaml", BOOM)
    first = succeeded(dora_ce("route", "--once", "--db", database_url, "--config", config))
    assert first == ["routed 1, unrouted 1, failed 1; 1 CDEvents stored",
                     "raw events by status: failed 1, routed 1, unrouted 1"]
    event, expected = push
    assert raw_state(engine) == {
        event["id"]: ("routed", 1, None),
        "r-1": ("failed", 1, "mapping 'release': jq failed: boom"),
        "u-1": ("unrouted", 1, None),
    }
    assert [cdevent for _, cdevent in stored_cdevents(engine).values()] == expected

    again = succeeded(dora_ce("route", "--once", "--db", database_url, "--config", config))
    assert again == ["routed 0, unrouted 0, failed 0; 0 CDEvents stored",
                     "raw events by status: failed 1, routed 1, unrouted 1"]


@pytest.mark.usefixtures("three_raw_events")
def test_replay_reroutes_history_without_new_cdevents(database_url: str, engine: Engine,
                                                      tmp_path: Path) -> None:
    config = write_config(tmp_path / "dora.yaml", DEPLOYED)
    routed = succeeded(dora_ce("route", "--once", "--db", database_url, "--config", config))
    assert routed[0] == "routed 2, unrouted 1, failed 0; 2 CDEvents stored"
    before = stored_cdevents(engine)
    assert len(before) == 2
    for _, cdevent in before.values():
        assert_valid_cdevent(cdevent)

    replayed = succeeded(dora_ce("replay", "--db", database_url, "--config", config))
    assert replayed[0] == "3 raw event(s) sent back to the router"
    # The CDEvents are replaced by their deterministic twins, so the line counts them as
    # written again; the store below proves no CDEvent was added or changed.
    assert replayed[1].startswith("routed 2, unrouted 1, failed 0; ")
    assert replayed[2] == "raw events by status: routed 2, unrouted 1"
    after = stored_cdevents(engine)
    assert {i: cdevent for i, (_, cdevent) in after.items()} == {
        i: cdevent for i, (_, cdevent) in before.items()}
    assert {status for status, _, _ in raw_state(engine).values()} == {"routed", "unrouted"}
    assert {attempts for _, attempts, _ in raw_state(engine).values()} == {2}


@pytest.mark.usefixtures("three_raw_events")
def test_replay_since_only_takes_events_received_from_then_on(database_url: str,
                                                             tmp_path: Path) -> None:
    config = write_config(tmp_path / "dora.yaml", DEPLOYED)
    succeeded(dora_ce("route", "--once", "--db", database_url, "--config", config))
    future = succeeded(dora_ce("replay", "--since", "2999-01-01", "--db", database_url,
                               "--config", config))
    assert future[:2] == ["0 raw event(s) sent back to the router",
                          "routed 0, unrouted 0, failed 0; 0 CDEvents stored"]
    past = succeeded(dora_ce("replay", "--since", "2000-01-01T00:00:00", "--db", database_url,
                             "--config", config))
    assert past[0] == "3 raw event(s) sent back to the router"


@pytest.mark.usefixtures("three_raw_events")
def test_replay_failed_retries_only_the_failed_events(
        database_url: str, engine: Engine, tmp_path: Path,
        push: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    config_path = tmp_path / "dora.yaml"
    config = write_config(config_path, BOOM)
    succeeded(dora_ce("route", "--once", "--db", database_url, "--config", config))
    push_cdevents = stored_cdevents(engine)

    still_broken = succeeded(dora_ce("replay", "--failed", "--db", database_url,
                                     "--config", config))
    assert still_broken == ["1 raw event(s) sent back to the router",
                            "routed 0, unrouted 0, failed 1; 0 CDEvents stored",
                            "raw events by status: failed 1, routed 1, unrouted 1",
                            "projection rebuilt from 1 CDEvents"]

    write_config(config_path, DEPLOYED)
    healed = succeeded(dora_ce("replay", "--failed", "--db", database_url, "--config", config))
    assert healed == ["1 raw event(s) sent back to the router",
                      "routed 1, unrouted 0, failed 0; 1 CDEvents stored",
                      "raw events by status: routed 2, unrouted 1",
                      "projection rebuilt from 2 CDEvents"]
    assert raw_state(engine) == {push[0]["id"]: ("routed", 1, None),
                                 "r-1": ("routed", 3, None),
                                 "u-1": ("unrouted", 1, None)}
    after = stored_cdevents(engine)
    # The push's CDEvent was not touched (same row), the release's is the only new one.
    assert {i: after[i] for i in push_cdevents} == push_cdevents
    [(_, deployed)] = [after[i] for i in set(after) - set(push_cdevents)]
    assert deployed["subject"]["content"]["artifactId"] == "pkg:generic/shop@1"
    assert deployed["context"]["source"] == "/releases"
    assert_valid_cdevent(deployed)


def test_transform_wraps_a_bare_payload_given_route() -> None:
    payload_file = shared_fixture("github-webhooks", "push", "with-new-branch.payload.json")
    payload = payload_file.read_text()
    # The golden case posts this very payload as a CloudEvent from the repository.
    event, expected = golden("github/push-new-default-branch")
    assert event["data"] == json.loads(payload)

    result = dora_ce("transform", "--route", GITHUB_PUSH, "--source", event["source"],
                     stdin=payload)
    assert json.loads("\n".join(succeeded(result))) == expected
    assert "routes to: github; 1 CDEvent(s)" in result.stderr

    default_source = json.loads("\n".join(succeeded(
        dora_ce("transform", "--route", GITHUB_PUSH, stdin=payload))))
    assert [c["context"]["source"] for c in default_source] == ["/dora-ce/transform"]
    for cdevent in default_source:
        assert_valid_cdevent(cdevent)


def test_transform_takes_a_whole_cloudevent_without_route(
        push: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    event, expected = push
    result = dora_ce("transform", stdin=json.dumps(event))
    assert json.loads("\n".join(succeeded(result))) == expected


def test_transform_with_a_config_mapping(tmp_path: Path) -> None:
    config = write_config(tmp_path / "dora.yaml", DEPLOYED)
    result = dora_ce("transform", "--config", config, stdin=json.dumps(release(7)))
    [cdevent] = json.loads("\n".join(succeeded(result)))
    assert cdevent["subject"]["content"]["artifactId"] == "pkg:generic/shop@7"
    assert "routes to: release; 1 CDEvent(s)" in result.stderr


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["--route", UNKNOWN], '{"any": "payload"}',
     f"no route matches type {UNKNOWN!r}: the event would be kept raw as unrouted"),
    ([], json.dumps(unknown_event()), f"no route matches type {UNKNOWN!r}"),
    (["--route", GITHUB_PUSH], "{not json", "standard input is not JSON"),
    ([], '{"ref": "refs/heads/main"}',
     "standard input is not a CloudEvent; give --route TYPE to wrap the payload in one"),
], ids=["unmatched-route", "unmatched-cloudevent", "invalid-json", "bare-payload-no-route"])
def test_transform_refuses_clearly(args: list[str], stdin: str, message: str) -> None:
    result = dora_ce("transform", *args, stdin=stdin)
    assert result.exit_code == 1, result.output
    assert f"Error: {message}" in result.stderr
    assert result.stdout == ""


def test_transform_reports_an_event_that_would_fail(tmp_path: Path) -> None:
    config = write_config(tmp_path / "dora.yaml", BOOM)
    result = dora_ce("transform", "--config", config, stdin=json.dumps(release(1)))
    assert result.exit_code == 1, result.output
    assert "the event would fail: mapping 'release': jq failed: boom" in result.stderr


def test_serve_refuses_an_unknown_component_before_opening_the_database(tmp_path: Path
                                                                        ) -> None:
    database = tmp_path / "never.db"
    result = dora_ce("serve", "--components", "router,bogus", "--db", f"sqlite:///{database}")
    assert result.exit_code == 2, result.output
    assert "unknown component(s) bogus; choose from ingest, router, projector, transform, api" in (
        result.stderr)
    assert not database.exists()
