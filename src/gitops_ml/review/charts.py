"""Charts that render natively in a GitHub comment: Mermaid `xychart-beta` and markdown tables.

GitHub renders Mermaid blocks itself, so nothing is uploaded anywhere (CML's default image
upload goes to a public host). The curves come on fixed grids (plots/*.json, see
docs/interfaces.md), so base and PR line up point by point; we thin them to a coarser grid to
keep the comment small.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gitops_ml.markdown import MISSING, escape, mermaid_text, table

BASE_COLOUR = "#9e9e9e"
PR_COLOUR = "#1f77b4"
GRID_STEP = 0.05


def curve_on_grid(
    points: Sequence[Mapping[str, Any]] | None, x: str, y: str, step: float = GRID_STEP
) -> list[float] | None:
    """`y` at x = 0, step, …, 1 (the nearest point at or below each grid x), or None."""
    if not points:
        return None
    pairs = sorted(
        (float(p[x]), float(p[y])) for p in points if p.get(x) is not None and p.get(y) is not None
    )
    if not pairs:
        return None
    count = round(1 / step)
    out: list[float] = []
    j = 0
    for i in range(count + 1):
        gx = i * step
        while j + 1 < len(pairs) and pairs[j + 1][0] <= gx + 1e-9:
            j += 1
        out.append(round(pairs[j][1], 3))
    return out


def xychart(
    title: str,
    x_label: str,
    y_label: str,
    base: Sequence[float] | None,
    pr: Sequence[float] | None,
    step: float = GRID_STEP,
) -> str:
    """A Mermaid line chart on the grid 0, step, …, 1: base in grey, PR in blue."""
    count = round(1 / step)
    grid = ", ".join(f"{i * step:.2f}".rstrip("0").rstrip(".") for i in range(count + 1))
    return _chart(title, x_label, grid, y_label, (0.0, 1.0), base, pr)


def lines_chart(
    title: str,
    x_label: str,
    categories: Sequence[str],
    y_label: str,
    y_range: tuple[float, float],
    base: Sequence[float] | None,
    pr: Sequence[float] | None,
) -> str:
    """A Mermaid line chart over `categories` (text from the data, quoted and made inert)."""
    names = ", ".join(f'"{mermaid_text(c)}"' for c in categories)
    return _chart(title, x_label, names, y_label, y_range, base, pr)


def _chart(
    title: str,
    x_label: str,
    x_axis: str,
    y_label: str,
    y_range: tuple[float, float],
    base: Sequence[float] | None,
    pr: Sequence[float] | None,
) -> str:
    """Base in grey, PR in blue (xychart-beta has no legend); `x_axis` is the axis' values."""
    lines = [s for s in (base, pr) if s]
    colours = ", ".join(c for c, s in ((BASE_COLOUR, base), (PR_COLOUR, pr)) if s)
    out = [
        "```mermaid",
        '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "' + colours + '"}}}}%%',
        "xychart-beta",
        f'    title "{mermaid_text(title)}"',
        f'    x-axis "{mermaid_text(x_label)}" [{x_axis}]',
        f'    y-axis "{mermaid_text(y_label)}" {y_range[0]:g} --> {y_range[1]:g}',
    ]
    out += ["    line [" + ", ".join(f"{v:g}" for v in series) + "]" for series in lines]
    out.append("```")
    return "\n".join(out)


def confusion_table(base: Mapping[str, Any] | None, pr: Mapping[str, Any] | None) -> str:
    """Base and PR confusion matrices side by side, with the PR's change per cell."""

    def cell(side: Mapping[str, Any] | None, key: str, with_change: bool = False) -> str:
        if not side or side.get(key) is None:
            return MISSING
        value = int(side[key])
        if with_change and base and base.get(key) is not None:
            delta = value - int(base[key])
            return f"{value:,} ({delta:+,})" if delta else f"{value:,}"
        return f"{value:,}"

    return "\n".join(
        [
            "| actual ↓ / predicted → | base: negative | base: positive "
            "| PR: negative | PR: positive |",
            "|---|---:|---:|---:|---:|",
            f"| **negative** | {cell(base, 'tn')} | {cell(base, 'fp')} "
            f"| {cell(pr, 'tn', True)} | {cell(pr, 'fp', True)} |",
            f"| **positive** | {cell(base, 'fn')} | {cell(base, 'tp')} "
            f"| {cell(pr, 'fn', True)} | {cell(pr, 'tp', True)} |",
        ]
    )


def class_confusion_table(
    classes: Sequence[str],
    base: Sequence[Sequence[float]] | None,
    pr: Sequence[Sequence[float]],
) -> str:
    """A multiclass confusion matrix (actual class × predicted class) of the PR, each cell with
    its change from the base's matrix when the base has one over the same classes."""
    comparable = base is not None and len(base) == len(pr)
    rows = []
    for i, name in enumerate(classes):
        cells = []
        for j, value in enumerate(pr[i]):
            delta = int(value) - int(base[i][j]) if comparable and base is not None else 0
            cells.append(f"{int(value):,} ({delta:+,})" if delta else f"{int(value):,}")
        rows.append([f"**{escape(name)}**", *cells])
    header = ["actual ↓ / predicted →", *(escape(c) for c in classes)]
    return table(header, rows, "---|" + "|".join("---:" for _ in classes))
