"""Run one dvc.yaml stage command under an audit hook and record the files it opened to read.

`python stage_audit.py OUT.json .venv/bin/gitops-ml COMMAND [ARGS…]` (or `OUT.json
.venv/bin/python -m MODULE …`), the stage's command as dvc.yaml writes it, run in this process:
Python's "open" audit event (every file Python opens, source modules included) and the
project's own "gitops_ml.read" event (tables that pyarrow opens in C++) are recorded; files
opened for writing are left out.
"""

from __future__ import annotations

import json
import os
import sys

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND


def main() -> int:
    output, argv = sys.argv[1], sys.argv[2:]
    argv = [os.path.basename(argv[0]), *argv[1:]]  # the tool by name: this interpreter runs it
    opened: set[str] = set()

    def hook(event: str, args: tuple) -> None:
        if event == "open" and args and isinstance(args[0], str | bytes):
            mode = args[1] if len(args) > 1 else None  # None: os.open, which gives flags
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            writing = set(mode) & set("wax+") if isinstance(mode, str) else flags & WRITE_FLAGS
            if not writing:
                opened.add(os.path.abspath(os.fsdecode(args[0])))
        elif event == "gitops_ml.read":
            opened.add(os.path.abspath(str(args[0])))

    sys.addaudithook(hook)
    if argv[:2] == ["python", "-m"]:  # a stage that runs a module rather than gitops-ml
        import runpy

        sys.argv = [argv[2], *argv[3:]]
        try:
            runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exit:
            code = int(exit.code or 0)
    else:
        from gitops_ml.cli import main as cli

        code = cli(argv[1:])
    with open(output, "w") as handle:  # written after the command: not part of what it read
        json.dump(sorted(opened), handle)
    return code


if __name__ == "__main__":
    sys.exit(main())
