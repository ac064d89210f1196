"""A fork switched to a real-world file by the README's commands alone keeps the loop working,
whatever its task.

Each shape of `foreign_data.SHAPES` is a file as public CSVs are written: no header row, `, `
between values, `?` for missing and a `>50K` / `<=50K` label (census); hyphenated, spaced and
dotted names, a blank and `NA` for missing, a value padded with a trailing space and a trailing
comma on every data row (telco) — two binary targets; and two of scikit-learn's bundled real
data sets as the task fixtures write them: diabetes (regression: a number to predict, blanks
and `NA`) and wine (multiclass: three cultivars, `;` between values).
A scratch clone per shape saves it as the README's data file and runs the README's "Bring your
own data" block as written: `schema infer` reads it with no hand edit (the task included),
`make run` reproduces. Then, in that fork: the model is useful by its task's headline metric and
export parity holds, the project checks read its live files and pass, a scratch copy made from
it is the template's own project again, serving scores a raw row and its trimmed spelling
alike and echoes its id, DVC finds the pipeline up to date (an unchanged repro reruns nothing),
and the drift check reads the raw file: no drift on a random half of it, drift on a shifted
half. On the regression and multiclass files, `make demo` also plays the loop on its data (a
pull request with its paired report and gates, a release, traffic, drift and a retraining
branch) and a change to the data reruns the pipeline from ingest.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from doc_blocks import block_containing
from foreign_data import SHAPES
from serving_support import running_server, serve_command
from workflow_harness import GIT_IDENTITY, SMALL_PIPELINE, git, scratch_repo

from gitops_ml import cli, paths
from gitops_ml.contract import Contract, load_contract
from gitops_ml.demo import dvc_tracked
from gitops_ml.metric_registry import metric_sets

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = "data/customers.csv"  # the file name the README's block uses
# The stages that read the data file (and generate, whose output a fork's pipeline never reads).
DATA_STAGES = ("generate", "ingest", "validate", "split", "train", "evaluate", "export", "profile")
ROWS = 1500  # rows of a generated shape (a real data set has its own)
# Lean forks: the review's training noise is not the subject here (the demo sets its own). The
# drift check's minimum rows are a small data set's (docs/monitoring.md): half of wine is 89.
LEAN = {
    "evaluate.refits": 0,
    "evaluate.bootstrap_samples": 100,
    "evaluate.cv_folds": 2,
    "model.hyperparams.max_iter": 60,
    "drift.min_rows": 50,
    "drift.min_feature_rows": 30,
}
# The least a useful model reaches on each shape's test set, by its task's headline metric.
USEFUL = {"binary": 0.75, "multiclass": 0.85, "regression": 0.3}
# What is the same whatever the file's spelling runs once per task, on the tasks the template's
# own tests (binary) do not cover: `make demo` (about a minute each; tests/test_demo.py plays
# it on the template) and a data change rerunning the pipeline (tests/pipeline, on the
# template's own tracked file). Every shape runs the rest of this module, whose reading of the
# file is what differs between the binary shapes.
TASK_SHAPES = {"wine", "diabetes"}


@dataclass(frozen=True)
class Fork:
    shape: str
    repo: Path

    @property
    def contract(self) -> Contract:
        return load_contract(self.repo / paths.CONTRACT)

    @property
    def rows(self) -> int:
        return SHAPES[self.shape].rows or ROWS


def sh(repo: Path, *argv: str, check: bool = True, timeout: float = 600) -> str:
    """A command in the fork from a fresh shell: no environment activated (no `.venv/bin` on
    PATH), the fork's own code importable first (the shared `.venv` is an editable install of
    another checkout)."""
    entries = os.environ["PATH"].split(os.pathsep)
    env = {**os.environ, **GIT_IDENTITY, "DVC_NO_ANALYTICS": "1"}
    env["PATH"] = os.pathsep.join(e for e in entries if Path(e).parts[-2:] != (".venv", "bin"))
    env["PYTHONPATH"] = os.pathsep.join([str(repo / "src"), str(repo)])
    for name in ("PYTEST_ADDOPTS", "VIRTUAL_ENV"):
        env.pop(name, None)
    done = subprocess.run(
        list(argv), cwd=repo, env=env, capture_output=True, text=True, timeout=timeout
    )
    output = done.stdout + done.stderr
    if check:
        assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{output}"
    return output


@pytest.fixture(scope="module", params=sorted(SHAPES))
def fork(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Fork:
    """The template switched to one shape of file by running the README's block, as written."""
    shape = str(request.param)
    repo = scratch_repo(tmp_path_factory.mktemp(shape) / "repo", params=LEAN, project=None)
    (repo / DATA).write_text(SHAPES[shape].text(ROWS))  # a real data set: all of its rows
    block = block_containing(REPO_ROOT / "README.md", "schema infer")
    assert DATA in block
    sh(repo, "bash", "-euo", "pipefail", "-c", block)
    assert not git(repo, "status", "--porcelain").strip(), "the README's block left changes"
    return Fork(shape, repo)


def test_the_fork_reproduces_and_reaches_a_useful_model_with_onnx_parity(fork: Fork) -> None:
    task = SHAPES[fork.shape].task
    evaluation = json.loads((fork.repo / paths.EVALUATE_METRICS).read_text())
    data = json.loads((fork.repo / paths.DATA_METRICS).read_text())
    parity = json.loads((fork.repo / paths.EXPORT_METRICS).read_text())["parity"]
    assert data["rows"]["total"] == fork.rows  # every row read: no header row eaten, none dropped
    assert fork.contract.task == evaluation["task"] == task  # schema infer found the task
    assert evaluation["test"][metric_sets(task).headline] > USEFUL[task]
    assert parity["max_abs_diff"] <= parity["tolerance"] and not parity.get("label_flips")
    assert "business" not in evaluation  # no costs configured: no cost view
    card = (fork.repo / paths.MODEL_CARD).read_text()
    assert f"`{fork.contract.target}`" in card and "later time window" not in card
    assert f"| task | {task}: " in card


def test_the_project_checks_pass_on_the_forks_live_files(fork: Fork) -> None:
    """tests/project reads files, so neither the suite's model fixtures (the root conftest
    imports scikit-learn) nor Hypothesis's plugin: 1.5 s of CPU a fork instead of 4.2."""
    output = sh(fork.repo, ".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "--noconftest", "-p", "no:hypothesispytest", "tests/project")  # fmt: skip
    assert " passed" in output and "failed" not in output and "error" not in output


def test_a_scratch_copy_made_from_the_fork_is_the_template_project(
    fork: Fork, tmp_path: Path
) -> None:
    """What every scratch copy of the suite starts from: the fixture project, with no `.dvc`
    file of the fork's data (its empty DVC cache could not check it out) and the fixture
    contract's request examples, not the fork's."""
    from gitops_ml.pipeline.examples import render
    from gitops_ml.v2_request import example_payloads

    fixture = REPO_ROOT / "tests" / "fixtures" / "churn"
    assert dvc_tracked(fork.repo, [f"{DATA}.dvc"]) == [DATA]
    copy = scratch_repo(tmp_path / "copy", source=fork.repo, params=SMALL_PIPELINE)
    assert not [p for p in git(copy, "ls-files").split() if p.endswith(".dvc")]
    assert (copy / paths.CONTRACT).read_text() == (fixture / "schema.yaml").read_text()
    for name, body in example_payloads(load_contract(fixture / "schema.yaml")).items():
        assert (copy / paths.EXAMPLE_PREDICT).with_name(name).read_text() == render(body)


def test_make_demo_plays_the_loop_on_the_forks_data(fork: Fork) -> None:
    if fork.shape not in TASK_SHAPES:
        pytest.skip(f"make demo runs once per task, on {sorted(TASK_SHAPES)}")
    output = sh(fork.repo, "make", "demo", timeout=900)
    assert f"main reproduced ({fork.rows:,} rows)" in output
    assert re.search(r"All \d+ gates passed", output), output  # each task has its own gates
    assert "retraining branch `retrain/drift`" in output  # new data: the pipeline from ingest
    assert "refused: sha256 mismatch" in output


def _raw_row(fork: Fork) -> dict[str, str]:
    """The first row of the fork's file with no missing value, spelt as in the file."""
    contract = fork.contract
    missing = {token.strip() for token in contract.encoding.missing_values} | {"", "?", "NA"}
    for cells in SHAPES[fork.shape].raw_rows((fork.repo / DATA).read_text()):
        if not any(cell.strip() in missing for cell in cells):
            return dict(zip(contract.names, cells, strict=True))
    raise AssertionError(f"{DATA}: no complete row")


# What /predict answers for a row, per task (beside the row's id, echoed when it has one).
ANSWERS = {
    "binary": {"label", "probability"},
    "multiclass": {"label", "probabilities"},
    "regression": {"prediction"},
}


def test_serving_scores_a_raw_row_and_its_trimmed_spelling_alike_and_echoes_its_id(
    fork: Fork, tmp_path: Path
) -> None:
    contract = fork.contract
    raw = _raw_row(fork)
    sent = [*contract.feature_names, *([contract.id_column] if contract.id_column else [])]

    def record(spell: dict[str, str]) -> dict[str, object]:
        """JSON as a client sends it: numbers as numbers, every other value as its text."""
        kinds = {"int": lambda v: int(float(v)), "float": float}  # "218.0" in an int column
        return {name: kinds.get(contract.column(name).type, str)(spell[name]) for name in sent}

    trimmed = {k: v.strip() for k, v in raw.items()}
    command = serve_command(
        "--model", str(fork.repo / paths.MODEL_ONNX),
        "--contract", str(fork.repo / paths.CONTRACT),
    )  # fmt: skip
    with running_server(command, tmp_path) as server:
        answers = []
        for spelling in (raw, trimmed):
            body = record(spelling)
            response = httpx.post(f"{server.url}/predict", json=[body], timeout=10)
            assert response.status_code == 200, response.text
            answer = response.json()["predictions"][0]
            if contract.id_column:
                assert answer.pop(contract.id_column) == body[contract.id_column]
            answers.append(answer)
    assert set(answers[0]) == ANSWERS[contract.task], answers[0]
    assert answers[0] == answers[1], answers


def stages_run(output: str) -> list[str]:
    return [stage for stage in DATA_STAGES if f"Running stage '{stage}'" in output]


def test_dvc_finds_the_fork_up_to_date_and_an_unchanged_repro_reruns_nothing(fork: Fork) -> None:
    assert sh(fork.repo, ".venv/bin/dvc", "status") == "Data and pipelines are up to date.\n"
    output = sh(fork.repo, ".venv/bin/dvc", "repro")
    assert stages_run(output) == []
    assert f"'{DATA}.dvc' didn't change, skipping" in output  # DVC checked the data file


def test_a_change_to_the_data_reruns_the_pipeline_from_ingest(fork: Fork, tmp_path: Path) -> None:
    """DVC names ingest as changed by the file, the data stages rerun on the new rows, and
    every stage after them is then out of date: what `dvc repro` reruns next. The model stages
    running on changed data is `make demo`'s retraining step (test above), on the same forks."""
    if fork.shape not in TASK_SHAPES:
        pytest.skip(f"the rerun is checked once per task, on {sorted(TASK_SHAPES)}")
    copy = tmp_path / "fork"
    shutil.copytree(fork.repo, copy, symlinks=True)  # the shared fork stays as it is
    lines = (copy / DATA).read_text().splitlines(keepends=True)
    (copy / DATA).write_text("".join(lines[:-20]))  # the last twenty rows gone

    status = sh(copy, ".venv/bin/dvc", "status")
    output = sh(copy, ".venv/bin/dvc", "repro", "split")
    stale = json.loads(sh(copy, ".venv/bin/dvc", "status", "--json"))

    assert "ingest:" in status and f"modified:           {DATA}" in status
    assert stages_run(output) == ["ingest", "validate", "split"]
    data = json.loads((copy / paths.DATA_METRICS).read_text())
    assert data["rows"]["total"] == fork.rows - 20
    assert {"train", "evaluate", "export", "profile"} <= set(stale), stale


def drift(fork: Fork, window: Path, out: Path) -> dict[str, Any]:
    """The drift check of `window` (a file laid out as the fork's data file) against the
    fork's reference profile, scoring it with the fork's model; its drift.json. The command
    runs in this process (the fork's code is this checkout's): what differs between forks is
    the data it reads, not the process it runs in."""
    project = {"--profile": paths.PROFILE, "--model": paths.MODEL_ONNX,
               "--contract": paths.CONTRACT, "--params": paths.PARAMS}  # fmt: skip
    argv = ["drift", "--current", str(window), "--output-dir", str(out)]
    for option, name in project.items():
        argv += [option, str(fork.repo / name)]
    assert cli.main(argv) == 0
    result: dict[str, Any] = json.loads((out / "drift.json").read_text())
    return result


def write_window(fork: Fork, path: Path, pick: Callable[[list[list[str]]], list[int]]) -> Path:
    """The rows `pick` chooses (by their index among the file's data rows) at `path`, written
    as the fork's file is (its header line, if it has one, first)."""
    shape = SHAPES[fork.shape]
    text = (fork.repo / DATA).read_text()
    lines = text.splitlines(keepends=True)
    header, body = (lines[:1], lines[1:]) if shape.header else ([], lines)
    chosen = sorted(pick(shape.raw_rows(text)))
    path.write_text("".join(header + [body[i] for i in chosen]))
    return path


def test_drift_reads_the_raw_file_the_pipeline_trains_on(fork: Fork, tmp_path: Path) -> None:
    result = drift(fork, fork.repo / DATA, tmp_path)
    assert result["verdict"] in ("no_drift", "warn")
    assert result["performance"] is not None and result["performance"]["rows"] > 0


def test_drift_finds_none_in_a_random_half_and_finds_a_shifted_half(
    fork: Fork, tmp_path: Path
) -> None:
    """The shifted half: the rows at or above the median of a numeric feature, the one whose
    cut comes nearest to half the rows (not a 0/1 flag or a mostly-zero amount, whose "upper
    half" is nearly every row), a change in the population any drift check should see; a
    random half is the same population."""
    contract = fork.contract
    missing = {token.strip().casefold() for token in contract.encoding.missing_values}

    def random_half(rows: list[list[str]]) -> list[int]:
        return random.Random(7).sample(range(len(rows)), len(rows) // 2)

    def shifted_half(rows: list[list[str]]) -> list[int]:
        def values(name: str) -> dict[int, float]:
            column = contract.names.index(name)
            return {
                i: float(row[column]) for i, row in enumerate(rows)
                if row[column].strip().casefold() not in missing
            }  # fmt: skip

        def upper_half(known: dict[int, float]) -> list[int]:
            middle = sorted(known.values())[len(known) // 2]
            return [i for i, value in known.items() if value >= middle]

        measured = [n for n in contract.numeric_features if contract.column(n).type != "bool"]
        halves = [upper_half(values(name)) for name in measured]
        return min(halves, key=lambda half: abs(len(half) - len(rows) / 2))

    calm = drift(fork, write_window(fork, tmp_path / "half.csv", random_half), tmp_path / "h")
    shifted = drift(fork, write_window(fork, tmp_path / "top.csv", shifted_half), tmp_path / "s")

    assert calm["verdict"] == "no_drift", calm["reason"]
    assert shifted["verdict"] == "drift", shifted["reason"]
