"""A user's mistake is a UserError (exit 2 unless a command says otherwise), and a file whose
content pydantic refuses is named by its first wrong field."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from gitops_ml.errors import UserError, invalid_field


class _Inner(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    count: int


class _File(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    name: str
    inner: dict[str, _Inner]


def _refused(raw: object) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        _File.model_validate(raw)
    return raised.value


def test_a_user_error_exits_2() -> None:
    assert UserError.exit_code == 2


def test_the_first_wrong_field_is_named_as_a_dotted_path_with_the_reason() -> None:
    error = _refused({"name": "a", "inner": {"x": {"count": "3"}}})

    assert invalid_field(error) == "field 'inner.x.count': Input should be a valid integer"


def test_further_wrong_fields_are_counted() -> None:
    error = _refused({"inner": {"x": {"count": 1, "extra": 2}}})

    assert invalid_field(error) == "field 'name': Field required (and 1 more)"


def test_a_document_that_is_no_object_is_named_as_the_top_level() -> None:
    assert invalid_field(_refused([1])).startswith("field '(top level)': ")
