"""params.yaml is edited one way, as `dvc exp run --set-param` edits it: the values named
change, every comment and the layout stay, and a key the file does not hold is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gitops_ml.params_edit import ParamsEditError, set_params, set_params_file

PARAMS = """\
# the project's tunables
data:
  source: data/synthetic/data.parquet   # "synthetic", or a path
  rows: 50000              # rows generated
model:
  hyperparams:             # passed to the estimator
    learning_rate: 0.06
    rows: 7
  flags: [a, b]
"""


def test_nested_values_change_and_every_comment_stays_where_it_was() -> None:
    text = set_params(PARAMS, {"model.hyperparams.learning_rate": 0.04, "data.rows": 3000})

    assert yaml.safe_load(text) == {
        "data": {"source": "data/synthetic/data.parquet", "rows": 3000},
        "model": {"hyperparams": {"learning_rate": 0.04, "rows": 7}, "flags": ["a", "b"]},
    }
    assert "  rows: 3000               # rows generated\n" in text  # the comment's column
    assert text.replace("0.04", "0.06").replace("3000 ", "50000") == PARAMS


def test_nothing_changes_when_nothing_is_set() -> None:
    assert set_params(PARAMS, {}) == PARAMS


def test_a_long_value_stays_on_its_line_as_a_person_would_write_it() -> None:
    long_path = "/tmp/" + "very-long-directory-name/" * 6 + "data.parquet"
    text = set_params(PARAMS, {"data.source": long_path})

    assert f'  source: {long_path} # "synthetic", or a path\n' in text


def test_a_value_keeps_its_type_a_string_that_reads_as_a_number_stays_a_string() -> None:
    text = set_params(PARAMS, {"data.source": "2024", "data.rows": 10, "model.flags": ["c"]})

    data = yaml.safe_load(text)
    assert data["data"] == {"source": "2024", "rows": 10}
    assert data["model"]["flags"] == ["c"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("model.hyperparams", "model.hyperparams is a section, not a value"),
        ("model.seed", "has no model.seed"),
        ("data.rows.total", "has no data.rows.total"),
        ("evaluate.costs", "has no evaluate.costs"),
    ],
)
def test_a_key_that_names_no_value_is_refused_naming_the_file(key: str, message: str) -> None:
    with pytest.raises(ParamsEditError, match=rf"^params\.yaml: {message}"):
        set_params(PARAMS, {key: 1})


def test_a_file_is_edited_in_place_and_left_alone_when_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS)

    set_params_file(path, {"data.rows": 10})
    assert yaml.safe_load(path.read_text())["data"]["rows"] == 10

    with pytest.raises(ParamsEditError, match=rf"^{path}: has no model\.seed"):
        set_params_file(path, {"data.rows": 20, "model.seed": 1})
    assert yaml.safe_load(path.read_text())["data"]["rows"] == 10


def test_a_file_that_is_not_yaml_is_an_error_naming_it() -> None:
    with pytest.raises(ParamsEditError, match=r"^params\.yaml: not valid YAML"):
        set_params("data: [unclosed\n", {"data.rows": 1})
