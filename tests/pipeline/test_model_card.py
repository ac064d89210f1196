"""The model card: a reviewer reads what the model is, how good it is (with intervals), what it
costs, what shipped (ONNX hash, parity) and how to rebuild it — identical bytes on every run."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from metrics_files import DATA, EVALUATION, EXPORT, SHA, VALIDATION
from project_fixtures import fixture_params, task_fixture

from gitops_ml import io as gio
from gitops_ml.contract import Contract, parse_contract
from gitops_ml.evaluate_metrics import EvaluateMetrics, parse_evaluate_metrics
from gitops_ml.metric_registry import metric_sets
from gitops_ml.pipeline.model_card import model_card_from_files, render_model_card
from gitops_ml.stage_metrics import (
    DataMetrics,
    ExportMetrics,
    ValidationMetrics,
    parse_export_metrics,
)
from gitops_ml.tasks import Task

ROOT = Path(__file__).resolve().parents[2]
# The metrics files as their readers give them to the card.
EVALUATED = parse_evaluate_metrics(EVALUATION)
EXPORTED = parse_export_metrics(EXPORT)
SPLIT = DataMetrics.model_validate(DATA)
VALIDATED = ValidationMetrics.model_validate(VALIDATION)


@pytest.fixture(scope="module")
def params() -> dict[str, Any]:
    return fixture_params()


@pytest.fixture(scope="module")
def card(params: dict[str, Any], contract: Contract) -> str:
    """The card with every metrics file present, as the export stage renders it."""
    return render_model_card(
        params,
        contract,
        EXPORTED,
        data=SPLIT,
        validation=VALIDATED,
        evaluation=EVALUATED,
    )


def test_card_quotes_test_metrics_with_intervals_and_direction(card: str) -> None:
    assert "| ROC AUC | 0.8626 | 0.8546 – 0.8713 | higher |" in card
    assert "| log loss | 0.3707 | 0.3597 – 0.3813 | lower |" in card
    assert "| ROC AUC | 0.8538 | 0.0034 |" in card  # cross-validation mean and std
    assert "| positive | 1,020 | 1,414 |" in card
    assert "(positive: `churned` = true)" in card
    assert "Test set: 10,000 rows" in card


def test_card_shows_business_cost_at_configured_and_cost_minimising_threshold(
    card: str, params: dict[str, Any]
) -> None:
    assert "| 0.5 | `evaluate.threshold` | 26,680.00 |" in card
    assert "| 0.1 | lowest cost on out-of-fold CV predictions | 14,165.00 |" in card
    costs = params["evaluate"]["costs"]
    assert f"{costs['false_positive']:,.2f} for a false positive" in card
    assert f"{costs['false_negative']:,.2f} for a false negative" in card


def test_card_identifies_the_shipped_onnx_file_and_its_parity(card: str) -> None:
    assert f"| sha256 | `{SHA}` |" in card
    assert "| size | 123,456 bytes |" in card
    assert "| opset | 17 |" in card
    assert "0 label flips on 10,200 rows" in card
    assert "| unseen_categories | 100 | 5.00e-08 | 0 |" in card


def test_card_names_model_type_hyperparams_data_and_every_feature(
    card: str, params: dict[str, Any], contract: Contract
) -> None:
    assert f"`{params['model']['type']}`" in card
    for name, value in params["model"]["hyperparams"].items():
        assert f"| {name} | {value} |" in card
    assert "40,000 for training, 10,000 for test" in card
    assert "**passed**" in card and "`total_charges` 5.8%" in card and "`age` 0.0%" not in card
    for feature in contract.feature_names:
        assert f"| `{feature}` |" in card
    assert "one of `month-to-month`, `one-year`, `two-year`" in card


def test_card_has_intended_use_limitations_and_reproduce_steps(card: str) -> None:
    headings = re.findall(r"^## (.+)$", card, flags=re.MULTILINE)
    assert headings == [
        "Model",
        "Intended use",
        "Data",
        "Inputs",
        "Evaluation",
        "Slices",
        "Business view",
        "ONNX export",
        "Limitations",
        "How to reproduce",
    ]
    assert "dvc repro" in card
    assert "**synthetic** data" in card  # the default source is named as a limitation


def test_card_for_user_data_does_not_claim_synthetic_data(
    params: dict[str, Any], contract: Contract
) -> None:
    own_data = {**params, "data": {**params["data"], "source": "data/customers.parquet"}}

    card = render_model_card(own_data, contract, EXPORTED, evaluation=EVALUATED)

    assert "synthetic" not in card
    assert "`data/customers.parquet`" in card


def test_card_without_metrics_files_says_not_available(
    params: dict[str, Any], contract: Contract
) -> None:
    card = render_model_card(params, contract, EXPORTED)

    assert "Split summary: not available (metrics/data.json missing)" in card
    assert "Validation: not available" in card
    assert "Not available (metrics/evaluate.json missing)" in card
    assert "## Business view" not in card


def test_card_is_byte_identical_across_runs_and_carries_no_run_date(
    params: dict[str, Any], contract: Contract
) -> None:
    first = render_model_card(params, contract, EXPORTED, evaluation=EVALUATED)
    second = render_model_card(params, contract, EXPORTED, evaluation=EVALUATED)

    assert first == second
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}", first)  # no dates without data.json
    assert "/tmp" not in first and str(ROOT) not in first


def test_card_from_files_reads_data_validation_and_evaluation(
    card: str, params: dict[str, Any], contract: Contract, tmp_path: Path
) -> None:
    gio.write_json(tmp_path / "data.json", DATA)
    gio.write_json(tmp_path / "validation.json", VALIDATION)
    gio.write_json(tmp_path / "evaluate.json", EVALUATION)

    from_files = model_card_from_files(params, contract, EXPORTED, metrics_dir=tmp_path)

    assert from_files == card


FOREIGN = parse_contract(
    {
        "name": "bank_accounts",
        "description": "One row per account; the target says whether it closed.",
        "encoding": {"true_values": ["Yes"], "false_values": ["No"]},
        "columns": [
            {"name": "account", "type": "category", "role": "id"},
            {"name": "balance", "type": "float", "role": "feature", "description": "in EUR"},
            {"name": "is_active", "type": "bool", "role": "feature", "slice": True},
            {
                "name": "Exited",
                "type": "bool",
                "role": "target",
                "positive": "Yes",
                "description": "closed the account within a year",
            },
        ],
    }
)
STRATIFIED_DATA = {**DATA, "split": {"method": "stratified", "seed": 42}}
STRATIFIED = DataMetrics.model_validate(STRATIFIED_DATA)


def test_card_is_written_from_the_contract_not_from_a_domain(params: dict[str, Any]) -> None:
    card = render_model_card(params, FOREIGN, EXPORTED, data=STRATIFIED, evaluation=EVALUATED)
    assert card.startswith("# Model card\n")  # a release adds the name from dvc.yaml
    assert "One row per account; the target says whether it closed." in card
    assert "probability that `Exited` = Yes" in card
    assert "Target: `Exited`, positive when Yes: closed the account within a year." in card
    assert "| `balance` | float | no |  | in EUR |" in card
    assert not re.search(r"churn|customer", card.replace(str(params["data"]["source"]), ""), re.I)


def test_a_stratified_split_is_described_as_one_and_not_as_a_later_window(
    params: dict[str, Any], contract: Contract
) -> None:
    card = render_model_card(params, contract, EXPORTED, data=STRATIFIED)
    assert "a stratified random sample (seed 42) is the test set" in card
    assert "random sample of the same period" in card
    assert "newest" not in card and "later time window" not in card


def test_card_lists_slice_metrics_and_their_gaps(card: str) -> None:
    assert "| false | 8,400 | 0.8600 | 0.5700 | 0.180 | 0.0120 |" in card
    assert "`senior_citizen`: largest gap between groups: ROC AUC 0.0200, recall 0.0500" in card
    assert "Per-group metrics cover `senior_citizen` only" in card


# --------------------------------------------------------------------------------------------
# Every task: the card says what the model predicts and quotes the task's own metrics.
# --------------------------------------------------------------------------------------------


def task_evaluation(contract: Contract) -> EvaluateMetrics:
    """evaluate.json of `contract`'s task, with made-up values for each of its metrics."""
    metrics = metric_sets(contract.task, contract.classes)
    values = {name: round(0.5 + i / 100, 4) for i, name in enumerate(metrics.test)}
    k = len(contract.classes)
    matrix = {
        "classes": list(contract.classes),
        "counts": [[9 * (i == j) + j for j in range(k)] for i in range(k)],
    }
    return parse_evaluate_metrics(
        {
            "task": contract.task,
            "test": values,
            "ci95": {name: {"low": v - 0.05, "high": v + 0.05} for name, v in values.items()},
            "cv": {name: {"mean": values[name], "std": 0.01} for name in metrics.cv},
            "rows": {"test": 89},
            **({"confusion_matrix": matrix} if k else {}),
        }
    )


# What export writes for a regressor: its parity measure, no labels to flip.
REGRESSION_EXPORT = ExportMetrics.model_validate(
    {
        **EXPORT,
        "parity": {
            "measure": "max |Δŷ| / sd(y)",
            "max_abs_diff": 3.1e-7,
            "rows_checked": 101,
            "tolerance": 1e-4,
            "slices": {"test": {"rows": 89, "max_abs_diff": 3.1e-7}},
        },
    }
)


# What split writes about the target per task, besides the rows (metrics/data.json).
TARGET_SUMMARIES: dict[str, dict[str, Any]] = {
    "regression": {
        "target_mean": {"train": 152.13, "test": 150.2},
        "target_std": {"train": 77.09, "test": 80.0},
    },
    "multiclass": {
        "class_shares": {
            "train": {"class_0": 0.331, "class_1": 0.401, "class_2": 0.268},
            "test": {"class_0": 0.333, "class_1": 0.389, "class_2": 0.278},
        }
    },
}


def task_card(task: Task, params: dict[str, Any]) -> str:
    contract = task_fixture(task).contract
    data = DataMetrics.model_validate(
        {**STRATIFIED_DATA, "positive_rate": None, **TARGET_SUMMARIES[task]}
    )
    export = REGRESSION_EXPORT if task == "regression" else EXPORTED
    return render_model_card(
        params, contract, export, data=data, evaluation=task_evaluation(contract)
    )


def test_a_regression_card_speaks_of_the_value_it_predicts_and_its_errors(
    params: dict[str, Any],
) -> None:
    card = task_card("regression", params)

    assert "| task | regression: the model gives the value of the target |" in card
    assert "| outputs | `variable` = the predicted value of `progression` |" in card
    assert "- Estimate `progression` for rows shaped like `diabetes-progression`" in card
    assert "Target: `progression`, a number (0 … 400): a quantitative measure" in card
    assert "| RMSE | 0.5000 | 0.4500 – 0.5500 | lower |" in card
    assert "| R² | 0.5200 | 0.4700 – 0.5700 | higher |" in card
    assert "| median absolute error | 0.5300 |" in card
    assert "(5 folds):" in card and "| MAE | 0.5100 | 0.0100 |" in card
    assert "- `progression`: mean 152.1 (sd 77.09) in training, 150.2 (sd 80) in test." in card
    assert (
        "Parity with scikit-learn: max &#124;Δŷ&#124; / sd(y) 3.10e-07 (tolerance 1e-04) on" in card
    )
    assert "| test | 89 | 3.10e-07 |\n" in card and "flips" not in card
    for binary_only in (
        "threshold",
        "Positive rate",
        "probability that",
        "ROC AUC",
        "stratified f",
    ):
        assert binary_only not in card, binary_only


def test_a_multiclass_card_names_the_classes_in_output_order_and_quotes_each_ones_recall(
    params: dict[str, Any],
) -> None:
    card = task_card("multiclass", params)

    assert "| task | multiclass: the model gives the probability of each class |" in card
    assert (
        "`probabilities[:, i]` = probability of the i-th class of `class_0`, `class_1`, "
        "`class_2`; `label` = the index of the most probable class"
    ) in card
    assert "into the 3 classes of `cultivar` by their most probable class" in card
    assert "Target: `cultivar`, one of `class_0`, `class_1`, `class_2` (the model's" in card
    assert "| macro-F1 | 0.5200 | 0.4700 – 0.5700 | higher |" in card
    assert "| recall of class_1 | 0.5500 |" in card and "| precision of class_2 |" in card
    assert "(5 stratified folds):" in card
    assert "Class shares (training / test): `class_0` 33.1% / 33.3%, `class_1` 40.1%" in card
    assert "| actual | class_0 | class_1 | class_2 |" in card
    assert "| class_1 | 0 | 10 | 2 |" in card
    assert "threshold" not in card and "Positive rate" not in card and "ROC AUC" not in card


def test_class_names_from_the_data_reach_the_card_escaped() -> None:
    contract = parse_contract(
        {
            "name": "tickets",
            "columns": [
                {"name": "length", "type": "int"},
                {
                    "name": "team",
                    "type": "category",
                    "role": "target",
                    "task": "multiclass",
                    "classes": ["a|b", "<b>ops</b>", "@billing"],
                },
            ],
        }
    )

    card = render_model_card(
        fixture_params(), contract, EXPORTED, evaluation=task_evaluation(contract)
    )

    assert "| recall of a&#124;b |" in card and "&lt;b>ops&lt;/b>" in card
    assert "<b>" not in card and "| recall of a|b" not in card and " @billing" not in card
