"""How an environment variable's text is read: (variable name, non-empty text) -> value.

Each reader returns its `Settings` field's type, or raises a SettingsError that names the
variable and says what it takes (reservation/env_variables.py pairs each variable with one).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key


class SettingsError(ValueError):
    """A configuration variable has a value the service cannot use."""


Reader = Callable[[str, str], object]


@dataclass(frozen=True, slots=True)
class Variable:
    """One environment variable: the field it sets, how it is read, and what it means."""

    name: str
    field: str
    read: Reader
    meaning: str  # Markdown (backticks), one sentence or two
    default: str | None = None  # how the default is told, when the field's value is not enough

    def shown_default(self, value: object) -> str:
        """The default as the README and `--help` tell it; `value` is the field's default."""
        if self.default is not None:
            return self.default
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        if isinstance(value, str):
            return f"`{value}`"
        return str(value)


FLAG_WORDS = {"1": True, "true": True, "yes": True, "on": True}
FLAG_WORDS.update({"0": False, "false": False, "no": False, "off": False})


def text(name: str, raw: str) -> str:
    return raw


def url(name: str, raw: str) -> str:
    """A base URL, without the trailing slash paths are appended to."""
    return raw.rstrip("/")


def flag(name: str, raw: str) -> bool:
    """1/true/yes/on or 0/false/no/off, in any case; anything else is refused."""
    try:
        return FLAG_WORDS[raw.lower()]
    except KeyError:
        raise SettingsError(
            f"{name} must be 1, true, yes or on (on) or 0, false, no or off (off), not {raw!r}"
        ) from None


# The largest count or number of seconds a variable takes: the scripts take counts (units,
# holds, requests) up to 10^12 and durations up to 10^15 ms, and refuse more.
MAX_VALUE = 10**12


def _number(name: str, raw: str, unit: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of {unit}, not {raw!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise SettingsError(f"{name} must be a positive, finite number of {unit}, not {raw!r}")
    if value > MAX_VALUE:
        raise SettingsError(f"{name} must be at most 10^12 {unit}, not {raw!r}")
    return value


def seconds(name: str, raw: str) -> float:
    """A positive number of seconds, at most 10^12."""
    return _number(name, raw, "seconds")


def seconds_or_off(name: str, raw: str) -> float:
    """A number of seconds where 0 turns the feature off."""
    try:
        if float(raw) == 0:
            return 0.0
    except ValueError:
        pass
    return seconds(name, raw)


def per_second(name: str, raw: str) -> float:
    return _number(name, raw, "calls per second")


def count(name: str, raw: str) -> int:
    """A whole number from 1 to 10^12."""
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {raw!r}") from None
    if value < 1:
        raise SettingsError(f"{name} must be at least 1, not {raw!r}")
    if value > MAX_VALUE:
        raise SettingsError(f"{name} must be at most 10^12, not {raw!r}")
    return value


def count_or_off(name: str, raw: str) -> int:
    """A whole number where 0 turns the feature off."""
    try:
        if int(raw) == 0:
            return 0
    except ValueError:
        pass
    return count(name, raw)


# A header name (RFC 9110 token characters).
HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
# A header value the service sends as configured: visible ASCII and inner spaces (no control
# character, so no line break that would start another header).
HEADER_VALUE = re.compile(r"[!-~]+(?: +[!-~]+)*")


def header_value_or_off(name: str, raw: str) -> str:
    """A header's value; `off` (any case): send no such header (the empty string)."""
    if raw.lower() == "off":
        return ""
    if not HEADER_VALUE.fullmatch(raw):
        raise SettingsError(f"{name} must be visible ASCII characters and spaces, not {raw!r}")
    return raw


MIN_SESSION_SECRET = 32


def secret_list(name: str, raw: str) -> tuple[str, ...]:
    """Comma-separated secrets, newest first, each at least 32 characters."""
    secrets = tuple(part.strip() for part in raw.split(","))
    for secret in secrets:
        if len(secret) < MIN_SESSION_SECRET or not secret.isascii() or not secret.isprintable():
            raise SettingsError(
                f"{name} must be comma-separated secrets of at least {MIN_SESSION_SECRET}"
                " printable ASCII characters each (e.g. `python -c 'import secrets;"
                " print(secrets.token_urlsafe(32))'`)"
            )
    return secrets


def secret(name: str, raw: str) -> str:
    """One secret of at least 32 printable ASCII characters."""
    if len(raw) < MIN_SESSION_SECRET or not raw.isascii() or not raw.isprintable():
        raise SettingsError(
            f"{name} must be a secret of at least {MIN_SESSION_SECRET} printable ASCII"
            " characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return raw


def http_url(name: str, raw: str) -> str:
    """An http:// or https:// URL, as written."""
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", raw, flags=re.IGNORECASE):
        raise SettingsError(f"{name} must be an http:// or https:// URL, not {raw!r}")
    return raw


MIN_RSA_BITS = 2048


def public_key(name: str, raw: str) -> str:
    """A PEM public key that signs RS256 (RSA, 2048 bits or more) or ES256 (EC P-256); a `\\n`
    written for each line break (as an env file holds it) is read as one."""
    pem = raw.replace("\\n", "\n").strip() + "\n"
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError:
        key = None
    usable = (isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS) or (
        isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    )
    if not usable:
        raise SettingsError(
            f"{name} must be a PEM public key (-----BEGIN PUBLIC KEY-----): RSA of at least"
            f" {MIN_RSA_BITS} bits (RS256) or EC P-256 (ES256)"
        )
    return pem


def header_name(name: str, raw: str) -> str:
    """An HTTP header's name, as written (headers are matched in any case)."""
    if not HEADER_NAME.fullmatch(raw):
        raise SettingsError(
            f"{name} must be an HTTP header name, e.g. X-Forwarded-For, not {raw!r}"
        )
    return raw


def choice(*choices: str) -> Reader:
    """One of `choices`, in any case."""

    def read(name: str, raw: str) -> str:
        if raw.lower() not in choices:
            raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {raw!r}")
        return raw.lower()

    return read
