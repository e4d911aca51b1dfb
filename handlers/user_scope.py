"""How a user id in a path is declared (`/users/{id}/save-settings`, the profile image and account
routes): OpenAPI publishes the pattern, and the route refuses any other text before it reaches the
database, answering as it answers an id that names no user."""

from __future__ import annotations

from dataclasses import replace

from auth.tokens import USER_ID_SHAPE
from web.errors import FORBIDDEN, USER_NOT_FOUND
from web.openapi import PathParameter

USER_ID = PathParameter({"type": "string", "pattern": f"^{USER_ID_SHAPE.pattern}$"}, (404, USER_NOT_FOUND))
# On a route that takes only the caller's own id, any other text is another user's: forbidden.
OWN_USER_ID = replace(USER_ID, refusal=(403, FORBIDDEN))
