"""Streamed reading of the current window: CSV, Parquet or the serving JSON-lines log, in chunks.

The drift check must handle 10 M rows without holding them, so every reader yields bounded
chunks (Parquet row batches, CSV chunks, batches of log lines), already checked against the data
contract. Raw values are read exactly as the pipeline reads its training data: through
`gitops_ml.coercion.parse_column` with the contract's encoding, so "Yes"/"No", 0/1 and " " mean
in a production window what they meant in training. A missing column, a value that cannot be
read or an empty file is a UserError naming the file, the column, the count and an example.
"""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from gitops_ml.coercion import parse_column
from gitops_ml.contract import WHITESPACE, Column, Contract, Encoding
from gitops_ml.errors import UserError
from gitops_ml.io import csv_names, csv_options, read_table, without_blank_rows
from gitops_ml.model_view import model_frame, onnx_feeds
from gitops_ml.monitor.outcomes import KnownOutcomes, OutcomeJoin
from gitops_ml.monitor.watched import classes_hint, outcome_codes, outcome_values, watch
from gitops_ml.monitor.windows import UNREADABLE, Source, open_source, readable

Shown = str | Source  # how an error names the data it is about

PARQUET = (".parquet", ".pq")
CSV = (".csv", ".csv.gz", ".txt")
JSONL = (".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz", ".log")
SUPPORTED = PARQUET + CSV + JSONL
MAX_SKIPPED_EXAMPLES = 5
LOG_BLOCK_BYTES = 16 * 1024 * 1024  # decompressed prediction log read (and held) at a time


class CurrentDataError(UserError, ValueError):
    """The current window is missing, empty, lacks columns or holds values of the wrong type."""


@dataclass
class Chunk:
    """Up to `chunk_rows` rows: feature columns by name, and predictions/labels when known.

    Numeric features are float64 arrays (NaN = missing); categorical ones stay as read (a pandas
    Series or an Arrow array) because counting them needs no conversion. No DataFrame is built
    unless the model has to score the rows. `predictions` have the shape gitops_ml.tasks gives
    them; `labels` are the outcomes as float codes (gitops_ml.monitor.watched).
    """

    columns: dict[str, Any]
    rows: int
    predictions: np.ndarray | None = None
    labels: np.ndarray | None = None
    skipped_lines: int = 0  # log lines that are not valid JSON (torn writes), since the last chunk
    skipped_examples: tuple[str, ...] = ()  # "file:line" of the first few
    ids: np.ndarray | None = None  # each log line's id and time (epoch seconds, NaN when it
    logged_at: np.ndarray | None = None  # has none), read for the outcome join (`keys`)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, labels: np.ndarray | None = None) -> Chunk:
        return cls({str(c): frame[c] for c in frame.columns}, len(frame), labels=labels)

    @property
    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {k: v.to_pandas() if isinstance(v, pa.Array) else v for k, v in self.columns.items()}
        )


def expand_sources(pattern: str) -> list[Path]:
    """A file, a directory (its supported files) or a glob, sorted for deterministic reports."""
    if any(ch in pattern for ch in "*?["):
        paths = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
        paths = [p for p in paths if p.is_file()]
        if not paths:
            raise CurrentDataError(f"{pattern}: no file matches this pattern")
    else:
        path = Path(pattern)
        if path.is_dir():
            paths = sorted(p for p in path.rglob("*") if p.name.lower().endswith(SUPPORTED))
            if not paths:
                raise CurrentDataError(f"{pattern}: directory holds no CSV/Parquet/JSONL file")
        elif path.is_file():
            paths = [path]
        else:
            raise CurrentDataError(f"{pattern}: file not found")
    for path in paths:
        if not path.name.lower().endswith(SUPPORTED):
            raise CurrentDataError(
                f"{path}: unsupported file type; use .parquet, .csv or JSON lines (.jsonl)"
            )
        if path.stat().st_size == 0:
            raise CurrentDataError(f"{path}: file is empty")
    return paths


def _require_columns(present: list[str] | set[str], contract: Contract, source: Shown) -> None:
    missing = [name for name in contract.feature_names if name not in present]
    if missing:
        raise CurrentDataError(
            f"{source}: missing feature column(s) {missing} required by the data contract"
        )


def _unreadable(
    source: Shown, column: Column, raw: pd.Series, bad: np.ndarray, hint: str = ""
) -> CurrentDataError:
    example = raw[bad].iloc[0]
    return CurrentDataError(
        f"{source}: column {column.name!r} must be {column.type} but {int(bad.sum())} "
        f"value(s) in this chunk cannot be read as {column.type} with the contract's "
        f"encoding (e.g. {example!r}){hint}"
    )


def parse_feature(values: pd.Series, column: Column, encoding: Encoding, source: Shown) -> Any:
    """One feature through the pipeline's coercion: float64 (NaN = missing) for numeric
    columns, text with missing values for categories; an unreadable value is an error."""
    if column.type in ("float", "int") and _is_text(values):
        fast = _cast_text(pa.array(values), column, encoding)
        if fast is not None:
            return fast
    parsed = parse_column(values, column.type, encoding)
    if parsed.bad.any():
        raise _unreadable(source, column, values, parsed.bad)
    if column.is_categorical:
        return parsed.values
    return parsed.values.to_numpy(dtype=np.float64, na_value=np.nan)


def normalise(frame: pd.DataFrame, contract: Contract, source: Shown) -> dict[str, Any]:
    """Every feature of `frame` read with the contract's encoding (see parse_feature)."""
    return {
        column.name: parse_feature(frame[column.name], column, contract.encoding, source)
        for column in contract.features
    }


def canonical_frame(frame: pd.DataFrame, contract: Contract, source: Shown) -> pd.DataFrame:
    """The contract's columns of a raw frame as typed values, read like the training data
    (simulate --train, retraining data); every feature must be there, the rest may not."""
    _require_columns(list(frame.columns), contract, source)
    out: dict[str, pd.Series] = {}
    for column in contract.columns:
        if column.name in frame.columns:
            parsed = parse_column(frame[column.name], column.type, contract.encoding)
            if parsed.bad.any():
                raise _unreadable(source, column, frame[column.name], parsed.bad)
            out[column.name] = parsed.values
    return pd.DataFrame(out)


def parse_labels(values: pd.Series | None, contract: Contract, source: Shown) -> np.ndarray | None:
    """The outcomes as float codes (NaN = not known yet), read as the data spells the target
    (gitops_ml.monitor.watched.outcome_codes); a value that is not one is an error."""
    if values is None:
        return None
    codes, bad = outcome_codes(values, contract)
    if bad.any():
        target = contract.column(contract.target)
        raw = values.reset_index(drop=True)
        raise _unreadable(source, target, raw, bad, classes_hint(contract))
    return codes


def _scores(values: pd.Series, source: Shown) -> np.ndarray:
    """Logged predictions as floats; anything else in the log's prediction is an error."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(numbers) & values.notna().to_numpy()
    if bad.any():
        raise CurrentDataError(
            f"{source}: {int(bad.sum())} logged prediction(s) are not numbers "
            f"(e.g. {values[bad].iloc[0]!r})"
        )
    return numbers


def _arrow_fits(values: pa.Array, column: Column) -> bool:
    """Arrow types that already mean what the contract type means: cast in C++, no parsing."""
    kind = values.type
    if column.type == "float":
        return pa.types.is_integer(kind) or pa.types.is_floating(kind)
    if column.type == "int":
        return pa.types.is_integer(kind)
    if column.type == "bool":
        return pa.types.is_boolean(kind)
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _is_text(values: pd.Series) -> bool:
    """A pandas string dtype (CSV cells): only text, so Arrow can take it as it is."""
    return values.dtype != object and pd.api.types.is_string_dtype(values.dtype)


def _cast_text(text: pa.Array, column: Column, encoding: Encoding) -> np.ndarray | None:
    """Numbers written as text, converted by Arrow's C++ cast: what coercion.parse_column gives,
    in a fraction of the time. None when any cell needs the full reading (whitespace, a word,
    2.5 in an int column …), which then reports or accepts it exactly as validate does."""
    if encoding.thousands:  # grouped digits are checked group by group: the full reading
        return None
    text = _arrow_category(text, encoding)
    if encoding.decimal_comma:  # 12,5 as 12.5; a point is no part of such a number
        if pc.any(pc.match_substring(text, ".")).as_py():
            return None
        text = pc.replace_substring(text, ",", ".")
    try:
        numbers = pc.cast(text, pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if pc.any(pc.is_nan(numbers)).as_py():  # "nan" that is not a missing token: unreadable
        return None
    values = numbers.to_numpy(zero_copy_only=False)  # nulls become NaN
    if column.type == "int":
        present = values[~np.isnan(values)]
        if not (np.isfinite(present).all() and (present == np.round(present)).all()):
            return None
    return np.asarray(values, dtype=np.float64)


def _arrow_category(values: pa.Array, encoding: Encoding) -> pa.Array:
    """Text categories stay Arrow (counted in C++), stripped as the contract says; the
    contract's missing tokens become null."""
    if encoding.strip:
        values = pc.utf8_trim(values, characters=WHITESPACE)
    distinct = pc.unique(values).to_pylist()
    tokens = [v for v in distinct if isinstance(v, str) and encoding.is_missing(v)]
    if not tokens:
        return values
    is_token = pc.is_in(values, value_set=pa.array(tokens, type=values.type))
    return pc.if_else(is_token, pa.scalar(None, type=values.type), values)


def _arrow_columns(batch: pa.RecordBatch, contract: Contract, source: Shown) -> dict[str, Any]:
    """Straight from Arrow when the stored type already fits; otherwise the pandas coercion."""
    out: dict[str, Any] = {}
    for column in contract.features:
        values = batch.column(column.name)
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        if not _arrow_fits(values, column):  # e.g. "Yes"/"No" or " " where numbers belong
            out[column.name] = parse_feature(values.to_pandas(), column, contract.encoding, source)
        elif column.is_categorical:
            out[column.name] = _arrow_category(values, contract.encoding)
        else:
            # Arrow gives NumPy floats with NaN for nulls.
            out[column.name] = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    return out


def _only(contract: Contract, names: list[str]) -> Contract:
    return Contract(
        contract.name,
        tuple(c for c in contract.columns if c.name in names),
        encoding=contract.encoding,
    )


def _open_parquet(path: Source, contract: Contract) -> pq.ParquetFile:
    try:
        handle = pq.ParquetFile(
            path if isinstance(path, Path) else open_source(path, decompress=False)
        )
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise CurrentDataError(f"{path}: cannot read as Parquet: {exc}") from None
    _require_columns(handle.schema_arrow.names, contract, path)
    return handle


def _parquet_rows(path: Source, contract: Contract, chunk_rows: int) -> Iterator[Chunk]:
    """Row batches with every feature: what the model needs to score them."""
    handle = _open_parquet(path, contract)
    target = contract.target if contract.target in handle.schema_arrow.names else None
    wanted = [*contract.feature_names, *([target] if target else [])]
    for batch in handle.iter_batches(batch_size=chunk_rows, columns=wanted):
        labels = parse_labels(batch.column(target).to_pandas(), contract, path) if target else None
        yield Chunk(_arrow_columns(batch, contract, path), batch.num_rows, labels=labels)


def _parquet_columns(path: Source, contract: Contract) -> Iterator[Chunk]:
    """One column of one row group at a time: memory stays at one column chunk however many
    rows a row group holds. The first column of each row group carries its row count."""
    handle = _open_parquet(path, contract)
    for group in range(handle.metadata.num_row_groups):
        rows = handle.metadata.row_group(group).num_rows
        for index, name in enumerate(contract.feature_names):
            table = handle.read_row_group(group, columns=[name])
            batch = pa.RecordBatch.from_arrays([table.column(0).combine_chunks()], names=[name])
            columns = _arrow_columns(batch, _only(contract, [name]), path)
            yield Chunk(columns, rows if index == 0 else 0)


# A name no column has: the place of the empty field after a trailing delimiter, never read.
_TRAILING = "\x00trailing"


def _read_csv(path: Source, contract: Contract, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """A CSV window laid out as the contract's `csv` section says (as ingest reads it)."""
    layout = contract.csv
    options = csv_options(layout)
    try:
        with readable(path) as text:
            header = csv_names(text, layout)
        with readable(path) as text:
            width = pd.read_csv(text, skiprows=int(layout.header), nrows=1, **options).shape[1]
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise CurrentDataError(f"{path}: cannot read as CSV: {exc}") from None
    _require_columns(header, contract, path)
    wanted = {*contract.feature_names, contract.target}
    try:
        with readable(path) as text:
            yield from pd.read_csv(
                text,
                chunksize=chunk_rows,
                skiprows=int(layout.header),
                names=[*header, _TRAILING][: max(width, len(header))],
                usecols=lambda c: c in wanted,
                **options,
            )
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CurrentDataError(
            f"{path}: cannot read as CSV in {layout.encoding} (csv.encoding): {exc}"
        ) from None


@dataclass
class _Skipped:
    """Torn log lines met since the last chunk: a count and the first few places."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, place: str) -> None:
        self.count += 1
        if len(self.examples) < MAX_SKIPPED_EXAMPLES:
            self.examples.append(place)


def _blocks(path: Source) -> Iterator[tuple[bytes, int]]:
    """The (decompressed) file in blocks of whole lines of about LOG_BLOCK_BYTES, each with the
    number of its first line: memory stays bounded whatever the file's size (a line is read
    whole, however long)."""
    with open_source(path) as handle:
        first = 1
        while block := handle.read(LOG_BLOCK_BYTES):
            if not block.endswith(b"\n"):
                block += handle.readline()
            yield block, first
            first += block.count(b"\n")


def _log_schema(contract: Contract, typed_features: bool) -> pa.Schema:
    """The documented log line's types, so Arrow neither guesses (a date-like category as a
    timestamp) nor accepts what the contract would not (a word in a numeric column). Without
    `typed_features` the features keep the JSON types they have (raw tokens such as "Yes" or
    " " where the contract has bool or float), categories still read as text."""
    kinds = {"float": pa.float64(), "int": pa.int64(), "bool": pa.bool_()}
    features = [
        pa.field(c.name, kinds.get(c.type, pa.string()))
        for c in contract.features
        if typed_features or (c.is_categorical and c.type != "bool")
    ]
    logged = watch(contract)
    number = pa.float64()
    prediction = pa.struct(
        [pa.field(logged.logged, pa.list_(number) if logged.per_class else number)]
    )
    fields = [pa.field("ts", pa.string()), pa.field("features", pa.struct(features))]
    if typed_features:
        fields += [pa.field("id", pa.string()), pa.field("prediction", prediction)]
    return pa.schema(fields)


# The first line of a block holds something other than an object (after blank lines and a
# byte order mark, which Arrow reads past).
_NOT_AN_OBJECT_FIRST = re.compile(rb"(?>(?:\xef\xbb\xbf)?\s*)[^{]")


def _read_log_block(block: bytes, contract: Contract) -> pa.Table | None:
    """One block of log lines as an Arrow table (Arrow's JSON reader, in C++): with the
    contract's types, else with the types the values have; None when Arrow refuses both (a
    torn line, or a column whose values mix JSON types in this block). A block whose first
    line is no object is refused before Arrow sees it: Arrow refuses one that starts with a
    number, text or list, and crashes the process (pyarrow 26) on one that starts with null."""
    if _NOT_AN_OBJECT_FIRST.match(block):
        return None
    for typed in (True, False):
        options = pj.ParseOptions(
            explicit_schema=_log_schema(contract, typed), unexpected_field_behavior="infer"
        )
        try:
            table = pj.read_json(pa.BufferReader(block), parse_options=options)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            continue
        if not typed or _complete(table, contract):
            return table
    return None


def _complete(table: pa.Table, contract: Contract) -> bool:
    """A typed read stands when every line has features and no feature is absent from all of
    them (the untyped read then tells an absent feature from a missing one)."""
    features = table.column("features")
    return features.null_count == 0 and not any(
        pc.all(pc.is_null(pc.struct_field(features, name))).as_py()
        for name in contract.feature_names
    )


def _log_tables(
    block: bytes, first: int, path: Source, contract: Contract, skipped: _Skipped
) -> Iterator[pa.Table]:
    """The lines of a block as Arrow tables. A block Arrow refuses is read in halves, down to
    single lines: a line Arrow refuses on its own is what a torn write leaves (a crash or a
    full disk mid-line), skipped and counted with its number, not allowed to reject the rest."""
    table = _read_log_block(block, contract)
    if table is not None:
        if table.num_rows:
            yield table
        return
    lines = block.count(b"\n") + (not block.endswith(b"\n"))
    if lines <= 1:
        if block.strip():
            skipped.add(f"{path.name}:{first}")
        return
    middle = block.find(b"\n", len(block) // 2 - 1)
    if middle in (-1, len(block) - 1):
        middle = block.rfind(b"\n", 0, len(block) - 1)
    head, tail = block[: middle + 1], block[middle + 1 :]
    yield from _log_tables(head, first, path, contract, skipped)
    yield from _log_tables(tail, first + head.count(b"\n"), path, contract, skipped)


def _log_chunks(path: Source, contract: Contract, chunk_rows: int, keys: bool) -> Iterator[Chunk]:
    """The prediction log's one reader: block by block through Arrow's JSON reader, torn
    lines skipped and counted, values read with the contract's encoding (see _arrow_columns),
    labels from the lines themselves or, with `keys`, none but each line's id and time."""
    for block, first in _blocks(path):
        skipped = _Skipped()
        for table in _log_tables(block, first, path, contract, skipped):
            yield from _table_chunks(table, path, contract, chunk_rows, keys)
        if skipped.count:
            yield Chunk(
                {}, 0, skipped_lines=skipped.count, skipped_examples=tuple(skipped.examples)
            )


def _log_columns(
    table: pa.Table, path: Source, contract: Contract, keys: bool
) -> tuple[pa.StructArray, pd.Series | None]:
    """The features of log lines read by Arrow (the documented lines' `features`, or flat
    records: the features at the top level) and their raw labels: the line's `label`, or the
    target among its features; None when there is none, and with `keys` (outcomes are joined
    by id instead, never a label the line carries)."""
    features = table.column("features").combine_chunks()
    if features.null_count == len(features):
        flat = [name for name in table.column_names if name != "features"]
        columns = [table.column(name).combine_chunks() for name in flat]
        features = pa.StructArray.from_arrays(columns, flat)
    present = {f.name for f in features.type}
    _require_columns(present, contract, path)
    if keys:
        return features, None
    if "label" in table.column_names:
        return features, table.column("label").to_pandas().astype(object)
    if contract.target in present:
        return features, features.field(contract.target).to_pandas().astype(object)
    return features, None


def _table_chunks(
    table: pa.Table,
    path: Source,
    contract: Contract,
    chunk_rows: int,
    keys: bool,
) -> Iterator[Chunk]:
    """Log lines read by Arrow as chunks; predictions from the log's `prediction`."""
    names = contract.feature_names
    features, labels = _log_columns(table, path, contract, keys)
    ids, logged_at = _keys(table) if keys else (None, None)
    prediction = (
        table.column("prediction").combine_chunks() if "prediction" in table.column_names else None
    )
    for start in range(0, table.num_rows, chunk_rows):
        part = features.slice(start, chunk_rows)
        batch = pa.RecordBatch.from_arrays([part.field(name) for name in names], names=names)
        raw = None if labels is None else labels.iloc[start : start + chunk_rows]
        # A log without outcomes has no labels, not missing ones.
        yield Chunk(
            _arrow_columns(batch, contract, path),
            len(part),
            predictions=_logged_predictions(prediction, start, chunk_rows, path, contract),
            labels=None
            if raw is None or raw.isna().all()
            else parse_labels(raw.reset_index(drop=True), contract, path),
            ids=None if ids is None else ids[start : start + chunk_rows],
            logged_at=None if logged_at is None else logged_at[start : start + chunk_rows],
        )


def _keys(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Each log line's id (text; None when it has none) and time in epoch seconds (NaN when
    it has none or it is not an ISO 8601 time, naive times UTC)."""
    ids = pc.cast(_column(table, "id"), pa.string()).to_numpy(zero_copy_only=False)
    stamps = pd.to_datetime(
        _column(table, "ts").to_pandas(), utc=True, errors="coerce", format="ISO8601"
    )
    logged_at = (stamps - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return ids.astype(object), logged_at.to_numpy(dtype=np.float64, na_value=np.nan)


def _column(table: pa.Table, name: str) -> pa.ChunkedArray:
    """A top-level column of the log lines, all null when no line has it."""
    if name in table.column_names:
        return table.column(name)
    return pa.chunked_array([pa.nulls(table.num_rows)])


def _logged_predictions(
    prediction: pa.Array | None, start: int, rows: int, path: Source, contract: Contract
) -> np.ndarray | None:
    """The task's logged predictions (`prediction.score`, `.value` or `.probabilities`, see
    gitops_ml.monitor.watched) as floats in their task's shape; None when no line has them."""
    logged = watch(contract)
    key = logged.logged
    if prediction is None or key not in {f.name for f in prediction.type}:
        return None
    values = pc.struct_field(prediction.slice(start, rows), key)
    if values.null_count == len(values):
        return None
    if logged.per_class:
        return _logged_probabilities(values, len(contract.classes), path, key)
    if pa.types.is_floating(values.type) or pa.types.is_integer(values.type):
        return pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)  # nulls: NaN
    return _scores(values.to_pandas().astype(object), path)


def _logged_probabilities(values: pa.Array, classes: int, path: Source, key: str) -> np.ndarray:
    """One probability per class a line, (n, k) with NaN rows where a line has none."""
    out = np.full((len(values), classes), np.nan)
    if not pa.types.is_list(values.type):
        raise CurrentDataError(f"{path}: logged prediction.{key} must be a list of numbers")
    lengths = pc.fill_null(pc.list_value_length(values), 0).to_numpy(zero_copy_only=False)
    present = values.is_valid().to_numpy(zero_copy_only=False)
    wrong = present & (lengths != classes)
    if wrong.any():
        raise CurrentDataError(
            f"{path}: {int(wrong.sum())} logged prediction.{key} list(s) do not hold one "
            f"probability for each of the {classes} classes"
        )
    flat = pc.cast(pc.list_flatten(values), pa.float64())
    out[present] = flat.to_numpy(zero_copy_only=False).reshape(-1, classes)  # nulls: NaN
    return out


def iter_chunks(
    sources: Sequence[Source],
    contract: Contract,
    chunk_rows: int,
    rows_together: bool = True,
    keys: bool = False,
    require_rows: bool = True,
) -> Iterator[Chunk]:
    """Every row of every source once, as normalised chunks of at most `chunk_rows` rows.

    With `rows_together=False` (no model to score: features only) Parquet is read column by
    column instead; a chunk then holds one feature and `rows` counts only new rows. With `keys`
    (the outcome join) only prediction logs are read, each chunk with its lines' ids and times
    and without their labels. A file that
    breaks while being read (a corrupt Parquet page, a truncated gzip) is an error naming it, and
    so are sources without a data row, unless `require_rows` is False (one part of a window,
    whose other parts may hold them: gitops_ml.monitor.drift's map).
    """
    total = skipped = 0
    for path in sources:
        try:
            for chunk in _source_chunks(path, contract, chunk_rows, rows_together, keys):
                total += chunk.rows
                skipped += chunk.skipped_lines
                yield chunk
        except UNREADABLE as exc:
            raise CurrentDataError(f"{path}: cannot read: {type(exc).__name__}: {exc}") from None
    if total == 0 and require_rows:
        raise no_rows(sources, skipped)


def no_rows(sources: Sequence[Source], skipped: int) -> CurrentDataError:
    """The error of a window without a data row (`skipped` torn log lines)."""
    torn = f" ({skipped} line(s) that are not valid JSON skipped)" if skipped else ""
    return CurrentDataError(f"{', '.join(map(str, sources))}: no data rows{torn}")


def _source_chunks(
    path: Source,
    contract: Contract,
    chunk_rows: int,
    rows_together: bool,
    keys: bool = False,
) -> Iterator[Chunk]:
    lower = path.name.lower()
    if keys and not lower.endswith(JSONL):
        raise CurrentDataError(
            f"{path}: --labels joins outcomes to the prediction log (JSON lines with an id); "
            "this file is not one"
        )
    if lower.endswith(PARQUET):
        if rows_together:
            yield from _parquet_rows(path, contract, chunk_rows)
        else:
            yield from _parquet_columns(path, contract)
        return
    if not lower.endswith(CSV):
        yield from _log_chunks(path, contract, chunk_rows, keys)
        return
    for frame in _read_csv(path, contract, chunk_rows):
        yield from frame_chunks(without_blank_rows(frame), contract, str(path))


def window_table(
    sources: Sequence[Source], contract: Contract, join: OutcomeJoin | None = None
) -> pd.DataFrame:
    """Every row of the window as one typed table in the contract's columns, what
    `gitops-ml retrain --window` reads: a CSV/Parquet file's own columns; a prediction log's
    features with each prediction's id and time, labelled with its line's label or, with
    `join`, the outcome joined to it (None until known). Torn log lines are skipped."""
    outcomes = None if join is None else join.known()
    frames = []
    for path in sources:
        if path.name.lower().endswith(JSONL):
            raw = _log_table(path, contract, outcomes)
        else:
            raw = read_table(str(path), raw_text=True, layout=contract.csv)
        frames.append(canonical_frame(raw, contract, path))
    return pd.concat(frames, ignore_index=True)


def _log_table(path: Source, contract: Contract, outcomes: KnownOutcomes | None) -> pd.DataFrame:
    """A prediction log's rows as raw values in the contract's columns: the features, the
    label (the line's, or the outcome looked up in `outcomes`), each prediction's id and time;
    torn lines skipped."""
    frames = []
    for block, first in _blocks(path):
        for table in _log_tables(block, first, path, contract, _Skipped()):
            features, labels = _log_columns(table, path, contract, outcomes is not None)
            frame = pa.Table.from_struct_array(features).to_pandas()
            if outcomes is not None:
                frame[contract.target] = outcome_values(outcomes.codes(*_keys(table)), contract)
            else:
                frame[contract.target] = None if labels is None else labels.to_numpy()
            for name, field_name in ((contract.id_column, "id"), (contract.timestamp, "ts")):
                if name:
                    frame[name] = _column(table, field_name).to_pandas().to_numpy()
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def frame_chunks(frame: pd.DataFrame, contract: Contract, source: str = "<frame>") -> list[Chunk]:
    """An in-memory frame as one chunk (tests, the profile stage, notebooks)."""
    _require_columns(list(frame.columns), contract, source)
    columns = normalise(frame, contract, source)
    labels = parse_labels(frame.get(contract.target), contract, source)
    return [Chunk(columns, len(frame), labels=labels)]


class ModelScorer:
    """The ONNX model's predictions in the task's shape (gitops_ml.tasks), a chunk at a time."""

    def __init__(self, path: str | Path, contract: Contract) -> None:
        import hashlib

        from gitops_ml.onnx_model import check_signature, onnx_session, read_model

        data = read_model(path)
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.session = onnx_session(data, str(path))
        check_signature(self.session, contract, str(path))
        self.contract = contract

    def score(self, frame: pd.DataFrame) -> np.ndarray:
        from gitops_ml.onnx_model import predict  # imported by __init__ already: a lookup

        feeds = onnx_feeds(model_frame(frame, self.contract), self.contract)
        return predict(self.session, feeds, self.contract.task)
