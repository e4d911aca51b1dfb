"""`python -m bench [NAME ...]` runs the named benchmarks, or all of them."""

from __future__ import annotations

import asyncio
import importlib
import sys

BENCHMARKS = ("reading_history", "avatars", "ratings", "scale_out")


def main(names: list[str]) -> int:
    for name in names or BENCHMARKS:
        if name not in BENCHMARKS:
            print(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
            return 2
        print(f"== {name}")
        module = importlib.import_module(f"bench.{name}")
        asyncio.run(module.main())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
