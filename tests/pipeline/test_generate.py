"""generate: the seeded demo data as the file `data.source` names by default."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from project_fixtures import fixture_params

from gitops_ml import paths
from gitops_ml.cli import main
from gitops_ml.synthetic import generate_churn


def test_generate_writes_the_seeded_data_of_its_params(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text("data: {source: x.csv, rows: 300, seed: 5, scenario: new_plan}")

    assert main(["generate"]) == 0

    written = pd.read_parquet(paths.SYNTHETIC_DATA)
    expected = generate_churn(300, 5, "new_plan")
    # the generator keeps payment_method as object (None for missing); Parquet reads it as str
    pd.testing.assert_frame_equal(written, expected.astype({"payment_method": "str"}))
    assert f"generate: wrote 300 rows (seed 5, scenario new_plan) to {paths.SYNTHETIC_DATA}" in (
        capsys.readouterr().out
    )


def test_the_template_project_trains_on_the_generators_output() -> None:
    assert fixture_params()["data"]["source"] == paths.SYNTHETIC_DATA
