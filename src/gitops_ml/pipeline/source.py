"""source: point the pipeline at a data file, tracked by DVC's own mechanisms.

`data.source` in params.yaml names the file the `ingest` stage reads, and dvc.yaml declares that
file as ingest's dependency (`${data.source}`). DVC then does the rest: `dvc status` names a
changed data file and the stage it makes stale, `dvc repro` reruns from ingest, `dvc.lock`
records the data's hash. `gitops-ml source --set` makes a file such a dependency:

- a local file is versioned with `dvc add` (Git holds `FILE.dvc`, the DVC remote the bytes);
- a URL (`https://…`, `s3://…`, any scheme DVC reads) comes in with `dvc import-url` into
  `data/`, and `dvc update data/NAME.dvc` fetches it again when the source changed;
- the demo generator's output (stage `generate`) is already DVC's: nothing to track.

Then `data.source` is set (`gitops_ml.params_edit`: comments in params.yaml kept). Nothing is
written when DVC refuses.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.errors import UserError
from gitops_ml.params_edit import set_params


class SourceError(UserError):
    """The data cannot be tracked as given; the message says what to do instead."""


def set_data_source(params_text: str, source: str) -> str:
    """params.yaml with `data.source` replaced, keeping every comment and the layout."""
    return set_params(params_text, {"data.source": source})


def is_url(source: str) -> bool:
    return "://" in source


def import_path(url: str) -> str:
    """Where `dvc import-url` puts the data of `url`: data/ and the URL's file name."""
    path = urlsplit(url).path
    name = PurePosixPath(path).name
    if not name or path.endswith("/"):
        raise SourceError(f"{url}: the URL names no file (it ends in '/'); give a file's URL")
    return f"{paths.DATA_DIR}/{name}"


def dvc(*args: str) -> None:
    """Run a DVC command of this environment; its own error message when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        reason = errors[-1] if errors else done.stderr.strip() or done.stdout.strip()
        raise SourceError(f"`dvc {' '.join(args)}` failed: {reason}")


def track(source: str) -> str:
    """Make `source` a file DVC tracks in this project; the path `data.source` is to name."""
    if is_url(source):
        path = import_path(source)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        dvc("import-url", source, path)
        return path
    if Path(source).as_posix() == paths.SYNTHETIC_DATA:
        return paths.SYNTHETIC_DATA  # the generate stage's output: DVC tracks it already
    if not Path(source).is_file():
        raise SourceError(
            f"{source}: file not found; put the data file in the project (e.g. under data/) "
            "or give its URL"
        )
    dvc("add", source)
    return Path(source).as_posix()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=paths.PARAMS)
    parser.add_argument(
        "--set",
        metavar="FILE|URL",
        required=True,
        help="track FILE with `dvc add` (a URL: `dvc import-url` into data/) and point "
        "data.source in params.yaml at it",
    )


def run(args: argparse.Namespace) -> int:
    params_path = Path(args.params)
    if not params_path.is_file():
        raise SourceError(f"{params_path}: file not found; run this in the project's root")
    text = params_path.read_text()
    set_data_source(text, args.set)  # no `data.source` to set: refuse before DVC runs
    path = track(args.set)
    gio.write_text(params_path, set_data_source(text, path))
    print(f"source: data.source is {path} (tracked by DVC); `make run` reproduces on it")
    return 0
