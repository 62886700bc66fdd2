"""Golden tests: each transformer's fixture events beside the CDEvents they must produce.

Layout: ``tests/transformers/<transformer-module>/<case>.input.json`` holds a CloudEvent
(or a list of them) and ``<case>.expected.json`` the CDEvents expected from it (a list, or a
list of lists for a list of inputs). The input names its transformer in the top-level key
``"transformer"`` of a wrapper object: ``{"transformer": "github", "event": {...}}``.
A data value ``{"$shared": "github-webhooks/push/..."}`` is replaced by that file of
``../shared/fixtures`` (the test skips where it is absent). Every expected CDEvent must also
pass the official schemas and our validator. ``DORA_UPDATE_GOLDEN=1`` rewrites the
expected files from the current output: review the diff before committing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from dora_cloudevents.transformers import builtin_transformers
from tests.conftest import shared_fixture
from tests.oracle import assert_valid_cdevent

HERE = Path(__file__).parent
CASES = sorted(HERE.glob("*/*.input.json"))


def _resolve_shared(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$shared"}:
            return json.loads(shared_fixture(*value["$shared"].split("/")).read_text())
        return {key: _resolve_shared(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve_shared(item) for item in value]
    return value


def load_case(path: Path) -> tuple[str, list[dict[str, Any]], bool]:
    wrapper = json.loads(path.read_text())
    events = _resolve_shared(wrapper["event"] if "event" in wrapper else wrapper["events"])
    return wrapper["transformer"], events if isinstance(events, list) else [events], (
        "events" in wrapper)


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.name[:-11]}" for p in CASES])
def test_transformer_output_matches_expected(case: Path) -> None:
    name, events, many = load_case(case)
    transformer = builtin_transformers()[name]
    outputs = [transformer(event) for event in events]
    actual: Any = outputs if many else outputs[0]
    expected_path = case.with_name(case.name.replace(".input.json", ".expected.json"))
    if os.environ.get("DORA_UPDATE_GOLDEN"):
        expected_path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
    expected = json.loads(expected_path.read_text())
    assert actual == expected
    for produced in outputs:
        for cdevent in produced:
            assert_valid_cdevent(cdevent)
    # Deterministic: the same input gives the same ids again (replays never duplicate).
    assert [transformer(event) for event in events] == outputs


def test_every_transformer_has_fixtures() -> None:
    covered = {load_case(case)[0] for case in CASES}
    missing = sorted(set(builtin_transformers()) - covered)
    assert not missing, f"transformers without golden fixtures: {missing}"
