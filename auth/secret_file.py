"""A secret the service keeps in a file of its own, never in the database: whoever reads the
database (or a backup of it) must not hold it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def read_or_create(path: Path) -> bytes:
    """32 random bytes kept hex-encoded in `path` (mode 0600 from the first byte), made at the first
    call. Two processes starting at once on one directory end up with the same secret."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = path.with_name(f"{path.name}.partial-{os.getpid()}")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_bytes(32).hex())
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(partial, path)  # never replaces a secret another process made first
        except FileExistsError:
            pass
        finally:
            os.unlink(partial)
    return bytes.fromhex(path.read_text(encoding="ascii").strip())
