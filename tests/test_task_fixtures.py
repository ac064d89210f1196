"""The regression and multiclass fixture projects: scikit-learn's real data, quirks included."""

from __future__ import annotations

import pytest
from project_fixtures import FIXTURES, TASK_FIXTURES, task_fixture
from task_fixtures import CSV_FILES, fixture_csv


@pytest.mark.parametrize("relative", sorted(CSV_FILES))
def test_fixture_csvs_are_what_the_writer_makes_of_the_bundled_data(relative: str) -> None:
    assert (FIXTURES / relative).read_text() == fixture_csv(relative)


@pytest.mark.parametrize("task", sorted(TASK_FIXTURES))
def test_each_fixture_declares_its_task_and_passes_its_own_contract(task: str) -> None:
    fixture = task_fixture(task)
    assert fixture.contract.task == task
    assert fixture.frame[fixture.contract.target].notna().all()
    assert fixture.frame.isna().any(axis=None)  # blank and NA cells: nullable features


def test_the_multiclass_fixture_has_every_class_in_its_test_rows() -> None:
    fixture = task_fixture("multiclass")
    _, test = fixture.split()
    assert set(test[fixture.contract.target]) == set(fixture.contract.classes)
