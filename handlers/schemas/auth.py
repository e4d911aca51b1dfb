"""Accounts and sessions: request bodies and the User object."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool, StrictStr

from auth.passwords import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, USERNAME_PATTERN
from auth.permissions import permissions_for
from auth.personal_tokens import MAX_LIFETIME_DAYS, MAX_NAME_LENGTH, SCOPES
from handlers.schemas.common import JsonInt, RequestModel, one_of
from handlers.schemas.settings import UserSettings, settings_with_defaults
from storage.records import PersonalTokenRecord, SessionRecord, UserRecord

# The rules a username and a password follow, as the document publishes them. pydantic does not
# enforce them: the route does (auth.passwords), answering 422 with the rule, or 401 to a sign-in
# that no account could match.
Username = Annotated[StrictStr, Field(json_schema_extra={"pattern": USERNAME_PATTERN.pattern})]
Password = Annotated[StrictStr, Field(json_schema_extra={"minLength": PASSWORD_MIN_LENGTH,
                                                         "maxLength": PASSWORD_MAX_LENGTH})]


class Credentials(RequestModel):
    username: Username
    password: Password


class PasswordChange(RequestModel):
    current_password: Password
    new_password: Password


class PasswordConfirmation(RequestModel):
    password: Password


class LogoutRequest(RequestModel):
    all: StrictBool = False


class User(BaseModel):
    id: str
    username: str
    slug: str
    profile_image: str | None
    registered: datetime
    age_verified: bool
    roles: list[str]
    permissions: list[str]
    settings: UserSettings

    @classmethod
    def of(cls, user: UserRecord) -> User:
        return cls(id=user.id, username=user.username, slug=user.slug,
                   profile_image=avatar_url(user.id, user.avatar_version), registered=user.registered,
                   age_verified=user.age_verified, roles=list(user.roles), permissions=permissions_for(user.roles),
                   settings=UserSettings.model_validate(settings_with_defaults(user.settings)))


class SignedIn(BaseModel):
    """What login and me answer, as MangaDB does: an access token for `Authorization: Bearer`
    (valid 15 minutes) and the user."""

    access_token: str = Field(alias="accessToken")
    user: User

    @classmethod
    def of(cls, access_token: str, user: UserRecord) -> SignedIn:
        return cls(user=User.of(user), **{"accessToken": access_token})


class AccessTokenAnswer(BaseModel):
    """A new access token for the cookie's session (`POST /auth/refresh`)."""

    access_token: str = Field(alias="accessToken")

    @classmethod
    def of(cls, access_token: str) -> AccessTokenAnswer:
        return cls(**{"accessToken": access_token})


def avatar_url(user_id: str, version: int | None, resolution: str = "scaled") -> str | None:
    return None if version is None else f"/user/avatar/{user_id}/{resolution}?v={version}"


class SessionView(BaseModel):
    id: str  # opaque: never the token or its hash
    created: datetime
    last_seen: datetime
    current: bool
    user_agent: str | None
    address: str | None

    @classmethod
    def of(cls, session: SessionRecord) -> SessionView:
        return cls(id=session.id, created=session.created, last_seen=session.last_seen, current=session.current,
                   user_agent=session.user_agent, address=session.address)


class SessionList(BaseModel):
    sessions: list[SessionView]


Scope = Literal["read", "write"]  # auth.personal_tokens.SCOPES (a unit test keeps them equal)


class PersonalTokenRequest(RequestModel):
    """`write` implies `read`."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=len(SCOPES))]
    expires_in_days: Annotated[JsonInt, Field(ge=1, le=MAX_LIFETIME_DAYS)]


class PersonalTokenView(BaseModel):
    id: str  # opaque: never the token or its hash
    name: str
    scopes: list[Annotated[str, one_of(Scope)]]
    created: datetime
    last_used: datetime | None
    expires: datetime

    @classmethod
    def of(cls, token: PersonalTokenRecord) -> PersonalTokenView:
        return cls(id=token.id, name=token.name, scopes=list(token.scopes), created=token.created,
                   last_used=token.last_used, expires=token.expires)


class PersonalTokenCreated(BaseModel):
    """The only answer that shows the token: it is stored hashed and cannot be shown again."""

    id: str
    name: str
    scopes: list[Annotated[str, one_of(Scope)]]
    created: datetime
    expires: datetime
    token: str


class PersonalTokenList(BaseModel):
    tokens: list[PersonalTokenView]
