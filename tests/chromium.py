"""Debian's Chromium for the browser tests (tests/test_browser.py, tests/test_webapp.py), driven
by Playwright: where it is, how it is started, and the `browser` fixture (a browser for one test;
tests/test_webapp.py starts one for its whole module)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest_asyncio

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# As the machine's own probe starts it: no background traffic, which this closed network refuses.
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@asynccontextmanager
async def launched_chromium() -> AsyncIterator[Any]:
    """Chromium started by Playwright, closed at the end."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    async with launched_chromium() as launched:
        yield launched
