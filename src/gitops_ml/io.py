"""Atomic, deterministic file writes and table reads shared by every stage.

A stage that fails must leave no half-written output behind, and the same inputs must give
byte-identical files, so everything goes through a temporary file and an atomic rename.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import yaml

from gitops_ml.errors import UserError

if TYPE_CHECKING:  # pandas is slow to import; commands that only hash or read YAML skip it
    import pandas as pd


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


# CSV cells as the text the user wrote: no dtype guessing ("00123" stays "00123") and no
# pandas missing-value guessing ("NA" stays "NA"); the contract's encoding decides.
RAW_CSV_OPTIONS: dict[str, Any] = {"dtype": str, "keep_default_na": False}
INDEX_COLUMN = "\x00index"  # the name of a saved row index (csv.index): no column has it


@dataclass(frozen=True)
class CsvLayout:
    """How a CSV file is laid out: the contract's `csv` section (see docs/data.md).

    `names` are the file's columns in order when it has no header row; `encoding` is how its
    text is stored (a spreadsheet exported on Windows is often cp1252, not UTF-8).
    """

    delimiter: str = ","
    header: bool = True
    names: tuple[str, ...] | None = None
    encoding: str = "utf-8"
    # The first column is a saved row index without a name (pandas' `to_csv` writes one):
    # never read, so no row number becomes a feature.
    index: bool = False


class TableReadError(UserError, ValueError):
    """A data file is missing, empty or not readable as CSV/Parquet."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it over `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes owner-only files; outputs are shared
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def _clean(value: Any) -> Any:
    """JSON-safe and stable: NaN/inf become null, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, payload: Any) -> None:
    write_text(path, json.dumps(_clean(payload), indent=2, sort_keys=True) + "\n")


def read_yaml(
    path: str | Path, what: str, error: type[UserError] = UserError, hint: str = ""
) -> Any:
    """Parsed YAML; a missing or malformed file raises `error` naming the file."""
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise error(f"{what} not found: {path}{hint}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from None


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def write_parquet(path: str | Path, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")


def _empty(values: pd.Series) -> bool:
    return bool((values.fillna("").str.strip() == "").all())


def csv_options(layout: CsvLayout) -> dict[str, Any]:
    """pandas options for a CSV file's cells as text, laid out as `layout` says. No header or
    index guessing: the names come from `csv_names`, and a first column is never taken for an
    index (a trailing delimiter must not shift the columns)."""
    return {
        **RAW_CSV_OPTIONS,
        "header": None,
        "index_col": False,
        "sep": layout.delimiter,
        "encoding": layout.encoding,
    }


def csv_names(source: str | Path | IO[bytes], layout: CsvLayout) -> list[str]:
    """The file's column names: its header row without surrounding whitespace, or the
    layout's `names` when it has none."""
    import pandas as pd

    if not layout.header:
        return list(layout.names or ())
    first = pd.read_csv(source, nrows=1, **csv_options(layout)).iloc[0]
    names = ["" if pd.isna(v) else str(v).strip() for v in first]
    if layout.index and names and not names[0]:
        names[0] = INDEX_COLUMN
    return names


def write_csv_text(path: str | Path, cells: pd.DataFrame, layout: CsvLayout) -> None:
    """Text cells written as `layout` lays a file out, so `read_csv_text` reads them back:
    without a header, the columns in `layout.names` order; with `index`, a row index first."""
    if not layout.header:
        cells = cells.reindex(columns=list(layout.names or ()), fill_value="")
    with atomic_path(path) as tmp:
        cells.reset_index(drop=True).to_csv(
            tmp,
            index=layout.index,
            sep=layout.delimiter,
            header=layout.header,
            encoding=layout.encoding,
        )


def read_csv_text(source: str, layout: CsvLayout) -> tuple[pd.DataFrame, bool]:
    """CSV cells as text, laid out as `layout` says; also whether an empty last column was
    dropped (every row ends with the delimiter: a column without a name or a value).

    Header names are read without surrounding whitespace; duplicate or empty names and a
    header whose width does not match the rows are errors that name them.
    """
    import pandas as pd

    names = csv_names(source, layout)
    try:
        body = pd.read_csv(source, skiprows=int(layout.header), **csv_options(layout))
    except pd.errors.EmptyDataError:
        raise TableReadError(f"{source}: file has no data rows") from None
    trailing = False
    if body.shape[1] == len(names) + 1 and _empty(body.iloc[:, -1]):
        body, trailing = body.iloc[:, :-1], True
    elif body.shape[1] == len(names) and names and not names[-1] and _empty(body.iloc[:, -1]):
        body, names, trailing = body.iloc[:, :-1], names[:-1], True
    if body.shape[1] != len(names):
        what = "header row" if layout.header else "contract's csv.names"
        title = layout.header and len(names) < body.shape[1]
        raise TableReadError(
            f"{source}: the {what} has {len(names)} columns but the data rows have "
            f"{body.shape[1]} (delimiter {layout.delimiter!r}); check the delimiter and the header"
            + ("; a title or note line above the header does this: remove it" if title else "")
        )
    if names and names[0] == INDEX_COLUMN:
        body, names = body.iloc[:, 1:], names[1:]
    unnamed = [str(i + 1) for i, name in enumerate(names) if not name]
    if unnamed:
        raise TableReadError(f"{source}: column(s) {', '.join(unnamed)} have no name in the header")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise TableReadError(
            f"{source}: duplicate column names {duplicates}: every column needs its own name; "
            "rename them in the file"
        )
    body.columns = names
    return without_blank_rows(body), trailing  # pandas' RangeIndex, renumbered when rows go


def without_blank_rows(cells: pd.DataFrame) -> pd.DataFrame:
    """Rows of nothing but delimiters (`,,,`, what a spreadsheet exports below its data) are
    not data: read, they would be rows with every value missing, the target's too."""
    blank = (cells == "").all(axis=1)
    return cells[~blank].reset_index(drop=True) if blank.any() else cells


def _read_parquet(
    source: str, columns: Sequence[str] | None, categorical: Sequence[str]
) -> pd.DataFrame:
    """The file's `columns` (None or none of them: every column), its `categorical` columns
    as pandas categoricals, straight from Parquet's dictionary encoding. Arrow's memory pool
    keeps what the read freed unless told: it is given back at once."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    present = set(pq.read_schema(source).names) if columns is not None or categorical else set()
    if columns is not None:
        columns = [name for name in columns if name in present] or None
    dictionary = [name for name in categorical if name in present]
    frame = pd.read_parquet(source, columns=columns, read_dictionary=dictionary or None)
    pa.default_memory_pool().release_unused()
    return frame


def read_table(
    path: str | Path,
    raw_text: bool = False,
    layout: CsvLayout | None = None,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a CSV or Parquet file (or URL) with errors that say which file and why.

    `raw_text=True` reads CSV cells as the text the user wrote (no type or missing-value
    guessing), laid out as `layout` says (the contract's `csv` section; default: comma
    separated with a header row): raw data is interpreted by the contract alone
    (gitops_ml.coercion).

    `columns` keeps only those of the file's columns (a Parquet file never reads the others
    into memory); a named column the file lacks is left for the caller's check to name, and a
    file with none of them is read whole. `categorical` columns are read as pandas
    categoricals: a small code per row and each distinct value once, where a string per row
    costs tens of bytes (ignored with `raw_text`).
    """
    import pandas as pd

    source = str(path)
    # pyarrow opens files in C++, unseen by Python's "open" audit event: announce the read, so
    # the stage-dependency audit (tests/project) sees every data file a stage reads.
    sys.audit("gitops_ml.read", source)
    is_url = source.startswith(("http://", "https://", "s3://", "gs://"))
    if not is_url:
        p = Path(source)
        if not p.exists():
            raise TableReadError(f"{source}: file not found")
        if p.is_file() and p.stat().st_size == 0:
            raise TableReadError(f"{source}: file is empty")
    suffix = source.lower().split("?")[0]
    try:
        if suffix.endswith((".parquet", ".pq")):
            frame = _read_parquet(source, columns, categorical)
        elif suffix.endswith((".csv", ".csv.gz", ".txt")):
            if raw_text:
                frame, _ = read_csv_text(source, layout or CsvLayout())
            else:
                frame = pd.read_csv(source, dtype=dict.fromkeys(categorical, "category"))
        else:
            raise TableReadError(f"{source}: unsupported file type; use .csv or .parquet")
    except TableReadError:
        raise
    except pd.errors.EmptyDataError:
        raise TableReadError(f"{source}: file is empty") from None
    except UnicodeDecodeError as exc:
        encoding = (layout or CsvLayout()).encoding
        raise TableReadError(
            f"{source}: not {encoding} text (byte 0x{exc.object[exc.start]:02x}); set "
            "csv.encoding in the data contract to the file's encoding, e.g. cp1252 (`gitops-ml "
            "schema infer` detects it)"
        ) from None
    except Exception as exc:  # parser errors come in many types; all mean "unreadable"
        raise TableReadError(f"{source}: cannot read: {type(exc).__name__}: {exc}") from None
    if frame.empty:
        raise TableReadError(f"{source}: file has no data rows")
    kept = [name for name in columns or () if name in frame.columns]
    return frame[kept] if kept else frame
