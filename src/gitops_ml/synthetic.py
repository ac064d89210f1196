"""A seeded generator of realistic customer-churn data, with knobs for drift scenarios.

The default data source of the pipeline and the synthetic production traffic of the drift demo.
Effects are deliberately non-linear and interacting (short tenure x month-to-month contract,
support calls beyond a threshold, high charges with low usage), with label noise, so that a good
model lands near ROC AUC 0.85 and not 0.99.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gitops_ml.config import SCENARIOS

REGIONS = ["north", "south", "east", "west", "central"]
PLANS = ["basic", "standard", "premium"]
NEW_PLAN = "ultimate"  # the category that appears in the new_plan drift scenario
CONTRACTS = ["month-to-month", "one-year", "two-year"]
PAYMENTS = ["electronic-check", "mailed-check", "bank-transfer", "credit-card"]
INTERNET = ["none", "dsl", "fiber"]
LABEL_NOISE = 0.04  # share of labels flipped at random


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def generate_churn(
    rows: int,
    seed: int,
    scenario: str = "none",
    start: str = "2024-01-01",
    days: int = 730,
) -> pd.DataFrame:
    """Return `rows` customers following data/schema.yaml; same arguments give the same frame."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown drift scenario {scenario!r}; expected one of {list(SCENARIOS)}")
    if rows <= 0:
        raise ValueError(f"rows must be positive, got {rows}")
    rng = np.random.default_rng(seed)
    n = rows

    region = rng.choice(REGIONS, n, p=[0.22, 0.24, 0.18, 0.21, 0.15])
    age = np.clip(rng.normal(44, 15, n).round(), 18, 95).astype(np.int64)
    senior = age >= 65
    contract = rng.choice(CONTRACTS, n, p=[0.52, 0.26, 0.22])
    tenure_scale = np.select(
        [contract == "month-to-month", contract == "one-year"], [14.0, 30.0], default=45.0
    )
    tenure = np.clip(rng.exponential(tenure_scale), 0, 120).astype(np.int64)
    plan_probs = [0.45, 0.38, 0.17]
    plan = rng.choice(PLANS, n, p=plan_probs)
    if scenario == "new_plan":
        switched = rng.random(n) < 0.30
        plan = np.where(switched, NEW_PLAN, plan)
    internet = rng.choice(INTERNET, n, p=[0.15, 0.38, 0.47])
    num_products = np.clip(rng.poisson(1.3, n) + 1, 1, 8).astype(np.int64)

    base_price = np.select(
        [plan == "basic", plan == "standard", plan == "premium", plan == NEW_PLAN],
        [35.0, 60.0, 90.0, 120.0],
    )
    internet_price = np.select([internet == "dsl", internet == "fiber"], [15.0, 30.0], default=0.0)
    monthly = base_price + internet_price + 8.0 * (num_products - 1) + rng.normal(0, 6, n)
    if scenario == "price_increase":
        monthly = monthly * rng.uniform(1.18, 1.30, n)
    monthly = np.clip(monthly, 5, 480).round(2)
    total = np.clip(monthly * np.maximum(tenure, 0.5) * rng.uniform(0.93, 1.02, n), 0, 59999).round(
        2
    )

    usage_mean = np.select([internet == "fiber", internet == "dsl"], [180.0, 70.0], default=4.0)
    data_usage = np.clip(rng.gamma(2.0, usage_mean / 2.0, n), 0, 1999).round(1)
    session = np.clip(rng.lognormal(3.2, 0.6, n), 0, 599).round(1)

    support_rate = 0.9 + 0.8 * (internet == "fiber") + 0.5 * (plan == "basic")
    if scenario == "churn_behaviour":
        support_rate = support_rate * 2.2
    support_calls = np.clip(rng.poisson(support_rate), 0, 50).astype(np.int64)
    late_payments = np.clip(rng.poisson(0.35 + 0.5 * (rng.random(n) < 0.15), n), 0, 24).astype(
        np.int64
    )
    payment = rng.choice(PAYMENTS, n, p=[0.34, 0.18, 0.24, 0.24])
    paperless = rng.random(n) < (0.45 + 0.25 * (payment == "electronic-check"))
    satisfaction = np.clip(
        rng.normal(3.7 - 0.35 * np.minimum(support_calls, 6) / 2.0, 0.8, n), 1, 5
    ).round(1)
    if scenario == "churn_behaviour":
        satisfaction = np.clip(satisfaction - 0.6, 1, 5)

    # --- the churn mechanism: non-linear effects and interactions on the logit scale ---
    mtm = contract == "month-to-month"
    logit = (
        -1.05
        + 1.0 * mtm
        - 0.9 * (contract == "two-year")
        - 0.75 * np.log1p(tenure) * (1.0 + 0.6 * ~mtm)
        + 1.6 * mtm * (tenure < 6)
        + 0.022 * (monthly - 65.0)
        + 0.9 * np.maximum(support_calls - 3, 0) ** 0.8
        + 0.35 * late_payments
        + 0.5 * (payment == "electronic-check")
        - 0.55 * (satisfaction - 3.5)
        - 0.25 * (num_products - 1)
        + 0.35 * senior
        + 0.6 * (internet == "fiber") * (monthly > 95)
        + 0.7 * ((data_usage < 20) & (monthly > 80))
        + 0.18 * (region == "south")
        - 0.12 * (region == "central")
        - 0.25
    )
    if scenario == "churn_behaviour":
        logit = logit + 0.6 + 0.4 * np.minimum(support_calls, 8)
    churn_prob = _sigmoid(logit)
    churned = rng.random(n) < churn_prob
    flip = rng.random(n) < LABEL_NOISE
    churned = np.where(flip, ~churned, churned)

    frame = pd.DataFrame(
        {
            "customer_id": [f"C{seed % 100000:05d}-{i:07d}" for i in range(n)],
            "snapshot_date": pd.Timestamp(start)
            + pd.to_timedelta(np.sort(rng.integers(0, days, n)), unit="D"),
            "tenure_months": tenure,
            "monthly_charges": monthly,
            "total_charges": total,
            "contract": contract,
            "payment_method": payment.astype(object),
            "plan": plan,
            "region": region,
            "internet_service": internet,
            "support_calls": support_calls,
            "late_payments": late_payments,
            "num_products": num_products,
            "data_usage_gb": data_usage,
            "avg_session_minutes": session,
            "satisfaction_score": satisfaction,
            "age": age,
            "paperless_billing": paperless,
            "senior_citizen": senior,
            "churned": churned,
        }
    )
    # Realistic gaps: new customers have no total yet, surveys go unanswered, some payment
    # methods are not recorded, usage telemetry drops out.
    missing_rates = {
        "total_charges": 0.01,
        "payment_method": 0.03,
        "data_usage_gb": 0.05,
        "avg_session_minutes": 0.04,
        "satisfaction_score": 0.25,
    }
    if scenario == "missing_spike":
        missing_rates.update(
            {"data_usage_gb": 0.45, "avg_session_minutes": 0.40, "satisfaction_score": 0.60}
        )
    for column, rate in missing_rates.items():
        mask = rng.random(n) < rate
        frame[column] = frame[column].astype(object if column == "payment_method" else float)
        frame.loc[mask, column] = None if column == "payment_method" else np.nan
    frame.loc[frame["tenure_months"] == 0, "total_charges"] = np.nan
    return frame
