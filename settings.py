"""Typed service settings, read once from environment variables at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

LOG_LEVELS = ("debug", "info", "warning", "error")


class SettingsError(ValueError):
    """A variable holds a value the service cannot start with."""

    def __init__(self, variable: str, accepted: str) -> None:
        super().__init__(f"{variable}: {accepted}")
        self.variable = variable
        self.accepted = accepted


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _positive_int(raw: str) -> int:
    value = int(raw.strip())
    if value <= 0:
        raise ValueError(raw)
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw.strip())
    if value < 0:
        raise ValueError(raw)
    return value


def _positive_seconds(raw: str) -> float:
    value = float(raw.strip())
    if not 0 < value < 86400:
        raise ValueError(raw)
    return value


def _port(raw: str) -> int:
    value = int(raw.strip())
    if not 1 <= value <= 65535:
        raise ValueError(raw)
    return value


def _non_empty(raw: str) -> str:
    if not raw.strip():
        raise ValueError(raw)
    return raw.strip()


def _optional(raw: str) -> str | None:
    return raw.strip() or None


def _origins(raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if not origin.startswith(("http://", "https://")) or "/" in origin.split("://", 1)[1]:
            raise ValueError(origin)
    return origins


def _log_level(raw: str) -> str:
    lowered = raw.strip().lower()
    if lowered not in LOG_LEVELS:
        raise ValueError(raw)
    return lowered


@dataclass(frozen=True)
class _Variable:
    name: str
    attribute: str
    parse: Callable[[str], Any]
    accepted: str


_VARIABLES = (
    _Variable("PORT", "port", _port, "a port number from 1 to 65535"),
    _Variable("HOST", "host", _non_empty, "an address to listen on, e.g. 127.0.0.1 or 0.0.0.0"),
    _Variable("MONGODB_URI", "mongodb_uri", _optional, "a mongodb:// URI, or empty for the embedded database"),
    _Variable("MONGODB_DB", "mongodb_db", _non_empty, "a database name"),
    _Variable("DATA_DIR", "data_dir", lambda raw: Path(_non_empty(raw)), "a directory path"),
    _Variable("FILE_SERVICE", "file_service", _parse_bool, "true or false"),
    _Variable("COOKIE_SECURE", "cookie_secure", _parse_bool, "true or false"),
    _Variable("CORS_ORIGINS", "cors_origins", _origins, "comma-separated origins like https://app.example.com"),
    _Variable("TRUST_PROXY", "trust_proxy", _parse_bool, "true or false"),
    _Variable("REGISTER_LIMIT_PER_HOUR", "register_limit_per_hour", _positive_int, "a whole number above 0"),
    _Variable("LOGIN_FAILURES_PER_15_MIN", "login_failures_per_15_min", _positive_int, "a whole number above 0"),
    _Variable("MAX_IMAGE_BYTES", "max_image_bytes", _positive_int, "a number of bytes above 0"),
    _Variable("MAX_IMAGE_PIXELS", "max_image_pixels", _positive_int,
              "pixels an avatar upload may have, from its header, before anything is decoded"),
    _Variable("HEADER_TIMEOUT_S", "header_timeout_s", _positive_seconds,
              "seconds a client has to send a request's headers (also ends idle keep-alive connections)"),
    _Variable("BODY_STALL_S", "body_stall_s", _positive_seconds,
              "seconds within which a request body must bring at least 4 KiB or be complete"),
    _Variable("MAX_CONNECTIONS", "max_connections", _non_negative_int,
              "open client connections at most; 0: the open-file limit less 256"),
    _Variable("LOG_LEVEL", "log_level", _log_level, "one of " + ", ".join(LOG_LEVELS)),
)


@dataclass(frozen=True)
class Settings:
    port: int = 4545
    host: str = "127.0.0.1"
    mongodb_uri: str | None = None
    mongodb_db: str = "tsundoku"
    data_dir: Path = field(default_factory=lambda: Path("./data"))
    file_service: bool = True
    cookie_secure: bool = True
    cors_origins: tuple[str, ...] = ()
    trust_proxy: bool = False
    register_limit_per_hour: int = 10
    login_failures_per_15_min: int = 10
    max_image_bytes: int = 8 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    header_timeout_s: float = 30.0
    body_stall_s: float = 60.0
    max_connections: int = 0
    log_level: str = "info"

    @property
    def uses_embedded_database(self) -> bool:
        return self.mongodb_uri is None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every variable; the first bad one raises SettingsError."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for variable in _VARIABLES:
            raw = environ.get(variable.name)
            if raw is None:
                continue
            try:
                values[variable.attribute] = variable.parse(raw)
            except ValueError:
                raise SettingsError(variable.name, variable.accepted) from None
        return cls(**values)

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def documented_variables() -> list[tuple[str, str, str]]:
    """(name, default, accepted) for each variable, for the README and --help."""
    defaults = Settings()
    rows = []
    for variable in _VARIABLES:
        default = getattr(defaults, variable.attribute)
        if isinstance(default, tuple):
            default = ",".join(default)
        rows.append((variable.name, "" if default is None else str(default), variable.accepted))
    return rows
