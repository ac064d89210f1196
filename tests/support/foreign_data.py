"""A dataset shaped like a user's real CSV, not like the template's generator.

What forks actually bring: other column names (CamelCase), Yes/No strings for booleans and the
target, 0/1 integers, numbers stored as text with blanks (" ") for missing, an id column and no
timestamp — the shape of a public telecom churn CSV. The tests that prove the template works on
someone else's data use this one generator, never the template's: the fork test (via the
README's `schema infer` block) and the monitor tests (with `FOREIGN_CONTRACT`, the contract a
fork would write for it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

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
