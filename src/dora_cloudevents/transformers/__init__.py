"""Transformers: one module per source, each turning that source's CloudEvents into CDEvents.

Every module in this package that defines ``TRANSFORMERS`` (a list of ``Transformer``)
is registered by name; adding a source means adding one module.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from dora_cloudevents.transformers.base import Transformer, TransformError

__all__ = ["TransformError", "Transformer", "builtin_transformers"]


@cache
def builtin_transformers() -> dict[str, Transformer]:
    found: dict[str, Transformer] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for transformer in getattr(module, "TRANSFORMERS", ()):
            if transformer.name in found:
                raise RuntimeError(f"two built-in transformers are named {transformer.name!r}")
            found[transformer.name] = transformer
    return found
