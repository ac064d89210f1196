"""A dataset shaped like a user's real CSV, not like the template's generator.

What forks actually bring: other column names (CamelCase), Yes/No strings for booleans and the
target, 0/1 integers, numbers stored as text with blanks (" ") for missing, an id column and no
timestamp — the shape of a public telecom churn CSV. The tests that prove the template works on
someone else's data use this one generator, never the template's: the fork test (via the
README's `schema infer` block) and the monitor tests (with `FOREIGN_CONTRACT`, the contract a
fork would write for it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gitops_ml.tasks import Task

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

PAYMENT = ["Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card"]
INTERNET = ["DSL", "Fiber optic", "No"]
CONTRACT = ["Month-to-month", "One year", "Two year"]

FOREIGN_CONTRACT = {
    "name": "telco_customers",
    "description": "A fork's own data: telecom customers, one row each.",
    "encoding": {"true_values": ["Yes", "1"], "false_values": ["No", "0"], "missing_values": [" "]},
    "columns": [
        {"name": "customerID", "type": "category", "role": "id", "checks": {"unique": True}},
        {"name": "gender", "type": "category"},
        {"name": "SeniorCitizen", "type": "bool"},
        {"name": "Partner", "type": "bool"},
        {"name": "tenure", "type": "int", "checks": {"min": 0, "max": 72}},
        {"name": "InternetService", "type": "category"},
        {"name": "Contract", "type": "category"},
        {"name": "PaperlessBilling", "type": "bool"},
        {"name": "PaymentMethod", "type": "category"},
        {"name": "MonthlyCharges", "type": "float", "checks": {"min": 0}},
        {"name": "TotalCharges", "type": "float", "nullable": True},
        {"name": "Churn", "type": "bool", "role": "target", "positive": "Yes"},
    ],
}


def foreign_frame(rows: int = 7000, seed: int = 3, first_id: int = 0) -> pd.DataFrame:
    """Customer-like rows with a learnable, noisy outcome, as a CSV reader with `dtype=str`
    sees them: all text except the 0/1 SeniorCitizen ints. Ids count from `first_id`, so
    windows drawn with different seeds can also hold different customers."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(CONTRACT, rows, p=[0.55, 0.21, 0.24])
    internet = rng.choice(INTERNET, rows, p=[0.34, 0.44, 0.22])
    tenure = rng.integers(0, 73, rows)
    monthly = np.round(
        18 + 25 * (internet == "DSL") + 55 * (internet == "Fiber optic") + rng.gamma(2, 6, rows), 2
    )
    senior = (rng.random(rows) < 0.16).astype(int)
    partner = rng.random(rows) < 0.48
    paperless = rng.random(rows) < 0.59
    payment = rng.choice(PAYMENT, rows, p=[0.34, 0.23, 0.22, 0.21])
    logit = (
        -1.2
        + 1.3 * (contract == "Month-to-month")
        - 0.9 * (contract == "Two year")
        + 0.8 * (internet == "Fiber optic")
        - 0.035 * tenure
        + 0.5 * senior
        - 0.3 * partner
        + 0.35 * paperless
        + 0.45 * (payment == "Electronic check")
        + 0.01 * (monthly - 65)
    )
    churn = rng.random(rows) < 1 / (1 + np.exp(-logit))
    total = np.round(monthly * np.maximum(tenure, 0) * rng.uniform(0.9, 1.1, rows), 2)
    total_text = np.where(tenure == 0, " ", total.astype(str))  # new customers: blank, as in CSVs

    def yes_no(flags: np.ndarray) -> np.ndarray:
        return np.where(flags, "Yes", "No")

    return pd.DataFrame(
        {
            "customerID": [f"{first_id + i:04d}-{rng.integers(10**4):04d}" for i in range(rows)],
            "gender": rng.choice(["Female", "Male"], rows),
            "SeniorCitizen": senior,
            "Partner": yes_no(partner),
            "tenure": tenure.astype(str),
            "InternetService": internet,
            "Contract": contract,
            "PaperlessBilling": yes_no(paperless),
            "PaymentMethod": payment,
            "MonthlyCharges": monthly.astype(str),
            "TotalCharges": total_text,
            "Churn": yes_no(churn),
        }
    )


def write_foreign_csv(path: str | Path, rows: int = 7000, seed: int = 3) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    foreign_frame(rows, seed).to_csv(path, index=False)
    return path


# ------------------------------------------------------------------------------------------
# Real-world spellings: files as public CSVs are written, for the fork test's README run.
# Each returns the file's text; the fork test writes it as the README's data file and expects
# `schema infer` to read it as it is.


def _logistic(rng: np.random.Generator, logit: np.ndarray) -> np.ndarray:
    return rng.random(len(logit)) < 1 / (1 + np.exp(-logit))


def census_csv(rows: int = 2000, seed: int = 5) -> str:
    """Census-income style (the UCI `adult.data` file): no header row, `, ` between values (so
    every value but the first has a leading space), `?` for missing, a text label
    `>50K` / `<=50K`."""
    rng = np.random.default_rng(seed)
    age = rng.integers(17, 80, rows)
    education_num = rng.integers(1, 17, rows)
    hours = np.clip(np.round(rng.normal(40, 11, rows)), 1, 99).astype(int)
    sex = rng.choice(["Male", "Female"], rows, p=[0.67, 0.33])
    workclass = rng.choice(
        ["Private", "Self-emp-not-inc", "Local-gov", "?"], rows, p=[0.7, 0.1, 0.14, 0.06]
    )
    occupation = rng.choice(
        ["Prof-specialty", "Craft-repair", "Sales", "Exec-managerial", "?"],
        rows,
        p=[0.25, 0.25, 0.2, 0.24, 0.06],
    )
    gain = np.where(rng.random(rows) < 0.08, rng.integers(1000, 20000, rows), 0)
    logit = (
        -8.6
        + 0.045 * age
        + 0.32 * education_num
        + 0.03 * hours
        + 0.9 * (sex == "Male")
        + 0.9 * (occupation == "Exec-managerial")
        + 0.00025 * gain
    )
    label = np.where(_logistic(rng, logit), ">50K", "<=50K")
    columns = [age, workclass, education_num, occupation, sex, gain, hours, label]
    return "".join(", ".join(str(c[i]) for c in columns) + "\n" for i in range(rows))


def telco_csv(rows: int = 2000, seed: int = 6) -> str:
    """A telecom export merged from two systems: hyphenated, spaced and dotted column names,
    Yes/No, two spellings of missing (a blank charge, `NA` for an unknown internet service),
    the payment method padded with a trailing space (a fixed-width database column), and a
    trailing comma at the end of every data row (the header has none)."""
    frame = foreign_frame(rows, seed)
    frame["PaymentMethod"] = frame["PaymentMethod"] + " "
    unknown = np.random.default_rng(seed + 1).random(rows) < 0.1
    frame["InternetService"] = frame["InternetService"].mask(unknown, "NA")
    renamed = frame.rename(
        columns={
            "customerID": "customer id",
            "SeniorCitizen": "senior-citizen",
            "tenure": "tenure.months",
            "InternetService": "internet service",
            "Contract": "plan type",
            "MonthlyCharges": "monthly-charges",
            "TotalCharges": "total.charges",
            "Churn": "churned",
        }
    )
    header = ",".join(renamed.columns) + "\n"
    body = renamed.to_csv(index=False, header=False).replace("\n", ",\n")
    return header + body


def bundled_csv(relative: str) -> Callable[[int], str]:
    """A task fixture's CSV (tests/fixtures: scikit-learn's bundled real data, whole, with the
    quirks tests/support/task_fixtures.py writes): its size is the data set's own."""
    return lambda _rows: (FIXTURES / relative).read_text()


@dataclass(frozen=True)
class Shape:
    """A file's text by `rows` and how its lines split into the file's raw cells; the task its
    target is and, for a real data set of fixed size, its rows."""

    text: Callable[[int], str]
    sep: str
    header: bool
    trailing_comma: bool = False
    task: Task = "binary"
    rows: int | None = None  # None: the generator writes any number of rows

    def raw_rows(self, text: str) -> list[list[str]]:
        """Every data line's cells, spelt as in the file (spaces kept)."""
        lines = text.splitlines()[1 if self.header else 0 :]
        cells = [line.split(self.sep) for line in lines]
        return [row[:-1] for row in cells] if self.trailing_comma else cells


SHAPES = {
    "census": Shape(census_csv, sep=",", header=False),
    "telco": Shape(telco_csv, sep=",", header=True, trailing_comma=True),
    "diabetes": Shape(
        bundled_csv("diabetes/diabetes.csv"), sep=",", header=True, task="regression", rows=442
    ),
    "wine": Shape(bundled_csv("wine/wine.csv"), sep=";", header=True, task="multiclass", rows=178),
}
