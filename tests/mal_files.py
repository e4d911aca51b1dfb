"""MyAnimeList manga exports for tests, shaped like the files MAL writes: an XML declaration,
`<myinfo>` with the totals, one `<manga>` per entry, titles, comments and tags in CDATA."""

from __future__ import annotations

from typing import Any

ENTRY_DEFAULTS: dict[str, Any] = {
    "manga_mangadb_id": 0, "manga_title": "", "manga_volumes": 0, "manga_chapters": 0, "my_id": 0,
    "my_read_volumes": 0, "my_read_chapters": 0, "my_start_date": "0000-00-00", "my_finish_date": "0000-00-00",
    "my_scanalation_group": "", "my_score": 0, "my_storage": "", "my_retail_volumes": 0, "my_status": "Reading",
    "my_comments": "", "my_times_read": 0, "my_tags": "", "my_priority": "Low", "my_reread_value": "",
    "my_rereading": "NO", "my_discuss": "YES", "my_sns": "default", "update_on_import": 0,
}
_CDATA_FIELDS = ("manga_title", "series_title", "my_comments", "my_tags", "my_scanalation_group")


def manga(**values: Any) -> dict[str, Any]:
    """An entry with MAL's defaults; `raw_title` writes the title as is (no CDATA, no escaping),
    as exporters that leave a bare `&` in titles do; `title_tag` names the title element."""
    entry = {**ENTRY_DEFAULTS, **values}
    if "raw_title" in entry:
        del entry["manga_title"]
    if "title_tag" in entry:
        entry[entry.pop("title_tag")] = entry.pop("manga_title")
    return entry


def mal_file(entries: list[dict[str, Any]], *, export_type: int = 2, user_name: str = "reader",
             doctype: str = "") -> bytes:
    lines = ['<?xml version="1.0" encoding="UTF-8" ?>']
    if doctype:
        lines.append(doctype)
    lines += ["", "<myanimelist>", "", "\t<myinfo>", "\t\t<user_id>1234567</user_id>",
              f"\t\t<user_name>{user_name}</user_name>", f"\t\t<user_export_type>{export_type}</user_export_type>",
              f"\t\t<user_total_manga>{len(entries)}</user_total_manga>", "\t</myinfo>", ""]
    for entry in entries:
        lines.append("\t<manga>")
        for name, value in entry.items():
            if name == "raw_title":
                lines.append(f"\t\t<manga_title>{value}</manga_title>")
            elif name in _CDATA_FIELDS:
                lines.append(f"\t\t<{name}><![CDATA[{value}]]></{name}>")
            else:
                lines.append(f"\t\t<{name}>{value}</{name}>")
        lines.append("\t</manga>")
        lines.append("")
    lines.append("</myanimelist>")
    return "\n".join(lines).encode("utf-8")


def entry_lines(file: bytes) -> list[int]:
    """The line of each `<manga>` tag, as a report must name it."""
    return [number for number, line in enumerate(file.decode("utf-8").split("\n"), start=1)
            if line.strip() == "<manga>"]
