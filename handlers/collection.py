"""The volumes a user owns: add, change, remove (or toggle), list, and statistics."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from auth.clock import utc_now
from auth.personal_tokens import READ, WRITE
from handlers.lists import ListHandler, list_operations
from handlers.schemas.collection import (
    CollectionAddBody,
    CollectionEntry,
    CollectionListPage,
    CollectionQuery,
    CollectionStatistics,
    CollectionToggled,
    CollectionUpdateBody,
    CollectionVolume,
    ItemAdded,
    StatsQuery,
    ToggleQuery,
    cents,
    money,
)
from handlers.series_scope import CATALOG_ID
from languages import requested_language
from storage.collection import CollectionRequest, CollectionStats, CollectionStore
from storage.outcome import WriteOutcome
from storage.records import CollectionItemRecord, VolumeRecord
from storage.session_reads import CollectionStatsRead
from web.base import ApiHandler
from web.conditional import require_done, tag_of_answer
from web.errors import MISSING_PARAMETERS, ApiError
from web.idempotency import idempotent
from web.openapi import Operation, PathParameter, Route, answer_field
from web.reads import CatalogDocument, Computed, WholeList, reads
from web.same_origin import same_origin_only
from web.session import AuthenticatedUser

ITEM_NOT_FOUND = "Collection item not found"
# Any other text is just an id that no item has: 404, never a hint of whose it is.
ITEM_ID = PathParameter({"type": "string", "maxLength": 64}, (404, ITEM_NOT_FOUND))
_TAGS = ("collection",)
VOLUME_NOT_FOUND = "Volume not found"
VOLUME_OWNED = "Volume already in collection"
ITEM_UPDATED = "Collection item updated successfully"
ITEM_DELETED = "Collection item deleted successfully"
COLLECTION_TOGGLED = "Collection Status updated"
TOGGLE_FAILED = "Could not update collection status"


class CollectionHandler(ApiHandler):
    @property
    def collection(self) -> CollectionStore:
        return self.services.collection

    def item_id(self) -> str:
        return self.path_parameter("id")

    async def volume_to_add(self, user: AuthenticatedUser, client: int | None = None) -> VolumeRecord:
        """The path's volume, as the session query brought it, if the reader may have it: 404
        "Volume not found" for an id nothing has, for a volume of another `client` (when one is
        given), and for an 18+ volume (or one of an 18+ series) when the reader does not show 18+,
        as the catalog hides it (an answer never tells that an 18+ title exists). Adding by id and
        by toggle answer alike."""
        volume = self.brought.catalog_document(VolumeRecord, VOLUME_NOT_FOUND)
        if (client is not None and volume.client != client) or \
                (not user.shows_nsfw18 and await self.collection.is_18_plus(volume)):
            raise ApiError(404, VOLUME_NOT_FOUND)
        return volume

    async def unchanged_item(self, user_id: str, item_id: str) -> CollectionItemRecord | None:
        """With If-Match, the item, which the write must find unchanged (see `unchanged_entry`). No
        route answers one item: its tag is the `etag` the collection list shows of it."""
        if self.if_match() is None:
            return None
        return self.unchanged_entry(await self.collection.item(user_id, item_id), CollectionEntry.of, ITEM_NOT_FOUND)


def item_tag(item: CollectionItemRecord) -> str:
    """An item's tag, as the collection list shows it (no route answers one item): the tag of what
    the list shows of it, the one If-Match of its update and delete is compared with."""
    return tag_of_answer(CollectionEntry.of(item))


class AddItemHandler(CollectionHandler):
    api = {"post": Operation(scope=WRITE, summary="Add a volume to the collection", request=CollectionAddBody,
                             request_required=False, response=ItemAdded, tags=_TAGS,
                             description="An 18+ volume, or a volume of an 18+ series, is 404 like an id nothing "
                                         "has for a reader who does not show 18+ (as the catalog and the toggle "
                                         "answer).",
                             responses={400: MISSING_PARAMETERS, 404: VOLUME_NOT_FOUND,
                                        409: VOLUME_OWNED},
                             links={"update": ("post /user/collection/update/{id}", answer_field("item_id")),
                                    "delete": ("delete /user/collection/delete/{id}", answer_field("item_id"))})}

    @idempotent
    @reads(CatalogDocument("volumes"))
    async def post(self, id: str) -> None:
        self.path_parameter("id")
        body = await self.parse_body(CollectionAddBody)
        user = self.require_user()
        volume = await self.volume_to_add(user)
        outcome, item_id = await self.collection.add(user.id, volume, cents(body.price), body.date, utc_now())
        if outcome is WriteOutcome.CONFLICT:
            raise ApiError(409, VOLUME_OWNED)
        self.write_json({"data": "Collection item added successfully", "code": 200, "item_id": item_id})


class UpdateItemHandler(CollectionHandler):
    api = {"post": Operation(
        scope=WRITE, summary="Change an item's price and purchase date", request=CollectionUpdateBody,
                             tags=_TAGS, if_match=True, responses={200: ITEM_UPDATED,
                                                                   400: MISSING_PARAMETERS, 404: ITEM_NOT_FOUND})}

    @idempotent
    async def post(self, id: str) -> None:
        user_id = self.require_user().id
        item_id = self.item_id()
        body = await self.parse_body(CollectionUpdateBody)
        unchanged = await self.unchanged_item(user_id, item_id)
        require_done(await self.collection.update(user_id, item_id, cents(body.price), body.date, utc_now(),
                                                  unchanged), ITEM_NOT_FOUND)
        self.write_message(200, ITEM_UPDATED)


class DeleteItemHandler(CollectionHandler):
    api = {"delete": Operation(scope=WRITE, summary="Remove an item from the collection", tags=_TAGS, if_match=True,
                               responses={200: ITEM_DELETED, 400: MISSING_PARAMETERS,
                                          404: ITEM_NOT_FOUND})}

    @idempotent
    async def delete(self, id: str) -> None:
        user_id = self.require_user().id
        item_id = self.item_id()
        require_done(await self.collection.delete(user_id, item_id, utc_now(),
                                                  await self.unchanged_item(user_id, item_id)), ITEM_NOT_FOUND)
        self.write_message(200, ITEM_DELETED)


class ToggleItemHandler(CollectionHandler):
    api = {"get": Operation(scope=WRITE,
        summary="Add a volume to the collection, or remove it if it is there", query=ToggleQuery,
        response=CollectionToggled, tags=_TAGS,
        responses={400: MISSING_PARAMETERS, 404: VOLUME_NOT_FOUND, 500: TOGGLE_FAILED},
        description="The published web client's toggle: the same write as `POST /user/collection/add/{id}` (without "
                    "price or date) when the volume is not in the collection, as `DELETE "
                    "/user/collection/delete/{id}` when it is. Not idempotent: sent twice, it adds and then removes. "
                    "`in_collection` says which state it left; to retry safely, use those two routes (with an "
                    "`Idempotency-Key`). A volume of another `client`, and an 18+ volume or one of an 18+ series "
                    "for a reader who does not show 18+, is 404 like an id nothing has.")}

    @same_origin_only
    @reads(CatalogDocument("volumes"))
    async def get(self, id: str) -> None:
        self.path_parameter("id")
        query = self.query_parameters(ToggleQuery)
        user = self.require_user()
        volume = await self.volume_to_add(user, query.client)
        toggled = await self.collection.toggle(user.id, volume, utc_now())
        if toggled is None:
            raise ApiError(500, TOGGLE_FAILED)
        self.write_model(CollectionToggled(data=COLLECTION_TOGGLED, code=200, in_collection=toggled.in_collection,
                                           item_id=toggled.item_id))


class CollectionListHandler(ListHandler):
    query_model = CollectionQuery
    api = list_operations(CollectionQuery, "The user's collection", CollectionListPage, {400: MISSING_PARAMETERS},
                          _TAGS, body_required=True)
    # Ordered and searched from the items, read with the session.
    get = reads(WholeList("collection"))(ListHandler.get)
    post = reads(WholeList("collection"))(ListHandler.post)

    async def answer(self, query: CollectionQuery) -> None:
        request = collection_request(query)
        page = await self.services.collection.page(self.require_user().id, request, self.brought.list())
        volumes = [CollectionVolume.of(item, volume, series, request.language, item_tag(item))
                   for item, volume, series in page.items]
        self.write_model(CollectionListPage.of(volumes, page.total, query.offset))


def collection_request(query: CollectionQuery) -> CollectionRequest:
    """What the store needs of a collection query (the owner's list and a public one)."""
    return CollectionRequest(client=query.client, descending=query.order == "name-desc", offset=query.offset,
                             limit=query.page_size, search=query.search_text,
                             language=requested_language(query.user_lang))


def stats_for_arguments(arguments: Mapping[str, str]) -> CollectionStatsRead | None:
    """The figures for a valid `client`; None otherwise (the verb answers 400)."""
    try:
        return CollectionStatsRead(StatsQuery.model_validate(arguments).client)
    except ValidationError:
        return None


class CollectionStatsHandler(CollectionHandler):
    api = {"get": Operation(scope=READ, summary="Item count, money spent and purchase dates", query=StatsQuery,
                            response=CollectionStatistics, tags=_TAGS, responses={400: MISSING_PARAMETERS})}

    @reads(Computed(stats_for_arguments))
    async def get(self) -> None:
        await self.list_parameters(StatsQuery)  # 400 for bad parameters, before the figures are read
        stats = self.brought.figures_of(CollectionStats)
        self.write_model(CollectionStatistics(total_items=stats.total_items, total_spent=money(stats.total_cents) or 0,
                                              first_buy=stats.first_buy, last_buy=stats.last_buy))


routes = [
    Route("/user/collection", CollectionListHandler),
    Route("/user/collection/stats/general", CollectionStatsHandler),
    Route("/user/collection/add/{id}", AddItemHandler, {"id": CATALOG_ID}),
    Route("/user/collection/update/{id}", UpdateItemHandler, {"id": ITEM_ID}),
    Route("/user/collection/delete/{id}", DeleteItemHandler, {"id": ITEM_ID}),
    Route("/volumes/toggle-collection/id/{id}", ToggleItemHandler, {"id": CATALOG_ID}),
]
