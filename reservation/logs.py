"""Log lines a person can follow after a sale: stdlib `logging`, human or JSON.

The money paths log through `logging.getLogger("reservation.…")` with their context as
`extra` fields (reservation_id, session_id, skus, event_id, outcome, …). `log_config` is the
logging configuration of `reservation serve` (uvicorn's own, with the service's loggers
added), chosen by RESERVATION_LOG_FORMAT:

- text: `2025-01-01 12:00:00,000 INFO reservation.webhooks: message key=value …`
- json: one JSON object per line (python-json-logger), the context fields at the top level,
  a traceback as `exc_info`; uvicorn's own lines become JSON too.

No record is made with a secret or a card field in it; both formatters still blank the
configured secrets, Stripe-shaped keys and URL passwords, in case an exception's text carries
one (a traceback quotes what it was given).
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from reservation.settings import Settings

REDACTED = "[redacted]"
# Secret keys, restricted keys and webhook secrets of Stripe; a password in a URL.
SECRET_PATTERNS = (
    re.compile(r"\b(?:sk|rk)_(?:live|test)_\w+"),
    re.compile(r"\bwhsec_\w+"),
)
URL_PASSWORD = re.compile(r"(://[^:/@\s\"']*):[^@/\s\"']+@")
MIN_SECRET = 8  # a configured value shorter than this is not searched for (it would match words)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The record's own attributes; anything else on a record came as `extra`: the context.
STANDARD_ATTRIBUTES = frozenset(RESERVED_ATTRS) | {"message", "asctime", "color_message"}
SERVICE_LOGGERS = ("reservation", "persistence")


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """The configured values that must never reach a log line."""
    values = (
        settings.stripe_secret_key,
        settings.stripe_webhook_secret,
        settings.admin_token,
        settings.customer_token_secret,
    )
    return tuple(value for value in (*values, *settings.session_secrets) if value)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with the given secrets, Stripe keys and URL passwords blanked."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET:
            text = text.replace(secret, REDACTED)
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return URL_PASSWORD.sub(rf"\1:{REDACTED}@", text)


def context_of(record: logging.LogRecord) -> dict[str, Any]:
    """The `extra` fields of a record, in the order given."""
    return {
        name: value
        for name, value in record.__dict__.items()
        if name not in STANDARD_ATTRIBUTES and not name.startswith("_")
    }


def _shown(value: object) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


class TextFormatter(logging.Formatter):
    """A line for people: the message, then the context as key=value."""

    def __init__(self, fmt: str = TEXT_FORMAT, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self.secrets = tuple(secrets)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        context = " ".join(
            f"{name}={_shown(value)}"
            for name, value in context_of(record).items()
            if value is not None
        )
        return f"{line} {context}" if context else line

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


class JsonLineFormatter(JsonFormatter):
    """One JSON object per record: time, level, logger, message, the context, exc_info."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",
            reserved_attrs=sorted(STANDARD_ATTRIBUTES),
        )
        self.secrets = tuple(secrets)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        ordered = {"time": log_data.pop("time", None), **log_data}
        return {name: self._redacted(value) for name, value in ordered.items()}

    def _redacted(self, value: object) -> Any:
        if isinstance(value, str):
            return redact(value, self.secrets)
        if isinstance(value, list | tuple):
            return [self._redacted(item) for item in value]
        if isinstance(value, dict):
            return {str(key): self._redacted(item) for key, item in value.items()}
        return value


def formatter(log_format: str, secrets: Iterable[str] = ()) -> logging.Formatter:
    """The formatter of RESERVATION_LOG_FORMAT."""
    if log_format == "json":
        return JsonLineFormatter(secrets)
    return TextFormatter(secrets=secrets)


def log_config(settings: Settings, uvicorn_config: Mapping[str, Any]) -> dict[str, Any]:
    """uvicorn's logging configuration (its LOGGING_CONFIG, copied) with the service's loggers
    (INFO) and formatter added.

    Given to uvicorn as `log_config`, so every worker process applies it too. Other libraries
    (stripe, httpx, pymongo) log through the root logger at WARNING and above.
    """
    config: dict[str, Any] = copy.deepcopy(dict(uvicorn_config))
    config["formatters"]["service"] = {
        "()": formatter,
        "log_format": settings.log_format,
        "secrets": list(secrets_of(settings)),
    }
    config["handlers"]["service"] = {
        "class": "logging.StreamHandler",
        "formatter": "service",
        "stream": "ext://sys.stderr",
    }
    config["root"] = {"handlers": ["service"], "level": "WARNING"}
    for name in SERVICE_LOGGERS:
        config["loggers"][name] = {"level": "INFO"}
    if settings.log_format == "json":
        # uvicorn's own lines (start-up, errors, access when on) in the same JSON.
        config["loggers"]["uvicorn"]["handlers"] = ["service"]
        config["loggers"]["uvicorn.access"]["handlers"] = ["service"]
    return config
