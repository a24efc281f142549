"""Unknown-parameter checks against the stripe library's own params TypedDicts.

The library generates those TypedDicts from Stripe's OpenAPI spec, so they name every
parameter Stripe accepts; a typo like `line_items[0][price_data][product_data][nme]` is
refused here as Stripe refuses it, instead of being silently ignored.
"""

from __future__ import annotations

import re
import sys
from functools import cache
from typing import Any

from stripe import RequestOptions
from typing_extensions import is_typeddict

from stripesim.errors import invalid

_NAME = re.compile(r"[A-Za-z_]\w*")
# Request options (api_key, idempotency_key, ...) are mixed into the top-level TypedDicts.
_OPTIONS = frozenset(RequestOptions.__annotations__)


@cache
def _fields(schema: type) -> frozenset[str]:
    return frozenset(schema.__annotations__) - _OPTIONS


@cache
def _nested(schema: type, field: str) -> type | None:
    """The TypedDict a field's annotation names (directly or as a list of it), if any."""
    module = sys.modules[schema.__module__]
    for name in _NAME.findall(str(schema.__annotations__[field])):
        candidate = getattr(module, name, None)
        if isinstance(candidate, type) and is_typeddict(candidate):
            return candidate
    return None


def check_known(params: dict[str, Any], schema: type, prefix: str = "") -> None:
    """Refuse the first parameter that `schema` does not know, naming its full path."""
    for name, value in params.items():
        path = f"{prefix}[{name}]" if prefix else name
        if name not in _fields(schema):
            raise invalid(f"Received unknown parameter: {path}", path, "parameter_unknown")
        nested = _nested(schema, name)
        if nested is None:
            continue
        if isinstance(value, dict):
            check_known(value, nested, path)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    check_known(item, nested, f"{path}[{index}]")
