"""drift.md's feature table goes through the one markdown table and the one escaping function: a
pipe in a column name (a fork's CSV header can hold anything) stays inside its cell, and the step
output the drift issue's title quotes stays one escaped line."""

from __future__ import annotations

from pathlib import Path

from gitops_ml.monitor.findings import (
    Chart,
    Distribution,
    DriftResult,
    FeatureFinding,
    MissingRates,
    PerformanceFinding,
    PredictionFinding,
    Reference,
)
from gitops_ml.monitor.report import feature_table, write_github_outputs


def finding(name: str) -> FeatureFinding:
    distribution = Distribution(
        kind="numeric",
        rows=1000,
        test="ks",
        statistic=0.25,
        p_distribution=1e-6,
        p_value=2e-6,
        psi=0.31,
        js=0.12,
        wasserstein_norm=0.4,
        missing=MissingRates(ref=0.01, cur=0.05, p=0.001),
        chart=Chart(["a"], [1.0], [1.0]),
        level="alert",
        p_adjusted=4e-6,
        significant=True,
    )
    return FeatureFinding(name, "float", distribution)


def test_each_feature_is_one_row_of_ten_cells_even_with_a_pipe_in_its_name() -> None:
    lines = feature_table([finding("price"), finding("price|eur")])
    assert lines[0].startswith("| feature | type | status | PSI | test stat |")
    assert lines[1] == "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
    assert lines[2] == (
        "| `price` | float | 🔴 alert | 0.310 | ks 0.250 | 4.0e-06 | 0.400 | 0.120 "
        "| 1.0% → 5.0% | — |"
    )
    assert lines[3].startswith("| <code>price&#124;eur</code> | float |")
    assert lines[3].count("|") == 11  # ten cells


def test_the_features_step_output_is_one_escaped_line_whatever_the_names(tmp_path: Path) -> None:
    result = DriftResult(
        verdict="drift",
        reason="features at alert",
        rows=1000,
        features=[finding("plan\nreport=/tmp/x @octocat"), finding("price|eur")],
        prediction=PredictionFinding("not_computed", "no scores"),
        performance=PerformanceFinding("not_computed", "no labels"),
        reference=Reference(rows=1000, model_sha256=None, metrics=None),
        thresholds={},
    )
    outputs = tmp_path / "github_output"
    write_github_outputs(result, "# report", tmp_path, {"GITHUB_OUTPUT": str(outputs)})
    lines = outputs.read_text().splitlines()
    assert [line.split("=", 1)[0] for line in lines] == ["drift", "verdict", "features", "report"]
    assert lines[2] == "features=plan report=/tmp/x @&#8203;octocat,price&#124;eur"
