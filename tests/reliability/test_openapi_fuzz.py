"""schemathesis against the live app's /openapi.json: every operation, generated requests
(valid and invalid), never a 5xx, and answers that match the documented schemas.

Driven through schemathesis' hypothesis strategies rather than its pytest plugin (which
does not work with pytest 9), one bounded run per operation and generation mode.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from sqlalchemy import Engine

from dora_cloudevents.app import create_app
from dora_cloudevents.config import Settings
from tests.conftest import LiveServer
from tests.reliability.figures import count

EXAMPLES = 25  # per operation and mode: ~15 operations x 2 modes x 2 databases
READ_SECONDS = 10.0
# schemathesis reads a body until it ends or the read times out, and a stream never ends:
# 25 examples of one took 10 s each. Its status, headers and first second are what a
# response check can see of it anyway.
STREAM_READ_SECONDS = 1.0


def read_timeout(operation: schemathesis.APIOperation) -> float:
    """Seconds to read an answer of ``operation``: short for one documented as a stream."""
    ok = operation.definition.raw["responses"].get("200", {})
    return STREAM_READ_SECONDS if "text/event-stream" in ok.get("content", {}) else READ_SECONDS


def fuzz(operation: schemathesis.APIOperation, mode: GenerationMode, url: str,
         calls: list[int]) -> None:
    read_seconds = read_timeout(operation)

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=timedelta(seconds=10), derandomize=True,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, timeout=(10, read_seconds))
        calls.append(response.status_code)
        checks = [not_a_server_error]
        if mode is GenerationMode.POSITIVE:
            checks += [response_schema_conformance, content_type_conformance]
        case.validate_response(response, checks=checks)

    try:
        run()
    except Unsatisfiable:
        # An operation with no parameters and no body has no invalid request to make.
        assert mode is GenerationMode.NEGATIVE, operation.label


@pytest.mark.slow
def test_no_operation_answers_a_server_error(engine: Engine) -> None:
    calls: list[int] = []
    with LiveServer(create_app(Settings(), engine)) as live:
        schema = schemathesis.openapi.from_url(f"{live.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 15
        for operation in operations:
            for mode in GenerationMode:
                fuzz(operation, mode, live.url, calls)
    server_errors = sum(1 for status in calls if status >= 500)
    count(f"hostile_inputs.schemathesis.{engine.dialect.name}", len(calls), server_errors)
    assert server_errors == 0
