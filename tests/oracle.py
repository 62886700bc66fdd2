"""The official CDEvents JSON schemas (../shared/fixtures/cdevents-spec) as a test oracle."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from tests.conftest import FIXTURES

SPEC = FIXTURES / "cdevents-spec"


@cache
def _validators() -> dict[str, Draft202012Validator]:
    """Validators keyed by context.type, for every type of every stored spec version."""
    validators: dict[str, Draft202012Validator] = {}
    for version in sorted(SPEC.glob("v*")):
        resources = []
        for path in sorted((version / "schemas").rglob("*.json")):
            schema = json.loads(path.read_text())
            resources.append((schema["$id"], Resource.from_contents(schema)))
        registry: Registry[Any] = Registry().with_resources(resources)
        for path in sorted((version / "schemas").glob("*.json")):
            schema = json.loads(path.read_text())
            type_enum = schema["properties"]["context"]["properties"]["type"]["enum"]
            validator = Draft202012Validator(schema, registry=registry,
                                             format_checker=FormatChecker())
            for event_type in type_enum:
                validators[event_type] = validator
    return validators


def schema_errors(event: Any) -> list[str]:
    """What the official schema for the event's own type finds wrong (empty: valid)."""
    if not SPEC.exists():
        pytest.skip(f"{SPEC} is not available (the shared fixtures live beside the project)")
    event_type = event.get("context", {}).get("type") if isinstance(event, dict) else None
    validator = _validators().get(event_type) if isinstance(event_type, str) else None
    if validator is None:
        return [f"no official schema for type {event_type!r}"]
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(event)]


def assert_valid_cdevent(event: Any) -> None:
    from dora_cloudevents.cdevents import validate_cdevent

    errors = schema_errors(event)
    assert not errors, f"official schema rejects {json.dumps(event)[:300]}: {errors}"
    validate_cdevent(event)


def spec_path(*parts: str) -> Path:
    return SPEC.joinpath(*parts)
