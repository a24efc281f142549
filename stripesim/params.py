"""Stripe's form encoding (`line_items[0][price_data][currency]=eur`) read into typed values."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl

from stripesim.errors import invalid, missing_param

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_INTEGER = re.compile(r"^-?\d+$")


def decode_form(text: str) -> dict[str, Any]:
    """Nested params from a query string or form body; indexed keys become lists."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:
        raise invalid(f"Invalid request body: {exc}") from None
    return nest(pairs)


def nest(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.match(key)
        if match is None:
            raise invalid(f"Invalid parameter name: {key}", key)
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        _insert(root, path, value, key)
    return {name: _listify(value, name == "metadata") for name, value in root.items()}


def _insert(node: dict[str, Any], path: list[str], value: str, key: str) -> None:
    for depth, segment in enumerate(path[:-1]):
        if path[depth + 1] == "":  # "expand[]=a&expand[]=b": append
            node = node.setdefault(segment, {})
            if not isinstance(node, dict):
                raise invalid(f"Invalid array: {key}", key)
            node[str(len(node))] = value
            return
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            raise invalid(f"Invalid hash: {key}", key)
        node = child
    if isinstance(node.get(path[-1]), dict):
        raise invalid(f"Invalid hash: {key}", key)
    node[path[-1]] = value


def _listify(value: Any, keep_keys: bool) -> Any:
    """Dicts keyed 0..n-1 are arrays (except metadata, whose keys are the caller's)."""
    if not isinstance(value, dict):
        return value
    items = {key: _listify(child, key == "metadata") for key, child in value.items()}
    if not keep_keys and items and all(key.isdigit() for key in items):
        indexes = sorted(items, key=int)
        if [int(index) for index in indexes] == list(range(len(indexes))):
            return [items[index] for index in indexes]
    return items


class Params:
    """Typed reads of one (nested) params hash; errors name the param as Stripe does."""

    def __init__(self, data: dict[str, Any], prefix: str = "") -> None:
        self.data = data
        self.prefix = prefix

    def path(self, name: str) -> str:
        return f"{self.prefix}[{name}]" if self.prefix else name

    def has(self, name: str) -> bool:
        return name in self.data

    def string(self, name: str, *, required: bool = False, max_length: int = 5000) -> str | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise missing_param(self.path(name))
            return None
        if not isinstance(value, str):
            raise invalid(f"Invalid string: {value!r}", self.path(name))
        if len(value) > max_length:
            raise invalid(
                f"Invalid string: {value[:20]}...; must be at most {max_length} characters",
                self.path(name),
            )
        return value

    def choice(self, name: str, choices: tuple[str, ...], *, required: bool = False) -> str | None:
        value = self.string(name, required=required)
        if value is not None and value not in choices:
            expected = ", ".join(choices[:-1]) + f", or {choices[-1]}"
            raise invalid(f"Invalid {name}: must be one of {expected}", self.path(name))
        return value

    def integer(
        self, name: str, *, required: bool = False, minimum: int | None = None
    ) -> int | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise missing_param(self.path(name))
            return None
        if not isinstance(value, str) or not _INTEGER.match(value):
            raise invalid(f"Invalid integer: {value}", self.path(name), "parameter_invalid_integer")
        number = int(value)
        if minimum is not None and number < minimum:
            kind = "positive integer" if minimum == 1 else "integer"
            raise invalid(
                f"Invalid {kind}: {value}; must be at least {minimum}",
                self.path(name),
                "parameter_invalid_integer",
            )
        return number

    def boolean(self, name: str) -> bool | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        if value not in ("true", "false"):
            raise invalid(f"Invalid boolean: {value}", self.path(name))
        return bool(value == "true")

    def child(self, name: str, *, required: bool = False) -> Params | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise missing_param(self.path(name))
            return None
        if not isinstance(value, dict):
            raise invalid(f"Invalid hash: {self.path(name)}", self.path(name))
        return Params(value, self.path(name))

    def children(self, name: str) -> list[Params]:
        value = self.data.get(name)
        if value is None or value == "":
            return []
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise invalid(f"Invalid array: {self.path(name)}", self.path(name))
        return [Params(item, f"{self.path(name)}[{index}]") for index, item in enumerate(value)]

    def strings(self, name: str) -> list[str]:
        value = self.data.get(name)
        if value is None or value == "":
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise invalid(f"Invalid array: {self.path(name)}", self.path(name))
        return list(value)

    def metadata(self, name: str = "metadata") -> dict[str, str] | None:
        """Stripe's metadata rules: at most 50 keys of 40 characters, values of 500."""
        value = self.data.get(name)
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise invalid("Invalid metadata: must be a hash of strings", self.path(name))
        if len(value) > 50:
            raise invalid("Invalid metadata: metadata can have up to 50 keys", self.path(name))
        for key, item in value.items():
            if len(key) > 40:
                raise invalid(
                    f"Metadata keys can have up to 40 characters; {key!r} has {len(key)}",
                    self.path(name),
                )
            if len(item) > 500:
                raise invalid(
                    f"Metadata values can have up to 500 characters; the value of {key!r} "
                    f"has {len(item)}",
                    self.path(name),
                )
        return dict(value)
