"""User settings: one table of keys gives both the stored/returned shape and the update body."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, create_model, field_validator

from handlers.schemas.common import AcceptsKeyObject, RequestModel

Nsfw18 = Literal["settings.nsfw.show-nsfw-18"]
NSFW_18: str = get_args(Nsfw18)[0]

AccentColor = Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")]
ContentLanguage = Annotated[
    Literal["interface", "en", "de", "fr", "it", "es", "jpn", "kor"], AcceptsKeyObject
]
Theme = Annotated[Literal["system", "light", "dark"], AcceptsKeyObject]
NsfwMode = Annotated[
    Literal["settings.nsfw.hide-nsfw", "settings.nsfw.show-nsfw", Nsfw18], AcceptsKeyObject
]
ViewMode = Annotated[Literal["column", "list", "grid"], AcceptsKeyObject]
CollectionVisibility = Annotated[Literal["private", "public"], AcceptsKeyObject]

# key -> (type, default). The single place a setting is defined.
SETTING_FIELDS: dict[str, tuple[Any, Any]] = {
    "theme-accent-color": (AccentColor, "#71c94e"),
    "prefered-content-language": (ContentLanguage, "interface"),
    "theme": (Theme, "light"),
    "nsfw-mode": (NsfwMode, "settings.nsfw.hide-nsfw"),
    "view-mode": (ViewMode, "column"),
    "show-drag-indicator": (StrictBool, True),
    # Whether others may see the collection on the public profile (never its prices).
    "collection-visibility": (CollectionVisibility, "private"),
}


def _attribute(key: str) -> str:
    return key.replace("-", "_")


def _settings_schema(schema: dict[str, Any]) -> None:
    """Settings to change, as the document says them: none of them null."""
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)
        branches = [branch for branch in prop.pop("anyOf", []) if branch.get("type") != "null"]
        if len(branches) == 1:
            prop.update(branches[0])
        elif branches:
            prop["anyOf"] = branches


def _save_settings_schema(schema: dict[str, Any]) -> None:
    """What save-settings takes, as the document says it: the spec's flat object, at least one
    setting. The same object wrapped as `{"settings": {...}}` is taken too (the description says
    so); the document shows one shape, which every client generator can read."""
    _settings_schema(schema)
    schema["minProperties"] = 1
    schema["description"] = ('Settings to change: the keys given are merged into the stored settings. The same '
                             'object wrapped as `{"settings": {...}}` is taken too.')


class _SettingsUpdateBase(RequestModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=False, json_schema_extra=_settings_schema)

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any) -> Any:
        # A setting can be changed but not erased: null is a bad value, not "unset".
        if value is None:
            raise ValueError("must not be null")
        return value


if TYPE_CHECKING:
    # The two models are built from SETTING_FIELDS at import; the type checker sees them as the
    # classes they are, without their fields (it cannot read a table of keys).
    class UserSettings(BaseModel):
        pass

    class SettingsUpdate(_SettingsUpdateBase):
        pass
else:
    UserSettings = create_model(
        "UserSettings",
        __config__=ConfigDict(populate_by_name=True, extra="ignore"),
        **{_attribute(key): (kind, Field(default, alias=key)) for key, (kind, default) in SETTING_FIELDS.items()},
    )

    SettingsUpdate = create_model(
        "SettingsUpdate",
        __base__=_SettingsUpdateBase,
        **{_attribute(key): (kind | None, Field(None, alias=key)) for key, (kind, _) in SETTING_FIELDS.items()},
    )


class SettingsBody(SettingsUpdate):
    """The body of save-settings: SettingsUpdate, with at least one setting (the route answers 400
    "Required parameters missing" to none); an account file's settings may be empty."""

    model_config = ConfigDict(json_schema_extra=_save_settings_schema)


def unwrap_settings_body(body: Any) -> Any:
    """The body is the flat settings object or the same object as `{"settings": {...}}`."""
    if isinstance(body, dict) and set(body) == {"settings"} and isinstance(body["settings"], dict):
        return body["settings"]
    return body


def settings_with_defaults(stored: dict[str, Any] | None) -> dict[str, Any]:
    """All keys, defaults filled in. A stored value that is no longer valid (edited by hand,
    or from an older version) falls back to its default instead of breaking every answer."""
    values = {}
    for key, value in (stored or {}).items():
        if key in SETTING_FIELDS:
            try:
                UserSettings.model_validate({key: value})
            except ValueError:
                continue
            values[key] = value
    return UserSettings.model_validate(values).model_dump(by_alias=True)
