"""The document's patterns read the same in JSON Schema's dialect (ECMA-262, what a JavaScript
client and most validators run) as in Python's, where the service's checks and their tests live:
every pattern of /openapi.json is run by Node on texts chosen where the two dialects differ (`\\s`,
`$` before a final newline, characters outside the BMP) and must answer as Python does. Skipped
where Node.js is missing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest

from handlers.application import all_routes
from web.openapi import openapi_document

TEXTS = ["", "1", " 1 ", "\ufeff1", "\x1c1", "1\n", "\u30001", "\u00a01", "2024-02-29", "2023-02-29", "2024-05",
         "0000", "alice", "alice\n", "al", "a" * 33, "type:Manga", "\ufefftype:Manga", "\x1ctype:Manga",
         "type:\u3000x", "type:\ufeffx", "\x01", "\x1c", "\x7f", "\ufeff", "x", "😀", "5", "007", "10000000",
         "010000000", "10000001", "1000", "1001", "abc", "\t", "Z", "name-asc", "0" * 19, "123456789012345"]


def patterns(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                found.add(value)
            else:
                found |= patterns(value)
    elif isinstance(node, list):
        for item in node:
            found |= patterns(item)
    return found


def test_every_pattern_of_the_document_answers_in_javascript_as_in_python() -> None:
    if shutil.which("node") is None:
        pytest.skip("Node.js is missing")
    document_patterns = sorted(patterns(openapi_document(all_routes())))
    assert len(document_patterns) > 10
    script = ("const [patterns, texts] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
              "console.log(JSON.stringify(patterns.map(p => { const r = new RegExp(p, 'u');"
              " return texts.map(t => r.test(t)); })));")
    ran = subprocess.run(["node", "-e", script], input=json.dumps([document_patterns, TEXTS]),
                         capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 0, ran.stderr
    in_javascript = json.loads(ran.stdout)
    disagreements = []
    for pattern, answers in zip(document_patterns, in_javascript, strict=True):
        # A JSON Schema pattern is a search; an anchored one (^…$) ends at the text's end in
        # ECMA-262, which is Python's fullmatch (Python's `$` also matches before a final newline).
        anchored = pattern.startswith("^") and pattern.endswith("$")
        for text, answer in zip(TEXTS, answers, strict=True):
            in_python = (re.fullmatch(pattern, text) if anchored else re.search(pattern, text)) is not None
            if in_python != answer:
                disagreements.append(f"{pattern!r} on {text!r}: Python {in_python}, JavaScript {answer}")
    assert disagreements == [], "\n".join(disagreements)
