"""The CDEvents validator against the official conformance examples and JSON schemas."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from dora_cloudevents.cdevents import SUPPORTED_TYPES, CDEventError, CDEventInfo, validate_cdevent
from dora_cloudevents.cdevents.spec import (
    FAMILIES,
    Field,
    LinkArray,
    Obj,
    Opaque,
    Str,
    StrArray,
    event_schema,
)

Json = Any  # a parsed JSON value
JsonPath = tuple[str | int, ...]

SPEC_ROOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "cdevents-spec"
SPEC_DIRS = ("v0.4.1", "v0.5.1")
NO_SPEC = f"no CDEvents spec fixtures at {SPEC_ROOT.resolve()} (../shared beside the project)"


def _spec_files(kind: str) -> list[Any]:
    """One pytest param per JSON file of schemas/ or conformance/, or one skipped param."""
    if not SPEC_ROOT.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_SPEC), id="no-spec")]
    paths = [
        path
        for spec_dir in SPEC_DIRS
        for path in sorted((SPEC_ROOT / spec_dir / kind).glob("*.json"))
    ]
    return [pytest.param(path, id=f"{path.parents[1].name}/{path.stem}") for path in paths]


EXAMPLES = _spec_files("conformance")
SCHEMAS = _spec_files("schemas")


def _load(path: Path) -> Json:
    return json.loads(path.read_text())


@cache
def _link_schemas(spec_dir: str) -> dict[str, Json]:
    """The spec's links/*.json schemas by file stem, e.g. "embeddedlinksarray"."""
    return {
        path.stem: _load(path)
        for path in (SPEC_ROOT / spec_dir / "schemas" / "links").glob("*.json")
    }


def _declared_type(event: Json) -> str | None:
    context = event.get("context") if isinstance(event, dict) else None
    type_ = context.get("type") if isinstance(context, dict) else None
    return type_ if isinstance(type_, str) else None


# --- the jsonschema oracle -----------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaOracle:
    """jsonschema (Draft 2020-12, formats checked) over the official schemas of both versions."""

    validators_by_type: dict[str, list[Any]]

    def accepts(self, event: Json, example_type: str) -> bool:
        # Every schema pins context.type to a single value, so only the schemas for the event's own
        # type can accept it; when that type is unknown the example's schema gives the verdict.
        validators = self.validators_by_type.get(_declared_type(event) or "")
        validators = validators or self.validators_by_type[example_type]
        return any(validator.is_valid(event) for validator in validators)

    def first_error(self, event: Json, example_type: str) -> str:
        validators = self.validators_by_type.get(_declared_type(event) or "")
        validator = (validators or self.validators_by_type[example_type])[0]
        error = next(validator.iter_errors(event), None)
        return "none" if error is None else f"{error.json_path}: {error.message}"


@pytest.fixture(scope="session")
def oracle() -> SchemaOracle:
    if not SPEC_ROOT.is_dir():
        pytest.skip(NO_SPEC)
    reason = "the jsonschema oracle needs jsonschema, rfc3339-validator and rfc3986-validator"
    for module in ("jsonschema", "referencing", "rfc3339_validator", "rfc3986_validator"):
        pytest.importorskip(module, reason=reason)
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource

    # Raises KeyError unless the libraries above registered real checks for these formats.
    format_checker = FormatChecker(formats=("date-time", "uri", "uri-reference"))
    validators_by_type: dict[str, list[Any]] = {}
    for spec_dir in SPEC_DIRS:
        links = _link_schemas(spec_dir).values()
        registry = Registry().with_resources(
            (schema["$id"], Resource.from_contents(schema)) for schema in links
        )
        for path in sorted((SPEC_ROOT / spec_dir / "schemas").glob("*.json")):
            schema = _load(path)
            validator = Draft202012Validator(
                schema, registry=registry, format_checker=format_checker
            )
            for type_ in schema["properties"]["context"]["properties"]["type"]["enum"]:
                validators_by_type.setdefault(type_, []).append(validator)
    return SchemaOracle(validators_by_type)


def _accepted(event: Json) -> tuple[bool, str]:
    try:
        validate_cdevent(event)
    except CDEventError as error:
        return False, str(error)
    return True, "accepted"


# Our one rule beyond the schemas: the spec version must be 0.4.<n> in context.version or
# 0.5.<n> in context.specversion, where the schemas take any non-empty string.
_SUPPORTED_VERSION = {
    "version": re.compile(r"0\.4\.[0-9]+"),
    "specversion": re.compile(r"0\.5\.[0-9]+"),
}


def _has_supported_version(event: Json) -> bool:
    context = event.get("context") if isinstance(event, dict) else None
    if not isinstance(context, dict):
        return True  # nothing to add: the schemas reject it already
    for field, pattern in _SUPPORTED_VERSION.items():
        value = context.get(field)
        if isinstance(value, str) and value and not pattern.fullmatch(value):
            return False
    return True


# --- conformance examples ------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES)
def test_conformance_example_is_valid(path: Path) -> None:
    event = _load(path)
    info = validate_cdevent(event)
    context = event["context"]
    assert info.spec_version == context.get("version", context.get("specversion"))
    assert info.type == context["type"]
    assert f"dev.cdevents.{info.subject}.{info.predicate}.{info.type_version}" == info.type
    assert path.stem == f"{info.subject}_{info.predicate}"


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        (
            "v0.4.1/conformance/service_deployed.json",
            CDEventInfo(
                "0.4.1", "dev.cdevents.service.deployed.0.2.0", "service", "deployed", "0.2.0"
            ),
        ),
        (
            "v0.5.1/conformance/service_deployed.json",
            CDEventInfo(
                "0.5.1", "dev.cdevents.service.deployed.0.3.0", "service", "deployed", "0.3.0"
            ),
        ),
        (
            "v0.5.1/conformance/pipelinerun_finished.json",
            CDEventInfo(
                "0.5.1",
                "dev.cdevents.pipelinerun.finished.0.3.0",
                "pipelinerun",
                "finished",
                "0.3.0",
            ),
        ),
        (
            "v0.4.1/conformance/testcaserun_skipped.json",
            CDEventInfo(
                "0.4.1", "dev.cdevents.testcaserun.skipped.0.1.0", "testcaserun", "skipped", "0.1.0"
            ),
        ),
    ],
)
def test_info_of_examples(file: str, expected: CDEventInfo) -> None:
    if not SPEC_ROOT.is_dir():
        pytest.skip(NO_SPEC)
    assert validate_cdevent(_load(SPEC_ROOT / file)) == expected


def test_supported_types_are_the_schemas_types() -> None:
    if not SPEC_ROOT.is_dir():
        pytest.skip(NO_SPEC)
    schema_types = {
        type_
        for spec_dir in SPEC_DIRS
        for path in (SPEC_ROOT / spec_dir / "schemas").glob("*.json")
        for type_ in _load(path)["properties"]["context"]["properties"]["type"]["enum"]
    }
    assert len(SUPPORTED_TYPES) == 90
    assert schema_types == SUPPORTED_TYPES


# --- the spec tables are a faithful transcription ------------------------------------------------

# Keywords that only annotate (or that the translation below handles); any other is a surprise.
_KNOWN_KEYWORDS = {
    "$schema", "$id", "$ref", "type", "properties", "required", "additionalProperties", "items",
    "minLength", "format", "enum", "anyOf", "oneOf", "default", "description", "example",
    "contentEncoding",
}  # fmt: skip


def _field_from_schema(schema: Json, links: dict[str, Json]) -> Field:
    """Translate a schema node to the spec module's vocabulary, refusing anything unexpected."""
    assert set(schema) <= _KNOWN_KEYWORDS, f"unexpected keywords {set(schema) - _KNOWN_KEYWORDS}"
    if "$ref" in schema:
        return _field_from_schema(links[schema["$ref"].rsplit("/", 1)[-1]], links)
    if "oneOf" in schema:  # customData
        return Opaque(tuple(branch["type"] for branch in schema["oneOf"]))
    if "anyOf" in schema:  # an open enum: [{enum: [...]}, {type: string, ...}]
        open_branches = [branch for branch in schema["anyOf"] if "enum" not in branch]
        assert len(open_branches) == 1
        accepted = _field_from_schema(open_branches[0], links)
        assert isinstance(accepted, Str)
        assert all(
            len(value) >= accepted.min_length
            for branch in schema["anyOf"]
            for value in branch.get("enum", ())
        ), "the enum branch must add nothing"
        return accepted
    if schema["type"] == "string":
        enum = frozenset(schema["enum"]) if "enum" in schema else None
        return Str(schema.get("minLength", 0), schema.get("format"), enum)
    if schema["type"] == "array":
        items = schema["items"]
        if "anyOf" in items:
            return LinkArray(dict(_link_variant(branch, links) for branch in items["anyOf"]))
        assert items == {"type": "string"}
        return StrArray()
    assert schema["type"] == "object"
    fields = {
        name: _field_from_schema(child, links)
        for name, child in schema.get("properties", {}).items()
    }
    closed = schema.get("additionalProperties", True) is False
    return Obj(fields, tuple(schema.get("required", ())), closed)


def _link_variant(schema: Json, links: dict[str, Json]) -> tuple[str, Obj]:
    """One anyOf branch of the links array, keyed by the single linkType it allows."""
    variant = _field_from_schema(schema, links)
    assert isinstance(variant, Obj)
    link_type = variant.fields["linkType"]
    assert isinstance(link_type, Str) and link_type.enum is not None and len(link_type.enum) == 1
    return next(iter(link_type.enum)), variant


@pytest.mark.parametrize("path", SCHEMAS)
def test_spec_table_transcribes_schema(path: Path) -> None:
    schema = _load(path)
    (type_,) = schema["properties"]["context"]["properties"]["type"]["enum"]
    family, event_type = next(
        (family, event) for family in FAMILIES for event in family.events if event.type == type_
    )
    assert path.parents[1].name == f"v{family.minor}.1"
    assert event_schema(family, event_type) == _field_from_schema(
        schema, _link_schemas(path.parents[1].name)
    )


# --- mutation testing against the oracle ---------------------------------------------------------


def _replaced(document: Json, path: JsonPath, new: Json) -> Json:
    """A copy of document with the value at path set to new; untouched branches are shared."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(document) if isinstance(document, dict) else list(document)
    copy[head] = _replaced(document[head], rest, new) if rest else new  # type: ignore[index]
    return copy


def _removed(document: Json, path: JsonPath) -> Json:
    parent_path, key = path[:-1], path[-1]
    parent = _at(document, parent_path)
    if isinstance(parent, dict):
        return _replaced(document, parent_path, {k: v for k, v in parent.items() if k != key})
    return _replaced(document, parent_path, [item for i, item in enumerate(parent) if i != key])


def _at(document: Json, path: JsonPath) -> Json:
    for key in path:
        document = document[key]
    return document


def _dotted(path: JsonPath) -> str:
    return "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path)[1:] or "event"


def _resolved(schema: Json, links: dict[str, Json]) -> Json:
    while "$ref" in schema:
        schema = links[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _child_schema(schema: Json, key: str | int, child: Json, links: dict[str, Json]) -> Json:
    """The schema node describing schema's child at key ({} where it says nothing)."""
    if isinstance(key, int):  # a link: the anyOf branch whose linkType it claims
        branches = [_resolved(branch, links) for branch in schema.get("items", {}).get("anyOf", [])]
        link_type = child.get("linkType") if isinstance(child, dict) else None
        matching = [b for b in branches if b["properties"]["linkType"]["enum"] == [link_type]]
        return matching[0] if matching else {}
    node = _resolved(schema.get("properties", {}).get(key, {}), links)
    return node["anyOf"][0] if "anyOf" in node else node  # open enums: mutate as the enum branch


def _nodes(
    value: Json, schema: Json, links: dict[str, Json], path: JsonPath = ()
) -> Iterator[tuple[JsonPath, Json, Json]]:
    """Every value of an example, with its path and the schema node describing it."""
    yield path, value, schema
    children = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in children:
        yield from _nodes(child, _child_schema(schema, key, child, links), links, (*path, key))


_WRONG_JSON: list[Json] = [42, True, None, [], {}, ""]
# fmt: off
_BAD_DATE_TIMES = [
    "2023-13-01T00:00:00Z", "yesterday", "2023-03-20T14:27:05", "2023-02-30T10:00:00Z",
    "2023-02-29T10:00:00Z", "2024-02-29T10:00:00Z", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
    "2023-04-31T00:00:00Z", "2023-03-20 14:27:05Z", "2023-03-20t14:27:05z", "0000-01-01T00:00:00Z",
    "2023-03-20T24:00:00Z", "2023-03-20T14:60:00Z", "2023-03-20T14:27:60Z",
    "2023-03-20T14:27:05+25:00", "2023-03-20T14:27:05+05:30", "2023-03-20T14:27:05.Z",
    "2023-03-20T14:27:05.123456789-08:00", "2023-3-20T14:27:05Z", "20230320T142705Z",
    "2023-03-20", "\uff12\uff10\uff12\uff13-03-20T14:27:05Z",  # full-width digits
]
_URI_LIKE = [
    "https://example.com/x?y=1#z", "/relative/path", "relative", "not a uri", "http://exa mple.com",
    "://missing-scheme", "1http://x", "urn:isbn:0451450523", "mailto:a@b.c", "http://[::1]:8080/",
    "http://[::1::2]/", "http://[v1.fe]/", "http://host:port/", "http://example.com/%zz",
    "http://example.com/%41", "http://example.com/{x}", "http://user:pw@host/", "https://例え.jp/",
    "a:", "//host/path", "#fragment", "?query", "pkg:oci/app@sha256%3Aabc", "c:\\windows",
    "http://[::ffff:1.2.3.4]/", "http://[1:2:3:4:5:6:7:8:9]/", "a:b:c", "1a:b", "%", "http://x/^",
    "http://[1::2:3:4:5:6:7]/", "http://[1:2:3:4:5:6:7]/", "http://[::1.2.3.256]/", "http://[vz.x]/",
    "http://[fe80::1%25eth0]/", "http://[1:::2]/", "http://x:80:90/", "http://a@b@c/", "a:?#",
]
# fmt: on
_FORMAT_SAMPLES = {"date-time": _BAD_DATE_TIMES, "uri": _URI_LIKE, "uri-reference": _URI_LIKE}


def _leaf_variants(
    path: JsonPath, value: Json, schema: Json
) -> Iterator[tuple[str, JsonPath, Json]]:
    """(description, path, new value) for the wrong types, formats and enum values of one node."""
    where = _dotted(path)
    for other in _WRONG_JSON:
        if not (type(other) is type(value) and other == value):
            yield f"set {where} to {other!r}", path, other
    for sample in _FORMAT_SAMPLES.get(schema.get("format"), ()):
        yield f"set {where} to {sample!r}", path, sample
    if "enum" in schema and isinstance(value, str):
        for sample in ("not-in-the-enum", value.upper(), value.title(), f"{value} "):
            yield f"set {where} to {sample!r}", path, sample


def _structure_variants(
    example: Json, schema: Json, links: dict[str, Json]
) -> Iterator[tuple[str, Json]]:
    """Remove every property and item, add an extra property to every object, break every leaf."""
    for path, value, node in _nodes(example, schema, links):
        if path:
            yield f"remove {_dotted(path)}", _removed(example, path)
        if isinstance(value, dict):
            yield f"add {_dotted(path)}.unexpected", _replaced(example, (*path, "unexpected"), "x")
        for description, leaf_path, new in _leaf_variants(path, value, node):
            yield description, _replaced(example, leaf_path, new)


def _type_variants(example: Json) -> Iterator[tuple[str, Json]]:
    own = example["context"]["type"]
    unknown = ["dev.cdevents.service.exploded.0.1.0", own.rsplit(".", 3)[0] + ".9.9.9", own.upper()]
    for other in [*sorted(SUPPORTED_TYPES - {own}), *unknown]:
        yield f"set context.type to {other!r}", _replaced(example, ("context", "type"), other)


def _version_variants(example: Json) -> Iterator[tuple[str, Json]]:
    context = example["context"]
    field, other_field = (
        ("version", "specversion") if "version" in context else ("specversion", "version")
    )
    value = context[field]
    minor = value.rsplit(".", 1)[0]
    renamed = {(other_field if key == field else key): item for key, item in context.items()}
    for other_value in (value, "0.4.1" if minor == "0.5" else "0.5.1"):
        yield (
            f"rename context.{field} to {other_field} = {other_value!r}",
            _replaced(example, ("context",), {**renamed, other_field: other_value}),
        )
        yield (
            f"add context.{other_field} = {other_value!r}",
            _replaced(example, ("context", other_field), other_value),
        )
    for other_value in (
        f"{minor}.0",
        f"{minor}.12",
        "0.4.1",
        "0.5.1",
        "0.3.0",
        "1.0",
        minor,
        f"{value}-rc1",
        f"v{value}",
        f"{value}\n",
    ):
        yield (
            f"set context.{field} to {other_value!r}",
            _replaced(example, ("context", field), other_value),
        )


def _link_variants(example: Json) -> Iterator[tuple[str, Json]]:
    links = example["context"].get("links", [])
    for index in range(len(links)):
        for link_type in ("END", "PATH", "RELATION", "START", "end", ""):
            yield (
                f"set context.links[{index}].linkType to {link_type!r}",
                _replaced(example, ("context", "links", index, "linkType"), link_type),
            )
    start = {
        "linkType": "START",
        "chainId": "c",
        "timestamp": "2023-03-20T14:27:05Z",
        "start": {"contextId": "x"},
    }
    for extra in (
        {"linkType": "END"},
        {"linkType": "PATH", "from": {"contextId": "x", "other": 1}},
        {"linkType": "RELATION", "linkKind": "k", "target": {}},
        start,
        "END",
    ):
        yield (
            f"append {extra!r} to context.links",
            _replaced(example, ("context", "links"), [*links, extra]),
        )
    yield "set context.links to []", _replaced(example, ("context", "links"), [])


def _custom_data_variants(example: Json) -> Iterator[tuple[str, Json]]:
    custom_data: list[Json] = [{}, {"a": [1, None]}, "aGVsbG8=", "", 42, True, None, [], 1.5]
    for data in custom_data:
        yield f"add customData = {data!r}", {**example, "customData": data}
    for content_type in ("application/json", "", 42, None):
        yield (
            f"add customDataContentType = {content_type!r}",
            {**example, "customDataContentType": content_type},
        )


def _variants(example: Json, schema: Json, links: dict[str, Json]) -> Iterator[tuple[str, Json]]:
    yield from _structure_variants(example, schema, links)
    yield from _type_variants(example)
    yield from _version_variants(example)
    yield from _link_variants(example)
    yield from _custom_data_variants(example)


def _schema_of_example(path: Path) -> Json:
    return _load(path.parents[1] / "schemas" / f"{path.stem.replace('_', '')}.json")


def _disagreements(
    example: Json, example_path: Path, oracle: SchemaOracle
) -> tuple[int, list[str]]:
    """Run every variant of example through both validators; count them and list disagreements."""
    example_type = example["context"]["type"]
    assert oracle.accepts(example, example_type), "the oracle must accept the unbroken example"
    schema, links = _schema_of_example(example_path), _link_schemas(example_path.parents[1].name)
    variants = list(_variants(example, schema, links))
    disagreements = []
    for description, variant in variants:
        expected = oracle.accepts(variant, example_type) and _has_supported_version(variant)
        accepted, outcome = _accepted(variant)
        if accepted != expected:
            schema_says = oracle.first_error(variant, example_type)
            disagreements.append(f"{description}: ours={outcome!r}, schema's error={schema_says!r}")
    return len(variants), disagreements


def _report(count: int, disagreements: list[str]) -> str:
    return f"{len(disagreements)} of {count} variants disagree:\n" + "\n".join(disagreements)


@pytest.mark.parametrize("path", EXAMPLES)
def test_mutations_agree_with_schema(path: Path, oracle: SchemaOracle) -> None:
    # The links are the same in all 90 examples and make jsonschema five times slower (it
    # collects errors from each anyOf branch), so they are mutated in the test below instead.
    example = _load(path)
    example["context"].pop("links")
    count, disagreements = _disagreements(example, path, oracle)
    assert count > 200
    assert not disagreements, _report(count, disagreements)


@pytest.mark.parametrize("spec_dir", SPEC_DIRS)
def test_mutations_with_links_agree_with_schema(spec_dir: str, oracle: SchemaOracle) -> None:
    path = SPEC_ROOT / spec_dir / "conformance" / "service_deployed.json"
    count, disagreements = _disagreements(_load(path), path, oracle)
    assert count > 500
    assert not disagreements, _report(count, disagreements)


@pytest.mark.parametrize(
    ("spec_dir", "field", "version"),
    [("v0.4.1", "version", value) for value in ("1.0", "0.5.1", "0.4", "0.4.1-rc1", "v0.4.1")]
    + [("v0.5.1", "specversion", value) for value in ("0.4.1", "0.6.0", "0.5", "0.5.1\n")],
)
def test_stricter_than_schema_on_spec_version(
    spec_dir: str, field: str, version: str, oracle: SchemaOracle
) -> None:
    """The schemas take any non-empty spec version; we insist on 0.4.<n> / 0.5.<n>."""
    example = _load(SPEC_ROOT / spec_dir / "conformance" / "service_deployed.json")
    event = _replaced(example, ("context", field), version)
    assert oracle.accepts(event, event["context"]["type"])
    with pytest.raises(CDEventError, match=r"unsupported CDEvents spec version") as caught:
        validate_cdevent(event)
    assert caught.value.path == f"context.{field}"


# --- formats, against jsonschema's own format checkers -------------------------------------------


def _format_checker() -> Any:
    for module in ("jsonschema", "rfc3339_validator", "rfc3986_validator"):
        pytest.importorskip(
            module, reason="format agreement needs jsonschema and its format libraries"
        )
    from jsonschema import FormatChecker

    return FormatChecker(formats=("date-time", "uri", "uri-reference"))


def _event_with(field: str, value: str) -> Json:
    context = {
        "specversion": "0.5.1",
        "id": "1",
        "source": "/s",
        "type": "dev.cdevents.build.queued.0.3.0",
        "timestamp": "2023-03-20T14:27:05Z",
        field: value,
    }
    return {"context": context, "subject": {"id": "b", "content": {}}}


@pytest.mark.parametrize(
    ("field", "format_name", "value"),
    [("timestamp", "date-time", sample) for sample in _BAD_DATE_TIMES]
    + [("schemaUri", "uri", sample) for sample in _URI_LIKE]
    + [("source", "uri-reference", sample) for sample in _URI_LIKE],
)
def test_format_checks_agree_with_jsonschema(field: str, format_name: str, value: str) -> None:
    expected = _format_checker().conforms(value, format_name)
    assert _accepted(_event_with(field, value))[0] == expected


# Where we follow RFC 3339/3986 and the libraries behind jsonschema's checkers do not.
_DELIBERATE_DEVIATIONS = [
    # Their `$`-anchored regexes let a trailing newline through.
    ("timestamp", "date-time", "2023-03-20T14:27:05Z\n", False),
    ("source", "uri-reference", "/relative/path\n", False),
    ("schemaUri", "uri", "https://example.com/\n", False),
    # RFC 3986 dec-octets have no leading zeros.
    ("schemaUri", "uri", "http://[::01.2.3.4]/", False),
    # RFC 3986 literals are case-insensitive: "V" starts an IPvFuture like "v".
    ("schemaUri", "uri", "http://[V1.fe]/", True),
]


@pytest.mark.parametrize(("field", "format_name", "value", "valid"), _DELIBERATE_DEVIATIONS)
def test_deliberate_format_deviations(
    field: str, format_name: str, value: str, valid: bool
) -> None:
    assert _format_checker().conforms(value, format_name) != valid
    assert _accepted(_event_with(field, value))[0] == valid


# --- error messages ------------------------------------------------------------------------------


def _service_deployed() -> Json:
    return {
        "context": {
            "version": "0.4.1",
            "id": "e1",
            "source": "/ci",
            "type": "dev.cdevents.service.deployed.0.2.0",
            "timestamp": "2024-05-01T12:00:00Z",
            "links": [{"linkType": "END"}, {"linkType": "PATH", "from": {"contextId": "c"}}],
        },
        "subject": {
            "id": "svc",
            "type": "service",
            "content": {"environment": {"id": "prod"}, "artifactId": "pkg:oci/app@sha256%3Aabc"},
        },
    }


def _error(change: Callable[[Json], None]) -> CDEventError:
    event = _service_deployed()
    change(event)
    with pytest.raises(CDEventError) as caught:
        validate_cdevent(event)
    return caught.value


def test_sample_event_is_valid() -> None:
    assert validate_cdevent(_service_deployed()).subject == "service"


# (how to break the sample event, how the error message must start)
_BREAKAGES: list[tuple[Callable[[Json], None], str]] = [
    (
        lambda e: e["subject"]["content"]["environment"].pop("id"),
        "subject.content.environment.id: required property missing",
    ),
    (lambda e: e["context"].update(id=True), "context.id: expected string, got boolean"),
    (
        lambda e: e["context"].update(timestamp="2023-13-01T00:00:00Z"),
        "context.timestamp: '2023-13-01T00:00:00Z' is not a valid RFC 3339 date-time",
    ),
    (
        lambda e: e["context"].update(timestamp="2023-03-01T00:00:00"),
        "context.timestamp: '2023-03-01T00:00:00' is not a valid RFC 3339 date-time",
    ),
    (
        lambda e: e["context"].update(schemaUri="/not/absolute"),
        "context.schemaUri: '/not/absolute' is not a valid absolute URI",
    ),
    (
        lambda e: e["subject"]["content"].update(colour="blue"),
        "subject.content.colour: additional property not allowed",
    ),
    (
        lambda e: e["subject"]["content"].update(artifactId=""),
        "subject.content.artifactId: must not be empty",
    ),
    (
        lambda e: e["subject"].update(type="services"),
        "subject.type: 'services' is not one of 'service'",
    ),
    (
        lambda e: e["context"]["links"][1].pop("from"),
        "context.links[1].from: required property missing",
    ),
    (
        lambda e: e["context"]["links"][0].update(linkType="START"),
        "context.links[0].linkType: 'START' is not one of 'END', 'PATH', 'RELATION'",
    ),
    (
        lambda e: e["context"].update(specversion="0.5.1"),
        "context.version: additional property not allowed (0.5.x events use context.spec",
    ),
    (
        lambda e: e["context"].update(version="0.3.0"),
        "context.version: unsupported CDEvents spec version '0.3.0'",
    ),
    (
        lambda e: e["context"].update(type="dev.cdevents.service.deployed.0.3.0"),
        "context.type: 'dev.cdevents.service.deployed.0.3.0' is a CDEvents 0.5.x type",
    ),
    (
        lambda e: e["context"].update(type="dev.cdevents.service.exploded.0.1.0"),
        "context.type: unknown CDEvent type 'dev.cdevents.service.exploded.0.1.0' for CDEvents",
    ),
    (lambda e: e["context"].pop("version"), "context.specversion: required property missing"),
    (lambda e: e.update(customData=42), "customData: expected object or string, got integer"),
]


@pytest.mark.parametrize(
    ("change", "message"), _BREAKAGES, ids=[message for _, message in _BREAKAGES]
)
def test_error_names_path_and_problem(change: Callable[[Json], None], message: str) -> None:
    assert str(_error(change)).startswith(message)


def test_error_carries_path_and_is_a_value_error() -> None:
    error = _error(lambda e: e["subject"]["content"]["environment"].update(id=7))
    assert isinstance(error, ValueError)
    assert error.path == "subject.content.environment.id"
    assert error.problem == "expected string, got integer"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "(event): expected object, got array"),
        ({}, "context: required property missing"),
        ({"context": "x"}, "context: expected object, got string"),
    ],
)
def test_error_on_malformed_envelope(event: Json, message: str) -> None:
    with pytest.raises(CDEventError) as caught:
        validate_cdevent(event)
    assert str(caught.value) == message
