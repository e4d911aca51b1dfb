"""What handlers depend on, built once by `make_app` and handed to each through `initialize`."""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from auth.access_tokens import AccessTokens
from auth.passwords import Passwords
from imaging import MAX_DECODES_AT_ONCE
from settings import Settings
from storage.account_export import AccountExport
from storage.account_import import AccountImport
from storage.account_removal import AccountRemoval
from storage.avatars import AvatarStore
from storage.catalog_keys import CatalogKeys
from storage.catalog_pages import CatalogPages
from storage.changes import ChangeFeed
from storage.collection import CollectionStore
from storage.database import Database
from storage.idempotency import IdempotencyStore
from storage.public_profiles import PublicProfiles
from storage.rate_limits import SharedWindowLimit
from storage.ratings import RatingStore
from storage.reading import ReadingStatusStore
from storage.series_browse import SeriesBrowse
from storage.status_import import SeriesMatcher, StatusImport
from storage.supervisor import EmbeddedSupervisor
from storage.user_directory import UserDirectory
from storage.users import UserStore
from web.service_metrics import ServiceMetrics

# Large request bodies parsed (or imports merged) at once; each may take a few times its route's
# body limit.
INPUTS_AT_ONCE = 2


def input_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=INPUTS_AT_ONCE, thread_name_prefix="input")


class InflightRequests:
    """Counts requests being handled, so that shutdown can wait for them to finish."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def started(self) -> None:
        self.count += 1
        self._idle.clear()

    def finished(self) -> None:
        self.count -= 1
        if self.count <= 0:
            self.count = 0
            self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
            return True
        except asyncio.TimeoutError:
            return False


@dataclass
class Services:
    """What handlers depend on, handed to each through `initialize`."""

    settings: Settings
    db: Database
    users: UserStore
    # The catalog's sort and search keys, kept in this process (see storage.catalog_keys).
    catalog_keys: CatalogKeys
    # The stores, built once at start: each holds only its collections.
    statuses: ReadingStatusStore
    ratings: RatingStore
    collection: CollectionStore
    avatars: AvatarStore
    account_removal: AccountRemoval
    account_export: AccountExport
    account_import: AccountImport
    status_import: StatusImport
    series_matcher: SeriesMatcher
    public_profiles: PublicProfiles
    # The users with a public profile, to browse (see storage.user_directory).
    user_directory: UserDirectory
    catalog_pages: CatalogPages
    # The catalog's list orders, filters and search words, kept in this process (see storage.series_browse).
    series_browse: SeriesBrowse
    passwords: Passwords
    # Parsing and validating large request bodies (ApiHandler.off_the_loop), and the merges of
    # imports and undos: a few at once, so that large inputs queue instead of multiplying memory.
    input_pool: ThreadPoolExecutor
    # Shared by every process, in the database (see storage.rate_limits).
    login_attempts: SharedWindowLimit  # per address and username
    address_login_attempts: SharedWindowLimit  # per address, whatever the username
    registrations: SharedWindowLimit
    idempotency: IdempotencyStore
    changes: ChangeFeed  # the change feed of each user's own data (GET /user/changes)
    # The HMAC key of the requests' fingerprints that Idempotency-Key keeps (settings: IDEMPOTENCY_SECRET).
    fingerprint_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    # Signs and verifies the accessToken (settings: ACCESS_TOKEN_SECRET).
    access_tokens: AccessTokens = field(default_factory=lambda: AccessTokens([secrets.token_bytes(32)]))
    # What keeps the embedded database running; None on a MongoDB named by MONGODB_URI.
    supervisor: EmbeddedSupervisor | None = None
    inflight: InflightRequests = field(default_factory=InflightRequests)
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    # Set once shutdown begins: requests that arrive after it answer 503.
    stopping: bool = False
    # Image decoding and resizing: a fixed number at once (each may take up to about 100 MB), so
    # uploads queue instead of multiplying the memory.
    image_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=MAX_DECODES_AT_ONCE, thread_name_prefix="images"))

    def __post_init__(self) -> None:
        self.metrics.in_flight.set_function(lambda: self.inflight.count)

    @property
    def database_available(self) -> bool:
        """False while the embedded database is known to be down: answer 503 at once instead
        of waiting for the driver's server selection to give up."""
        return self.supervisor is None or self.supervisor.available
