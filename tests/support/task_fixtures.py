"""Write the regression and multiclass fixture CSVs from scikit-learn's bundled data (offline).

`python tests/support/task_fixtures.py` rewrites tests/fixtures/diabetes/diabetes.csv and
tests/fixtures/wine/wine.csv; a test checks that the files in the repository are exactly what
this writes, so the fixtures stay the real data with these quirks and nothing else:

- diabetes (442 rows, regression): the target is written as a whole number (an int column with
  many values: a number to predict, not classes); the blood-serum columns carry their medical
  names, one with a slash; `bmi` has blank cells and `glucose` has `NA` cells; a `patient` id.
- wine (178 rows, three classes): class names as text (`class_0` …); semicolon-separated with
  decimal points, as a European spreadsheet export; the real `od280/od315_of_diluted_wines`
  column name; blank cells in `magnesium` (an int column); a `sample` id.

Rows are shuffled once (seed 0): the bundled sets are sorted by class.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SEED = 0
SERUM_NAMES = {"s1": "tc", "s2": "ldl", "s3": "hdl", "s4": "tc/hdl", "s5": "ltg", "s6": "glucose"}


def _shuffled(frame: pd.DataFrame) -> pd.DataFrame:
    order = np.random.default_rng(SEED).permutation(len(frame))
    return frame.iloc[order].reset_index(drop=True)


def _missing(frame: pd.DataFrame, column: str, every: int, offset: int, token: str = "") -> None:
    """Every `every`-th row from `offset` loses its value in `column`, written as `token`."""
    frame[column] = frame[column].astype(object)
    frame.loc[offset::every, column] = token


def diabetes_frame() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    data = load_diabetes(as_frame=True, scaled=False).frame.rename(columns=SERUM_NAMES)
    frame = _shuffled(data)
    frame[["age", "sex"]] = frame[["age", "sex"]].astype(int)
    frame["target"] = frame["target"].astype(int)
    _missing(frame, "bmi", every=37, offset=5)
    _missing(frame, "glucose", every=41, offset=11, token="NA")
    frame.insert(0, "patient", [f"P{i:04d}" for i in range(1, len(frame) + 1)])
    return frame.rename(columns={"target": "progression"})


def wine_frame() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    data = load_wine(as_frame=True).frame
    frame = _shuffled(data)
    frame["magnesium"] = frame["magnesium"].astype(int)
    _missing(frame, "magnesium", every=29, offset=3)
    frame["target"] = "class_" + frame["target"].astype(str)
    frame.insert(0, "sample", [f"W{i:03d}" for i in range(1, len(frame) + 1)])
    return frame.rename(columns={"target": "cultivar"})


# Each fixture CSV: its path under tests/fixtures, the frame and the delimiter.
CSV_FILES = {"diabetes/diabetes.csv": (diabetes_frame, ","), "wine/wine.csv": (wine_frame, ";")}


def fixture_csv(relative: str) -> str:
    """The text of one fixture CSV, as this module writes it."""
    frame, delimiter = CSV_FILES[relative]
    return frame().to_csv(index=False, sep=delimiter, lineterminator="\n")


def main() -> int:
    for relative in CSV_FILES:
        (FIXTURES / relative).write_text(fixture_csv(relative))
    return 0


if __name__ == "__main__":
    sys.exit(main())
