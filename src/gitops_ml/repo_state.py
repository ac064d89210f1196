"""Is the committed state what the pipeline produces? One check for the PR report and verify.

After `dvc repro` (or `make run`), every output the pipeline writes into Git — `dvc.lock`,
metrics, plot data, the model card, the profile — must equal the committed file. Anything that
differs (or a new output Git does not know yet) means a reviewer would read stale numbers, so the
PR report warns and the merge job refuses, both naming the files with this one message.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from gitops_ml.errors import UserError
from gitops_ml.markdown import code


class StaleOutputs(UserError):
    """Reproducing the pipeline changed committed files: the commit does not match its outputs."""

    exit_code = 1


def changed_files(root: str | Path = ".") -> list[str]:
    """Tracked files that differ from HEAD, and new files Git does not ignore, sorted."""
    done = subprocess.run(
        ["git", "status", "--porcelain=v1", "-z", "--untracked-files=all"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise UserError(f"git status failed in {root}: {done.stderr.strip()}")
    entries = [e for e in done.stdout.split("\0") if e]
    files: list[str] = []
    skip = False
    for entry in entries:
        if skip:  # the second path of a rename entry
            skip = False
            continue
        status, path = entry[:2], entry[3:]
        skip = "R" in status or "C" in status
        files.append(path)
    return sorted(set(files))


def stale_message(files: list[str]) -> str:
    shown = ", ".join(code(f) for f in files[:20])  # also markdown: the PR report quotes it
    more = f" and {len(files) - 20} more" if len(files) > 20 else ""
    return (
        f"reproducing the pipeline changed {len(files)} committed file(s): {shown}{more}. "
        "Run `make run` and commit these."
    )


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default=".", help="repository root")


def run(args: argparse.Namespace) -> int:
    files = changed_files(args.root)
    if files:
        raise StaleOutputs(stale_message(files))
    print("committed outputs match the reproduced pipeline")
    return 0
