"""Every CDEvent type of CDEvents 0.4.x and 0.5.x, as data transcribed from the JSON schemas."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

Format: TypeAlias = Literal["date-time", "uri", "uri-reference"]
JsonType: TypeAlias = Literal["object", "array", "string", "number", "integer", "boolean", "null"]


@dataclass(frozen=True, slots=True)
class Str:
    """A JSON string, with the schema's minLength, format and enum constraints."""

    min_length: int = 0
    format: Format | None = None
    enum: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class StrArray:
    """A JSON array of strings (ticket assignees and labels)."""


@dataclass(frozen=True, slots=True)
class Opaque:
    """Any value of the listed JSON types, content unchecked (customData)."""

    json_types: tuple[JsonType, ...]


@dataclass(frozen=True, slots=True)
class Obj:
    """A JSON object; `closed` means the schema says `additionalProperties: false`."""

    fields: Mapping[str, Field]
    required: tuple[str, ...] = ()
    closed: bool = True


@dataclass(frozen=True, slots=True)
class LinkArray:
    """An array of embedded links; each link's `linkType` picks which object shape it must have."""

    variants: Mapping[str, Obj]


Field: TypeAlias = Str | StrArray | Opaque | Obj | LinkArray


@dataclass(frozen=True, slots=True)
class EventType:
    """One CDEvent type of one spec version: `dev.cdevents.<subject>.<predicate>.<version>`."""

    subject: str
    predicate: str
    version: str
    content: Obj
    # The value subject.type must have (0.4.x, e.g. "pipelineRun"); None where there is none.
    subject_type: str | None
    subject_type_required: bool
    # The testing events' schemas leave context.source and subject.source without format/minLength.
    loose_sources: bool

    @property
    def type(self) -> str:
        return f"dev.cdevents.{self.subject}.{self.predicate}.{self.version}"


@dataclass(frozen=True, slots=True)
class SpecFamily:
    """All event types of one spec minor version, e.g. 0.4 (schemas of 0.4.1)."""

    minor: str
    version_field: str  # the context property holding the spec version
    events: tuple[EventType, ...]


def _enum(*values: str) -> Str:
    return Str(enum=frozenset(values))


STR = Str()
NON_EMPTY = Str(min_length=1)
URI = Str(format="uri")
URI_REF = Str(min_length=1, format="uri-reference")
DATE_TIME = Str(format="date-time")
EMPTY_CONTENT = Obj({})

# Reference to another subject, e.g. content.environment: {"id": ..., "source": ...}.
REF = Obj({"id": NON_EMPTY, "source": URI_REF}, ("id",))
# The testing events reference runs with an unconstrained source string.
TEST_REF = Obj({"id": NON_EMPTY, "source": STR}, ("id",))
REPOSITORY_CONTENT = Obj({"repository": REF})
ENVIRONMENT_CONTENT = Obj({"environment": REF})
DEPLOYMENT_CONTENT = Obj(
    {"environment": REF, "artifactId": NON_EMPTY}, ("environment", "artifactId")
)
SBOM = Obj({"uri": URI_REF}, ("uri",))

TEST_CASE = Obj(
    {
        "id": NON_EMPTY,
        "version": STR,
        "name": STR,
        "type": _enum(
            "performance", "functional", "unit", "security", "compliance", "integration", "e2e",
            "other",
        ),
        "uri": URI,
    },
    ("id",),
)
# `trigger` is the one content object the schemas leave open to extra properties.
TRIGGER = Obj({"type": _enum("manual", "pipeline", "event", "schedule", "other"), "uri": URI},
              closed=False)
SEVERITY = _enum("low", "medium", "high", "critical")


def _test_suite(uri_field: str) -> Obj:
    return Obj({"id": NON_EMPTY, "version": STR, "name": STR, uri_field: URI}, ("id",))


def _incident(*extra_required: str, **extra: Field) -> Obj:
    fields = {"description": STR, "environment": REF, **extra, "service": REF,
              "artifactId": NON_EMPTY}
    return Obj(fields, ("environment", *extra_required))


def _test_case_run(required: tuple[str, ...], **extra: Field) -> Obj:
    fields = {**extra, "environment": REF, "testSuiteRun": TEST_REF, "testCase": TEST_CASE}
    return Obj(fields, required)


# ticketType, priority and resolution are `anyOf: [enum, string]` upstream: the enum lists
# well-known values but any string is accepted (a non-empty one for resolution).
_TICKET: dict[str, Field] = {
    "summary": STR,
    "ticketType": STR,
    "group": STR,
    "creator": NON_EMPTY,
    "assignees": StrArray(),
    "priority": STR,
    "labels": StrArray(),
    "milestone": STR,
    "uri": URI_REF,
}

# subject.content of the types whose content is the same in 0.4.1 and 0.5.1.
_SHARED_CONTENT: dict[str, Obj] = {
    "artifact.deleted": Obj({"user": NON_EMPTY}),
    "artifact.downloaded": Obj({"user": NON_EMPTY}),
    "artifact.packaged": Obj({"change": REF, "sbom": SBOM}, ("change",)),
    "artifact.published": Obj({"sbom": SBOM, "user": NON_EMPTY}),
    "artifact.signed": Obj({"signature": NON_EMPTY}, ("signature",)),
    "branch.created": REPOSITORY_CONTENT,
    "branch.deleted": REPOSITORY_CONTENT,
    "build.finished": Obj({"artifactId": STR}),
    "build.queued": EMPTY_CONTENT,
    "build.started": EMPTY_CONTENT,
    "change.abandoned": REPOSITORY_CONTENT,
    "change.created": Obj({"description": NON_EMPTY, "repository": REF}),
    "change.merged": REPOSITORY_CONTENT,
    "change.reviewed": REPOSITORY_CONTENT,
    "change.updated": REPOSITORY_CONTENT,
    "environment.deleted": Obj({"name": STR}),
    "incident.detected": _incident(),
    "incident.reported": _incident("ticketURI", ticketURI=Str(min_length=1, format="uri")),
    "incident.resolved": _incident(),
    "service.deployed": DEPLOYMENT_CONTENT,
    "service.published": ENVIRONMENT_CONTENT,
    "service.removed": ENVIRONMENT_CONTENT,
    "service.rolledback": DEPLOYMENT_CONTENT,
    "service.upgraded": DEPLOYMENT_CONTENT,
    "testcaserun.queued": _test_case_run(("environment",), trigger=TRIGGER),
    "testcaserun.skipped": _test_case_run((), reason=STR),
    "testcaserun.started": _test_case_run(("environment",), trigger=TRIGGER),
    "testoutput.published": Obj(
        {
            "outputType": _enum("report", "video", "image", "log", "other"),
            "format": STR,  # a media type, e.g. "application/pdf"
            "uri": URI,
            "testCaseRun": TEST_REF,
        },
        ("outputType", "format"),
    ),
    "testsuiterun.started": Obj(
        {"trigger": TRIGGER, "environment": REF, "testSuite": _test_suite("uri")}, ("environment",)
    ),
    "ticket.closed": Obj({**_TICKET, "resolution": NON_EMPTY, "updatedBy": STR},
                          ("uri", "resolution")),
    "ticket.created": Obj(_TICKET, ("summary", "creator", "uri")),
    "ticket.updated": Obj({**_TICKET, "updatedBy": STR}, ("uri",)),
}

# 0.4.1 calls web addresses `url` (any string); 0.5.1 renamed them `uri` with format "uri",
# and moved test outcomes from pass/fail to success/failure.
_V04_OUTCOME = _enum("pass", "fail", "cancel", "error")
_V05_OUTCOME = _enum("success", "failure", "cancel", "error")
_V04_CONTENT: dict[str, Obj] = {
    "environment.created": Obj({"name": STR, "url": STR}),
    "environment.modified": Obj({"name": STR, "url": STR}),
    "pipelinerun.finished": Obj(
        {"pipelineName": STR, "url": STR, "outcome": STR, "errors": STR}
    ),
    "pipelinerun.queued": Obj({"pipelineName": STR, "url": STR}),
    "pipelinerun.started": Obj({"pipelineName": STR, "url": STR}, ("pipelineName", "url")),
    "repository.created": Obj(
        {"name": NON_EMPTY, "owner": STR, "url": NON_EMPTY, "viewUrl": STR}, ("name", "url")
    ),
    "repository.deleted": Obj({"name": STR, "owner": STR, "url": STR, "viewUrl": STR}),
    "repository.modified": Obj({"name": STR, "owner": STR, "url": STR, "viewUrl": STR}),
    "taskrun.finished": Obj(
        {"taskName": STR, "url": STR, "pipelineRun": REF, "outcome": STR, "errors": STR}
    ),
    "taskrun.started": Obj({"taskName": STR, "url": STR, "pipelineRun": REF}),
    "testcaserun.finished": _test_case_run(
        ("outcome", "environment"), outcome=_V04_OUTCOME, severity=SEVERITY, reason=STR),
    "testsuiterun.finished": Obj(
        {"environment": REF, "testSuite": _test_suite("uri"), "outcome": _V04_OUTCOME,
         "severity": SEVERITY, "reason": STR},
        ("outcome", "environment"),
    ),
    "testsuiterun.queued": Obj(
        {"trigger": TRIGGER, "environment": REF, "testSuite": _test_suite("url")}, ("environment",)
    ),
}
_V05_CONTENT: dict[str, Obj] = {
    "environment.created": Obj({"name": STR, "uri": URI}),
    "environment.modified": Obj({"name": STR, "uri": URI}),
    "pipelinerun.finished": Obj(
        {"pipelineName": STR, "uri": URI, "outcome": _V05_OUTCOME, "errors": STR}
    ),
    "pipelinerun.queued": Obj({"pipelineName": STR, "uri": URI}),
    "pipelinerun.started": Obj({"pipelineName": STR, "uri": URI}, ("pipelineName", "uri")),
    "repository.created": Obj(
        {"name": NON_EMPTY, "owner": STR, "uri": URI, "viewUrl": URI}, ("name", "uri")
    ),
    "repository.deleted": Obj({"name": STR, "owner": STR, "uri": URI, "viewUrl": URI}),
    "repository.modified": Obj({"name": STR, "owner": STR, "uri": URI, "viewUrl": URI}),
    "taskrun.finished": Obj(
        {"taskName": STR, "uri": URI, "pipelineRun": REF, "outcome": STR, "errors": STR}
    ),
    "taskrun.started": Obj({"taskName": STR, "uri": URI, "pipelineRun": REF}),
    "testcaserun.finished": _test_case_run(
        ("outcome", "environment"), outcome=_V05_OUTCOME, severity=SEVERITY, reason=STR),
    "testsuiterun.finished": Obj(
        {"environment": REF, "testSuite": _test_suite("uri"), "outcome": _V05_OUTCOME,
         "severity": SEVERITY, "reason": STR},
        ("outcome", "environment"),
    ),
    "testsuiterun.queued": Obj(
        {"trigger": TRIGGER, "environment": REF, "testSuite": _test_suite("uri")}, ("environment",)
    ),
}

# "<subject>.<predicate>": (type version in spec 0.4.1, type version in spec 0.5.1).
_TYPE_VERSIONS: dict[str, tuple[str, str]] = {
    "artifact.deleted": ("0.1.0", "0.2.0"),
    "artifact.downloaded": ("0.1.0", "0.2.0"),
    "artifact.packaged": ("0.2.0", "0.3.0"),
    "artifact.published": ("0.2.0", "0.3.0"),
    "artifact.signed": ("0.2.0", "0.3.0"),
    "branch.created": ("0.2.0", "0.3.0"),
    "branch.deleted": ("0.2.0", "0.3.0"),
    "build.finished": ("0.2.0", "0.3.0"),
    "build.queued": ("0.2.0", "0.3.0"),
    "build.started": ("0.2.0", "0.3.0"),
    "change.abandoned": ("0.2.0", "0.3.0"),
    "change.created": ("0.3.0", "0.4.0"),
    "change.merged": ("0.2.0", "0.3.0"),
    "change.reviewed": ("0.2.0", "0.3.0"),
    "change.updated": ("0.2.0", "0.3.0"),
    "environment.created": ("0.2.0", "0.3.0"),
    "environment.deleted": ("0.2.0", "0.3.0"),
    "environment.modified": ("0.2.0", "0.3.0"),
    "incident.detected": ("0.2.0", "0.3.0"),
    "incident.reported": ("0.2.0", "0.3.0"),
    "incident.resolved": ("0.2.0", "0.3.0"),
    "pipelinerun.finished": ("0.2.0", "0.3.0"),
    "pipelinerun.queued": ("0.2.0", "0.3.0"),
    "pipelinerun.started": ("0.2.0", "0.3.0"),
    "repository.created": ("0.2.0", "0.3.0"),
    "repository.deleted": ("0.2.0", "0.3.0"),
    "repository.modified": ("0.2.0", "0.3.0"),
    "service.deployed": ("0.2.0", "0.3.0"),
    "service.published": ("0.2.0", "0.3.0"),
    "service.removed": ("0.2.0", "0.3.0"),
    "service.rolledback": ("0.2.0", "0.3.0"),
    "service.upgraded": ("0.2.0", "0.3.0"),
    "taskrun.finished": ("0.2.0", "0.3.0"),
    "taskrun.started": ("0.2.0", "0.3.0"),
    "testcaserun.finished": ("0.2.0", "0.3.0"),
    "testcaserun.queued": ("0.2.0", "0.3.0"),
    "testcaserun.skipped": ("0.1.0", "0.2.0"),
    "testcaserun.started": ("0.2.0", "0.3.0"),
    "testoutput.published": ("0.2.0", "0.3.0"),
    "testsuiterun.finished": ("0.2.0", "0.3.0"),
    "testsuiterun.queued": ("0.2.0", "0.3.0"),
    "testsuiterun.started": ("0.2.0", "0.3.0"),
    "ticket.closed": ("0.1.0", "0.2.0"),
    "ticket.created": ("0.1.0", "0.2.0"),
    "ticket.updated": ("0.1.0", "0.2.0"),
}

# 0.4.x subject.type values that are not simply the type string's subject noun.
_CAMEL_SUBJECT_TYPES = {
    "pipelinerun": "pipelineRun",
    "taskrun": "taskRun",
    "testcaserun": "testCaseRun",
    "testoutput": "testOutput",
    "testsuiterun": "testSuiteRun",
}
_LOOSE_SOURCE_SUBJECTS = frozenset({"testcaserun", "testoutput", "testsuiterun"})


def _v04_event(name: str) -> EventType:
    subject, predicate = name.split(".")
    return EventType(
        subject, predicate, _TYPE_VERSIONS[name][0], (_SHARED_CONTENT | _V04_CONTENT)[name],
        subject_type=_CAMEL_SUBJECT_TYPES.get(subject, subject), subject_type_required=True,
        loose_sources=subject in _LOOSE_SOURCE_SUBJECTS,
    )


def _v05_event(name: str) -> EventType:
    subject, predicate = name.split(".")
    # 0.5.1 dropped subject.type, except that ticket.closed still allows an optional "ticket".
    return EventType(
        subject, predicate, _TYPE_VERSIONS[name][1], (_SHARED_CONTENT | _V05_CONTENT)[name],
        subject_type="ticket" if name == "ticket.closed" else None, subject_type_required=False,
        loose_sources=subject in _LOOSE_SOURCE_SUBJECTS,
    )


V04 = SpecFamily("0.4", "version", tuple(_v04_event(name) for name in _TYPE_VERSIONS))
V05 = SpecFamily("0.5", "specversion", tuple(_v05_event(name) for name in _TYPE_VERSIONS))
FAMILIES = (V04, V05)

# Embedded links (schemas/links/embeddedlink*.json); identical in 0.4.1 and 0.5.1.
_CONTEXT_ID = Obj({"contextId": NON_EMPTY}, ("contextId",), closed=False)
_TAGS = Obj({}, closed=False)
EMBEDDED_LINKS = LinkArray(
    {
        "END": Obj({"linkType": _enum("END"), "from": _CONTEXT_ID, "tags": _TAGS}, ("linkType",)),
        "PATH": Obj(
            {"linkType": _enum("PATH"), "from": _CONTEXT_ID, "tags": _TAGS}, ("linkType", "from")
        ),
        "RELATION": Obj(
            {
                "linkType": _enum("RELATION"),
                "linkKind": NON_EMPTY,
                "target": Obj({"contextId": NON_EMPTY}, closed=False),
                "tags": _TAGS,
            },
            ("linkType", "linkKind", "target"),
        ),
    }
)


def event_schema(family: SpecFamily, event: EventType) -> Obj:
    """The whole event's shape: the top-level object with context, subject and customData."""
    source = NON_EMPTY if event.loose_sources else URI_REF
    context = Obj(
        {
            family.version_field: NON_EMPTY,
            "id": NON_EMPTY,
            "source": source,
            "type": _enum(event.type),
            "timestamp": DATE_TIME,
            "schemaUri": Str(min_length=1, format="uri"),
            "chainId": NON_EMPTY,
            "links": EMBEDDED_LINKS,
        },
        (family.version_field, "id", "source", "type", "timestamp"),
    )
    subject_fields: dict[str, Field] = {
        "id": NON_EMPTY, "source": STR if event.loose_sources else URI_REF
    }
    if event.subject_type is not None:
        subject_fields["type"] = Str(min_length=1, enum=frozenset({event.subject_type}))
    subject_fields["content"] = event.content
    subject_required = (
        ("id", "type", "content") if event.subject_type_required else ("id", "content")
    )
    return Obj(
        {
            "context": context,
            "subject": Obj(subject_fields, subject_required),
            "customData": Opaque(("object", "string")),
            "customDataContentType": STR,
        },
        ("context", "subject"),
    )
