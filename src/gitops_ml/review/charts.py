"""Charts that render natively in a GitHub comment: Mermaid `xychart-beta` and markdown tables.

GitHub renders Mermaid blocks itself, so nothing is uploaded anywhere (CML's default image
upload goes to a public host). The curves come on fixed grids (plots/*.json, see
docs/interfaces.md), so base and PR line up point by point; we thin them to a coarser grid to
keep the comment small.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gitops_ml.markdown import MISSING

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
    """A Mermaid line chart: base in grey, PR in blue (xychart-beta has no legend)."""
    lines = [s for s in (base, pr) if s]
    colours = ", ".join(c for c, s in ((BASE_COLOUR, base), (PR_COLOUR, pr)) if s)
    count = round(1 / step)
    labels = ", ".join(f"{i * step:.2f}".rstrip("0").rstrip(".") for i in range(count + 1))
    out = [
        "```mermaid",
        '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "' + colours + '"}}}}%%',
        "xychart-beta",
        f'    title "{title}"',
        f'    x-axis "{x_label}" [{labels}]',
        f'    y-axis "{y_label}" 0 --> 1',
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
