"""Public profiles: `GET /users` (the users who have one, to browse and search),
`GET /users/{slug}` (the user and the statistics of their public entries),
`GET /users/{slug}/reading-history` (their public entries, as the owner's list routes answer)
and `GET /users/{slug}/collection` (when its owner set `collection-visibility` to `public`; 403
"This collection is private" otherwise).

Every user who is not banned has a public profile, whatever their settings: what they keep
private is their entries (each status's `visibility`) and their collection, never that they exist.
`GET /users` lists exactly those users, with what their profile shows of them.

No session is needed. A private entry is invisible in every way (not listed, not counted, not
searchable); a banned user has no profile; 18+ series are shown only to a signed-in,
age-verified viewer whose `nsfw-mode` shows them, and only then is the viewer's session read.
Answers may be cached: `Cache-Control: public, max-age=60` (private when it depends on the
viewer), `Vary: Cookie`, and an ETag of the answer, so `If-None-Match` gives 304. The viewer's
session is only read: these answers never set or clear a cookie."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel

from auth.passwords import USERNAME_PATTERN
from handlers.collection import collection_request
from handlers.reading import history_request
from handlers.schemas.collection import CollectionQuery
from handlers.schemas.common import FieldError
from handlers.schemas.public_profiles import (
    ListedUser,
    PublicCollectionPage,
    PublicCollectionVolume,
    PublicHistoryItem,
    PublicHistoryPage,
    PublicProfile,
    PublicUser,
    UsersPage,
    UsersQuery,
)
from handlers.schemas.reading import ReadingHistoryQuery
from handlers.schemas.reading_stats import PublicStats
from handlers.schemas.settings import settings_with_defaults
from storage.public_profiles import PublicLists
from storage.user_directory import DirectoryOrder, DirectoryRequest, SearchTooBroad
from web.base import ApiHandler
from web.errors import INVALID_PARAMETERS, USER_NOT_FOUND, ApiError
from web.openapi import Operation, PathParameter, Route

_TAGS = ("profiles",)
# A username, in any case (the profile's own `slug` is the lower-cased one); any other text names
# nobody and is not worth a query. Empty too: `/users/` is nobody's profile.
_SLUG = PathParameter({"type": "string", "pattern": USERNAME_PATTERN.pattern}, (404, USER_NOT_FOUND))
MAX_AGE_S = 60
# The Cache-Control of a public page, as the document says it (write_cacheable sets it).
PUBLIC_CACHE = (f"`public, max-age={MAX_AGE_S}`, or `private, max-age={MAX_AGE_S}` when the answer depends on "
                "the viewer (an age-verified viewer who shows 18+ entries sees them); `Vary: Cookie, "
                "Authorization` either way.")
COLLECTION_SHARED = "public"
# A collection its owner keeps to themself: 403, not 404, since the profile route already tells
# anyone that the user exists (hiding it here would hide nothing and leave a frontend guessing).
COLLECTION_PRIVATE = "This collection is private"
_ORDERS = {"name": DirectoryOrder.NAME, "registered": DirectoryOrder.REGISTERED}


class PublicHandler(ApiHandler):
    requires_auth = False

    async def lists(self, *, collection: bool = False) -> tuple[PublicLists, bool]:
        """What this viewer may see of the path's user, and whether that depends on who the viewer is."""
        slug = self.path_parameter("slug", required=False)
        found = await self.services.public_profiles.find(slug.lower(), collection=collection)
        if found is None:
            raise ApiError(404, USER_NOT_FOUND)
        if found.has_nsfw18 and await self.viewer_shows_nsfw18():
            return found, True
        return found.without_nsfw18(), False

    async def viewer_shows_nsfw18(self) -> bool:
        if not self.offers_credential():
            return False
        try:
            # Read only: a cookie cleared or refreshed here would ride on a public, cacheable
            # answer, and only on the answers of profiles with 18+ entries, which tells they have some.
            await self.authenticate(read_only=True)
        except ApiError:
            return False  # an expired or forged session views as anyone does
        return self.require_user().shows_nsfw18

    def write_cacheable(self, answer: BaseModel, viewer_dependent: bool) -> None:
        body = answer.model_dump_json(by_alias=True).encode()
        tag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        self.set_header("Cache-Control", f"{'private' if viewer_dependent else 'public'}, max-age={MAX_AGE_S}")
        # On every answer, not only those that depend on the viewer: which ones do would tell
        # which profiles have 18+ entries. A cache keeps one copy for all who send no cookie.
        self.add_header("Vary", "Cookie")
        self.add_header("Vary", "Authorization")
        self.set_header("ETag", tag)
        if self.client_has(tag):
            self.set_status(304)
            self.finish()
            return
        self.finish(body)


class UsersHandler(PublicHandler):
    api = {"get": Operation(summary="The users with a public profile (every user who is not banned), by name or by "
                                    "registration, searched by the beginning of the username",
                            query=UsersQuery, response=UsersPage, auth=False, etag=True, cache_control=PUBLIC_CACHE, tags=_TAGS,
                            responses={400: INVALID_PARAMETERS})}

    async def get(self) -> None:
        query = await self.list_parameters(UsersQuery)
        order, _, direction = query.order.partition("-")
        request = DirectoryRequest(order=_ORDERS[order], descending=direction == "desc", offset=query.offset,
                                   limit=query.page_size, search=query.search_text)
        try:
            found = await self.services.user_directory.page(request)
        except SearchTooBroad as broad:
            # Ordered by registration a search reads every user it matches (names are not in
            # that order): a longer one matches fewer.
            message = (f"matches {broad.matches} users; ordered by registration a search may match at most "
                       f"{broad.limit} (ordered by name, any search is taken)")
            raise ApiError(400, INVALID_PARAMETERS, [FieldError(field="search", message=message)]) from None
        users = [ListedUser.of_listed(user) for user in found.users]
        # The same for every viewer: no session is read.
        self.write_cacheable(UsersPage.of(users, found.total, query.offset), viewer_dependent=False)


class ProfileHandler(PublicHandler):
    api = {"get": Operation(summary="A user's public profile: who they are and the statistics of their public "
                                    "entries", response=PublicProfile, auth=False, etag=True, cache_control=PUBLIC_CACHE, tags=_TAGS,
                            responses={404: USER_NOT_FOUND})}

    async def get(self, slug: str) -> None:
        lists, viewer_dependent = await self.lists()
        stats = await self.services.public_profiles.stats(lists, self.services.input_pool)
        self.write_cacheable(PublicProfile(user=PublicUser.of(lists.user), stats=PublicStats.of(stats)),
                             viewer_dependent)


class PublicHistoryHandler(PublicHandler):
    api = {"get": Operation(summary="A user's public reading entries, with the parameters of the owner's list",
                            query=ReadingHistoryQuery, response=PublicHistoryPage, auth=False, etag=True, cache_control=PUBLIC_CACHE, tags=_TAGS,
                            responses={400: INVALID_PARAMETERS, 404: USER_NOT_FOUND})}

    async def get(self, slug: str) -> None:
        query = await self.list_parameters(ReadingHistoryQuery)
        lists, viewer_dependent = await self.lists()
        request = history_request(query)
        page = await self.services.statuses.history(lists.user.id, request, lists.statuses)
        # viewer_dependent: the viewer was read and shows 18+ (else 18+ entries were left out).
        items = [PublicHistoryItem.of(status, series, lists.user.id, request.language, viewer_dependent)
                 for status, series in page.entries]
        self.write_cacheable(PublicHistoryPage.of(items, page.total, query.offset), viewer_dependent)


class PublicCollectionHandler(PublicHandler):
    api = {"get": Operation(summary="A user's collection, when they share it (setting collection-visibility); "
                                    "never prices", query=CollectionQuery, response=PublicCollectionPage,
                            auth=False, etag=True, cache_control=PUBLIC_CACHE, tags=_TAGS,
                            responses={400: INVALID_PARAMETERS, 403: COLLECTION_PRIVATE, 404: USER_NOT_FOUND})}

    async def get(self, slug: str) -> None:
        query = await self.list_parameters(CollectionQuery)
        lists, viewer_dependent = await self.lists(collection=True)
        if settings_with_defaults(lists.user.settings)["collection-visibility"] != COLLECTION_SHARED:
            raise ApiError(403, COLLECTION_PRIVATE)
        request = collection_request(query)
        page = await self.services.collection.page(lists.user.id, request, lists.collection)
        volumes = [PublicCollectionVolume.of(item, volume, series, request.language)
                   for item, volume, series in page.items]
        self.write_cacheable(PublicCollectionPage.of(volumes, page.total, query.offset), viewer_dependent)


routes = [
    Route("/users", UsersHandler),
    Route("/users/{slug}", ProfileHandler, {"slug": _SLUG}),
    Route("/users/{slug}/reading-history", PublicHistoryHandler, {"slug": _SLUG}),
    Route("/users/{slug}/collection", PublicCollectionHandler, {"slug": _SLUG}),
]
