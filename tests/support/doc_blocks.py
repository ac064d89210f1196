"""The shell blocks of README.md and docs/*.md: the commands a newcomer copies and runs.

A ```bash block is a promise that the commands work as written, so every one of them is run by
a test (tests/docs, tests/fork); examples that need an account, a cluster or a running server
are ```text blocks instead.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def doc_files(root: Path = REPO_ROOT) -> list[Path]:
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def bash_blocks(path: Path) -> list[str]:
    return [m.group(2) for m in FENCE.finditer(path.read_text()) if m.group(1) == "bash"]


def block_containing(path: Path, text: str) -> str:
    """The one bash block of `path` that contains `text`."""
    found = [block for block in bash_blocks(path) if text in block]
    assert len(found) == 1, f"{path}: expected one bash block containing {text!r}, found {found}"
    return found[0]
