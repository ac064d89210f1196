"""Markdown for people: one way to format a number, a table cell, a table and a fold.

The PR report, the model card and the summary all render through these, so a missing value
reads the same everywhere (MISSING) and a pipe in a value never breaks a table row.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, TypeGuard

MISSING = "—"
MAX_ROWS = 150  # per table; the rest is counted, not shown


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
    """Table-safe text: no pipes or newlines break a markdown row."""
    if value is None:
        return MISSING
    text = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "", max_rows: int = MAX_ROWS
) -> str:
    """A GitHub table; cells that are not text go through `cell`. Rows past `max_rows` are
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
