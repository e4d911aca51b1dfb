"""Typed service settings, read once from environment variables at start (pydantic-settings).

Each field is one variable: its name upper-cased (`port` is `PORT`), its default, and in its
description what it accepts, which is also the one-line error a bad value gets (exit code 2)
and the `--help` text and the settings table of docs/operations.md."""

from __future__ import annotations

import ipaddress
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pymongo.errors import ConfigurationError, InvalidURI
from pymongo.uri_parser import parse_uri

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
COOKIE_SAMESITES = ("lax", "strict", "none")
_CHOICES = {"log_level": LOG_LEVELS, "log_format": LOG_FORMATS, "cookie_samesite": COOKIE_SAMESITES}  # settings that take one of a few words
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class SettingsError(ValueError):
    """Variables hold values the service cannot start with: `problems` is every one of them, as
    (variable, what it accepts), so that an operator fixes them all in one go."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{variable}: {accepted}" for variable, accepted in problems))
        self.problems = problems

    @classmethod
    def of(cls, variable: str) -> SettingsError:
        """The error of one variable that holds a value outside what its field accepts."""
        return cls([(variable, Settings.model_fields[variable.lower()].description or "")])


class _Environment(EnvSettingsSource):
    """The variables of a given mapping (the process environment, or a test's)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls, case_sensitive=False)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        # Exactly the upper-case names (`PORT`, never `port`), handed on in the lower case the
        # source looks fields up by.
        return {name.lower(): value for name, value in self._environ.items() if name == name.upper()}


class Settings(BaseSettings):
    # Only what the constructor is given: `from_env` reads the environment, so that a test's
    # `Settings(...)` never picks up the variables of the shell that runs it.
    model_config = SettingsConfigDict(frozen=True, extra="forbid")

    port: int = Field(4545, ge=1, le=65535, description="a port number from 1 to 65535")
    host: str = Field("127.0.0.1", description="an IP address or host name to listen on, e.g. 127.0.0.1 or 0.0.0.0")
    mongodb_uri: str | None = Field(None, description="a mongodb:// or mongodb+srv:// URI, or empty for the "
                                                      "embedded database")
    mongodb_db: str = Field("tsundoku", description="a database name (1 to 63 characters, none of / \\ . \" $ "
                                                    "or spaces)")
    data_dir: Path = Field(Path("./data"), description="a directory this user can create and write in")
    file_service: bool = Field(True, description="true or false")
    cookie_secure: bool | Literal["auto"] = Field(
        "auto", description="true, false, or auto: the session cookie is Secure exactly when the request came over "
                            "https (directly, or as the TRUST_PROXY proxy says in X-Forwarded-Proto or X-Scheme)")
    cookie_samesite: str = Field(
        "lax", description="lax, strict or none, the session cookie's SameSite (none, for a frontend on another "
                           "site, needs COOKIE_SECURE true or auto)")
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="comma-separated origins like https://app.example.com")
    trust_proxy: bool = Field(False, description="true or false")
    register_limit_per_hour: int = Field(10, gt=0, description="a whole number above 0")
    changes_retention_days: int = Field(
        90, ge=1, le=3650, description="a whole number of days from 1 to 3650: how long GET /user/changes keeps a "
                                       "change (a deletion's tombstone too); an app whose cursor is older reads the "
                                       "lists again")
    status_history_limit: int = Field(
        200, ge=1, le=10_000, description="a whole number from 1 to 10000: how many changes of each reading status "
                                         "GET /user/reading-status/id/:id/history keeps (the newest)")
    login_failures_per_15_min: int = Field(10, gt=0, description="a whole number above 0")
    # Ten times the per-name limit: ten people behind one NAT can each use up their own before
    # the address is refused, while one address trying a new name each time gets 100 hashes.
    login_failures_per_address_per_15_min: int = Field(100, gt=0, description="a whole number above 0")
    max_image_bytes: int = Field(8 * 1024 * 1024, gt=0, description="a number of bytes above 0")
    max_image_pixels: int = Field(
        40_000_000, gt=0, description="pixels an avatar upload may have, from its header, before anything is decoded")
    header_timeout_s: float = Field(
        30.0, gt=0, lt=86400,
        description="seconds a client has to send a request's headers (answered 408 past it; also ends idle "
                    "keep-alive connections)")
    body_grace_s: float = Field(
        10.0, gt=0, lt=86400,
        description="seconds after a request's headers before its body is held to BODY_MIN_BYTES_PER_S")
    body_min_bytes_per_s: int = Field(
        1024, gt=0, le=1_048_576,
        description="bytes per second (1 to 1048576) a request body must average, from the end of its headers, "
                    "once BODY_GRACE_S has passed; a slower one is answered 408 and closed")
    max_connections: int = Field(
        0, ge=0, description="open client connections at most; 0: the open-file limit less 256")
    log_level: str = Field("info", description="one of " + ", ".join(LOG_LEVELS))
    metrics_token: str | None = Field(
        None, min_length=16, description="a secret of 16 characters or more; GET /metrics also answers "
                                         "`Authorization: Bearer <it>` (without it, loopback addresses only)")
    log_format: str = Field("text", description="text (readable lines) or json (one JSON object a line)")
    catalog_import_chunk: int = Field(
        500, ge=1, le=100_000,
        description="series (1 to 100000) that import-catalog holds and writes at a time, with their volumes (a chunk "
                    "also ends at ten volumes a series): its memory follows this, not the file")
    idempotency_secret: str | None = Field(
        None, min_length=32,
        description="a secret of 32 characters or more, the same in every process of the service: the key of the "
                    "request fingerprints that Idempotency-Key keeps; unset, DATA_DIR/idempotency-secret (made "
                    "at the first start, mode 0600)")
    access_token_secret: str | None = Field(
        None, min_length=32,
        description="a secret of 32 characters or more, the same in every process of the service: the key that "
                    "signs access tokens (the accessToken of login, me and refresh); unset, "
                    "DATA_DIR/access-token-secret (made at the first start, mode 0600)")
    access_token_previous_secret: str | None = Field(
        None, min_length=32,
        description="a secret of 32 characters or more: the key ACCESS_TOKEN_SECRET replaced, still accepted "
                    "(never used to sign) so that tokens it signed live out their 15 minutes; empty once they have")

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    @field_validator("host", "mongodb_db", mode="before")
    @classmethod
    def _non_empty(cls, raw: Any) -> Any:
        if isinstance(raw, str):
            if not raw.strip():
                raise ValueError("empty")
            return raw.strip()
        return raw

    @field_validator("host")
    @classmethod
    def _address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
            return value
        except ValueError:
            pass
        labels = value.rstrip(".").split(".")
        # All-numeric labels are an IPv4 address or nothing (999.1.1.1 is not a host name).
        if len(value) > 253 or all(label.isdigit() for label in labels) or \
                not all(_HOST_LABEL.fullmatch(label) for label in labels):
            raise ValueError(value)
        return value

    @field_validator("mongodb_db")
    @classmethod
    def _database_name(cls, value: str) -> str:
        if len(value) > 63 or any(ch in value for ch in '/\\. "$\x00'):
            raise ValueError(value)
        return value

    @field_validator("mongodb_uri")
    @classmethod
    def _mongodb_uri(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError(value)
        if value.startswith("mongodb://"):  # an SRV URI is resolved only when the service connects
            try:
                parse_uri(value)
            except (InvalidURI, ConfigurationError, ValueError):
                raise ValueError(value) from None
        return value

    def check_data_dir(self) -> None:
        """With the embedded database, `DATA_DIR` must be a directory this user can create and
        write in: tried now (a directory made and removed where it would go), before anything starts."""
        if not self.uses_embedded_database:
            return
        existing = self.data_dir.absolute()
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise SettingsError.of("DATA_DIR")
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".tsundoku-check-", dir=existing))
        except OSError:
            raise SettingsError.of("DATA_DIR") from None

    @field_validator("data_dir", mode="before")
    @classmethod
    def _directory(cls, raw: Any) -> Any:
        if isinstance(raw, str) and not raw.strip():
            raise ValueError("empty")
        return raw.strip() if isinstance(raw, str) else raw

    @field_validator("mongodb_uri", "access_token_previous_secret", mode="before")
    @classmethod
    def _optional(cls, raw: Any) -> Any:
        return (raw.strip() or None) if isinstance(raw, str) else raw

    @field_validator("file_service", "cookie_secure", "trust_proxy", mode="before")
    @classmethod
    def _boolean(cls, raw: Any, info: ValidationInfo) -> Any:
        if isinstance(raw, str):
            lowered = raw.strip().lower()
            if info.field_name == "cookie_secure" and lowered == "auto":
                return lowered
            if lowered not in _TRUE + _FALSE:
                raise ValueError(raw)
            return lowered in _TRUE
        return raw

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, raw: Any) -> Any:
        if isinstance(raw, str):
            raw = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
        for origin in raw:
            if not origin.startswith(("http://", "https://")) or "/" in origin.split("://", 1)[1]:
                raise ValueError(origin)
        return raw

    @field_validator("log_level", "log_format", "cookie_samesite", mode="before")
    @classmethod
    def _one_of(cls, raw: Any, info: ValidationInfo) -> Any:
        lowered = str(raw).strip().lower()
        if lowered not in _CHOICES[info.field_name or ""]:
            raise ValueError(raw)
        return lowered

    @model_validator(mode="after")
    def _samesite_none_is_secure(self) -> Settings:
        # Browsers drop a SameSite=None cookie that is not Secure: every login would answer 200
        # and leave no one signed in. Refused at start rather than found by the first user.
        if self.cookie_samesite == "none" and self.cookie_secure is False:
            raise SettingsError([("COOKIE_SAMESITE", "lax or strict while COOKIE_SECURE is false (none needs "
                                                    "COOKIE_SECURE true or auto)")])
        return self

    def session_cookie_secure(self, over_https: bool) -> bool:
        """Whether the session cookie of an answer to a request that came over https (or not) is
        `Secure`."""
        return over_https if self.cookie_secure == "auto" else bool(self.cookie_secure)

    def session_cookie_samesite(self, secure: bool) -> str:
        """The session cookie's SameSite, as the header writes it, beside `secure`. `none` on a
        cookie that is not Secure (COOKIE_SECURE=auto over plain http, a developer's machine) is
        sent as Lax: a browser would drop the cookie whole, while Lax keeps same-site pages
        signed in."""
        if self.cookie_samesite == "none" and not secure:
            return "Lax"
        return self.cookie_samesite.capitalize()

    @property
    def uses_embedded_database(self) -> bool:
        return self.mongodb_uri is None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every variable; raises one SettingsError naming every bad one."""
        variables = _Environment(cls, os.environ if environ is None else environ)()
        problems: list[tuple[str, str]] = []
        try:
            cls(**variables)
        except ValidationError as error:
            for each in error.errors():
                # (A rule between settings runs only once every field is valid: below.)
                problem = SettingsError.of(str(each["loc"][0]).upper()).problems[0] if each["loc"] else None
                if problem is not None and problem not in problems:  # a union's members each fail
                    problems.append(problem)
        # Again without the bad variables (their defaults in their place), so that the rule
        # between settings and DATA_DIR's check are judged too, in the same run; a variable that
        # rule refuses is left out in turn.
        bad = {variable.lower() for variable, _ in problems}
        while True:
            kept = {name: value for name, value in variables.items() if name not in bad}
            try:
                settings = cls(**kept)
                break
            except ValidationError as error:  # the rule between settings, which raised the SettingsError
                refused = error.errors()[0]["ctx"]["error"].problems
                problems += refused
                if not {variable.lower() for variable, _ in refused} & set(kept):
                    raise SettingsError(problems) from None
                bad |= {variable.lower() for variable, _ in refused}
        if "mongodb_uri" not in bad:  # else the operator meant a server of their own, where DATA_DIR is not used
            try:
                settings.check_data_dir()
            except SettingsError as error:
                problems += error.problems
        if problems:
            raise SettingsError(problems)
        return settings

    def with_overrides(self, **changes: Any) -> Settings:
        return type(self)(**{**self.model_dump(), **changes})


def _shown(default: Any) -> str:
    """A default as one writes it in the environment (and as docs/operations.md's table shows it)."""
    if default is None:
        return ""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, tuple):
        return ",".join(default)
    if isinstance(default, Path) and not default.is_absolute():
        return f"./{default}"
    return str(default)


def documented_variables() -> list[tuple[str, str, str]]:
    """(name, default, accepted) for each variable, for docs/operations.md and --help."""
    rows = []
    for name, spec in Settings.model_fields.items():
        rows.append((name.upper(), _shown(spec.default), spec.description or ""))
    return rows
