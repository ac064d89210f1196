"""source: record what `data.source` points at, by content, so a data change reruns the pipeline.

DVC can only track files it is told about, and `data.source` may be the generator, a local file
anywhere or a URL. This stage runs on every `dvc repro` (`always_changed`), hashes the source
(sha256 of a local file; the ETag, Last-Modified or, failing those, the bytes of a URL) and writes
`data/source.json`. When the content is unchanged the file comes out byte-identical and DVC
skips `ingest`; when it changed, `ingest` and everything after it rerun, and the PR report shows
the new hash. It is cheap: one hash or one HEAD request, no parsing.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import DataParams, load_params
from gitops_ml.errors import UserError

SYNTHETIC = "synthetic"
URL_SCHEMES = ("http://", "https://")
REMOTE_SCHEMES = ("s3://", "gs://", "gcs://", "azure://", "az://")
CHUNK = 1 << 20
TIMEOUT_SECONDS = 30.0


class SourceError(UserError):
    """The data source cannot be reached or read; the message says what to configure."""


def _missing_local(path: Path) -> SourceError:
    tracked = path.with_name(path.name + ".dvc")
    if tracked.exists():
        return SourceError(
            f"{path}: not in the workspace, but DVC tracks it ({tracked}): pull it with "
            "`make dvc-pull` (CI: configure the DVC remote first, e.g. the DVC_REMOTE_URL "
            "repository variable and its credentials; see docs/data.md, 'Your own data')"
        )
    return SourceError(
        f"{path}: file not found (data.source in params.yaml); put the file there and track it "
        f"with `dvc add {path}` so CI can pull it, or point data.source at a URL"
    )


def file_record(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise _missing_local(path)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return {"kind": "file", "sha256": digest.hexdigest(), "bytes": path.stat().st_size}


def url_record(url: str, timeout: float = TIMEOUT_SECONDS) -> dict[str, Any]:
    """ETag/Last-Modified from a HEAD request; the sha256 of the body when the server sends
    neither (then every run downloads it once more, which is the price of not knowing)."""
    try:
        head = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(head, timeout=timeout) as response:
            etag = response.headers.get("ETag")
            modified = response.headers.get("Last-Modified")
            length = response.headers.get("Content-Length")
        if etag or modified:
            record: dict[str, Any] = {"kind": "url", "etag": etag, "last_modified": modified}
            record["bytes"] = int(length) if length and length.isdigit() else None
            return record
        digest = hashlib.sha256()
        size = 0
        with urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
        return {"kind": "url", "sha256": digest.hexdigest(), "bytes": size}
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise SourceError(f"{url}: cannot reach the data source: {exc}") from None


def remote_record(url: str) -> dict[str, Any]:
    """Object stores through fsspec (installed with the DVC remotes): the store's own checksum."""
    try:
        import fsspec

        info = fsspec.open(url).fs.info(url)
    except ImportError:
        raise SourceError(f"{url}: no filesystem for this scheme; install its DVC remote") from None
    except Exception as exc:  # each object store raises its own error types
        raise SourceError(f"{url}: cannot read the data source: {exc}") from None
    checksum = info.get("ETag") or info.get("etag") or info.get("md5Hash") or info.get("md5")
    if not checksum:
        raise SourceError(f"{url}: the store reports no checksum (ETag/md5) for this object")
    return {"kind": "object", "etag": str(checksum).strip('"'), "bytes": info.get("size")}


def source_record(params: DataParams) -> dict[str, Any]:
    """What the source is, by content (the generator is described by its params alone)."""
    source = params.source
    if source == SYNTHETIC:
        record: dict[str, Any] = {"kind": "synthetic"}
    elif source.startswith(URL_SCHEMES):
        record = url_record(source)
    elif source.startswith(REMOTE_SCHEMES):
        record = remote_record(source)
    else:
        record = file_record(Path(source))
    return {"source": source, **record}


SOURCE_LINE = re.compile(
    r"^(data:\s*(?:#.*)?\n(?:[ \t]+.*\n|\s*\n)*?[ \t]+source:[ \t]*)(\S+)", re.M
)


def set_data_source(params_text: str, source: str) -> str:
    """params.yaml with `data.source` replaced, keeping every comment and the layout."""
    updated, count = SOURCE_LINE.subn(lambda m: m.group(1) + source, params_text, count=1)
    if count != 1:
        raise SourceError("params.yaml: cannot find 'data.source' to point it at the new data")
    return updated


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=paths.PARAMS)
    parser.add_argument("--output", default=paths.SOURCE_RECORD)
    parser.add_argument(
        "--set",
        metavar="SOURCE",
        help="point data.source in params.yaml at SOURCE (a path or URL) and record it",
    )


def run(args: argparse.Namespace) -> int:
    raw = load_params(args.params)
    if args.set:  # check the new source first: a wrong path must not reach params.yaml
        raw["data"] = {**raw.get("data", {}), "source": args.set}
    params = DataParams.from_params(raw)
    record = source_record(params)
    if args.set:
        params_path = Path(args.params)
        gio.write_text(params_path, set_data_source(params_path.read_text(), args.set))
    gio.write_json(args.output, record)
    fingerprint = record.get("sha256") or record.get("etag") or record.get("last_modified") or "-"
    print(f"source: {record['source']} ({record['kind']}, {str(fingerprint)[:16]})", flush=True)
    return 0
