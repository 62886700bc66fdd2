"""Every field of every golden input, mistyped or missing: valid CDEvents or a TransformError.

A crash would still only fail the one event (the router catches it), but its stored error
would read "TypeError: 'int' object is not iterable" instead of naming the field. The
property test in tests/reliability samples such edits at random; this walks all of them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dora_cloudevents.cdevents import CDEventError, validate_cdevent
from dora_cloudevents.transformers import builtin_transformers
from dora_cloudevents.transformers.base import TransformError
from tests.transformers.test_fixtures import CASES, load_case

Path_ = tuple[str | int, ...]
MISSING = object()
# A number where a list, object or string belongs ("not iterable"), a list where a string
# belongs ("unhashable", not a URI), an empty string (an empty CDEvent field), no value.
EDITS: dict[str, Any] = {"a number": 0, "a list": ["x"], "an empty string": "",
                         "missing": MISSING}


def _paths(value: Any, path: Path_ = ()) -> Iterator[Path_]:
    """The path of every value inside ``value``, containers before what they hold."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _edited(event: dict[str, Any], path: Path_, replacement: Any) -> dict[str, Any] | None:
    """``event`` with the value at ``path`` replaced (or removed); None if it cannot be."""
    edited = copy.deepcopy(event)
    parent: Any = edited
    for step in path[:-1]:
        parent = parent[step]
    if replacement is MISSING:
        if not isinstance(parent, dict):
            return None
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(replacement)
    return edited


def _faults(transformer: Any, event: dict[str, Any]) -> Iterator[str]:
    """What goes wrong, other than a TransformError, for each edit of the event's data."""
    for path in _paths(event.get("data"), ("data",)):
        for what, replacement in EDITS.items():
            edited = _edited(event, path, replacement)
            if edited is None:
                continue
            where = ".".join(str(step) for step in path) + f" as {what}"
            try:
                outputs = transformer(edited)
            except TransformError:
                continue
            except Exception as error:  # anything else is what this test looks for
                yield f"{where}: {error.__class__.__name__}: {error}"
                continue
            for cdevent in outputs:
                try:
                    validate_cdevent(cdevent)
                except CDEventError as error:
                    yield f"{where}: an invalid CDEvent: {error}"


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.name[:-11]}" for p in CASES])
def test_a_mistyped_or_missing_field_never_crashes_a_transformer(case: Path) -> None:
    name, events, _ = load_case(case)
    transformer = builtin_transformers()[name]
    faults = [fault for event in events for fault in _faults(transformer, event)]
    assert not faults, f"{len(faults)} edits broke {name}:\n" + "\n".join(faults[:20])


def test_the_walk_reaches_every_value() -> None:
    event = {"data": {"a": [1, {"b": 2}], "c": None}}
    assert list(_paths(event["data"], ("data",))) == [
        ("data",), ("data", "a"), ("data", "a", 0), ("data", "a", 1), ("data", "a", 1, "b"),
        ("data", "c")]
    assert _edited(event, ("data", "a", 1, "b"), MISSING) == {"data": {"a": [1, {}], "c": None}}
    assert _edited(event, ("data", "a", 0), MISSING) is None
    assert event == {"data": {"a": [1, {"b": 2}], "c": None}}
