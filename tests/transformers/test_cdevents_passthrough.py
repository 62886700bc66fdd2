"""CDEvents passthrough: every 0.4.1 and 0.5.1 conformance example comes out as it went in."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from dora_cloudevents.cdevents.binding import as_cloudevent
from dora_cloudevents.transformers import builtin_transformers
from dora_cloudevents.transformers.base import TransformError
from dora_cloudevents.transformers.cdevents import transform
from tests.conftest import FIXTURES, shared_fixture

VERSIONS = ("v0.4.1", "v0.5.1")
# Listed at collection time; each test still goes through shared_fixture, which skips if absent.
EXAMPLES = sorted((FIXTURES / "cdevents-spec").glob("v0.[45].1/conformance/*.json"))


def conformance(version: str, name: str) -> dict[str, Any]:
    path = shared_fixture("cdevents-spec", version, "conformance", f"{name}.json")
    cdevent: dict[str, Any] = json.loads(path.read_text())
    return cdevent


wrap = as_cloudevent  # the binding rules, as the project applies them


def test_registered_under_its_name() -> None:
    assert builtin_transformers()["cdevents"].transform is transform


@pytest.mark.parametrize("version", VERSIONS)
def test_both_spec_versions_have_all_their_examples(version: str) -> None:
    folder = shared_fixture("cdevents-spec", version, "conformance")
    assert len(list(folder.glob("*.json"))) >= 40


@pytest.mark.parametrize("path", EXAMPLES,
                         ids=[f"{p.parent.parent.name}/{p.stem}" for p in EXAMPLES])
def test_conformance_examples_pass_through_unchanged(path: Path) -> None:
    cdevent = conformance(path.parent.parent.name, path.stem)
    original = copy.deepcopy(cdevent)
    assert transform(wrap(cdevent)) == [original]
    assert cdevent == original  # not modified in place either


@pytest.mark.parametrize("version", VERSIONS)
def test_data_as_base64_or_json_text_is_decoded(version: str) -> None:
    cdevent = conformance(version, "service_deployed")
    text = json.dumps(cdevent)
    as_text = {**wrap(cdevent), "data": text}
    as_base64 = {key: value for key, value in wrap(cdevent).items() if key != "data"}
    as_base64["data_base64"] = base64.b64encode(text.encode()).decode()
    assert transform(as_text) == transform(as_base64) == [cdevent]


@pytest.mark.parametrize(("version", "break_it", "message"), [
    ("v0.4.1", lambda e: e["context"].pop("id"), r"context\.id: required property missing"),
    ("v0.5.1", lambda e: e["subject"]["content"].pop("artifactId"),
     r"subject\.content\.artifactId: required property missing"),
    ("v0.5.1", lambda e: e["context"].update(version="0.4.1"), r"context\.version"),
    ("v0.4.1", lambda e: e["context"].update(type="dev.cdevents.service.deployed.0.3.0"),
     "is a CDEvents 0.5.x type"),
    ("v0.4.1", lambda e: e["context"].update(timestamp="yesterday"), "date-time"),
])
def test_invalid_cdevents_raise_with_the_validator_message(version: str, break_it: Any,
                                                           message: str) -> None:
    cdevent = conformance(version, "service_deployed")
    event = wrap(cdevent)
    break_it(cdevent)
    with pytest.raises(TransformError, match=f"not a valid CDEvent: .*{message}"):
        transform(event)


@pytest.mark.parametrize("attribute", ["type", "id", "source"])
def test_binding_mismatches_raise(attribute: str) -> None:
    cdevent = conformance("v0.5.1", "incident_detected")
    event = wrap(cdevent)
    event[attribute] = {"type": "dev.cdevents.incident.resolved.0.3.0", "id": "other",
                        "source": "/elsewhere"}[attribute]
    with pytest.raises(TransformError, match=f"CloudEvent {attribute} .* must equal .*"
                                             f"context.{attribute}"):
        transform(event)


def test_data_that_is_not_an_object_raises() -> None:
    event = wrap(conformance("v0.4.1", "service_deployed"))
    event["data"] = ["not", "an", "object"]
    with pytest.raises(TransformError, match="JSON object"):
        transform(event)
