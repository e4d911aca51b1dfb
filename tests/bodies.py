"""Request bodies many tests send, in one place."""

from __future__ import annotations

from typing import Any

# A valid reading status for a series of client 1 (the demo and test catalogs' client).
STATUS: dict[str, Any] = {"visibility": "public", "progressType": "volumes", "progress": 3, "status": "started",
                          "priority": "high", "client": 1}
