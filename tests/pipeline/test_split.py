"""split: the newest rows are the test set when there is a timestamp (ties broken by id), a
seeded stratified split otherwise (on the class, or on quantile bins of a regression target);
the same data always gives the same split, and a class too rare for the split and the
cross-validation is named before anything is trained."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from project_fixtures import CONTRACT_PATH, PARAMS_PATH, task_fixture

from gitops_ml import io as gio
from gitops_ml.cli import main
from gitops_ml.config import SplitParams
from gitops_ml.contract import Contract, contract_to_dict, parse_contract
from gitops_ml.pipeline.split import SplitError, split_frame
from gitops_ml.pipeline.validate import validate_frame
from gitops_ml.stage_metrics import SplitRows, read_data_metrics
from gitops_ml.synthetic import generate_churn

REPO_ROOT = Path(__file__).resolve().parents[2]
PARAMS = SplitParams(test_fraction=0.2, seed=3)


@pytest.fixture(scope="module")
def validated(contract: Contract) -> pd.DataFrame:
    frame = validate_frame(generate_churn(3000, seed=9), contract).frame
    assert frame is not None
    return frame


@pytest.fixture(scope="module")
def untimed(contract: Contract) -> Contract:
    """The churn contract without its timestamp column."""
    raw = contract_to_dict(contract)
    raw["columns"] = [c for c in raw["columns"] if c["role"] != "timestamp"]
    return parse_contract(raw)


def test_time_split_puts_the_newest_rows_in_test_with_ids_breaking_ties(
    validated: pd.DataFrame, contract: Contract
) -> None:
    result = split_frame(validated, contract, PARAMS)

    assert (len(result.train), len(result.test)) == (2400, 600)
    last_train = tuple(result.train[["snapshot_date", "customer_id"]].iloc[-1])
    first_test = tuple(result.test[["snapshot_date", "customer_id"]].iloc[0])
    assert last_train < first_test
    assert result.train["snapshot_date"].is_monotonic_increasing
    assert result.summary["split"] == {
        "method": "time",
        "train_end": last_train[0].date().isoformat(),
        "test_start": first_test[0].date().isoformat(),
    }


def test_time_split_does_not_depend_on_input_row_order(
    validated: pd.DataFrame, contract: Contract
) -> None:
    shuffled = validated.sample(frac=1.0, random_state=1)

    first, second = (
        split_frame(validated, contract, PARAMS),
        split_frame(shuffled, contract, PARAMS),
    )

    pd.testing.assert_frame_equal(first.test, second.test)
    pd.testing.assert_frame_equal(first.train, second.train)
    assert first.summary == second.summary


def test_time_split_cuts_a_shared_boundary_date_by_id(contract: Contract) -> None:
    frame = validate_frame(generate_churn(10, seed=2), contract).frame
    assert frame is not None
    frame["snapshot_date"] = pd.to_datetime(["2025-01-01"] * 4 + ["2025-02-01"] * 6).astype(
        "datetime64[us]"
    )
    frame["churned"] = [True, False] * 5
    frame["customer_id"] = [f"C{i}" for i in (9, 8, 7, 6, 5, 4, 3, 2, 1, 0)]

    result = split_frame(frame, contract, SplitParams(test_fraction=0.3, seed=0))

    assert list(result.test["customer_id"]) == ["C3", "C4", "C5"]
    assert result.summary["split"] == {
        "method": "time",
        "train_end": "2025-02-01",
        "test_start": "2025-02-01",
    }


def test_stratified_split_keeps_the_class_balance_and_follows_the_seed(
    validated: pd.DataFrame, untimed: Contract
) -> None:
    result = split_frame(validated, untimed, PARAMS)
    again = split_frame(validated, untimed, PARAMS)
    other_seed = split_frame(validated, untimed, SplitParams(test_fraction=0.2, seed=4))

    rates = result.summary["positive_rate"]
    assert rates["train"] == pytest.approx(rates["test"], abs=0.002)
    assert result.summary["split"] == {"method": "stratified", "seed": 3}
    pd.testing.assert_frame_equal(result.test, again.test)
    assert set(result.test["customer_id"]) != set(other_seed.test["customer_id"])


def test_split_refuses_an_empty_test_set(validated: pd.DataFrame, contract: Contract) -> None:
    with pytest.raises(SplitError, match=r"test_fraction 0.1 of 4 rows leaves the test set empty"):
        split_frame(validated.head(4), contract, SplitParams(test_fraction=0.1, seed=0))


def test_split_refuses_a_test_set_with_a_single_class(
    validated: pd.DataFrame, contract: Contract
) -> None:
    frame = validated.copy()
    cutoff = frame["snapshot_date"].sort_values().iloc[-600]
    frame.loc[frame["snapshot_date"] >= cutoff, "churned"] = False

    with pytest.raises(
        SplitError,
        match=r"the test set \(600 rows\) has fewer than 1 row\(s\) of 'True' \(0 rows\) in "
        r"target 'churned'; a classifier needs every class in both sets \(the split is by "
        r"time, on 'snapshot_date': to split each class at random instead, leave that column "
        r"out of the contract\)",
    ):
        split_frame(frame, contract, PARAMS)


def test_a_multiclass_target_is_stratified_on_its_classes() -> None:
    wine = task_fixture("multiclass")

    result = split_frame(wine.frame, wine.contract, SplitParams(test_fraction=0.25, seed=1), 5)

    shares = result.summary["class_shares"]
    assert list(shares["train"]) == ["class_0", "class_1", "class_2"]
    for name in shares["train"]:
        # 44 test rows: a share moves in steps of 1/44; stratified, the sides differ by under one
        assert shares["train"][name] == pytest.approx(shares["test"][name], abs=1 / 44)
    assert "positive_rate" not in result.summary
    assert result.summary["rows"] == {"total": 178, "train": 134, "test": 44}


def test_a_regression_target_is_stratified_on_its_quantiles() -> None:
    diabetes = task_fixture("regression")
    params = SplitParams(test_fraction=0.2, seed=1)

    result = split_frame(diabetes.frame, diabetes.contract, params, 5)

    target = diabetes.contract.target
    quantiles = np.quantile(diabetes.frame[target], np.linspace(0.1, 0.9, 9))
    bins = np.bincount(np.searchsorted(quantiles, result.test[target]), minlength=10)
    assert bins.min() >= 7 and bins.max() <= 11  # 88 test rows: about 9 per decile
    summary = result.summary
    assert set(summary) == {"rows", "target_mean", "target_std", "split"}
    assert summary["target_mean"]["train"] == pytest.approx(
        summary["target_mean"]["test"], rel=0.02
    )


def test_a_class_too_rare_for_the_split_and_the_cv_is_named_with_the_choices() -> None:
    wine = task_fixture("multiclass")
    frame = wine.frame
    rare = frame[frame["cultivar"] != "class_2"]
    rare = pd.concat([rare, frame[frame["cultivar"] == "class_2"].head(6)])

    with pytest.raises(SplitError) as caught:
        split_frame(rare, wine.contract, SplitParams(test_fraction=0.2, seed=0), 5)

    message = str(caught.value)
    assert "target 'cultivar': 1 class(es) of 136 rows have fewer than the 7 rows" in message
    assert "'class_2' (6 rows)" in message and "evaluate.cv_folds 5" in message
    assert "merge a rare class into a related one, drop its rows" in message
    assert "collect more data" in message
    assert "class_0" not in message
    split_frame(rare, wine.contract, SplitParams(test_fraction=0.2, seed=0), 4)  # 6 ≥ 4 / 0.8


def test_split_cli_writes_both_sets_and_data_metrics(
    validated: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    shutil.copyfile(CONTRACT_PATH, "data/schema.yaml")
    shutil.copyfile(PARAMS_PATH, "params.yaml")
    gio.write_parquet("data/validated/data.parquet", validated)

    assert main(["split"]) == 0

    metrics = read_data_metrics()  # the typed reader's shape
    assert metrics.rows == SplitRows(total=3000, train=2400, test=600)
    assert metrics.positive_rate is not None and metrics.class_shares is None
    assert metrics.split.method == "time"
    test = pd.read_parquet("data/split/test.parquet")
    assert len(test) == 600
    assert test.dtypes.equals(validated.dtypes)
    assert "split: time split" in capsys.readouterr().out


def test_split_cli_reports_a_bad_fraction_and_leaves_no_stale_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text("split: {test_fraction: 1.5, seed: 1}\n")
    gio.write_bytes("data/split/train.parquet", b"stale split of an earlier run")

    assert main(["split"]) == 2

    err = capsys.readouterr().err
    assert "'split.test_fraction' must be between 0 and 1, got 1.5" in err
    assert "Traceback" not in err
    assert not Path("data/split/train.parquet").exists()


def test_the_class_minimum_is_one_test_row_and_a_training_row_per_fold() -> None:
    def rows(test_fraction: float, folds: int) -> int:
        return SplitParams(test_fraction=test_fraction, seed=0).rows_per_class(folds)

    assert rows(0.2, 5) == 7  # 5 / 0.8 = 6.25
    assert rows(0.8, 2) == 10  # 2 / 0.2 is 10.000000000000002 in floating point
    assert rows(0.05, 2) == 20  # one test row needs 1 / 0.05 rows
