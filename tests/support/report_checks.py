"""Shared checks for generated review reports: well-formed GitHub markdown, or a clear failure."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt


def assert_valid_markdown(markdown: str) -> None:
    """Tables have as many cells as headers, fences and <details> are closed, tables parse."""
    lines = markdown.splitlines()
    fences = [line for line in lines if line.startswith("```")]
    assert len(fences) % 2 == 0, "an unclosed code fence"
    mermaid_blocks = markdown.count("```mermaid")
    assert mermaid_blocks == sum(1 for f in fences if f == "```"), "a mermaid block not closed"
    assert markdown.count("<details") == markdown.count("</details>"), "unbalanced <details>"
    tables, width = 0, None
    for line in lines:
        if line.startswith("|"):
            cells = len(re.findall(r"(?<!\\)\|", line)) - 1
            if width is None:
                width, tables = cells, tables + 1
            assert cells == width, f"row with {cells} cells in a {width}-column table: {line}"
        else:
            width = None
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    parsed = sum(1 for t in tokens if t.type == "table_open")
    assert parsed == tables, f"{tables} tables written but {parsed} parse as tables"
