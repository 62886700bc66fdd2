"""Property tests: hostile bytes, headers and JSON get a parsed event or a 4xx, nothing else.

Inputs are drawn at random (hypothesis) and also grown from real events: the golden inputs
of every transformer and the CDEvents conformance examples, with one value somewhere inside
replaced by arbitrary JSON or removed. Each test counts what it tried; the totals go to
.reports/reliability.json for docs/reliability.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers

from dora_cloudevents.cdevents import CDEventError, validate_cdevent
from dora_cloudevents.ingest.cloudevents import Limits, check_attributes, parse_http
from dora_cloudevents.problems import Problem
from dora_cloudevents.transformers import builtin_transformers
from dora_cloudevents.transformers.base import TransformError
from tests.conftest import FIXTURES
from tests.reliability.figures import count
from tests.transformers.test_fixtures import CASES, load_case

BOUNDED = settings(max_examples=150, deadline=timedelta(seconds=5), derandomize=True,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow])

LATIN_1 = st.characters(min_codepoint=32, max_codepoint=255)  # what an HTTP header can carry


def _json(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        text, inner, max_size=4), max_leaves=12)


json_values = _json(st.text(max_size=12))
CONTENT_TYPES = st.sampled_from([
    "application/cloudevents+json", "application/cloudevents-batch+json", "application/json",
    "application/cloudevents+json; charset=utf-8", "text/plain", "application/octet-stream",
    "text/json", "application/xml", "", "multipart/form-data; boundary=x"]) | st.text(
    alphabet=LATIN_1, max_size=30)
HEADER_NAMES = st.sampled_from([
    "ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time", "ce-subject",
    "ce-datacontenttype", "ce-dataschema", "ce-", "ce-x", "ce-UPPER", "ce-data_base64",
    "content-type", "x-github-event", "x-gitlab-event"]) | st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz-_0123456789", min_size=1, max_size=20)
HEADER_VALUES = st.sampled_from(["1.0", "0.3", "2.0", "", "%", "%zz", "2024-05-01T10:00:00Z",
                                 "yesterday"]) | st.text(
    alphabet=LATIN_1, max_size=40)


class Counter:
    """Examples tried and server errors seen by one test, added to the report at the end."""

    def __init__(self) -> None:
        self.tried = 0
        self.server_errors = 0


@pytest.fixture
def counted(request: pytest.FixtureRequest) -> Iterator[Counter]:
    counter = Counter()
    yield counter
    count(f"hostile_inputs.hypothesis.{request.node.name}", counter.tried,
          counter.server_errors)


def _mutate(data: st.DataObject, value: Any, depth: int = 0) -> Any:
    """``value`` with one nested value replaced by arbitrary JSON, or one key removed."""
    if depth > 6 or not isinstance(value, dict | list) or not value or data.draw(
            st.integers(0, 3)) == 0:
        return data.draw(json_values)
    if isinstance(value, list):
        index = data.draw(st.integers(0, len(value) - 1))
        return [*value[:index], _mutate(data, value[index], depth + 1), *value[index + 1:]]
    key = data.draw(st.sampled_from(sorted(value)))
    if data.draw(st.integers(0, 5)) == 0:
        return {k: v for k, v in value.items() if k != key}
    return {**value, key: _mutate(data, value[key], depth + 1)}


def _golden_events() -> list[tuple[str, dict[str, Any]]]:
    events = []
    for case in CASES:
        try:
            name, inputs, _ = load_case(case)
        except pytest.skip.Exception:
            continue
        events += [(name, event) for event in inputs]
    return events


GOLDEN = _golden_events()
CONFORMANCE = sorted((FIXTURES / "cdevents-spec").glob("v*/conformance/*.json"))


def _raw_headers(pairs: list[tuple[str, str]]) -> Headers:
    return Headers(raw=[(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs])


def _parse(headers: Headers, body: bytes, counter: Counter) -> None:
    counter.tried += 1
    try:
        events = parse_http(headers, body, Limits(max_batch_events=50)).events
    except Problem as problem:
        assert 400 <= problem.status < 500, problem.detail
        return
    assert isinstance(events, list) and all(isinstance(e, dict) for e in events)


@BOUNDED
@given(headers=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=8),
       content_type=CONTENT_TYPES, body=st.binary(max_size=300))
def test_cloudevents_parser_on_arbitrary_bytes_and_headers(
        headers: list[tuple[str, str]], content_type: str, body: bytes, counted: Counter) -> None:
    _parse(_raw_headers([*headers, ("content-type", content_type)]), body, counted)


@BOUNDED
@given(content_type=CONTENT_TYPES, payload=json_values)
def test_cloudevents_parser_on_arbitrary_json(content_type: str, payload: Any,
                                              counted: Counter) -> None:
    _parse(_raw_headers([("content-type", content_type)]), json.dumps(payload).encode(), counted)


@BOUNDED
@given(data=st.data())
def test_cloudevents_parser_on_mutated_real_events(data: st.DataObject,
                                                   counted: Counter) -> None:
    _, event = data.draw(st.sampled_from(GOLDEN))
    mutated = _mutate(data, event)
    batch = data.draw(st.booleans())
    content_type = "application/cloudevents-batch+json" if batch else (
        "application/cloudevents+json")
    body = json.dumps([mutated, event] if batch else mutated).encode()
    _parse(_raw_headers([("content-type", content_type)]), body, counted)
    counted.tried += 1
    try:
        check_attributes(mutated, limits=Limits())
    except Problem as problem:
        assert problem.status == 400


def _validate(candidate: Any, counter: Counter) -> None:
    counter.tried += 1
    try:
        info = validate_cdevent(candidate)
    except CDEventError as error:
        assert str(error)
        return
    assert info.type == candidate["context"]["type"]


@BOUNDED
@given(candidate=json_values)
def test_cdevents_validator_on_arbitrary_json(candidate: Any, counted: Counter) -> None:
    _validate(candidate, counted)


@BOUNDED
@given(data=st.data())
def test_cdevents_validator_on_mutated_conformance_examples(data: st.DataObject,
                                                            counted: Counter) -> None:
    if not CONFORMANCE:
        pytest.skip("the CDEvents conformance examples are not available")
    example = json.loads(data.draw(st.sampled_from(CONFORMANCE)).read_text())
    _validate(_mutate(data, example), counted)


@BOUNDED
@given(data=st.data())
def test_transformers_fail_only_with_transform_errors(data: st.DataObject,
                                                      counted: Counter) -> None:
    """A built-in transformer given a mutated real event: CDEvents or TransformError. (The
    router would survive any exception, but anything else is a bug in the transformer.)"""
    name, event = data.draw(st.sampled_from(GOLDEN))
    mutated = _mutate(data, event)
    try:  # the router only ever sees events that ingest accepted
        check_attributes(mutated)
    except Problem:
        mutated = {**event, "data": mutated}
    counted.tried += 1
    try:
        outputs = builtin_transformers()[name](mutated)
    except TransformError:
        return
    for cdevent in outputs:
        validate_cdevent(cdevent)


WEBHOOKS = {
    "/webhooks/github": {"x-github-event": st.sampled_from(
        ["push", "pull_request", "issues", "deployment_status", "workflow_run", "release",
         "ping", "create", "gollum", "x"]), "x-github-delivery": st.text(max_size=40)},
    "/webhooks/gitlab": {"x-gitlab-event": st.sampled_from(
        ["Push Hook", "Merge Request Hook", "Pipeline Hook", "Deployment Hook", "Issue Hook",
         "Note Hook", "Nope", "Tag Push Hook"]), "idempotency-key": st.text(max_size=20)},
    "/webhooks/pagerduty": {},
    "/webhooks/alertmanager": {},
}
_SOURCE_OF = {"github": "/webhooks/github", "gitlab": "/webhooks/gitlab",
              "pagerduty": "/webhooks/pagerduty", "alertmanager": "/webhooks/alertmanager"}


def _post_webhook(client: httpx.Client, path: str, body: bytes, data: st.DataObject,
                  counter: Counter) -> None:
    headers = {name: data.draw(value) for name, value in WEBHOOKS[path].items()}
    headers = {k: v for k, v in headers.items()
               if v.isprintable() and v.isascii() and v.strip() == v}
    headers["content-type"] = data.draw(st.sampled_from(
        ["application/json", "application/x-www-form-urlencoded", "text/plain"]))
    counter.tried += 1
    response = client.post(path, content=body, headers=headers)
    if response.status_code >= 500:
        counter.server_errors += 1
    assert response.status_code == 202 or 400 <= response.status_code < 500, response.text
    if response.status_code != 202:
        assert response.headers["content-type"].startswith("application/problem+json")


@BOUNDED
@given(data=st.data())
def test_webhooks_on_arbitrary_json(client: httpx.Client, data: st.DataObject,
                                    counted: Counter) -> None:
    path = data.draw(st.sampled_from(sorted(WEBHOOKS)))
    body = data.draw(st.one_of(json_values.map(lambda v: json.dumps(v).encode()),
                               st.binary(max_size=100)))
    _post_webhook(client, path, body, data, counted)


@BOUNDED
@given(data=st.data())
def test_webhooks_on_mutated_real_payloads(client: httpx.Client, data: st.DataObject,
                                           counted: Counter) -> None:
    candidates = [(n, e) for n, e in GOLDEN if n in _SOURCE_OF]
    name, event = data.draw(st.sampled_from(candidates))
    body = json.dumps(_mutate(data, event.get("data"))).encode()
    _post_webhook(client, _SOURCE_OF[name], body, data, counted)


def test_nul_characters_are_refused(client: httpx.Client, database_url: str) -> None:
    """Found by the webhook properties above: PostgreSQL cannot store NUL (text, JSONB), so
    both back-ends refuse it alike (the ingest checks name it before the database sees it)."""
    nul = b'{"alerts": [], "x": "\\u0000"}'
    for path, headers in (("/webhooks/alertmanager", {}),
                          ("/webhooks/gitlab", {"x-gitlab-event": "Push Hook"})):
        response = client.post(path, content=nul,
                               headers={"content-type": "application/json", **headers})
        assert response.status_code == 400, response.text
        assert "U+0000" in response.json()["detail"]
    # ...and so does a read API filter (found by schemathesis).
    response = client.get("/api/v1/dora", params={"environment": "prod\x00"})
    assert response.status_code in (200, 400), response.text


@pytest.mark.parametrize(("path", "params"), [
    ("/api/v1/dora", {"to": "0001-01-15T00:00:00Z"}),
    ("/api/v1/metrics/lead-time", {"to": "9999-12-31T00:00:00Z", "bucket": "month"}),
    ("/deploy-frequency/year", {"from": "0500-10-06T19:19:23-08:39"}),
    ("/api/v1/deployments", {"offset": str(2**64)}),
    ("/api/v1/events", {"before": str(2**64)}),
])
def test_values_past_the_databases_ranges_are_400(client: httpx.Client, path: str,
                                                  params: dict[str, str]) -> None:
    """Found by schemathesis: each of these answered 500 (OverflowError) before."""
    response = client.get(path, params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
