"""`make help` is the index of what a developer can run: every target a user may call is listed."""

from __future__ import annotations

import re
import subprocess

from doc_blocks import REPO_ROOT

MAKEFILE = REPO_ROOT / "Makefile"


def phony_targets() -> set[str]:
    text = MAKEFILE.read_text().replace("\\\n", " ")
    declared = re.search(r"^\.PHONY:(.*)$", text, re.MULTILINE)
    assert declared, "the Makefile declares its targets .PHONY"
    return set(declared.group(1).split())


def test_make_help_lists_every_phony_target_with_a_description() -> None:
    shown = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    described = {line.split()[0] for line in shown.splitlines() if len(line.split()) > 1}
    assert phony_targets() - described == set()
