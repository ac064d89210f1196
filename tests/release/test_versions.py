"""Model versions live in Git as GTO tags; the bump rule follows what changed since the last one."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from release_repo import GIT_ENV, commit_all, git, make_release_repo, write_model
from workflow_harness import set_params

from gitops_ml.cli import main
from gitops_ml.release.versions import (
    VersionError,
    bump_part,
    next_version,
    promote,
    release_version,
    tag_version,
)

GTO = Path(sys.executable).parent / "gto"
LOCK_V1 = {"stages": {"export": {"outs": [{"path": "models/model.onnx", "md5": "aa"}]}}}
LOCK_V2 = {"stages": {"export": {"outs": [{"path": "models/model.onnx", "md5": "bb"}]}}}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    return make_release_repo(tmp_path / "repo", b"model-1")


def _set_tag_time(monkeypatch: pytest.MonkeyPatch, second: int) -> None:
    """GTO orders events by tag time, to the second; distinct times keep the test independent of
    the clock. GTO's tags are written in-process (dulwich stamps them with time.time()), git's
    commits by the git command (GIT_COMMITTER_DATE)."""
    moment = 1_767_225_600 + second
    monkeypatch.setenv("GIT_COMMITTER_DATE", f"{moment} +0000")
    monkeypatch.setattr(time, "time", lambda: float(moment))


@pytest.mark.parametrize(
    ("changed", "lock_after", "part"),
    [
        ({"data/schema.yaml", "params.yaml"}, LOCK_V2, "major"),
        ({"params.yaml"}, LOCK_V1, "minor"),
        ({"dvc.lock"}, LOCK_V2, "minor"),
        ({"serving/app.py", "dvc.lock"}, LOCK_V1, "patch"),
        (set(), LOCK_V1, "patch"),
    ],
)
def test_bump_rule_major_for_contract_minor_for_model_patch_otherwise(
    changed: set[str], lock_after: dict, part: str
) -> None:
    assert bump_part(changed, LOCK_V1, lock_after)[0] == part


def test_semver_accepts_release_versions_only() -> None:
    assert release_version("v1.2.3") == release_version("1.2.3")
    assert str(release_version("0.2.0").next_version("major")) == "1.0.0"
    for bad in ("1.2", "01.2.3", "1.2.3-rc.1", "1.2.3+build", "latest", ""):
        with pytest.raises(VersionError, match="is not a release version"):
            release_version(bad)


def test_first_version_is_0_1_0_and_tagging_twice_is_a_no_op(repo: Path) -> None:
    assert str(next_version(repo).version) == "0.1.0"

    assert tag_version(repo) == "churn-model@v0.1.0"
    assert tag_version(repo) == "churn-model@v0.1.0"

    assert git(repo, "cat-file", "-t", "churn-model@v0.1.0") == "tag"  # annotated, as GTO needs
    step = next_version(repo)
    assert str(step.version) == "0.1.0" and step.tagged


def test_versions_follow_params_model_and_contract_changes(repo: Path) -> None:
    tag_version(repo)
    hyperparams = yaml.safe_load((repo / "params.yaml").read_text())["model"]["hyperparams"]
    set_params(repo, {"model.hyperparams.max_iter": hyperparams["max_iter"] + 50})
    commit_all(repo, "more trees")
    assert tag_version(repo) == "churn-model@v0.2.0"

    write_model(repo, b"model-retrained-on-new-data")
    commit_all(repo, "new data")
    assert "dvc.lock hashes changed: models/model.onnx" in next_version(repo).reason
    assert tag_version(repo) == "churn-model@v0.3.0"

    (repo / "README.md").write_text("docs only\n")
    commit_all(repo, "docs")
    assert tag_version(repo) == "churn-model@v0.3.1"

    schema = repo / "data/schema.yaml"
    text = schema.read_text()
    assert "max: 120" in text  # tenure_months' upper bound, widened below
    schema.write_text(text.replace("max: 120", "max: 240"))
    commit_all(repo, "longer tenure")
    assert tag_version(repo) == "churn-model@v1.0.0"


def test_tagging_refuses_uncommitted_changes(repo: Path) -> None:
    write_model(repo, b"not committed")

    with pytest.raises(VersionError, match="uncommitted changes"):
        tag_version(repo)
    assert git(repo, "tag") == ""


def test_promotions_are_gto_stage_tags_that_gto_show_reads(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_tag_time(monkeypatch, 1)
    tag_version(repo)
    _set_tag_time(monkeypatch, 2)
    assert promote(repo, "production") == "churn-model#production#1"
    write_model(repo, b"model-2")
    commit_all(repo, "retrain")
    _set_tag_time(monkeypatch, 3)
    tag_version(repo)
    _set_tag_time(monkeypatch, 4)
    assert promote(repo, "staging") == "churn-model#staging#2"

    shown = subprocess.run(
        [str(GTO), "show", "--json"], cwd=repo, capture_output=True, text=True, check=True
    )
    registry = json.loads(shown.stdout)["churn-model"]
    assert registry["version"] == "v0.2.0"
    assert registry["stage"] == {"production": "v0.1.0", "staging": "v0.2.0"}

    _set_tag_time(monkeypatch, 5)
    assert promote(repo, "production", version="0.2.0") == "churn-model#production#3"
    shown = subprocess.run(
        [str(GTO), "show", "--json"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert json.loads(shown.stdout)["churn-model"]["stage"]["production"] == "v0.2.0"


def test_promoting_the_version_a_stage_already_holds_creates_no_tag(repo: Path) -> None:
    tag_version(repo)
    assert promote(repo, "production") == "churn-model#production#1"
    write_model(repo, b"model-2")
    commit_all(repo, "retrain")
    tag_version(repo)
    assert promote(repo, "production") == "churn-model#production#2"

    assert promote(repo, "production") == "churn-model#production#2"  # the deploy job re-run
    assert promote(repo, "production", version="0.1.0") == "churn-model#production#3"  # rollback
    assert promote(repo, "staging", version="0.1.0") == "churn-model#staging#4"
    assert git(repo, "tag", "--list", "churn-model#*").split() == [
        "churn-model#production#1",
        "churn-model#production#2",
        "churn-model#production#3",
        "churn-model#staging#4",
    ]


def test_promoting_needs_a_registered_version(repo: Path) -> None:
    with pytest.raises(VersionError, match="HEAD has no churn-model@v"):
        promote(repo, "production")
    with pytest.raises(VersionError, match=r"no tag churn-model@v9\.9\.9"):
        promote(repo, "production", version="9.9.9")
    with pytest.raises(VersionError, match="stage 'Prod!'"):
        promote(repo, "Prod!", version="0.1.0")


def test_version_command_prints_and_records_outputs_for_the_workflow(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo)
    outputs = repo.parent / "github_output"

    assert main(["version", "--next", "--github-output", str(outputs)]) == 0
    assert capsys.readouterr().out == "0.1.0\n"
    assert main(["version", "--tag", "--github-output", str(outputs)]) == 0
    assert capsys.readouterr().out == "churn-model@v0.1.0\n"
    assert main(["version", "--promote", "production", "--github-output", str(outputs)]) == 0
    assert capsys.readouterr().out == "churn-model#production#1\n"
    assert outputs.read_text().splitlines() == [
        "version=0.1.0",
        "tag=churn-model@v0.1.0",
        "model_name=churn-model",
        "tagged=false",
        "version=0.1.0",
        "tag=churn-model@v0.1.0",
        "model_name=churn-model",
        "version=0.1.0",
        "tag=churn-model#production#1",
        "model_name=churn-model",
    ]
    assert main(["version", "--current"]) == 0
    assert capsys.readouterr().out == "0.1.0\n"


@pytest.mark.parametrize(
    ("contract", "message"),
    [
        (
            None,
            r"^data/schema\.yaml not found: .*; the model is named after the contract's 'name'$",
        ),
        ("columns: [\n", r"data/schema\.yaml: not valid YAML"),
        ("columns: []\n", r"data/schema\.yaml: no 'name' to name the model after"),
        (
            "name: Adult Census\n",
            r"data/schema\.yaml: name 'Adult Census' names the model \(its version tags and "
            r"image\): use lowercase letters, digits, '-' and '_'",
        ),
    ],
    ids=["missing", "malformed", "no-name", "not-a-tag"],
)
def test_the_model_is_named_after_the_contract_or_an_error_naming_it(
    tmp_path: Path, contract: str | None, message: str
) -> None:
    from gitops_ml.release.versions import model_name

    (tmp_path / "data").mkdir()
    if contract is not None:
        (tmp_path / "data" / "schema.yaml").write_text(contract)
    with pytest.raises(VersionError, match=message):
        model_name(tmp_path)


def test_a_fork_s_model_is_named_after_its_contract(tmp_path: Path) -> None:
    from gitops_ml.release.versions import model_name

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "schema.yaml").write_text("name: census_income\ncolumns: []\n")
    assert model_name(tmp_path) == "census_income"
