"""Nothing from the data is markup: every report the project posts (the PR comment, the model card
that is also the release notes, the drift issue, the validation report) is rendered from a
contract and data full of hostile column names and category values, and keeps its structure on
GitHub's own parser (cmark-gfm, the library GitHub renders comments with): every `<details>`
closed, every table row exactly its header's cells, no fence opened or closed by a value, no tag,
link, @mention or issue reference made from the data, and the Mermaid charts intact."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import cmarkgfm
import numpy as np
import pandas as pd
import pytest
import yaml
from cmarkgfm.cmark import Options
from hypothesis import given, settings
from hypothesis import strategies as st
from metrics_files import EXPORT
from project_fixtures import drift_settings, fixture_params
from test_report_tasks import multiclass_report

from gitops_ml.cli import main
from gitops_ml.contract import Contract, parse_contract
from gitops_ml.evaluate_metrics import Slice, parse_evaluate_metrics
from gitops_ml.markdown import code, escape
from gitops_ml.monitor.drift import check_drift
from gitops_ml.monitor.profile import build_profile
from gitops_ml.monitor.readers import canonical_frame, frame_chunks
from gitops_ml.monitor.report import render_markdown
from gitops_ml.pipeline.model_card import render_model_card
from gitops_ml.review.gates import GateParams
from gitops_ml.review.report import ReviewInputs, render
from gitops_ml.stage_metrics import ValidationMetrics, parse_export_metrics

# What a crafted CSV can hold: each one breaks a table, a fence, a fold, or pings, links or
# embeds something when it reaches GitHub unescaped.
HOSTILE = (
    "a|b",
    "</details>",
    "<details><summary>opened",
    "<img src=x onerror=alert(1)>",
    "@octocat",
    "@some-org/some-team",
    "#1",
    "org/repo#2",
    "GH-3",
    "line\n```\nfenced",
    "`tick` ``` ~~~",
    "[click](https://evil.example/x)",
    "https://evil.example/y www.evil.example",
    "**bold** _em_ ~~gone~~ $x$",
    '"quoted" %%{init: {"theme": "dark"}}%% #35;',
    "back\\slash\\",
    "&lt;b&gt; &#64;octocat",
)
SEGMENT = "seg|ment @octocat </details>"  # a categorical slice column
AMOUNT = "<img src=x onerror=alert(2)> #4"  # a numeric feature
PLAN = "plan\n```\n@some-org/some-team"  # a categorical feature with a newline and a fence
TARGET = "left | @octocat"
# Parts of the hostile values a reader must still see, as text: escaped, never dropped.
SHOWN = ("octocat", "onerror=alert(1)", "some-org/some-team", "evil.example")


def hostile_contract() -> dict[str, Any]:
    return {
        "name": "crafted <b>@octocat</b>",
        "description": "Rows from a crafted CSV #5 </details>",
        "encoding": {"true_values": ["yes @octocat"], "false_values": ["no"]},
        "columns": [
            {"name": "row id", "type": "category", "role": "id", "checks": {"unique": True}},
            {
                "name": SEGMENT,
                "type": "category",
                "slice": True,
                "nullable": True,
                "checks": {"allowed": list(HOSTILE)},
                "description": "segment <img src=x onerror=alert(3)> | @octocat",
            },
            {"name": AMOUNT, "type": "float", "nullable": True, "checks": {"min": 0, "max": 100}},
            {"name": PLAN, "type": "category", "checks": {"allowed": ["basic", "premium"]}},
            {"name": TARGET, "type": "bool", "role": "target", "positive": "yes @octocat"},
        ],
    }


@pytest.fixture(scope="module")
def contract() -> Contract:
    return parse_contract(hostile_contract(), "crafted.yaml")


# ----------------------------------------------------------------------------- the checks


@dataclass
class Rendered:
    """What GitHub's parser made of a report (cmark-gfm HTML, with source positions)."""

    details: int = 0  # open minus closed, never below zero
    closed_below_zero: bool = False
    tags: set[str] = field(default_factory=set)
    rows: list[tuple[str, list[str]]] = field(default_factory=list)  # tr and its cells' positions
    text: list[str] = field(default_factory=list)  # text outside code, pre and links
    pre: list[tuple[str, str]] = field(default_factory=list)  # (lang, text) of code blocks


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = Rendered()
        self.inert = 0  # inside code, pre or a: GitHub links no mention there
        self.pre_lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.out.tags.add(tag)
        if tag == "details":
            self.out.details += 1
        if tag == "tr":
            self.out.rows.append((found.get("data-sourcepos") or "", []))
        if tag in ("td", "th") and self.out.rows:
            self.out.rows[-1][1].append(found.get("data-sourcepos") or "")
        if tag in ("code", "pre", "a"):
            self.inert += 1
        if tag == "pre":
            self.pre_lang = found.get("lang") or ""
            self.out.pre.append((self.pre_lang, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self.out.details -= 1
            self.out.closed_below_zero |= self.out.details < 0
        if tag in ("code", "pre", "a"):
            self.inert -= 1
        if tag == "pre":
            self.pre_lang = None

    def handle_data(self, data: str) -> None:
        if self.pre_lang is not None:
            lang, text = self.out.pre[-1]
            self.out.pre[-1] = (lang, text + data)
        elif not self.inert:
            self.out.text.append(data)


def github_html(markdown: str) -> str:
    options = Options.CMARK_OPT_UNSAFE | Options.CMARK_OPT_SOURCEPOS
    return cmarkgfm.github_flavored_markdown_to_html(
        markdown, options=options | Options.CMARK_OPT_GITHUB_PRE_LANG
    )


# Tags a report writes itself; anything else came from the data.
REPORT_TAGS = {"p", "h1", "h2", "h3", "h4", "table", "thead", "tbody", "tr", "th", "td"}
REPORT_TAGS |= {"details", "summary", "code", "pre", "strong", "em", "ul", "li", "hr"}
REPORT_TAGS |= {"blockquote"}
# GitHub's reference rules: @user and @org/team mentions, #1, owner/repo#1 and GH-1 references
REFERENCES = re.compile(r"(?:^|\W)@[a-z0-9]|(?:^|\W)#\d|\w/[\w.-]+#\d|\bgh-\d", re.IGNORECASE)
# A Mermaid string: no quote that ends it early, no `%%` directive inside.
_STRING = r'"(?:[^"%]|%(?!%))*"'
MERMAID_LINE = re.compile(
    r'%%\{init: \{"themeVariables": \{"xyChart": \{"plotColorPalette": "[#0-9a-f, ]+"\}\}\}\}%%'
    rf"|xychart-beta|    title {_STRING}"
    rf"|    x-axis (?:{_STRING} )?\[(?:[0-9.]+(?:, [0-9.]+)*|{_STRING}(?:, {_STRING})*)\]"
    rf"|    y-axis {_STRING} [0-9.]+ --> [0-9.]+|    (?:bar|line) \[[0-9.e+-]+(?:, [0-9.e+-]+)*\]"
)


def assert_inert(markdown: str, fenced: int) -> Rendered:
    """The report's structure on GitHub's rules, whatever its values; `fenced` = code blocks
    the report writes itself."""
    fences = [x for x in markdown.splitlines() if re.match(r" {0,3}(```|~~~)", x)]
    assert len(fences) == 2 * fenced, f"{len(fences)} fence lines for {fenced} code blocks"
    reader = _Reader()
    reader.feed(github_html(markdown))
    out = reader.out
    assert out.details == 0 and not out.closed_below_zero, "unbalanced <details>"
    assert out.tags <= REPORT_TAGS, f"tags made from the data: {sorted(out.tags - REPORT_TAGS)}"
    for row, cells in out.rows:
        end = int(row.rsplit(":", 1)[1])
        last = int(cells[-1].rsplit(":", 1)[1])
        assert all(not c.endswith(":0") for c in cells), f"row {row} has fewer cells: {cells}"
        assert end <= last + 1, f"row {row} has more cells than its header: {cells}"
    text = "".join(out.text)
    assert not REFERENCES.search(text), f"a live mention or reference: {REFERENCES.search(text)}"
    assert len(out.pre) == fenced, f"{len(out.pre)} code blocks, expected {fenced}"
    for lang, block in out.pre:
        if lang == "mermaid":
            for line in block.splitlines():
                assert MERMAID_LINE.fullmatch(line), f"a broken Mermaid line: {line!r}"
    return out


def assert_shown(out: Rendered) -> None:
    """The hostile values are shown as text, not swallowed by the escaping."""
    text = "".join(out.text) + "".join(b for _, b in out.pre)
    for fragment in SHOWN:
        assert fragment in text.replace("\u200b", ""), f"{fragment!r} is not shown"


# ----------------------------------------------------------------------------- any text

PIECES = [*"|`~*_[]()<>!\\$@#&;:/.-+= \n\r", "```", "</details>", "<img src=x>", "https://"]
PIECES += ["www.", "GH-1", "&lt;", "&#64;", "@a", "#1", "a@b.example"]
ANY_TEXT = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(st.characters(exclude_categories=["Cs", "Cc"]))),
    max_size=12,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT, st.booleans())
def test_escaped_text_is_one_cell_no_markup_and_reads_as_the_value(
    value: str, as_code: bool
) -> None:
    shown = code(value) if as_code else escape(value)
    html = github_html(f"| a | b |\n|---|---|\n| {shown} | z |\n\nbefore {shown} after\n")
    reader = _Reader()
    reader.feed(html)
    out = reader.out
    assert out.tags <= {"table", "thead", "tbody", "tr", "th", "td", "p", "code"}
    assert [len(cells) for _, cells in out.rows] == [2, 2]
    assert all(
        int(row.rsplit(":", 1)[1]) <= int(c[-1].rsplit(":", 1)[1]) + 1 for row, c in out.rows
    )
    assert not REFERENCES.search("".join(out.text))
    paragraph = html.split("<p", 1)[1].split(">", 1)[1].rsplit("</p>", 1)[0]
    shown_text = re.sub(r"</?code>", "", paragraph)
    expected = "before " + re.sub(r"\r\n?|\n", " ", value) + " after"
    assert unescape(shown_text).replace("\u200b", "") == expected.replace("\u200b", "")


# ----------------------------------------------------------------------------- the reports


def _flatten(doc: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(doc, dict):
        return {prefix[:-1]: doc}
    out: dict[str, Any] = {}
    for key, value in doc.items():
        out.update(_flatten(value, f"{prefix}{key}."))
    return out


def _diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What `dvc metrics diff --all --json` prints for one file."""
    a, b = _flatten(old), _flatten(new)
    return {k: {"old": a.get(k), "new": b.get(k)} for k in sorted(set(a) | set(b))}


def _slices(shift: float) -> dict[str, Slice]:
    groups = {
        value: {
            "rows": 400,
            "small": index == 0,
            "roc_auc": 0.80 + shift + index / 100,
            "recall": 0.5,
            "positive_rate": 0.2,
            "calibration_error": 0.02,
        }
        for index, value in enumerate(HOSTILE)
    }
    return {
        SEGMENT: Slice.model_validate({"groups": groups, "gap": {"roc_auc": 0.16, "recall": 0.0}})
    }


def _evaluate(roc: float) -> dict[str, Any]:
    test = {"roc_auc": roc, "log_loss": 0.4}
    return {
        "test": test,
        "ci95": {k: {"low": v - 0.01, "high": v + 0.01} for k, v in test.items()},
        "confusion": {"tn": 70, "fp": 5, "fn": 14, "tp": 11},
    }


def _validation(rate: float) -> dict[str, Any]:
    missing = {SEGMENT: rate, AMOUNT: rate / 2, PLAN: rate}
    return {"status": "passed", "missing_rate": missing, "dropped_columns": list(HOSTILE[:3])}


def _lock(path: str) -> dict[str, Any]:
    return {
        "stages": {
            "ingest": {
                "cmd": "gitops-ml ingest",
                "deps": [{"path": path, "md5": path}],
                "params": {"params.yaml": {"data.source": path}},
            },
            "train": {"cmd": "gitops-ml train", "outs": [{"path": "models/m", "md5": "1"}]},
        }
    }


ROC = {"roc": [{"fpr": i / 20, "tpr": min(1.0, (i / 20) ** 0.4)} for i in range(21)]}


def test_the_pr_report_keeps_its_structure_whatever_the_data_holds() -> None:
    source = "data/`<img src=x onerror=alert(1)>` @octocat #1 a|b.csv"
    inputs = ReviewInputs(
        base_rev="feature/@octocat#1",
        base_sha="0123456789abcdef",
        metrics={
            "metrics/evaluate.json": _diff(_evaluate(0.85), _evaluate(0.86)),
            "metrics/validation.json": _diff(_validation(0.01), _validation(0.02)),
        },
        params={"params.yaml": _diff({"data": {"source": "a.csv"}}, {"data": {"source": source}})},
        base_plots={"plots/roc.json": ROC},
        pr_plots={"plots/roc.json": ROC},
        base_lock=_lock("data/a.csv"),
        pr_lock=_lock(source),
        stale_files=[source],
        status={"train": [{"changed deps": {source: "modified"}}]},
        gates=GateParams(task="binary", minimum={"roc_auc": 0.5}, max_slice_gap={"roc_auc": 0.1}),
        base_slices=_slices(0.0),
        pr_slices=_slices(0.01),
    )
    markdown = render(inputs).markdown
    assert_shown(assert_inert(markdown, fenced=1))


def test_a_multiclass_report_keeps_its_structure_whatever_the_classes_are() -> None:
    """Class names reach the metric rows, the recall chart and the confusion matrix."""
    markdown = multiclass_report(
        classes=(HOSTILE[3], "a|b @octocat @some-org/some-team", HOSTILE[11])
    )
    assert_shown(assert_inert(markdown, fenced=1))


def test_the_model_card_keeps_its_structure_whatever_the_contract_holds(
    contract: Contract,
) -> None:
    params = fixture_params()
    params["data"]["source"] = "data/@octocat <b>#1</b>.csv"
    params["model"]["hyperparams"] = {"max_depth|<img>": "@octocat"}
    evaluation = parse_evaluate_metrics({**_evaluate(0.86), "slices": _slices(0.0)})
    counts = {"rows": 10, "columns": 3, "failed_checks": 0, "failing_rows": 0}
    validation = ValidationMetrics.model_validate({**_validation(0.02), **counts})
    card = render_model_card(
        params, contract, parse_export_metrics(EXPORT), validation=validation, evaluation=evaluation
    )
    assert_shown(assert_inert(card, fenced=1))


def _frame(rows: int, shift: int, seed: int) -> pd.DataFrame:
    """Raw rows of the hostile contract; `shift` moves the segments towards later values."""
    rng = np.random.default_rng(seed)
    weights = np.arange(1, len(HOSTILE) + 1, dtype=float) ** shift
    return pd.DataFrame(
        {
            "row id": [f"r{seed}-{i}" for i in range(rows)],
            SEGMENT: rng.choice(HOSTILE, rows, p=weights / weights.sum()),
            AMOUNT: rng.uniform(0, 100, rows) ** (1 + shift / 4) / 100 ** (shift / 4),
            PLAN: rng.choice(["basic", "premium"], rows, p=[0.3 + shift * 0.2, 0.7 - shift * 0.2]),
            TARGET: rng.choice(["yes @octocat", "no"], rows),
        }
    )


def test_the_drift_report_keeps_its_structure_and_its_charts_whatever_the_data_holds(
    contract: Contract,
) -> None:
    settings = drift_settings()
    reference = _frame(4000, shift=0, seed=1)
    profile = build_profile(canonical_frame(reference, contract, "train"), contract, settings)
    window = _frame(4000, shift=2, seed=2)
    result = check_drift(profile, contract, frame_chunks(window, contract), settings)
    assert {f.name for f in result.features if f.level == "alert"} >= {SEGMENT, PLAN}
    charts = min(3, len(result.drifting_features))
    assert_shown(assert_inert(render_markdown(result), fenced=charts))


def test_the_validation_report_keeps_its_structure_whatever_the_data_holds(
    tmp_path: Path, contract: Contract, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _frame(50, shift=0, seed=3).astype(str)
    raw.loc[:4, PLAN] = [HOSTILE[i] for i in (0, 1, 2, 6, 7)]  # outside the allowed list
    raw.loc[5:9, AMOUNT] = [HOSTILE[i] for i in (3, 5, 9, 11, 15)]  # not numbers
    raw.loc[10:11, "row id"] = "@octocat"  # not unique
    raw["<img src=x onerror=alert(1)> @octocat"] = "x"  # not in the contract: dropped
    data, schema, report = tmp_path / "crafted.csv", tmp_path / "crafted.yaml", tmp_path / "r.md"
    raw.to_csv(data, index=False)
    schema.write_text(yaml.safe_dump(hostile_contract()))
    code = main(
        ["validate", "--input", str(data), "--contract", str(schema), "--report", str(report)]
    )
    assert code == 1 and "validation failed" in capsys.readouterr().err
    assert_shown(assert_inert(report.read_text(encoding="utf-8"), fenced=0))
