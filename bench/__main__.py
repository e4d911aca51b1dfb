"""`python -m bench [NAME ...]` runs the named benchmarks, or all of them (those in ON_REQUEST only when named);
`python -m bench catalog-gen --help` writes a synthetic catalog file (bench.catalog_gen)."""

from __future__ import annotations

import asyncio
import importlib
import sys

BENCHMARKS = ("perf", "growth", "avatars", "ratings", "scale_out", "mal_import", "public")
ON_REQUEST = ("profile", "soak", "logins", "catalog_scale", "users")


def main(names: list[str]) -> int:
    if names[:1] == ["catalog-gen"]:  # a generator with its own options, not a benchmark
        from bench.catalog_gen import cli

        return cli(names[1:])
    for name in names or BENCHMARKS:
        if name not in BENCHMARKS + ON_REQUEST:
            print(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS + ON_REQUEST)}", file=sys.stderr)
            return 2
        print(f"== {name}")
        module = importlib.import_module(f"bench.{name}")
        asyncio.run(module.main())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
