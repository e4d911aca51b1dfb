"""The one way a list query pages on the server: a `$facet` with the page and the total count."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.collection import AsyncCollection


def entries_of(user_id: str, list_field: str) -> list[dict[str, Any]]:
    """Stages that turn one user's embedded list into a stream of its entries."""
    return [
        {"$match": {"_id": user_id}},
        {"$project": {"_id": 0, list_field: 1}},
        {"$unwind": f"${list_field}"},
        {"$replaceRoot": {"newRoot": f"${list_field}"}},
    ]


def page_stage(offset: int, limit: int, then: list[dict[str, Any]] | None = None,
               ordered_first: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`then` runs on the page only (joins that the sort did not need); `ordered_first` runs on
    the items only, after the count (stages that order, or drop what the count still counts)."""
    # $limit must be positive; a zero limit still runs the count and answers no items.
    items = [*(ordered_first or []), {"$skip": offset}, {"$limit": max(limit, 1)}, *(then or [])]
    return {"$facet": {"items": items, "total": [{"$count": "n"}]}}


async def run_paged(collection: AsyncCollection, pipeline: list[dict[str, Any]],
                    limit: int) -> tuple[list[dict[str, Any]], int]:
    """Runs a pipeline that ends with `page_stage`; returns (items, total)."""
    result = await (await collection.aggregate(pipeline)).to_list(length=1)
    facet = result[0] if result else {"items": [], "total": []}
    # SecantusDB answers [{"n": 0}] and mongod [] for an empty count: read both as 0.
    total = facet["total"][0]["n"] if facet["total"] else 0
    return facet["items"][:limit], total
