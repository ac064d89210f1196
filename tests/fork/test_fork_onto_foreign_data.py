"""A fork switched to a real-world file by the README's commands alone keeps the loop working.

Each shape of `foreign_data.SHAPES` is a file as public CSVs are written: no header row, `, `
between values, `?` for missing and a `>50K` / `<=50K` label (census); hyphenated and spaced
names, a value padded with a trailing space and a trailing comma on every data row (telco); `;`
between values, dotted names, `NA` and a `good` / `bad` label (credit). A scratch clone per
shape saves it as the README's data file and runs the README's "Bring your own data" block as
written: `schema infer` reads it with no hand edit, `make run` reproduces. Then, in that fork:
the project checks read its live files and pass, a scratch copy made from it is the template's
own project again, `make demo` plays the loop on its data (a pull request, a release, traffic,
drift and a retraining branch whose data change reruns the pipeline), serving scores a raw row
and its trimmed spelling alike, DVC finds the pipeline up to date (an unchanged repro reruns
nothing) and the drift check reads the raw file.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from doc_blocks import block_containing
from foreign_data import SHAPES
from serving_support import running_server, serve_command
from workflow_harness import GIT_IDENTITY, SMALL_PIPELINE, git, scratch_repo

from gitops_ml import paths
from gitops_ml.contract import Contract, load_contract
from gitops_ml.demo import dvc_tracked

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA = "data/customers.csv"  # the file name the README's block uses
# The stages that read the data file (and generate, whose output a fork's pipeline never reads).
DATA_STAGES = ("generate", "ingest", "validate", "split", "train", "evaluate", "export", "profile")
ROWS = 1500
# Lean forks: the review's training noise is not the subject here (the demo sets its own).
LEAN = {
    "evaluate.refits": 0,
    "evaluate.bootstrap_samples": 100,
    "evaluate.cv_folds": 2,
    "model.hyperparams.max_iter": 60,
}


@dataclass(frozen=True)
class Fork:
    shape: str
    repo: Path

    @property
    def contract(self) -> Contract:
        return load_contract(self.repo / paths.CONTRACT)


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
    (repo / DATA).write_text(SHAPES[shape].text(ROWS))
    block = block_containing(REPO_ROOT / "README.md", "schema infer")
    assert DATA in block
    sh(repo, "bash", "-euo", "pipefail", "-c", block)
    assert not git(repo, "status", "--porcelain").strip(), "the README's block left changes"
    return Fork(shape, repo)


def test_the_fork_reproduces_and_reaches_a_useful_model(fork: Fork) -> None:
    evaluation = json.loads((fork.repo / paths.EVALUATE_METRICS).read_text())
    data = json.loads((fork.repo / paths.DATA_METRICS).read_text())
    assert data["rows"]["total"] == ROWS  # every row read: no header row eaten, none dropped
    assert evaluation["test"]["roc_auc"] > 0.75
    assert "business" not in evaluation  # no costs configured: no cost view
    card = (fork.repo / paths.MODEL_CARD).read_text()
    assert f"`{fork.contract.target}`" in card and "later time window" not in card


def test_the_project_checks_pass_on_the_forks_live_files(fork: Fork) -> None:
    output = sh(fork.repo, ".venv/bin/python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "tests/project")  # fmt: skip
    assert " passed" in output and "failed" not in output and "error" not in output


def test_a_scratch_copy_made_from_the_fork_is_the_template_project(
    fork: Fork, tmp_path: Path
) -> None:
    """What every scratch copy of the suite starts from: the fixture project, with no `.dvc`
    file of the fork's data (its empty DVC cache could not check it out) and the fixture
    contract's request examples, not the fork's."""
    from serving.example_payloads import example_payloads, render

    fixture = REPO_ROOT / "tests" / "fixtures" / "churn"
    assert dvc_tracked(fork.repo, [f"{DATA}.dvc"]) == [DATA]
    copy = scratch_repo(tmp_path / "copy", source=fork.repo, params=SMALL_PIPELINE)
    assert not [p for p in git(copy, "ls-files").split() if p.endswith(".dvc")]
    assert (copy / paths.CONTRACT).read_text() == (fixture / "schema.yaml").read_text()
    for name, body in example_payloads(load_contract(fixture / "schema.yaml")).items():
        assert (copy / paths.EXAMPLE_PREDICT).with_name(name).read_text() == render(body)


def test_make_demo_plays_the_loop_on_the_forks_data(fork: Fork) -> None:
    output = sh(fork.repo, "make", "demo", timeout=900)
    assert f"main reproduced ({ROWS:,} rows)" in output
    assert "All 6 gates passed" in output and "refused: sha256 mismatch" in output


def _raw_row(fork: Fork) -> dict[str, str]:
    """The first row of the fork's file with no missing value, spelt as in the file."""
    contract = fork.contract
    missing = {token.strip() for token in contract.encoding.missing_values} | {"", "?", "NA"}
    for cells in SHAPES[fork.shape].raw_rows((fork.repo / DATA).read_text()):
        if not any(cell.strip() in missing for cell in cells):
            return dict(zip(contract.names, cells, strict=True))
    raise AssertionError(f"{DATA}: no complete row")


def test_serving_scores_a_raw_row_and_its_trimmed_spelling_alike(
    fork: Fork, tmp_path: Path
) -> None:
    contract = fork.contract
    raw = _raw_row(fork)
    features = contract.feature_names

    def record(spell: dict[str, str]) -> dict[str, object]:
        """JSON as a client sends it: numbers as numbers, every other value as its text."""
        kinds = {"int": int, "float": float}
        return {name: kinds.get(contract.column(name).type, str)(spell[name]) for name in features}

    trimmed = {k: v.strip() for k, v in raw.items()}
    command = serve_command(
        "--model", str(fork.repo / paths.MODEL_ONNX),
        "--contract", str(fork.repo / paths.CONTRACT),
    )  # fmt: skip
    with running_server(command, tmp_path) as server:
        scores = []
        for spelling in (raw, trimmed):
            response = httpx.post(f"{server.url}/predict", json=[record(spelling)], timeout=10)
            assert response.status_code == 200, response.text
            scores.append(response.json()["predictions"][0]["probability"])
    assert scores[0] == scores[1], scores


def stages_run(output: str) -> list[str]:
    return [stage for stage in DATA_STAGES if f"Running stage '{stage}'" in output]


def test_dvc_finds_the_fork_up_to_date_and_an_unchanged_repro_reruns_nothing(fork: Fork) -> None:
    assert sh(fork.repo, ".venv/bin/dvc", "status") == "Data and pipelines are up to date.\n"
    output = sh(fork.repo, ".venv/bin/dvc", "repro")
    assert stages_run(output) == []
    assert f"'{DATA}.dvc' didn't change, skipping" in output  # DVC checked the data file


def test_drift_reads_the_raw_file_the_pipeline_trains_on(fork: Fork) -> None:
    sh(fork.repo, ".venv/bin/gitops-ml", "drift", "--current", DATA, "--model", paths.MODEL_ONNX,
       "--output-dir", "reports/drift")  # fmt: skip
    result = json.loads((fork.repo / "reports/drift/drift.json").read_text())
    assert result["verdict"] in ("no_drift", "warn")
    assert result["performance"] is not None and result["performance"]["rows"] > 0
