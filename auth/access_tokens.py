"""Access tokens: the short-lived signed JWT that MangaDB's clients send as `Authorization: Bearer`.

A token names a user and one of their sessions, and proves only that this service issued it in
the last 15 minutes. It is no session of its own: every request it authenticates is checked
against the session it names, in the read that authenticates a cookie, so ending the session
ends its tokens at once. The `typ` claim keeps it apart from any other token signed with a key of
the service (a personal token is never taken for one, nor one for it).

Keys: the first signs, and every one verifies, so a new key can be put first and the old one
kept behind it for 15 minutes (the longest a token it signed lives), then dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from auth.tokens import USER_ID_SHAPE

ACCESS_TOKEN_LIFETIME = timedelta(minutes=15)
ACCESS_TOKEN_TYPE = "access"
_ALGORITHM = "HS256"
# Ours are about 250 characters; a longer header is not one of ours and is not decoded.
MAX_ACCESS_TOKEN_LENGTH = 512
_REQUIRED_CLAIMS = ["exp", "iat", "sub", "sid", "typ"]
_SESSION_ID_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A JWT anywhere in a text (what the log redaction looks for): three base64url parts, the first
# two JSON objects (`{"` encodes as `eyJ`). Group 1 is what precedes the token on its run of
# base64url characters, to be kept. Tried only where such a run begins, then never backtracked
# into: a plain `eyJ[…]*\.eyJ…` is tried again from every `eyJ` of a run to its end, and a
# 60 KB request path of `eyJeyJ…` (which the access log line holds) took a second to redact.
JWT_SHAPE = re.compile(r"(?<![A-Za-z0-9_-])(?>([A-Za-z0-9_-]*?)eyJ)[A-Za-z0-9_-]*+\.eyJ[A-Za-z0-9_-]*+\.[A-Za-z0-9_-]*+")
BEARER_PREFIX = "bearer "


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str


class AccessTokens:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ValueError("an access token needs a key")
        self._keys = list(keys)

    def issue(self, user_id: str, session_id: str, now: datetime) -> str:
        claims = {"sub": user_id, "sid": session_id, "typ": ACCESS_TOKEN_TYPE,
                  "iat": int(now.timestamp()), "exp": int((now + ACCESS_TOKEN_LIFETIME).timestamp())}
        return jwt.encode(claims, self._keys[0], algorithm=_ALGORITHM)

    def verify(self, token: str, now: datetime) -> AccessClaims | None:
        """The claims of a token this service signed with one of its keys and that has not
        expired at `now`; None for anything else. Local: no database is asked."""
        if len(token) > MAX_ACCESS_TOKEN_LENGTH:
            return None
        for key in self._keys:
            try:
                # Only HS256 is accepted, whatever the token's header says (no `none`, no key confusion).
                claims = jwt.decode(token, key, algorithms=[_ALGORITHM], leeway=0,
                                    options={"require": _REQUIRED_CLAIMS, "verify_iat": False,
                                             "verify_exp": False})
            except jwt.InvalidSignatureError:
                continue  # perhaps signed with the next key
            except jwt.PyJWTError:
                return None
            return _claims_of(claims, now)
        return None


def _claims_of(claims: dict[str, object], now: datetime) -> AccessClaims | None:
    # Expiry is checked against the service's one clock (auth.clock), which tests can move.
    expiry, user_id, session_id = claims.get("exp"), claims.get("sub"), claims.get("sid")
    if claims.get("typ") != ACCESS_TOKEN_TYPE or not isinstance(expiry, int) or expiry <= now.timestamp():
        return None
    if not isinstance(user_id, str) or not USER_ID_SHAPE.fullmatch(user_id):
        return None
    if not isinstance(session_id, str) or not _SESSION_ID_SHAPE.fullmatch(session_id):
        return None
    return AccessClaims(user_id, session_id)


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when there is no such header."""
    if header is None or header[:len(BEARER_PREFIX)].lower() != BEARER_PREFIX:
        return None
    return header[len(BEARER_PREFIX):].strip()
