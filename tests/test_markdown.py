"""One markdown module for every report: missing reads one way, text from the data is never
markup (one escaping function, plus one for Mermaid labels), long tables are capped with a count.
The reports rendered from hostile data are checked on GitHub's parser in test_markup_injection."""

from __future__ import annotations

import math

import pytest

from gitops_ml.markdown import MISSING, auto, cell, code, escape, mermaid_text, num, table
from gitops_ml.metric_registry import METRICS, label, metric


def test_missing_values_read_the_same_whatever_their_kind() -> None:
    assert num(None) == num(math.nan) == num("text") == num(True) == MISSING
    assert auto(None) == auto(math.nan) == cell(None) == MISSING


def test_numbers_format_by_size_and_cells_escape_text() -> None:
    assert auto(12345) == "12,345"
    assert auto(1234.5) == "1,234.5"
    assert auto(0.86123) == "0.8612"
    assert auto(1.1e-7) == "1.10e-07"
    assert cell("a|b\nc") == auto("a|b\nc") == "a&#124;b c"
    assert cell(["<b>", "@x"]) == '&#91;"&lt;b>", "@&#8203;x"]'


@pytest.mark.parametrize(
    "plain",
    [
        "tenure_months",
        "Month-to-month",
        "Bank transfer (automatic)",
        "18–33",
        " Male",
        "3.5",
        "R&D",
        "a > b < c",
        "50% off",
        "électricité_totale",
        "snake__case",
    ],
)
def test_plain_values_come_out_unchanged(plain: str) -> None:
    assert escape(plain) == plain.replace("__", "&#95;&#95;")  # `__` could be emphasis
    if "__" not in plain and plain == plain.strip():  # a code span trims a leading space
        assert code(plain) == f"`{plain}`"


@pytest.mark.parametrize(
    ("value", "inert"),
    [
        ("a|b", "a&#124;b"),  # no extra table cell
        ("x\n```\ny", "x &#96;&#96;&#96; y"),  # no new block, no fence
        ("x\r\n~~~", "x &#126;&#126;&#126;"),
        ("</details>", "&lt;/details>"),  # no tag
        ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)>"),
        ("@octocat @some-org/some-team", "@&#8203;octocat @&#8203;some-org/some-team"),
        ("#1 org/repo#2 GH-3 gh-4", "#&#8203;1 org/repo#&#8203;2 GH&#8203;-3 gh&#8203;-4"),
        ("[x](https://e.example)", "&#91;x](https:&#8203;//e.example)"),  # no link
        ("www.e.example me@e.example", "www&#8203;.e.example me@&#8203;e.example"),
        ("*b* _i_ ~s~ $m$", "&#42;b&#42; &#95;i&#95; &#126;s&#126; &#36;m&#36;"),
        ("a\\", "a&#92;"),  # cannot escape what follows the value
        ("&lt;b&gt; &#64;", "&amp;lt;b&amp;gt; &amp;#&#8203;64;"),  # shown as written
    ],
)
def test_markup_in_a_value_is_inert(value: str, inert: str) -> None:
    assert escape(value) == inert
    assert code(value) == f"<code>{inert}</code>"  # a code span would show the references


def test_mermaid_labels_cannot_end_their_string_line_or_fence() -> None:
    assert mermaid_text('a "b" %%{init}%% #1') == "a #34;b#34; #37;#37;{init}#37;#37; #35;1"
    assert mermaid_text("x\n```\n<y> \\ `z` &") == "x #96;#96;#96; #60;y#62; #92; #96;z#96; #38;"
    assert mermaid_text("18–33") == "18–33"


def test_tables_cap_their_rows_and_say_how_many_were_left_out() -> None:
    text = table(["a"], [[i] for i in range(5)], max_rows=3)
    assert text.splitlines()[:2] == ["| a |", "|---|"]
    assert "| 2 |" in text and "| 3 |" not in text
    assert text.endswith("_… and 2 more rows not shown._")


def test_the_registry_knows_each_metric_once_and_defaults_unknown_ones() -> None:
    assert label("test.roc_auc") == "ROC AUC"
    assert metric("cost_per_1000").lower_is_better and metric("cost_custom").lower_is_better
    assert metric("mcc").label == "mcc" and not metric("mcc").lower_is_better
    assert {m.name for m in METRICS.values() if m.lower_is_better} == {
        "log_loss",
        "brier",
        "cost_per_1000",
        "cost_per_1000_at_best",
        "calibration_error",
        "rmse",
        "mae",
        "median_absolute_error",
    }
