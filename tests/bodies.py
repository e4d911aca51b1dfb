"""Request bodies many tests send, in one place."""

from __future__ import annotations

from typing import Any

# A valid reading status for a series of client 1 (the demo and test catalogs' client).
STATUS: dict[str, Any] = {"visibility": "public", "progressType": "volumes", "progress": 3, "status": "started",
                          "priority": "high", "client": 1}
# The same as the document writes it: `progress_type`, the name the service answers (the spec's
# `progressType` above is taken too, beyond the document).
DOCUMENTED_STATUS: dict[str, Any] = {**{k: v for k, v in STATUS.items() if k != "progressType"},
                                     "progress_type": STATUS["progressType"]}
