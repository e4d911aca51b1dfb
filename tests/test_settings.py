"""Settings from environment variables: defaults, parsing, and the variable named on a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from settings import Settings, SettingsError, documented_variables


def test_every_setting_has_the_documented_default() -> None:
    settings = Settings.from_env({})
    assert settings.port == 4545 and settings.host == "127.0.0.1"
    assert settings.mongodb_uri is None and settings.uses_embedded_database
    assert settings.mongodb_db == "tsundoku" and settings.data_dir == Path("./data")
    assert settings.file_service and settings.cookie_secure and not settings.trust_proxy
    assert settings.cors_origins == ()
    assert (settings.register_limit_per_hour, settings.login_failures_per_15_min) == (10, 10)
    assert settings.max_image_bytes == 8 * 1024 * 1024 and settings.log_level == "info"


def test_values_are_parsed_from_the_environment() -> None:
    settings = Settings.from_env({
        "PORT": "8080", "MONGODB_URI": "mongodb://db:27017", "FILE_SERVICE": "off", "COOKIE_SECURE": "0",
        "CORS_ORIGINS": "https://a.example, http://localhost:4200/", "TRUST_PROXY": "yes", "LOG_LEVEL": "DEBUG",
    })
    assert settings.port == 8080 and settings.mongodb_uri == "mongodb://db:27017"
    assert not settings.file_service and not settings.cookie_secure and settings.trust_proxy
    assert settings.cors_origins == ("https://a.example", "http://localhost:4200")
    assert settings.log_level == "debug"


def test_an_empty_mongodb_uri_means_the_embedded_database() -> None:
    assert Settings.from_env({"MONGODB_URI": ""}).uses_embedded_database


@pytest.mark.parametrize("variable, value", [
    ("PORT", "0"), ("HOST", " "), ("TRUST_PROXY", "sure"), ("LOGIN_FAILURES_PER_15_MIN", "ten"),
    ("CORS_ORIGINS", "https://a.example/path"), ("MONGODB_DB", ""),
])
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: value})
    assert raised.value.variable == variable and raised.value.accepted


def test_only_the_upper_case_names_count_and_unknown_variables_are_ignored() -> None:
    settings = Settings.from_env({"port": "1", "Port": "2", "PATH": "/usr/bin", "TSUNDOKU_OTHER": "x"})
    assert settings.port == 4545


def test_the_help_lists_every_variable_with_its_default_and_what_it_accepts() -> None:
    rows = {name: (default, accepted) for name, default, accepted in documented_variables()}
    assert rows["PORT"] == ("4545", "a port number from 1 to 65535")
    assert rows["MONGODB_URI"] == ("", "a mongodb:// URI, or empty for the embedded database")
    assert set(rows) == {name.upper() for name in Settings.model_fields}
