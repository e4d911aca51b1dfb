"""The signed-in user's own profile with the overview figures a profile view shows: `GET /user/me`."""

from __future__ import annotations

from collections.abc import Mapping

from auth.personal_tokens import READ
from handlers.schemas.profile import OwnProfile
from storage.profile_figures import EntryCounts
from storage.session_reads import EntryCountsRead
from web.base import ApiHandler
from web.openapi import Operation, Route
from web.reads import Computed, reads


def counts_for_arguments(arguments: Mapping[str, str]) -> EntryCountsRead:
    return EntryCountsRead()  # no parameter changes what is counted


class OwnProfileHandler(ApiHandler):
    api = {"get": Operation(
        scope=READ, summary="The signed-in user (as /auth/me has it), the profile image's version, and how "
                                    "many entries their reading list and collection hold",
                            response=OwnProfile, tags=("profiles",))}

    # Counted by the database in the session query: one round trip, and no list travels.
    @reads(Computed(counts_for_arguments))
    async def get(self) -> None:
        self.write_model(OwnProfile.of_user(self.require_user().record, self.brought.figures_of(EntryCounts)))


routes = [Route("/user/me", OwnProfileHandler)]
