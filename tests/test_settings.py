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
    assert settings.file_service and not settings.trust_proxy
    assert settings.cookie_secure == "auto" and settings.cookie_samesite == "lax"
    assert settings.cors_origins == ()
    assert (settings.register_limit_per_hour, settings.login_failures_per_15_min,
            settings.login_failures_per_address_per_15_min) == (10, 10, 100)
    assert settings.max_image_bytes == 8 * 1024 * 1024 and settings.log_level == "info"
    assert (settings.header_timeout_s, settings.body_grace_s, settings.body_min_bytes_per_s) == (30, 10, 1024)


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
    [(named, accepted)] = raised.value.problems
    assert named == variable and accepted


def test_every_bad_setting_is_named_at_once_with_the_rules_between_settings_and_data_dir(tmp_path: Path) -> None:
    # Found by a newcomer: only the first was named, so each fix met the next refusal.
    (tmp_path / "file").write_text("x")
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**BAD_VALUES, "COOKIE_SECURE": "false", "COOKIE_SAMESITE": "none",
                           "MONGODB_URI": "", "DATA_DIR": str(tmp_path / "file" / "data")})
    named = [variable for variable, _ in raised.value.problems]
    expected = set(BAD_VALUES) - {"MONGODB_URI", "COOKIE_SECURE", "COOKIE_SAMESITE"}
    assert set(named) == expected | {"COOKIE_SAMESITE"} and len(named) == len(set(named))
    assert all(accepted for _, accepted in raised.value.problems)


def test_a_bad_mongodb_uri_leaves_data_dir_unjudged() -> None:
    # The operator meant a server of their own, where DATA_DIR is not used.
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"MONGODB_URI": "http://example.com", "DATA_DIR": "/proc/nope"})
    assert [variable for variable, _ in raised.value.problems] == ["MONGODB_URI"]


def test_only_the_upper_case_names_count_and_unknown_variables_are_ignored() -> None:
    settings = Settings.from_env({"port": "1", "Port": "2", "PATH": "/usr/bin", "TSUNDOKU_OTHER": "x"})
    assert settings.port == 4545


def test_the_help_lists_every_variable_with_its_default_and_what_it_accepts() -> None:
    rows = {name: (default, accepted) for name, default, accepted in documented_variables()}
    assert rows["PORT"] == ("4545", "a port number from 1 to 65535")
    assert rows["MONGODB_URI"] == ("", "a mongodb:// or mongodb+srv:// URI, or empty for the embedded database")
    assert (rows["COOKIE_SECURE"][0], rows["COOKIE_SAMESITE"][0]) == ("auto", "lax")
    assert set(rows) == {name.upper() for name in Settings.model_fields}
    # Written as one writes them, and as docs/operations.md's table shows them.
    assert (rows["DATA_DIR"][0], rows["FILE_SERVICE"][0], rows["TRUST_PROXY"][0]) == ("./data", "true", "false")


# A refused value of every setting (a test fails when a setting is added without one here).
BAD_VALUES = {
    "PORT": "0", "HOST": "999.1.1.1", "MONGODB_URI": "http://example.com", "MONGODB_DB": "a/b",
    "DATA_DIR": "/proc/nope", "FILE_SERVICE": "perhaps", "COOKIE_SECURE": "maybe",
    "COOKIE_SAMESITE": "loose",
    "CORS_ORIGINS": "https://a.example/path", "TRUST_PROXY": "sure", "REGISTER_LIMIT_PER_HOUR": "0",
    "LOGIN_FAILURES_PER_15_MIN": "ten", "LOGIN_FAILURES_PER_ADDRESS_PER_15_MIN": "0", "MAX_IMAGE_BYTES": "-1",
    "MAX_IMAGE_PIXELS": "0", "HEADER_TIMEOUT_S": "0",
    "BODY_GRACE_S": "86400", "BODY_MIN_BYTES_PER_S": "0", "MAX_CONNECTIONS": "-1", "LOG_LEVEL": "loud",
    "METRICS_TOKEN": "short", "LOG_FORMAT": "xml", "IDEMPOTENCY_SECRET": "too short", "CATALOG_IMPORT_CHUNK": "0",
    "ACCESS_TOKEN_SECRET": "too short", "ACCESS_TOKEN_PREVIOUS_SECRET": "too short", "CHANGES_RETENTION_DAYS": "0",
    "STATUS_HISTORY_LIMIT": "0",
}


def test_every_setting_has_a_refused_value_here() -> None:
    assert set(BAD_VALUES) == {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize("variable", sorted(BAD_VALUES))
def test_each_setting_refuses_a_bad_value_naming_itself(variable: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({variable: BAD_VALUES[variable]})
    [(named, accepted)] = raised.value.problems
    assert named == variable and accepted


@pytest.mark.parametrize("variable, value", [
    ("HOST", "0.0.0.0"), ("HOST", "::"), ("HOST", "localhost"), ("HOST", "api.example.com"),
    ("MONGODB_URI", "mongodb://user:pw@db1:27017,db2:27017/?replicaSet=rs0&tls=true"),
    ("MONGODB_URI", "mongodb+srv://cluster0.example.net/"), ("MONGODB_DB", "tsundoku_prod"),
])
def test_good_values_of_the_checked_settings_pass(variable: str, value: str) -> None:
    assert Settings.from_env({variable: value})


@pytest.mark.parametrize("value, meant", [("auto", "auto"), (" AUTO ", "auto"), ("true", True), ("off", False)])
def test_cookie_secure_is_true_false_or_auto(value: str, meant: object) -> None:
    assert Settings.from_env({"COOKIE_SECURE": value}).cookie_secure == meant


@pytest.mark.parametrize("value", ["lax", "Strict", " NONE "])
def test_cookie_samesite_is_one_of_three_words(value: str) -> None:
    assert Settings.from_env({"COOKIE_SAMESITE": value}).cookie_samesite == value.strip().lower()


@pytest.mark.parametrize("secure", ["true", "auto"])
def test_samesite_none_is_accepted_with_a_cookie_that_can_be_secure(secure: str) -> None:
    assert Settings.from_env({"COOKIE_SAMESITE": "none", "COOKIE_SECURE": secure}).cookie_samesite == "none"


def test_samesite_none_with_cookie_secure_false_is_refused_naming_both() -> None:
    # Browsers drop a SameSite=None cookie that is not Secure: no one could stay signed in.
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"COOKIE_SAMESITE": "none", "COOKIE_SECURE": "false"})
    [(named, accepted)] = raised.value.problems
    assert named == "COOKIE_SAMESITE" and "COOKIE_SECURE" in accepted
    with pytest.raises(ValueError):  # built in code (a test's settings) too
        Settings(cookie_samesite="none", cookie_secure=False)


@pytest.mark.parametrize("setting, over_https, secure, samesite", [
    ("auto", True, True, "None"), ("auto", False, False, "Lax"), (True, False, True, "None"),
])
def test_the_cookie_attributes_for_samesite_none(setting: object, over_https: bool, secure: bool,
                                                 samesite: str) -> None:
    settings = Settings(cookie_secure=setting, cookie_samesite="none")
    assert settings.session_cookie_secure(over_https) is secure
    assert settings.session_cookie_samesite(secure) == samesite


def test_data_dir_is_tried_without_leaving_anything(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    assert Settings.from_env({"DATA_DIR": str(target)}).data_dir == target
    assert list(tmp_path.iterdir()) == []  # a directory was made and removed in tmp_path; nothing stays
    (tmp_path / "file").write_text("x")
    with pytest.raises(SettingsError):
        Settings.from_env({"DATA_DIR": str(tmp_path / "file" / "data")})
    # With MONGODB_URI set, DATA_DIR is not used and not tried.
    assert Settings.from_env({"DATA_DIR": "/proc/nope", "MONGODB_URI": "mongodb://db:27017"})
