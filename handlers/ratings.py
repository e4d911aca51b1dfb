"""A user's rating of a series, which moves the series' average."""

from __future__ import annotations

from auth.clock import utc_now
from auth.permissions import RATE_SERIES
from auth.personal_tokens import READ, WRITE
from handlers.schemas.ratings import RatingBody, SeriesRating
from handlers.series_scope import CATALOG_ID, HIDDEN_18_PLUS_SERIES, SERIES_NOT_FOUND, SeriesHandler
from storage.outcome import WriteOutcome
from storage.ratings import RatingStore
from storage.records import RatingRecord
from web.conditional import require_done
from web.errors import FORBIDDEN, MISSING_PARAMETERS, ApiError
from web.idempotency import idempotent
from web.openapi import SAME_ID, Operation, Route
from web.reads import CatalogDocument, OwnEntry, reads

RATING_MISSING = "Rating does not exist for this series"
RATING_EXISTS = "Rating already exists for this series"
RATING_ADDED = "Rating added successfully"
RATING_UPDATED = "Rating updated successfully"
RATING_DELETED = "Rating deleted successfully"
_TAGS = ("ratings",)


class RatingHandler(SeriesHandler):
    @property
    def ratings(self) -> RatingStore:
        return self.services.ratings

    def own_rating(self) -> float | None:
        """The user's rating as the session query read it: what a change compares against."""
        entry = self.brought.own_entry(RatingRecord)
        return entry.rating if entry else None

    def unchanged_rating(self, user_id: str) -> RatingRecord | None:
        """With If-Match, the rating the session query read, which the write must find unchanged
        (see `unchanged_entry`): no read of its own."""
        return self.unchanged_entry(self.brought.own_entry(RatingRecord),
                                    lambda rating: SeriesRating.of(rating, user_id), RATING_MISSING)


class RatingOfSeriesHandler(RatingHandler):
    api = {"get": Operation(scope=READ, summary="The user's rating of a series, or null", response=SeriesRating,
                            response_or_null=True, tags=_TAGS, responses={400: MISSING_PARAMETERS})}

    @reads(OwnEntry("ratings"))
    async def get(self, id: str) -> None:
        self.write_own_entry(RatingRecord, SeriesRating.of)


class AddRatingHandler(RatingHandler):
    api = {"post": Operation(
        scope=WRITE, summary="Rate a series", request=RatingBody, tags=_TAGS, permission=RATE_SERIES,
                             description=HIDDEN_18_PLUS_SERIES,
                             responses={200: RATING_ADDED, 400: MISSING_PARAMETERS, 403: FORBIDDEN,
                                        404: SERIES_NOT_FOUND, 409: RATING_EXISTS},
                             links={"read": ("get /user/series-rating/{id}", SAME_ID),
                                    "update": ("post /user/series-rating/update/{id}", SAME_ID),
                                    "delete": ("delete /user/series-rating/delete/{id}", SAME_ID)})}

    @idempotent
    @reads(CatalogDocument("series"))
    async def post(self, id: str) -> None:
        user = self.require_user()
        series_id = self.series_id()
        body = await self.parse_body(RatingBody)
        self.series_to_add()
        if await self.ratings.add(user.id, series_id, body.rating, utc_now()) is WriteOutcome.CONFLICT:
            raise ApiError(409, RATING_EXISTS)
        self.write_message(200, RATING_ADDED)


class UpdateRatingHandler(RatingHandler):
    api = {"post": Operation(
        scope=WRITE, summary="Change a rating", request=RatingBody, tags=_TAGS, permission=RATE_SERIES,
                             if_match=True, responses={200: RATING_UPDATED, 400: MISSING_PARAMETERS, 403: FORBIDDEN,
                                                       404: RATING_MISSING})}

    @idempotent
    @reads(OwnEntry("ratings"))
    async def post(self, id: str) -> None:
        user = self.require_user()
        series_id = self.series_id()
        body = await self.parse_body(RatingBody)
        outcome = await self.ratings.update(user.id, series_id, body.rating, utc_now(), self.own_rating(),
                                            self.unchanged_rating(user.id), user.record.last_change)
        require_done(outcome, RATING_MISSING)
        self.write_message(200, RATING_UPDATED)


class DeleteRatingHandler(RatingHandler):
    api = {"delete": Operation(scope=WRITE, summary="Remove a rating", tags=_TAGS, permission=RATE_SERIES,
                               if_match=True, responses={200: RATING_DELETED, 400: MISSING_PARAMETERS,
                                                         403: FORBIDDEN, 404: RATING_MISSING})}

    @idempotent
    @reads(OwnEntry("ratings"))
    async def delete(self, id: str) -> None:
        user = self.require_user()
        series_id = self.series_id()
        outcome = await self.ratings.delete(user.id, series_id, self.own_rating(), utc_now(),
                                            self.unchanged_rating(user.id), user.record.last_change)
        require_done(outcome, RATING_MISSING)
        self.write_message(200, RATING_DELETED)


routes = [
    Route("/user/series-rating/id/{id}", RatingOfSeriesHandler, {"id": CATALOG_ID}),
    Route("/user/series-rating/add/{id}", AddRatingHandler, {"id": CATALOG_ID}),
    Route("/user/series-rating/update/{id}", UpdateRatingHandler, {"id": CATALOG_ID}),
    Route("/user/series-rating/delete/{id}", DeleteRatingHandler, {"id": CATALOG_ID}),
    Route("/user/series-rating/{id}", RatingOfSeriesHandler, {"id": CATALOG_ID}),
]
