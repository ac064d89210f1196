"""Markdown for people: one way to format a number, a table cell, a table and a fold, and the one
way to put text from the data into markdown.

The PR report, the model card, the drift report, the validation report and the job summaries
all render through these, so a missing value reads the same everywhere (MISSING) and nothing from
the data is markup: every data-derived string (a column name, a category, a slice group, a file
name, a message quoting a value) goes through `escape` (or `code`, `cell`), and Mermaid labels
through `mermaid_text`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any, TypeGuard

MISSING = "—"
MAX_ROWS = 150  # per table; the rest is counted, not shown

# Markup characters as HTML character references: inert in a paragraph, a heading, a table cell
# and inside an HTML block such as <summary> alike (a backslash escape is not, in HTML blocks).
_ENTITIES = {
    "<": "&lt;",  # before a letter, `/`, `!` or `?`: no tag, comment or autolink (`a < b` stays)
    "|": "&#124;",  # GFM splits table rows on every unescaped pipe, even inside code spans
    "`": "&#96;",  # no code span, no fence
    "~": "&#126;",  # no ~~~ fence, no strikethrough
    "*": "&#42;",  # no emphasis (`_` below only where it could be emphasis)
    "[": "&#91;",  # no [link](url) or ![image](url)
    "\\": "&#92;",  # no backslash escaping the markup that follows the value
    "$": "&#36;",  # no $math$
    "_": "&#95;",  # only where it could open or close emphasis: `tenure_months` stays
    "&": "&amp;",  # only before what reads as a character reference: `&lt;` stays `&lt;`
}
# GitHub links mentions, references and URLs in the rendered text, after character references
# are decoded, so those are broken with a zero-width space instead: @user and @org/team, #1 and
# owner/repo#1, GH-1, email addresses, https://… and www.… (the spelling Dependabot and Renovate
# use in the release notes they quote).
_ZWSP = "&#8203;"
_MARKUP = re.compile(
    r"(?P<newline>\r\n?|\n)"  # a newline would start a new block: a fence, a list, a heading
    r"|&(?=#?\w+;)|<(?=[a-z/!?])|(?<![^\W_])_|_(?![^\W_])|[|`~*\[\\$]"
    r"|(?P<link>[@#]|(?<![^\W_])gh(?=-\d)|:(?=//)|(?<![^\W_])www(?=\.))",
    re.IGNORECASE,
)


def _inert(match: re.Match[str]) -> str:
    if match["newline"]:
        return " "
    if match["link"]:
        return match[0] + _ZWSP
    return _ENTITIES[match[0]]


def escape(value: Any) -> str:
    """`value` as text that renders as itself on GitHub and is never markup: in a table cell,
    a heading, a list item, a `<summary>` or `<code>` it cannot break the row, open or close a
    fence, a code span or a `<details>`, make a tag, a link, an @mention or an issue reference,
    and a newline in it is a space. Plain words come out unchanged (`tenure_months`, `18–33`,
    `Bank transfer (automatic)`)."""
    return _MARKUP.sub(_inert, str(value))


def code(value: Any) -> str:
    """`value` in code style: a code span when nothing in it needs escaping, else `<code>` with
    the escaped text (a code span shows character references as written, and is empty or
    trims a space at either end)."""
    text = escape(value)
    plain = text == str(value) and text.strip(" ") == text != ""
    return f"`{text}`" if plain else f"<code>{text}</code>"


# Mermaid's own character codes (`#34;`), which it decodes in every diagram's labels.
_MERMAID = {
    '"': "#34;",
    "#": "#35;",
    "%": "#37;",
    "&": "#38;",
    "<": "#60;",
    ">": "#62;",
    "\\": "#92;",
    "`": "#96;",
}
_MERMAID_MARKUP = re.compile(r'(?P<newline>\r\n?|\n)|["#%&<>\\`]')


def mermaid_text(value: Any) -> str:
    """`value` for a quoted Mermaid label or title: the quote that would end the string, `%%`
    (a directive), `#` (a character code), tags, backslashes and backticks (a markdown string)
    as character codes; a newline, which would end the line or the fence, is a space."""
    return _MERMAID_MARKUP.sub(lambda m: " " if m["newline"] else _MERMAID[m[0]], str(value))


def is_number(value: Any) -> TypeGuard[float]:
    """A real, finite-or-not number (bools are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def num(value: Any, spec: str = ".4f") -> str:
    """`value` formatted with `spec`; MISSING for None, NaN or a non-number."""
    if not is_number(value) or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return format(value, spec)


def auto(value: Any) -> str:
    """A value of unknown kind: ints with separators, floats with 4 decimals (or 3 significant
    digits in scientific notation when tiny), text made table-safe."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if not is_number(value):
        return cell(value)
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 100:
        return f"{value:,.1f}"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4f}"


def signed(value: Any, spec: str = "+.4f") -> str:
    return num(value, spec)


def cell(value: Any) -> str:
    """A value of any kind as escaped text (MISSING for None, JSON for lists and mappings)."""
    if value is None:
        return MISSING
    return escape(json.dumps(value) if isinstance(value, dict | list) else value)


def table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "", max_rows: int = MAX_ROWS
) -> str:
    """A GitHub table; cells that are not text go through `cell`, text cells are markdown the
    caller built (with `escape` around anything from the data). Rows past `max_rows` are
    counted under the table, not shown."""
    align = align or "|".join(["---"] * len(header))
    shown = list(rows[:max_rows])
    lines = ["| " + " | ".join(header) + " |", "|" + align + "|"]
    lines += [
        "| " + " | ".join(c if isinstance(c, str) else cell(c) for c in r) + " |" for r in shown
    ]
    if len(rows) > max_rows:
        lines.append(f"\n_… and {len(rows) - max_rows:,} more rows not shown._")
    return "\n".join(lines)


def details(summary: str, body: str, open_: bool = False) -> str:
    tag = "<details open>" if open_ else "<details>"
    return f"{tag}\n<summary>{summary}</summary>\n\n{body}\n\n</details>"
