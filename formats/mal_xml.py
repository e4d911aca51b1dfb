"""MyAnimeList's XML list export, read and written. Pure (no service state, no HTTP): a large
file is read off the event loop.

The format: root `<myanimelist>`, one `<myinfo>` (`user_export_type` 2 for manga, totals per
status), then one `<manga>` per entry whose children hold the values as text. Files arrive plain
or gzipped, and sometimes with a bare `&` in a title, which no XML parser accepts: it is escaped
before parsing (never inside a CDATA section, where it is legal). Parsed with defusedxml: a file
that declares entities or a DTD, or refers to anything outside itself, is refused.

A file is read as a stream: inflated, escaped and parsed `PIECE` bytes at a time, so that its
memory is the body plus a few pieces whatever it holds, and no single step holds the GIL for
long (the reading runs in a worker thread beside the event loop). What is collected is capped
(entries, elements per entry, text per element, nesting, names), and so is what expat may hold
unparsed: it reads an unfinished tag, comment or declaration again with every piece, so one that
went on for megabytes would cost time with the square of its length.
"""

from __future__ import annotations

import gzip
import re
import xml.sax
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.handler import ContentHandler
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.expatreader import DefusedExpatParser

from formats.problems import NotThisKind, TooLarge, Unreadable

MAX_COMPRESSED_BYTES = 10 * 1024 * 1024
MAX_XML_BYTES = 50 * 1024 * 1024
MAX_ENTRIES = 20_000
# MAL writes about 25 elements per entry, two levels below the root, and short texts (the
# longest, comments and tags, become notes of at most 10,000 characters), with about 30
# different names and no attributes.
MAX_CHILDREN = 64
MAX_TEXT_CHARACTERS = 64 * 1024
MAX_DEPTH = 16
MAX_NAMES = 256
# More than the largest list within the other caps holds (20,000 entries of 64 elements): the
# parser calls into Python for every element, about a microsecond each.
MAX_ELEMENTS = 1_500_000
# The most expat may hold unparsed (one tag, comment or declaration), and the most that may
# come before the root element (the XML declaration and any document type).
MAX_MARKUP_BYTES = 1024 * 1024
PIECE = 64 * 1024
XML_TYPES = ("application/xml", "text/xml")
GZIP_TYPES = ("application/gzip", "application/x-gzip")
# A file's bytes with no claim about them (what a client generator sends for a file): plain or
# gzipped XML, told apart by the first bytes, as for every type here.
BYTES_TYPE = "application/octet-stream"
FILE_TYPES = (BYTES_TYPE, *XML_TYPES, *GZIP_TYPES)
INVALID_FILE = "Invalid MAL file"
NOT_A_MAL_FILE = ("Request body must be a MyAnimeList XML file "
                  "(Content-Type: application/xml, text/xml, application/gzip or application/octet-stream)")
# Every refusal past a limit says this first, then which limit it passed.
FILE_TOO_LARGE = "MAL file too large"
INFLATED_TOO_LARGE = f"{FILE_TOO_LARGE}: more than {MAX_XML_BYTES >> 20} MB uncompressed"
MANGA_LIST = "2"  # myinfo.user_export_type of a manga list (1 is anime)

_GZIP_MAGIC = b"\x1f\x8b"
_CDATA_START = b"<![CDATA["
_CDATA_END = b"]]>"
# A numeric reference has at most this many digits (real ones have 7: &#1114111;), so that the
# decision for an `&` never waits for more than a few bytes.
_REFERENCE_DIGITS = 32
_BARE_AMPERSAND = re.compile(
    rb"&(?!(?:amp|lt|gt|quot|apos|#[0-9]{1,%d}|#x[0-9A-Fa-f]{1,%d});)" % (_REFERENCE_DIGITS, _REFERENCE_DIGITS))
# The end of a piece that the next piece decides: a reference or a CDATA start not yet complete.
_UNDECIDED_END = re.compile(
    rb"(?:&(?:a(?:m(?:p)?)?|a(?:p(?:o(?:s)?)?)?|l(?:t)?|g(?:t)?|q(?:u(?:o(?:t)?)?)?|#[0-9]{0,%d}|#x[0-9A-Fa-f]{0,%d})?"
    rb"|<(?:!(?:\[(?:C(?:D(?:A(?:T(?:A)?)?)?)?)?)?)?)\Z" % (_REFERENCE_DIGITS, _REFERENCE_DIGITS))
_UNDECIDED_BYTES = len(b"&#x") + _REFERENCE_DIGITS


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


def read_mal_file(body: Sequence[bytes], content_type: str) -> list[MalEntry]:
    """The entries of a MyAnimeList manga export (`body`: the request body as it arrived, in
    chunks); NotThisKind for another kind of body, TooLarge past the limits, Unreadable naming
    the line of what cannot be read."""
    kind = media_type(content_type)
    if kind not in FILE_TYPES:
        raise NotThisKind(NOT_A_MAL_FILE)
    size = sum(map(len, body))
    # A gzipped file sent as XML (a .xml.gz picked in a browser) or as bytes is recognized by its first bytes.
    if kind in GZIP_TYPES or _starts_with(body, _GZIP_MAGIC):
        if size > MAX_COMPRESSED_BYTES:
            raise TooLarge(f"{FILE_TOO_LARGE}: more than {MAX_COMPRESSED_BYTES >> 20} MB compressed")
        xml_pieces = _inflated(body)
    elif size > MAX_XML_BYTES:
        raise TooLarge(f"{FILE_TOO_LARGE}: more than {MAX_XML_BYTES >> 20} MB")
    else:
        xml_pieces = _pieces(body, PIECE)
    reader = _ListReader()
    try:
        _parse(escaped_pieces(xml_pieces), reader)
    except DefusedXmlException as refused:
        raise Unreadable(f"{INVALID_FILE}: {_refusal(refused)}") from None
    except xml.sax.SAXParseException as error:
        raise Unreadable(f"{INVALID_FILE} at line {error.getLineNumber()}: {error.getMessage()}") from None
    except _NotAList as error:
        raise Unreadable(f"{INVALID_FILE}: {error}") from None
    except _Refused as refused:
        raise Unreadable(f"{INVALID_FILE} at line {refused.line}: {refused}") from None
    except _TooMany as too_many:
        raise TooLarge(f"{FILE_TOO_LARGE}: more than {too_many}") from None
    return reader.entries


def _starts_with(chunks: Sequence[bytes], prefix: bytes) -> bool:
    head = b""
    for chunk in chunks:
        head += chunk[:len(prefix) - len(head)]
        if len(head) == len(prefix):
            break
    return head == prefix


def _pieces(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """The chunks again, none longer than `size`."""
    for chunk in chunks:
        for start in range(0, len(chunk), size):
            yield chunk[start:start + size]


def _inflated(body: Sequence[bytes]) -> Iterator[bytes]:
    """The gzip file inflated a piece at a time, from pieces of its input (so that no step copies
    the rest of a large input), refused once it passes the limit: a gzip bomb is never held."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    size = 0
    try:
        for compressed in _pieces(body, PIECE):
            pending = compressed
            while not inflater.eof:
                part = inflater.decompress(pending, PIECE)
                pending = inflater.unconsumed_tail
                size += len(part)
                if size > MAX_XML_BYTES:
                    raise TooLarge(INFLATED_TOO_LARGE)
                if part:
                    yield part
                # A full piece may leave more output in the inflater, even with no input left.
                if not pending and len(part) < PIECE:
                    break
            if inflater.eof:
                break
    except zlib.error:
        raise Unreadable(f"{INVALID_FILE}: not a gzip file") from None
    if not inflater.eof:
        raise Unreadable(f"{INVALID_FILE}: the gzip file is cut short")


def escaped_pieces(pieces: Iterable[bytes]) -> Iterator[bytes]:
    """The XML with each bare `&` outside CDATA sections escaped (`Yotsuba&!` becomes
    `Yotsuba&amp;!`), a piece at a time; the line count does not change, so the lines a report
    names are the file's. A CDATA section runs from `<![CDATA[` to the next `]]>`, or to the end
    of the file. The last piece is always there, empty if nothing is left."""
    escaper = _AmpersandEscaper()
    for piece in pieces:
        if escaped := escaper.escape(piece):
            yield escaped
    yield escaper.escape(b"", final=True)


class _AmpersandEscaper:
    """Escapes piece after piece as if the pieces were one text: what the next piece could
    change (an `&` whose reference is not complete, a `<![CDATA[` or `]]>` cut in two) waits
    for it, a few bytes at most."""

    def __init__(self) -> None:
        self._held = b""
        self._in_cdata = False

    def escape(self, piece: bytes, final: bool = False) -> bytes:
        data = self._held + piece
        out: list[bytes] = []
        position = 0
        while True:
            if self._in_cdata:
                end = data.find(_CDATA_END, position)
                if end < 0:
                    # Kept: a `]` or `]]` that the next piece may close with `>`.
                    keep = 0 if final else min(2, len(data) - position, len(data) - len(data.rstrip(b"]")))
                    out.append(data[position:len(data) - keep])
                    self._held = data[len(data) - keep:]
                    break
                out.append(data[position:end + len(_CDATA_END)])
                position = end + len(_CDATA_END)
                self._in_cdata = False
            else:
                start = data.find(_CDATA_START, position)
                if start >= 0:
                    # Cut at a `<`: no reference runs on past it.
                    out.append(_BARE_AMPERSAND.sub(b"&amp;", data[position:start]))
                    out.append(_CDATA_START)
                    position = start + len(_CDATA_START)
                    self._in_cdata = True
                    continue
                undecided = None if final else _UNDECIDED_END.search(data, max(position, len(data) - _UNDECIDED_BYTES))
                # Cut at an `&` or `<`, which no reference can hold: what comes before is
                # escaped as the whole text would be.
                cut = undecided.start() if undecided else len(data)
                out.append(_BARE_AMPERSAND.sub(b"&amp;", data[position:cut]))
                self._held = data[cut:]
                break
        return b"".join(out)


def _parse(pieces: Iterable[bytes], reader: _ListReader) -> None:
    parser = _Parser()
    parser.setContentHandler(reader)
    # Fed directly, the parser is its own locator (SAX's parse() would hand the reader one).
    reader.setDocumentLocator(parser)
    fed = 0
    for piece in pieces:
        parser.feed(piece)
        fed += len(piece)
        if fed - parser.parsed_bytes() > MAX_MARKUP_BYTES:
            raise _Refused(parser.getLineNumber(), "a tag, comment or declaration longer than 1 MB")
        if not reader.started and fed > MAX_MARKUP_BYTES:
            raise _NotAList("no <myanimelist> element in the first 1 MB")
    parser.close()


class _Parser(DefusedExpatParser):
    """defusedxml's SAX reader, fed piece by piece, with two things SAX has no name for (so
    they are set on the expat parser the reader holds)."""

    def reset(self) -> None:
        super().reset()
        # Text comes in parts of up to a piece, not one part per reference: a file of
        # ampersands would otherwise cost a call into Python for each.
        self._parser.buffer_text = True
        self._parser.buffer_size = PIECE

    def parsed_bytes(self) -> int:
        """How far expat has parsed what it was fed: the rest is an unfinished tag, comment or
        declaration, which it keeps and reads again with the next piece."""
        return max(0, self._parser.CurrentByteIndex) if self._parser is not None else 0


def _refusal(refused: DefusedXmlException) -> str:
    name = type(refused).__name__
    if name == "EntitiesForbidden":
        return "entity declarations are not accepted"
    if name == "DTDForbidden":
        return "a document type declaration is not accepted"
    return "references to anything outside the file are not accepted"


class _NotAList(ValueError):
    pass


class _Refused(ValueError):
    """What the file holds goes past a cap; the message names it, `line` where it is."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


class _TooMany(Exception):
    """More entries or elements than a file may have; the message says which."""


class _ListReader(ContentHandler):
    """Collects each `<manga>`'s children as text, with the line the entry starts on.

    Text is counted as it comes (expat hands it over in many small parts, one per reference),
    so that an element's text is refused once it passes the cap, never gathered first."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[MalEntry] = []
        self.started = False  # the root element has begun
        self._locator: Any = None
        self._open: list[str] = []  # the names of the elements the parser is in, outermost first
        self._names: set[str] = set()  # every element and attribute name seen
        self._elements = 0
        self._section: str | None = None  # "manga" or "myinfo" at depth 2
        self._line = 0
        self._values: dict[str, str] = {}
        self._children = 0
        self._field: str | None = None
        self._text: list[str] = []
        self._text_length = 0  # characters since the field began, or outside fields since the last tag
        self._text_line = 0

    def setDocumentLocator(self, locator: Any) -> None:  # noqa: N802 (SAX's name)
        self._locator = locator

    def _line_now(self) -> int:
        return self._locator.getLineNumber() if self._locator else 0

    def startElement(self, name: str, attrs: Any) -> None:  # noqa: N802
        self._open.append(name)
        depth = len(self._open)
        self._elements += 1
        if self._elements > MAX_ELEMENTS:
            raise _TooMany(f"{MAX_ELEMENTS} elements")
        line = self._line_now()
        if depth > MAX_DEPTH:
            raise _Refused(line, f"elements nested more than {MAX_DEPTH} deep")
        self._names.add(name)
        if len(attrs):
            self._names.update(attrs.getNames())
        if len(self._names) > MAX_NAMES:
            raise _Refused(line, f"more than {MAX_NAMES} different element and attribute names")
        if depth == 1:
            if name != "myanimelist":
                raise _NotAList(f"the root element is <{name}>, not <myanimelist>")
            self.started = True
        elif depth == 2 and name in ("manga", "myinfo"):
            self._section = name
            self._line = line
            self._values = {}
            self._children = 0
        elif depth == 2 and name == "anime":
            raise _NotAList("an anime list; only manga lists can be imported")
        elif depth == 3 and self._section:
            self._children += 1
            if self._children > MAX_CHILDREN:
                raise _Refused(self._line, f"<{self._section}> has more than {MAX_CHILDREN} elements")
            self._field = name
            self._text = []
        if self._field is None or depth == 3:
            self._restart_text(line)

    def characters(self, content: str) -> None:
        self._text_length += len(content)
        if self._text_length > MAX_TEXT_CHARACTERS:
            element = self._field or self._open[-1]
            raise _Refused(self._text_line, f"<{element}> has more than {MAX_TEXT_CHARACTERS} characters of text")
        if self._field is not None:
            self._text.append(content)

    def endElement(self, name: str) -> None:  # noqa: N802
        depth = len(self._open)
        if depth == 3 and self._field is not None:
            self._values[self._field] = "".join(self._text).strip()
            self._field = None
            self._text = []
        elif depth == 2 and self._section == "myinfo":
            export_type = self._values.get("user_export_type")
            if export_type and export_type != MANGA_LIST:
                raise _NotAList(f"user_export_type {export_type} is not a manga list ({MANGA_LIST})")
            self._section = None
        elif depth == 2 and self._section == "manga":
            if len(self.entries) == MAX_ENTRIES:
                raise _TooMany(f"{MAX_ENTRIES} entries")
            self.entries.append(MalEntry(self._line, self._values))
            self._section = None
        self._open.pop()
        if self._field is None:
            self._restart_text(self._line_now())

    def _restart_text(self, line: int) -> None:
        self._text_length = 0
        self._text_line = line


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
