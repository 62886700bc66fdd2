"""The CDEvents CloudEvents binding: CloudEvent id, source and type equal the CDEvent context's."""

from __future__ import annotations

from dora_cloudevents.events import CDEvent, CloudEvent

BOUND_ATTRIBUTES = ("id", "source", "type")


def as_cloudevent(cdevent: CDEvent) -> CloudEvent:
    """The structured CloudEvent that carries ``cdevent``."""
    context = cdevent["context"]
    return {"specversion": "1.0", "id": context["id"], "source": context["source"],
            "type": context["type"], "datacontenttype": "application/json", "data": cdevent}


def binding_problem(event: CloudEvent, cdevent: CDEvent) -> str | None:
    """What breaks the binding rules, or None when the envelope matches its CDEvent."""
    context = cdevent["context"]
    for attribute in BOUND_ATTRIBUTES:
        if event.get(attribute) != context[attribute]:
            return (f"CloudEvent {attribute} {event.get(attribute)!r} must equal the CDEvent's "
                    f"context.{attribute} {context[attribute]!r}")
    return None
