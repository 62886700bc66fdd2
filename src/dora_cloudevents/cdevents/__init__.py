"""CDEvents 0.4.x and 0.5.x: the spec as data and a fast validator over it."""

from dora_cloudevents.cdevents.validate import (
    SUPPORTED_TYPES,
    CDEventError,
    CDEventInfo,
    is_uri_reference,
    validate_cdevent,
)

__all__ = ["SUPPORTED_TYPES", "CDEventError", "CDEventInfo", "is_uri_reference",
           "validate_cdevent"]
