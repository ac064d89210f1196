"""Gates decide whether a model change may merge; each rule can pass and can fail."""

from __future__ import annotations

import pytest
from project_fixtures import fixture_params

from gitops_ml.config import ConfigError
from gitops_ml.evaluate_metrics import Slice
from gitops_ml.metric_registry import lower_is_better
from gitops_ml.review.gates import GateParams, check_gates
from gitops_ml.scoring import Difference

GATES = GateParams(
    task="binary",
    minimum={"roc_auc": 0.8},
    max_regression={"roc_auc": 0.01, "log_loss": 0.02},
    max_parity_diff=1e-4,
    max_label_flips=0,
)
PARITY_OK = {"max_abs_diff": 2e-7, "label_flips": 0}


def by_name(results):
    return {r.name: r for r in results}


def test_all_gates_pass_for_a_small_improvement() -> None:
    results = check_gates(
        GATES, {"roc_auc": 0.86, "log_loss": 0.35}, {"roc_auc": 0.85, "log_loss": 0.36}, PARITY_OK
    )
    assert [r.name for r in results] == [
        "min roc_auc",
        "log_loss regression",
        "roc_auc regression",
        "ONNX parity",
        "ONNX label flips",
    ]
    assert all(r.passed for r in results)


def test_min_roc_auc_fails_below_the_floor_and_names_both_numbers() -> None:
    gate = by_name(check_gates(GATES, {"roc_auc": 0.79}, {}, PARITY_OK))["min roc_auc"]
    assert not gate.passed
    assert gate.detail == "roc_auc 0.7900 < 0.8"


def test_regression_knows_lower_log_loss_is_better() -> None:
    worse = check_gates(GATES, {"roc_auc": 0.85, "log_loss": 0.40}, {"log_loss": 0.37}, None)
    assert not by_name(worse)["log_loss regression"].passed
    assert "worse by 0.0300" in by_name(worse)["log_loss regression"].detail
    better = check_gates(GATES, {"roc_auc": 0.85, "log_loss": 0.30}, {"log_loss": 0.37}, None)
    assert by_name(better)["log_loss regression"].passed


def test_regression_within_the_allowance_passes_and_beyond_fails() -> None:
    small = check_gates(GATES, {"roc_auc": 0.845}, {"roc_auc": 0.85}, PARITY_OK)
    large = check_gates(GATES, {"roc_auc": 0.835}, {"roc_auc": 0.85}, PARITY_OK)
    assert by_name(small)["roc_auc regression"].passed
    assert not by_name(large)["roc_auc regression"].passed


def test_first_pr_without_base_metrics_passes_regression_gates() -> None:
    gate = by_name(check_gates(GATES, {"roc_auc": 0.85, "log_loss": 0.3}, {}, PARITY_OK))
    assert gate["roc_auc regression"].passed
    assert gate["roc_auc regression"].detail == "no base value (new metric)"


def test_a_gated_metric_missing_from_the_pr_fails_instead_of_passing_silently() -> None:
    gate = by_name(check_gates(GATES, {}, {"roc_auc": 0.85}, PARITY_OK))["roc_auc regression"]
    assert not gate.passed and "missing" in gate.detail


def test_onnx_parity_and_label_flips_gates() -> None:
    bad = {"max_abs_diff": 3e-4, "label_flips": 2}
    results = by_name(check_gates(GATES, {"roc_auc": 0.9}, {}, bad))
    assert not results["ONNX parity"].passed
    assert not results["ONNX label flips"].passed
    missing = by_name(check_gates(GATES, {"roc_auc": 0.9}, {}, None))
    assert not missing["ONNX parity"].passed


def test_directions_follow_the_interfaces_doc() -> None:
    assert lower_is_better("log_loss") and lower_is_better("test.brier")
    assert lower_is_better("cost_per_1000_at_best")
    assert not lower_is_better("roc_auc") and not lower_is_better("recall")


def test_the_template_params_define_the_documented_gates_for_every_task() -> None:
    params = fixture_params()  # never the live params.yaml (a fork's)
    binary = GateParams.from_params(params, "binary")
    assert "roc_auc" in binary.minimum and "roc_auc" in binary.max_regression
    assert binary.max_label_flips == 0 and binary.max_parity_diff is not None
    multiclass = GateParams.from_params(params, "multiclass")
    assert set(multiclass.max_regression) == {"macro_f1", "log_loss"}
    assert multiclass.max_label_flips == 0 and "macro_f1" in multiclass.minimum
    regression = GateParams.from_params(params, "regression")
    assert regression.minimum == {"r2": 0.0} and set(regression.max_regression) == {"r2"}
    assert regression.max_label_flips is None and regression.max_parity_diff is not None


def test_only_the_section_of_the_task_applies() -> None:
    params = {"gates": {"regression_test": "none", "regression": {"min": {"r2": 0.3}}}}
    assert GateParams.from_params(params, "regression") == GateParams(
        task="regression", regression_test="none", minimum={"r2": 0.3}
    )
    assert GateParams.from_params(params, "binary") == GateParams(
        task="binary", regression_test="none"
    )


def test_no_gates_section_means_no_gates() -> None:
    assert GateParams.from_params({}, "multiclass") == GateParams(task="multiclass")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"binary": {"minimum": {"roc_auc": 0.8}}},
            "unknown key 'gates.binary.minimum' (did you mean 'min'?)",
        ),
        ({"binary": {"min": {"roc_auc": "high"}}}, "'gates.binary.min.roc_auc' must be a number"),
        (
            {"binary": {"max_regression": {"roc_auc": -0.1}}},
            "'gates.binary.max_regression.roc_auc' must be >= 0",
        ),
        (
            {"multiclass": {"max_label_flips": 0.5}},
            "'gates.multiclass.max_label_flips' must be a whole number",
        ),
        ({"binary": {"min": [0.8]}}, "'gates.binary.min' must be a mapping"),
        (
            {"regresion": {"min": {"r2": 0.1}}},
            "unknown key 'gates.regresion' (did you mean 'regression'?); valid in 'gates': "
            "regression_test, binary, multiclass, regression",
        ),
        (
            {"regression": {"max_label_flips": 0}},
            "unknown key 'gates.regression.max_label_flips'; valid in 'gates.regression': "
            "min, max_regression, max_parity_diff, max_slice_gap",
        ),
    ],
)
def test_bad_gate_params_name_the_key(section, message) -> None:
    with pytest.raises(ConfigError) as err:
        GateParams.from_params({"gates": section}, "binary")
    assert message in str(err.value)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"regression": {"min": {"roc_auc": 0.7}}},
            "params.yaml: 'gates.regression.min.roc_auc' is not a regression metric; regression "
            "metrics: rmse, mae, r2, median_absolute_error",
        ),
        (
            {"multiclass": {"max_regression": {"macro_f": 0.02}}},
            "'gates.multiclass.max_regression.macro_f' is not a multiclass metric (did you mean "
            "'macro_f1'?); multiclass metrics: accuracy, balanced_accuracy, macro_f1, log_loss, "
            "recall[<class>], precision[<class>]",
        ),
        (
            {"binary": {"max_regression": {"recall[yes]": 0.02}}},
            "'gates.binary.max_regression.recall[yes]' is not a binary metric",
        ),
        (
            {"regression": {"max_slice_gap": {"recall": 0.1}}},
            "unknown metric 'gates.regression.max_slice_gap.recall'; regression slice metrics: "
            "rmse, mae, r2",
        ),
        (
            {"regression": {"min": {"rmse": 30.0}}},
            "'gates.regression.min.rmse': RMSE is lower-is-better, a floor never fails; gate it "
            "with max_regression",
        ),
    ],
    ids=["other-task", "typo", "per-class-in-binary", "slice-metric", "floor-on-lower-better"],
)
def test_a_gate_on_a_metric_its_task_lacks_is_refused_with_the_valid_names(
    section, message
) -> None:
    """Every task's section is checked, whichever task the contract has today."""
    with pytest.raises(ConfigError) as err:
        GateParams.from_params({"gates": section}, "binary")
    assert message in str(err.value)


def test_a_per_class_gate_names_a_class_of_a_multiclass_model() -> None:
    params = {"gates": {"multiclass": {"min": {"recall[class_0]": 0.5}}}}
    gates = GateParams.from_params(params, "multiclass")

    (gate,) = check_gates(gates, {"recall[class_0]": 0.4}, {}, None)

    assert not gate.passed and gate.detail == "recall[class_0] 0.4000 < 0.5"


def test_gates_written_before_tasks_say_where_they_went() -> None:
    with pytest.raises(ConfigError) as err:
        GateParams.from_params({"gates": {"min": {"roc_auc": 0.7}, "max_label_flips": 0}}, "binary")
    assert str(err.value) == (
        "params.yaml: 'gates.min' belongs to a task now: move min, max_label_flips under "
        "'gates.<task>' (binary, multiclass, regression), e.g. 'gates.binary.min'"
    )


def test_the_regression_parity_gate_bounds_the_relative_difference_of_the_prediction() -> None:
    gates = GateParams(task="regression", max_parity_diff=1e-4)

    measure = "max |Δŷ| / sd(y)"  # what metrics/export.json says its max_abs_diff measures

    (ok,) = check_gates(gates, {}, {}, {"max_abs_diff": 3e-7, "measure": measure})
    (bad,) = check_gates(gates, {}, {}, {"max_abs_diff": 2e-3, "measure": measure})

    assert ok.passed and ok.detail == "max |Δŷ| / sd(y) 3.00e-07, allowed 1e-04"
    assert not bad.passed


# ------------------------------------------------------------------ regression: large AND real


def paired(delta: float, half: float) -> Difference:
    return Difference(delta, delta - half, delta + half, paired=True)


def test_a_regression_beyond_the_margin_within_noise_passes_and_says_why() -> None:
    gate = by_name(
        check_gates(
            GATES,
            {"roc_auc": 0.835},
            {"roc_auc": 0.85},
            PARITY_OK,
            {"roc_auc": paired(-0.015, 0.02)},
        )
    )["roc_auc regression"]
    assert gate.passed
    assert gate.detail == (
        "roc_auc worse by 0.0150, allowed 0.01; within noise "
        "(paired 95% interval -0.0350 … +0.0050)"
    )


def test_a_real_regression_beyond_the_margin_fails() -> None:
    diffs = {"roc_auc": paired(-0.015, 0.004), "log_loss": paired(0.03, 0.01)}
    results = by_name(
        check_gates(
            GATES,
            {"roc_auc": 0.835, "log_loss": 0.40},
            {"roc_auc": 0.85, "log_loss": 0.37},
            PARITY_OK,
            diffs,
        )
    )
    assert not results["roc_auc regression"].passed
    assert "; real (paired 95% interval -0.0190 … -0.0110)" in results["roc_auc regression"].detail
    assert not results["log_loss regression"].passed  # lower is better: real when low > 0


def test_a_real_regression_inside_the_margin_passes() -> None:
    gate = by_name(
        check_gates(
            GATES,
            {"roc_auc": 0.845},
            {"roc_auc": 0.85},
            PARITY_OK,
            {"roc_auc": paired(-0.005, 0.001)},
        )
    )["roc_auc regression"]
    assert gate.passed


def test_regression_test_none_uses_the_margin_alone() -> None:
    margin_only = GATES.model_copy(update={"regression_test": "none"})
    gate = by_name(
        check_gates(
            margin_only,
            {"roc_auc": 0.835},
            {"roc_auc": 0.85},
            PARITY_OK,
            {"roc_auc": paired(-0.015, 0.02)},
        )
    )["roc_auc regression"]
    assert not gate.passed and gate.detail == "roc_auc worse by 0.0150, allowed 0.01"


def test_without_an_interval_the_gate_falls_back_to_the_margin_and_says_so() -> None:
    gate = by_name(check_gates(GATES, {"roc_auc": 0.835}, {"roc_auc": 0.85}, PARITY_OK, {}))
    assert not gate["roc_auc regression"].passed
    assert gate["roc_auc regression"].detail.endswith("(no interval: margin only)")


# ------------------------------------------------------------------ slice gaps


SLICES = {
    "age": Slice(groups={}, gap={"recall": 0.12, "roc_auc": 0.03}),
    "senior_citizen": Slice(groups={}, gap={"recall": None, "roc_auc": None}),
}


def test_slice_gap_gate_fails_per_column_over_the_allowed_gap() -> None:
    gates = GateParams(task="binary", max_slice_gap={"recall": 0.1})
    results = by_name(check_gates(gates, {}, {}, None, None, SLICES))
    age = results["recall gap across age"]
    assert not age.passed
    assert age.detail == "largest recall gap between groups 0.1200, allowed 0.1"
    assert results["recall gap across senior_citizen"].passed  # too few large groups to judge


def test_slice_gap_gate_without_slice_metrics_fails_with_the_fix() -> None:
    (gate,) = check_gates(
        GateParams(task="binary", max_slice_gap={"recall": 0.1}), {}, {}, None, None, {}
    )
    assert not gate.passed and "slice: true" in gate.detail


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"regression_test": "paired_bootstrp"},
            "'gates.regression_test' is 'paired_bootstrp' (did you mean 'paired_bootstrap'?)",
        ),
        (
            {"binary": {"max_slice_gap": {"recal": 0.1}}},
            "'gates.binary.max_slice_gap.recal' (did you mean 'recall'?)",
        ),
        (
            {"binary": {"max_slice_gap": {"recall": -1}}},
            "'gates.binary.max_slice_gap.recall' must be >= 0",
        ),
    ],
)
def test_bad_regression_test_and_slice_gap_params_name_the_key(section, message) -> None:
    with pytest.raises(ConfigError) as err:
        GateParams.from_params({"gates": section}, "binary")
    assert message in str(err.value)


def test_fixture_params_use_the_paired_bootstrap() -> None:
    assert GateParams.from_params(fixture_params(), "binary").regression_test == "paired_bootstrap"


def test_intervals_are_at_the_level_where_all_regression_gates_together_err_5_percent() -> None:
    assert GATES.interval_level() == pytest.approx(0.975)  # two gated metrics
    assert GateParams(task="binary").interval_level() == 0.95  # no gate: a single 95 % interval
    assert GateParams.from_params(fixture_params(), "binary").interval_level() == pytest.approx(
        1 - 0.05 / 3
    )


def test_the_gate_detail_names_the_level_of_its_interval() -> None:
    worse = Difference(-0.02, -0.03, -0.011, paired=True, level=1 - 0.05 / 3)

    results = by_name(
        check_gates(GATES, {"roc_auc": 0.83}, {"roc_auc": 0.85}, PARITY_OK, {"roc_auc": worse})
    )

    assert "; real (paired 98.3% interval -0.0300 … -0.0110)" in (
        results["roc_auc regression"].detail
    )
