"""MyAnimeList's XML list export, read and written. Pure (no service state): a large file is
read off the event loop.

The format: root `<myanimelist>`, one `<myinfo>` (`user_export_type` 2 for manga, totals per
status), then one `<manga>` per entry whose children hold the values as text. Files arrive plain
or gzipped, and sometimes with a bare `&` in a title, which no XML parser accepts: it is escaped
before parsing (never inside a CDATA section, where it is legal). Parsed with defusedxml: a file
that declares entities or a DTD, or refers to anything outside itself, is refused.
"""

from __future__ import annotations

import gzip
import re
import xml.sax
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from xml.sax.handler import ContentHandler
from xml.sax.saxutils import escape

import defusedxml.sax
from defusedxml import DefusedXmlException

from handlers.errors import ApiError

MAX_COMPRESSED_BYTES = 10 * 1024 * 1024
MAX_XML_BYTES = 50 * 1024 * 1024
MAX_ENTRIES = 20_000
XML_TYPES = ("application/xml", "text/xml")
GZIP_TYPES = ("application/gzip", "application/x-gzip")
INVALID_FILE = "Invalid MAL file"
MANGA_LIST = "2"  # myinfo.user_export_type of a manga list (1 is anime)

_GZIP_MAGIC = b"\x1f\x8b"
_CDATA = re.compile(rb"<!\[CDATA\[.*?\]\]>", re.DOTALL)
_BARE_AMPERSAND = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);)")


@dataclass(frozen=True)
class MalEntry:
    line: int  # of the entry's `<manga>` tag
    values: dict[str, str]  # child element -> its text, stripped

    def text(self, name: str) -> str:
        return self.values.get(name, "")


def media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def compressed_upload(content_type: str) -> bool:
    return media_type(content_type) in GZIP_TYPES


def read_mal_file(body: bytes, content_type: str) -> list[MalEntry]:
    """The entries of a MyAnimeList manga export, or an ApiError: 415 for another kind of body,
    413 past the limits, 400 naming the line of what cannot be read."""
    kind = media_type(content_type)
    if kind not in XML_TYPES + GZIP_TYPES:
        raise ApiError(415, "Request body must be a MyAnimeList XML file "
                            "(Content-Type: application/xml, text/xml or application/gzip)")
    # A gzipped file sent as XML (a .xml.gz picked in a browser) is recognized by its first bytes.
    if kind in GZIP_TYPES or body.startswith(_GZIP_MAGIC):
        if len(body) > MAX_COMPRESSED_BYTES:
            raise ApiError(413, "MAL file too large: more than 10 MB compressed")
        body = _gunzip(body)
    elif len(body) > MAX_XML_BYTES:
        raise ApiError(413, "MAL file too large: more than 50 MB")
    handler = _ListReader()
    try:
        defusedxml.sax.parseString(_escape_bare_ampersands(body), handler)
    except DefusedXmlException as refused:
        raise ApiError(400, f"{INVALID_FILE}: {_refusal(refused)}") from None
    except xml.sax.SAXParseException as error:
        raise ApiError(400, f"{INVALID_FILE} at line {error.getLineNumber()}: {error.getMessage()}") from None
    except _NotAList as error:
        raise ApiError(400, f"{INVALID_FILE}: {error}") from None
    except _TooManyEntries:
        raise ApiError(413, f"MAL file has more than {MAX_ENTRIES} entries") from None
    return handler.entries


def _gunzip(body: bytes) -> bytes:
    """Decompressed in steps, so that a gzip bomb is refused once it passes the limit, never
    held whole."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    size = 0
    try:
        pending = body
        while pending and not inflater.eof:
            part = inflater.decompress(pending, 1024 * 1024)
            size += len(part)
            if size > MAX_XML_BYTES:
                raise ApiError(413, "MAL file too large: more than 50 MB uncompressed")
            parts.append(part)
            pending = inflater.unconsumed_tail
    except zlib.error:
        raise ApiError(400, f"{INVALID_FILE}: not a gzip file") from None
    if not inflater.eof:
        raise ApiError(400, f"{INVALID_FILE}: the gzip file is cut short")
    return b"".join(parts)


def _escape_bare_ampersands(xml_bytes: bytes) -> bytes:
    """`Yotsuba&!` outside CDATA becomes `Yotsuba&amp;!`; the line count does not change, so
    the lines a report names are the file's."""
    pieces: list[bytes] = []
    last = 0
    for cdata in _CDATA.finditer(xml_bytes):
        pieces.append(_BARE_AMPERSAND.sub(b"&amp;", xml_bytes[last:cdata.start()]))
        pieces.append(cdata.group())
        last = cdata.end()
    pieces.append(_BARE_AMPERSAND.sub(b"&amp;", xml_bytes[last:]))
    return b"".join(pieces)


def _refusal(refused: DefusedXmlException) -> str:
    name = type(refused).__name__
    if name == "EntitiesForbidden":
        return "entity declarations are not accepted"
    if name == "DTDForbidden":
        return "a document type declaration is not accepted"
    return "references to anything outside the file are not accepted"


class _NotAList(ValueError):
    pass


class _TooManyEntries(Exception):
    pass


class _ListReader(ContentHandler):
    """Collects each `<manga>`'s children as text, with the line the entry starts on."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[MalEntry] = []
        self._locator: Any = None
        self._depth = 0
        self._section: str | None = None  # "manga" or "myinfo" at depth 2
        self._line = 0
        self._values: dict[str, str] = {}
        self._field: str | None = None
        self._text: list[str] = []

    def setDocumentLocator(self, locator: Any) -> None:  # noqa: N802 (SAX's name)
        self._locator = locator

    def startElement(self, name: str, attrs: Any) -> None:  # noqa: N802
        self._depth += 1
        if self._depth == 1 and name != "myanimelist":
            raise _NotAList(f"the root element is <{name}>, not <myanimelist>")
        if self._depth == 2 and name in ("manga", "myinfo"):
            self._section = name
            self._line = self._locator.getLineNumber() if self._locator else 0
            self._values = {}
        elif self._depth == 2 and name == "anime":
            raise _NotAList("an anime list; only manga lists can be imported")
        elif self._depth == 3 and self._section:
            self._field = name
            self._text = []

    def characters(self, content: str) -> None:
        if self._field is not None:
            self._text.append(content)

    def endElement(self, name: str) -> None:  # noqa: N802
        if self._depth == 3 and self._field is not None:
            self._values[self._field] = "".join(self._text).strip()
            self._field = None
        elif self._depth == 2 and self._section == "myinfo":
            export_type = self._values.get("user_export_type")
            if export_type and export_type != MANGA_LIST:
                raise _NotAList(f"user_export_type {export_type} is not a manga list ({MANGA_LIST})")
            self._section = None
        elif self._depth == 2 and self._section == "manga":
            if len(self.entries) == MAX_ENTRIES:
                raise _TooManyEntries
            self.entries.append(MalEntry(self._line, self._values))
            self._section = None
        self._depth -= 1


# Writing.

@dataclass(frozen=True)
class MalListInfo:
    user_name: str
    totals: dict[str, int]  # MAL status name -> entries


MAL_STATUS_TOTALS = {"Reading": "user_total_reading", "Completed": "user_total_completed",
                     "On-Hold": "user_total_onhold", "Dropped": "user_total_dropped",
                     "Plan to Read": "user_total_plantoread"}


class Cdata(str):
    """Text written as MAL writes titles, comments and tags: in a CDATA section."""


# What XML 1.0 cannot hold at all (most control characters); dropped on the way out.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def write_mal_file(info: MalListInfo, entries: Iterable[dict[str, str | int]]) -> bytes:
    """The export: `entries` are each `<manga>`'s children, in the order MAL writes them."""
    lines = ['<?xml version="1.0" encoding="UTF-8" ?>', "<myanimelist>", "\t<myinfo>",
             "\t\t<user_id>0</user_id>", f"\t\t<user_name>{_text(info.user_name)}</user_name>",
             f"\t\t<user_export_type>{MANGA_LIST}</user_export_type>",
             f"\t\t<user_total_manga>{sum(info.totals.values())}</user_total_manga>"]
    lines += [f"\t\t<{tag}>{info.totals.get(status, 0)}</{tag}>" for status, tag in MAL_STATUS_TOTALS.items()]
    lines.append("\t</myinfo>")
    for entry in entries:
        lines.append("\t<manga>")
        lines += [f"\t\t<{name}>{_text(value)}</{name}>" for name, value in entry.items()]
        lines.append("\t</manga>")
    lines.append("</myanimelist>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _text(value: str | int) -> str:
    text = _NOT_XML.sub("", str(value))
    if isinstance(value, Cdata):
        # A `]]>` inside is split across two sections.
        return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"
    return escape(text)


def gzipped(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)
