"""A misspelt key in params.yaml or the data contract fails one way: the file (and the place in
it), the key, the nearest valid name and every valid one — never silently ignored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from project_fixtures import CONTRACT_PATH, PARAMS_PATH

from gitops_ml.cli import main
from gitops_ml.config import ConfigError, DriftParams, SplitParams, load_params
from gitops_ml.contract import ContractError, load_contract


def fixture_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def write(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_a_misspelt_params_section_names_the_file_the_section_and_the_nearest_one(
    tmp_path: Path,
) -> None:
    raw = fixture_yaml(PARAMS_PATH)
    raw["drfit"] = raw.pop("drift")
    params = write(tmp_path / "other-params.yaml", raw)
    with pytest.raises(ConfigError) as caught:
        load_params(params)
    assert str(caught.value) == (
        f"{params}: unknown key 'drfit' (did you mean 'drift'?); "
        "valid: data, split, model, evaluate, export, drift, gates"
    )


def test_a_misspelt_params_key_is_dotted_under_its_section_of_the_file_read() -> None:
    raw = load_params(PARAMS_PATH)
    raw["drift"]["psi_wran"] = raw["drift"].pop("psi_warn")
    with pytest.raises(ConfigError) as caught:
        DriftParams.from_params(raw)
    assert str(caught.value).startswith(
        f"{PARAMS_PATH}: unknown key 'drift.psi_wran' (did you mean 'psi_warn'?); "
        "valid in 'drift': window_rows, "
    )


def test_a_broken_rule_names_the_file_read_too() -> None:
    raw = load_params(PARAMS_PATH)
    raw["split"]["test_fraction"] = 1.5
    with pytest.raises(ConfigError) as caught:
        SplitParams.from_params(raw)
    assert str(caught.value) == (
        f"{PARAMS_PATH}: 'split.test_fraction' must be between 0 and 1, got 1.5"
    )


def test_params_built_in_code_are_named_as_the_default_file() -> None:
    with pytest.raises(ConfigError, match=r"^params\.yaml: 'split\.seed' is required$"):
        SplitParams.from_params({"split": {"test_fraction": 0.2}})


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c.update(descripton=c.pop("description")),
            ": unknown key 'descripton' (did you mean 'description'?); "
            "valid: name, description, encoding, csv, columns",
        ),
        (
            lambda c: c.update(encoding={"true_vals": ["Yes"]}),
            ": unknown key 'encoding.true_vals' (did you mean 'true_values'?); "
            "valid in 'encoding': true_values, false_values, missing_values, strip, day_first, "
            "decimal_comma, thousands",
        ),
        (
            lambda c: c["columns"][2].update(nulable=c["columns"][2].pop("nullable")),
            ": column 'tenure_months': unknown key 'nulable' (did you mean 'nullable'?); valid: ",
        ),
        (
            lambda c: c["columns"][2].update(checks={"mn": 0}),
            ": column 'tenure_months': unknown key 'checks.mn' (did you mean 'min'?); "
            "valid in 'checks': min, max, allowed, unique, max_length",
        ),
    ],
    ids=["top-level", "encoding", "column", "check"],
)
def test_a_misspelt_contract_key_names_the_file_the_place_the_key_and_the_nearest_name(
    tmp_path: Path, edit: Any, message: str
) -> None:
    raw = fixture_yaml(CONTRACT_PATH)
    assert raw["columns"][2]["name"] == "tenure_months"
    edit(raw)
    contract = write(tmp_path / "schema.yaml", raw)
    with pytest.raises(ContractError) as caught:
        load_contract(contract)
    assert str(caught.value).startswith(f"{contract}{message}")


def test_a_misspelt_contract_key_is_a_user_error_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = fixture_yaml(CONTRACT_PATH)
    raw["columns"][2]["checks"] = {"maximum": 120}
    contract = write(tmp_path / "schema.yaml", raw)
    data = tmp_path / "data.csv"
    data.write_text("customer_id\n1\n")
    code = main(["validate", "--contract", str(contract), "--input", str(data)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(
        f"error: {contract}: column 'tenure_months': unknown key 'checks.maximum' "
        "(did you mean 'max'?)"
    )
    assert "Traceback" not in err
