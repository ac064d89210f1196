"""simulate: production-like windows for any contract, drawn from the reference profile.

A fork's data is not the demo generator's, so simulated traffic comes from what every project
has: the reference profile (inverse CDF on each numeric feature's quantile grid, category
counts, missing rates) or, with `--train`, rows resampled from the training data. Changes are
scenarios written as data, each repeatable and seeded:

    none                      the reference as it is
    shift:COL=+20%            numeric feature scaled by +20 % (`=+3`: moved by 3 units,
                              `=+0.5sd`: by half the reference standard deviation)
    new_category:COL[=0.3]    that share of rows gets a category the reference never had
    missing:COL=0.3           the feature's missing rate becomes 0.3
    label_shift:+0.1          the outcomes move: binary the positive rate by +0.1, regression
                              the values by 0.1 target standard deviations, multiclass a
                              share of 0.1 of the outcomes to the next class

COL may be left out (`shift:+1sd`, `new_category`, `missing=0.3`): the first feature in
contract order that fits is used, so a demo needs no column name. Labels (`--labels`) are drawn
per task from the model's predictions (`--model`: binary Bernoulli of the score, multiclass a
class by its probabilities, regression the predicted value plus a normal error of the test
RMSE) or else from the profile's target reference (rate, class shares, quantiles). Columns drawn
from the profile are independent: feature drift is faithful, while the model's scores (and so
prediction and performance drift) need the features' joint distribution, i.e. `--train`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.coercion import parse_column
from gitops_ml.config import DriftParams, did_you_mean, load_params
from gitops_ml.contract import Column, Contract, load_contract
from gitops_ml.errors import UserError
from gitops_ml.monitor.profile import load_profile
from gitops_ml.monitor.readers import ModelScorer, canonical_frame
from gitops_ml.monitor.watched import watch
from gitops_ml.release.versions import model_name_of

SCENARIO_KINDS: tuple[str, ...] = ("none", "shift", "new_category", "missing", "label_shift")
NEW_CATEGORY = "simulated-new-category"
NEW_CATEGORY_SHARE = 0.3
DEFAULT_SEED = 20260101
DEFAULT_DAYS = 30
_SCENARIO = re.compile(r"^(?P<kind>[a-z_]+)(?::(?P<column>[^=]*?))?(?:=(?P<amount>.+))?$")
_AMOUNT = re.compile(r"^(?P<number>[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)(?P<unit>%|sd)?$")


class ScenarioError(UserError, ValueError):
    """A --scenario that does not parse or does not fit the contract."""


@dataclass(frozen=True)
class Scenario:
    """One change to the reference: `kind` on `column` by `amount` ("%": relative to each
    value, "sd": in reference standard deviations, "": as it is)."""

    kind: str
    column: str | None = None
    amount: float | None = None
    unit: str = ""

    def __str__(self) -> str:
        if self.kind == "none":
            return "none"
        column = f":{self.column}" if self.column else ""
        if self.amount is None:
            return f"{self.kind}{column}"
        number = f"{self.amount * 100:+g}%" if self.unit == "%" else f"{self.amount:+g}{self.unit}"
        if self.kind in ("missing", "new_category"):
            number = f"{self.amount:g}"
        if self.kind == "label_shift" or not self.column:
            return f"{self.kind}:{number}"
        return f"{self.kind}{column}={number}"


def parse_scenario(text: str) -> Scenario:
    """`shift:COL=+20%` → Scenario("shift", "COL", 0.2, unit="%"); errors name the rule."""
    text = text.strip()
    match = _SCENARIO.match(text)
    kind = match["kind"] if match else text
    if kind not in SCENARIO_KINDS:
        raise ScenarioError(
            f"scenario {text!r}: unknown kind {kind!r}{did_you_mean(kind, SCENARIO_KINDS)}; "
            f"expected one of {', '.join(SCENARIO_KINDS)} (e.g. shift:COL=+20%)"
        )
    assert match is not None
    column, raw_amount = match["column"] or None, match["amount"]
    if kind == "label_shift" and column is not None and raw_amount is None:
        column, raw_amount = None, column  # label_shift:+0.1
    left_out = column is not None and raw_amount is None and _AMOUNT.match(column)
    if kind in ("shift", "missing") and left_out:  # shift:+30%, missing:0.3: no column named
        column, raw_amount = None, column
    amount, unit = None, ""
    if raw_amount is not None:
        number = _AMOUNT.match(raw_amount.strip())
        if not number:
            raise ScenarioError(f"scenario {text!r}: {raw_amount!r} is not a number (N, N% or Nsd)")
        unit = number["unit"] or ""
        amount = float(number["number"]) / (100 if unit == "%" else 1)
    scenario = Scenario(kind, column, amount, unit)
    _check_amount(scenario, text)
    return scenario


def _check_amount(scenario: Scenario, text: str) -> None:
    kind, amount = scenario.kind, scenario.amount
    if kind == "none" and (scenario.column or amount is not None):
        raise ScenarioError(f"scenario {text!r}: 'none' takes no column or amount")
    if kind in ("shift", "missing", "label_shift") and amount is None:
        example = {"shift": "shift:COL=+20%", "missing": "missing:COL=0.3"}.get(kind)
        raise ScenarioError(
            f"scenario {text!r}: {kind} needs an amount, e.g. {example or 'label_shift:+0.1'}"
        )
    if amount is None:
        return
    if kind in ("missing", "new_category") and (scenario.unit or not 0 <= amount <= 1):
        raise ScenarioError(f"scenario {text!r}: the share must be in [0, 1], got {amount}")
    if kind == "label_shift" and (scenario.unit or not -1 <= amount <= 1):
        raise ScenarioError(f"scenario {text!r}: the label shift must be in [-1, 1]")
    if kind == "shift" and scenario.unit == "%" and amount <= -1:
        raise ScenarioError(f"scenario {text!r}: a relative shift must be above -100%")


def resolve_scenarios(texts: Iterable[str], contract: Contract) -> list[Scenario]:
    """Parsed scenarios with every column named and checked against the contract."""
    scenarios = [parse_scenario(t) for t in texts] or [Scenario("none")]
    if len(scenarios) > 1 and any(s.kind == "none" for s in scenarios):
        raise ScenarioError("scenario 'none' cannot be combined with other scenarios")
    return [_with_column(s, contract) for s in scenarios]


def _fits(kind: str, column: Column) -> bool:
    if kind == "shift":
        return column.type in ("float", "int")
    if kind == "new_category":
        return column.is_categorical
    return True


def _with_column(scenario: Scenario, contract: Contract) -> Scenario:
    if scenario.kind in ("none", "label_shift"):
        return scenario
    need = {"shift": "float or int", "new_category": "category", "missing": "any"}[scenario.kind]
    if scenario.column is None:
        fitting = [c.name for c in contract.features if _fits(scenario.kind, c)]
        if not fitting:
            raise ScenarioError(f"scenario {scenario}: the contract has no {need} feature")
        scenario = replace(scenario, column=fitting[0])
    names = contract.feature_names
    if scenario.column not in names:
        raise ScenarioError(
            f"scenario {scenario}: {scenario.column!r} is not a feature of the contract"
            f"{did_you_mean(str(scenario.column), names)}"
        )
    if not _fits(scenario.kind, contract.column(str(scenario.column))):
        raise ScenarioError(f"scenario {scenario}: {scenario.kind} needs a {need} feature")
    if scenario.kind == "new_category" and scenario.amount is None:
        scenario = replace(scenario, amount=NEW_CATEGORY_SHARE)
    return scenario


# --------------------------------------------------------------------------------------------
# Drawing rows
# --------------------------------------------------------------------------------------------


def _missing_mask(rate: float, rows: int, rng: np.random.Generator) -> np.ndarray:
    return rng.random(rows) < rate


def draw_numeric(
    ref: dict[str, Any], column: Column, rows: int, rng: np.random.Generator
) -> pd.Series:
    """Inverse CDF on the profile's quantile grid: a cell by its reference share, then a value
    inside it (uniform; whole numbers for int and bool), so every cell, and so every bin the
    drift check uses, keeps its reference share."""
    grid = np.asarray(ref["grid"], dtype=np.float64)
    cells = np.asarray(ref["grid_counts"], dtype=np.float64)
    cell = rng.choice(len(cells), size=rows, p=cells / cells.sum())
    lower = np.concatenate([[grid[0]], grid])[cell]  # cell 0 holds grid[0] only
    upper = np.concatenate([grid, [grid[-1]]])[cell]
    if column.type == "float":
        values = lower + rng.random(rows) * (upper - lower)
    else:  # whole numbers in (lower, upper]; cell 0 is the minimum itself
        low = np.where(cell == 0, lower, np.floor(lower) + 1)
        values = np.floor(low + rng.random(rows) * (np.floor(upper) - low + 1))
        values = np.minimum(values, np.floor(upper))
    total = ref["count"] + ref["missing"]
    values[_missing_mask(ref["missing"] / total if total else 0.0, rows, rng)] = np.nan
    return _typed(pd.Series(values), column)


def draw_categorical(ref: dict[str, Any], rows: int, rng: np.random.Generator) -> pd.Series:
    """Categories by their reference counts (pooled rare ones are not reproduced), and gaps."""
    names = list(ref["categories"])
    counts = np.asarray([ref["categories"][n] for n in names], dtype=np.float64)
    if not names:
        values = np.full(rows, None, dtype=object)
    else:
        values = np.asarray(names, dtype=object)[
            rng.choice(len(names), size=rows, p=counts / counts.sum())
        ]
    total = ref["count"] + ref["missing"]
    values[_missing_mask(ref["missing"] / total if total else 0.0, rows, rng)] = None
    return pd.Series(values, dtype="str")


def _typed(values: pd.Series, column: Column) -> pd.Series:
    """Floats as the pipeline's canonical dtypes: Int64 for int, boolean for bool."""
    if column.type == "int":
        return values.round().astype("Int64")
    if column.type == "bool":
        return values.round().astype("Int64").astype("boolean")
    return values.astype("float64")


def draw_from_profile(
    profile: dict[str, Any], contract: Contract, rows: int, rng: np.random.Generator
) -> pd.DataFrame:
    """`rows` rows of every feature, each drawn independently from its profile entry."""
    refs = {ref["name"]: ref for ref in profile["features"]}
    columns: dict[str, pd.Series] = {}
    for column in contract.features:
        ref = refs[column.name]
        if column.is_categorical:
            columns[column.name] = draw_categorical(ref, rows, rng)
        else:
            columns[column.name] = draw_numeric(ref, column, rows, rng)
    return pd.DataFrame(columns)


def draw_from_training(
    train: pd.DataFrame, contract: Contract, rows: int, rng: np.random.Generator
) -> pd.DataFrame:
    """Whole training rows resampled with replacement: the features keep their joint shape."""
    picks = rng.integers(0, len(train), size=rows)
    return train[contract.feature_names].iloc[picks].reset_index(drop=True)


def apply_scenario(
    frame: pd.DataFrame,
    scenario: Scenario,
    contract: Contract,
    rng: np.random.Generator,
    profile: dict[str, Any],
) -> pd.DataFrame:
    """The window with one feature scenario applied (label_shift acts on the labels later)."""
    if scenario.kind in ("none", "label_shift"):
        return frame
    name = str(scenario.column)
    column = contract.column(name)
    values = frame[name]
    amount = float(scenario.amount or 0.0)
    if scenario.kind == "shift":
        numbers = values.astype("float64")
        if scenario.unit == "%":
            numbers = numbers * (1 + amount)
        else:
            std = next(r["std"] for r in profile["features"] if r["name"] == name)
            numbers = numbers + amount * (std if scenario.unit == "sd" else 1.0)
        # Within the contract's range: serving refuses other values, so no log could hold them.
        numbers = numbers.clip(lower=column.checks.min, upper=column.checks.max)
        frame[name] = _typed(numbers, column)
    elif scenario.kind == "new_category":
        chosen = rng.random(len(frame)) < amount
        frame[name] = values.astype(object).where(~chosen, NEW_CATEGORY).astype("str")
    else:  # missing: the rate becomes `amount` exactly (in expectation)
        gone = rng.random(len(frame)) < amount
        holes = ~gone & values.isna().to_numpy()
        present = values[values.notna().to_numpy()].to_numpy()
        values = values.copy()
        if holes.any() and len(present):  # the reference's own gaps are filled from its values
            values[holes] = present[rng.integers(0, len(present), size=int(holes.sum()))]
        frame[name] = values.mask(gone)
    return frame


@dataclass(frozen=True)
class LabelDraw:
    """What outcomes are drawn from: the model's predictions (None without a model), the
    profile's target reference, the label shift of the scenarios."""

    rows: int
    rng: np.random.Generator
    predictions: np.ndarray | None
    profile: dict[str, Any]
    shift: float
    contract: Contract

    def target(self, key: str) -> dict[str, Any]:
        """The profile's target reference, which must hold `key`."""
        target = self.profile.get("target") or {}
        if key not in target:
            raise UserError(
                "--labels needs --model (labels from its predictions) or a profile with the "
                "target's reference"
            )
        return dict(target)


def _binary_labels(draw: LabelDraw) -> pd.Series:
    """Outcomes ~ Bernoulli(score + shift), or Bernoulli(the profile's target rate + shift)."""
    if draw.predictions is None:
        probability = np.full(draw.rows, float(draw.target("rate")["rate"]))
    else:
        probability = np.asarray(draw.predictions, dtype=np.float64)
    return pd.Series(draw.rng.random(draw.rows) < np.clip(probability + draw.shift, 0.0, 1.0))


def _class_labels(draw: LabelDraw) -> pd.Series:
    """A class per row by the model's probabilities, or by the profile's class shares; a share
    |shift| of the rows then moves to the next class (in the contract's order)."""
    contract, rng = draw.contract, draw.rng
    classes = contract.classes
    probabilities = draw.predictions
    if probabilities is None:
        counts = draw.target("categories")["categories"]
        shares = np.asarray([counts.get(c, 0) for c in classes], dtype=np.float64)
        probabilities = np.tile(shares / shares.sum(), (draw.rows, 1))
    cumulative = np.cumsum(probabilities, axis=1)
    drawn = rng.random(draw.rows)[:, None] * cumulative[:, -1:]
    index = np.minimum((cumulative < drawn).sum(axis=1), len(classes) - 1)
    moved = rng.random(draw.rows) < abs(draw.shift)
    index = np.where(moved, (index + 1) % len(classes), index)
    names = pd.Series(np.asarray(classes, dtype=object)[index])
    return parse_column(names, contract.column(contract.target).type, contract.encoding).values


def _value_labels(draw: LabelDraw) -> pd.Series:
    """The predicted value plus a normal error with the test RMSE (none when the profile holds
    no RMSE), or a value drawn from the profile's target quantiles; moved by shift target
    standard deviations."""
    column = draw.contract.column(draw.contract.target)
    if draw.predictions is None:
        drawn = draw_numeric(draw.target("grid"), column, draw.rows, draw.rng)
        values = drawn.astype("float64").to_numpy()
    else:
        rmse = float(((draw.profile.get("metrics") or {}).get("test") or {}).get("rmse", 0.0))
        values = np.asarray(draw.predictions) + draw.rng.normal(0.0, rmse, draw.rows)
    spread = float((draw.profile.get("target") or {}).get("std", 0.0))
    # Within the contract's range, as shifted features are: real outcomes pass validation, so
    # a retraining window built from these must too.
    moved = pd.Series(values + draw.shift * spread).clip(
        lower=column.checks.min, upper=column.checks.max
    )
    return _typed(moved, column)


# How outcomes are drawn, per task (see the module docstring).
LABELS: dict[str, Callable[[LabelDraw], pd.Series]] = {
    "binary": _binary_labels,
    "multiclass": _class_labels,
    "regression": _value_labels,
}


def draw_labels(draw: LabelDraw) -> pd.Series:
    """The window's outcomes, drawn as the task's table row says."""
    return LABELS[draw.contract.task](draw)


@dataclass(frozen=True)
class Window:
    """A simulated window in the canonical dtypes, and the model's predictions (in the task's
    shape, gitops_ml.tasks) when a model gave them."""

    frame: pd.DataFrame
    predictions: np.ndarray | None
    scenarios: list[Scenario]
    stamps: pd.Series | None = None  # when each row was seen (the log's `ts`)


def simulated_ids(column: Column, seed: int, rows: int) -> list[Any]:
    """Unique ids of the id column's type: `sim-<seed>-<n>` text, or whole numbers from the
    column's minimum for a numeric id (text would fail the contract's validation)."""
    if column.type in ("int", "float"):
        start = 1 if column.checks.min is None else math.ceil(column.checks.min)
        return list(range(start, start + rows))
    return [f"sim-{seed}-{i:08d}" for i in range(rows)]


def simulate_window(
    profile: dict[str, Any],
    contract: Contract,
    rows: int,
    scenarios: Sequence[Scenario],
    seed: int = DEFAULT_SEED,
    labels: bool = False,
    scorer: ModelScorer | None = None,
    train: pd.DataFrame | None = None,
    start: pd.Timestamp | None = None,
    days: int = DEFAULT_DAYS,
) -> Window:
    """The pure core of `gitops-ml simulate`: same arguments, same window."""
    if rows <= 0:
        raise UserError(f"--rows must be positive, got {rows}")
    rng = np.random.default_rng(seed)
    if train is not None:
        frame = draw_from_training(train, contract, rows, rng)
    else:
        frame = draw_from_profile(profile, contract, rows, rng)
    for scenario in scenarios:
        frame = apply_scenario(frame, scenario, contract, rng, profile)
    predictions = scorer.score(frame) if scorer is not None else None
    columns: dict[str, Any] = {}
    if contract.id_column:
        columns[contract.id_column] = simulated_ids(contract.column(contract.id_column), seed, rows)
    stamps = _timestamps(rows, rng, start, days) if start is not None else None
    if contract.timestamp and stamps is not None:  # unknown start: the column is left out
        columns[contract.timestamp] = stamps
    frame = pd.concat([pd.DataFrame(columns), frame], axis=1)
    if labels:
        shift = sum(float(s.amount or 0.0) for s in scenarios if s.kind == "label_shift")
        frame[contract.target] = draw_labels(
            LabelDraw(rows, rng, predictions, profile, shift, contract)
        )
    elif any(s.kind == "label_shift" for s in scenarios):
        raise ScenarioError("label_shift changes the labels: add --labels")
    order = [name for name in contract.names if name in frame.columns]
    return Window(frame[order], predictions, list(scenarios), stamps)


def _timestamps(rows: int, rng: np.random.Generator, start: pd.Timestamp, days: int) -> pd.Series:
    seconds = np.sort(rng.integers(0, max(days, 1) * 86_400, size=rows))
    return pd.Series(start + pd.to_timedelta(seconds, unit="s")).astype("datetime64[us]")


def training_start(
    profile: dict[str, Any], train: pd.DataFrame | None, contract: Contract
) -> pd.Timestamp | None:
    """The day after the training data's last timestamp: traffic comes after training."""
    last = None
    if train is not None and contract.timestamp and contract.timestamp in train.columns:
        last = pd.Timestamp(train[contract.timestamp].max())
    elif (profile.get("timestamp") or {}).get("max"):
        last = pd.Timestamp(profile["timestamp"]["max"])
    return None if last is None or pd.isna(last) else last.normalize() + pd.Timedelta(days=1)


# --------------------------------------------------------------------------------------------
# Writing: Parquet (canonical), CSV (the contract's tokens), the serving prediction log
# --------------------------------------------------------------------------------------------


def encode_csv(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Cells as the contract's users write them: its true/false tokens, its missing token and
    its decimal mark."""
    encoding = contract.encoding
    missing = encoding.missing_values[0] if encoding.missing_values else ""
    out: dict[str, Any] = {}
    for name in frame.columns:
        column = contract.column(name)
        values = frame[name].astype(object)
        if column.type == "bool":
            true, false = _bool_tokens(column, contract)
            values = values.map(lambda v, t=true, f=false: None if pd.isna(v) else t if v else f)
        elif column.type == "datetime":
            values = values.map(lambda v: None if pd.isna(v) else pd.Timestamp(v).isoformat())
        elif column.type == "float" and encoding.decimal_comma:
            values = values.map(lambda v: None if pd.isna(v) else repr(float(v)).replace(".", ","))
        out[name] = values.where(values.notna(), missing)
    return pd.DataFrame(out)


def _bool_tokens(column: Column, contract: Contract) -> tuple[str, str]:
    """(true, false) as written: the target's positive token and its partner, else the first."""
    true_values, false_values = contract.encoding.true_values, contract.encoding.false_values
    true = column.positive or (true_values[0] if true_values else "true")
    index = true_values.index(true) if true in true_values else 0
    false = false_values[index] if index < len(false_values) else (false_values or ("false",))[0]
    return true, false


def prediction_log_lines(
    window: Window, contract: Contract, model: str, threshold: float = 0.5
) -> list[str]:
    """Rows in the serving prediction-log format (docs/interfaces.md), one JSON object each:
    the prediction as the task logs it (gitops_ml.monitor.watched), the outcome as the data
    spells the target (binary 0/1)."""
    frame = window.frame
    features = frame[contract.feature_names].astype(object)
    features = features.where(features.notna(), None)
    stamps = window.stamps
    ids = frame[contract.id_column] if contract.id_column else None
    logged = watch(contract)
    predictions = window.predictions
    decided = None if predictions is None else logged.label(predictions, contract, threshold)
    lines = []
    for i, record in enumerate(features.to_dict(orient="records")):
        item: dict[str, Any] = {
            "ts": None if stamps is None else f"{pd.Timestamp(stamps.iloc[i]).isoformat()}Z",
            "request_id": f"sim-{i:08d}" if ids is None else str(ids.iloc[i]),
            "model": model,
            "model_version": "simulated",
            "features": {k: _plain(v) for k, v in record.items()},
        }
        if predictions is not None:
            item["prediction"] = {logged.logged: predictions[i].tolist()}
            if decided is not None:
                item["prediction"]["label"] = _plain(decided[i])
        if contract.target in frame.columns:
            outcome = frame[contract.target].iloc[i]
            item["label"] = (
                int(outcome) if isinstance(outcome, bool | np.bool_) else _plain(outcome)
            )
        lines.append(json.dumps(item, sort_keys=True))
    return lines


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="SPEC",
        help="none, shift:COL=+20%% (or +3, +0.5sd), new_category:COL[=0.3], missing:COL=0.3,"
        " label_shift:+0.1;"
        " repeatable; COL left out = the first feature that fits",
    )
    parser.add_argument("--rows", type=int, default=None, help="default: drift.window_rows")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--labels", action="store_true", help="attach simulated outcomes")
    parser.add_argument(
        "--output", required=True, help=".parquet, .csv, or .jsonl[.gz] (what capture ships)"
    )
    parser.add_argument("--model", default=None, help="ONNX model: scores for labels and the log")
    parser.add_argument(
        "--train", default=None, help="resample rows of this training data instead of the profile"
    )
    parser.add_argument("--profile", default=paths.PROFILE)
    parser.add_argument("--contract", default=paths.CONTRACT)
    parser.add_argument("--params", default=paths.PARAMS)
    parser.add_argument("--start", default=None, help="first day (default: after training)")
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="days the window spans")


def run(args: argparse.Namespace) -> int:
    output = Path(args.output)
    suffix = output.name.lower()
    if not suffix.endswith((".parquet", ".pq", ".csv", ".jsonl", ".jsonl.gz")):
        raise UserError(
            f"{output}: unsupported output type; use .parquet, .csv, .jsonl or .jsonl.gz"
        )
    contract = load_contract(args.contract)
    scenarios = resolve_scenarios(args.scenario, contract)
    rows = args.rows
    if rows is None:
        rows = DriftParams.from_params(load_params(args.params)).window_rows
    profile = load_profile(args.profile, contract)
    train = None
    if args.train is not None:
        raw = gio.read_table(args.train, raw_text=True, layout=contract.csv)
        train = canonical_frame(raw, contract, args.train)
    scorer = ModelScorer(args.model, contract) if args.model else None
    start = pd.Timestamp(args.start) if args.start else training_start(profile, train, contract)
    window = simulate_window(
        profile, contract, rows, scenarios, args.seed, args.labels, scorer, train, start, args.days
    )
    if suffix.endswith((".parquet", ".pq")):
        gio.write_parquet(output, window.frame)
    elif suffix.endswith(".csv"):
        # Laid out as the source file (the contract's csv section).
        gio.write_csv_text(output, encode_csv(window.frame, contract), contract.csv)
    else:
        threshold = float(profile.get("threshold", 0.5))
        lines = prediction_log_lines(
            window, contract, model_name_of(contract.name, args.contract), threshold
        )
        text = ("\n".join(lines) + "\n").encode()
        gio.write_bytes(output, gzip.compress(text) if suffix.endswith(".gz") else text)
    source = args.train or args.profile
    described = ", ".join(str(s) for s in scenarios)
    print(f"simulated {rows} rows from {source}, scenario {described}: {output}")
    if contract.timestamp and start is None:
        print(
            f"note: the profile records no training period, so the window has no "
            f"{contract.timestamp!r} column; pass --start YYYY-MM-DD to add one"
        )
    return 0
