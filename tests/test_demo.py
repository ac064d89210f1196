"""`make demo` plays the whole loop locally and leaves every artifact it talks about."""

from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_harness import REPO_ROOT, scratch_repo

from gitops_ml.demo import (
    MARKER,
    TRAFFIC_ROWS,
    Demo,
    DemoError,
    parse_change,
)
from gitops_ml.release.deploy import read_current


def test_a_change_is_key_equals_a_yaml_value() -> None:
    assert parse_change("model.hyperparams.max_iter=60") == ("model.hyperparams.max_iter", 60)
    with pytest.raises(argparse.ArgumentTypeError, match="expected KEY=VALUE"):
        parse_change("model.seed")


def test_the_demo_needs_the_tools_make_installs(tmp_path: Path) -> None:
    fork = tmp_path / "fork"
    fork.mkdir()
    subprocess.run(["git", "init", "--quiet"], cwd=fork, check=True)
    with pytest.raises(DemoError, match=r"\.tools is missing: run `make demo`"):
        Demo(fork, tmp_path / "demo", rows=100).prepare()
    assert not (tmp_path / "demo").exists()


def test_the_demo_never_deletes_a_directory_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me\n")
    with pytest.raises(DemoError, match="was not made by the demo"):
        Demo(Path("."), tmp_path, rows=100).prepare()
    assert (tmp_path / "precious.txt").exists()


def test_the_demo_names_the_tracked_data_its_scratch_copy_lacks(tmp_path: Path) -> None:
    fork = tmp_path / "fork"
    (fork / "data").mkdir(parents=True)
    (fork / ".tools").mkdir()
    (fork / "data" / "customers.csv.dvc").write_text("outs:\n- md5: 0\n  path: customers.csv\n")
    subprocess.run(["git", "init", "--quiet"], cwd=fork, check=True)
    with pytest.raises(DemoError) as raised:
        Demo(fork, tmp_path / "demo", rows=100).prepare()
    assert str(raised.value) == (
        f"the demo runs in a scratch copy ({tmp_path / 'demo' / 'work'}) and needs "
        "data/customers.csv, which DVC tracks but this workspace does not hold: run "
        "`make dvc-pull` first"
    )


@pytest.mark.slow
def test_make_demo_plays_the_loop_and_leaves_the_artifacts(tmp_path: Path) -> None:
    project = scratch_repo(tmp_path / "project", origin=False)  # fixture contract and params
    out = tmp_path / "demo"

    done = subprocess.run(
        [str(Path(sys.executable).parent / "gitops-ml"), "demo", "--dir", str(out)],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    timeline = (out / "timeline.txt").read_text()
    assert timeline in done.stdout
    for expected in (
        "main reproduced (3,000 rows)",
        "v0.1.0 bundled, tagged, smoke-tested",
        "All 6 gates passed",
        "merged: v0.2.0 (minor since churn-model@v0.1.0: params.yaml changed)",
        "v0.1.0 stopped",
        f"{TRAFFIC_ROWS} requests through v0.2.0's /predict",
        "verdict drift; issue text written",
        "retraining branch `retrain/drift`",
        "refused: sha256 mismatch; v0.2.0 keeps serving",
    ):
        assert expected in timeline, timeline
    assert (out / MARKER).exists()
    report = (out / "review/pr-1.md").read_text()  # what pr.yml posts: charts for GitHub to draw
    assert report.count("xychart-beta") == 2 and "All 6 gates passed" in report
    assert (out / "review/retrain.md").exists()
    assert "drift" in (out / "drift/issue.md").read_text().lower()
    assert "refused" in (out / "broken-bundle.txt").read_text()
    commands = [
        line for line in (out / "commands.log").read_text().splitlines() if line[:2] == "$ "
    ]
    merged = commands[next(i for i, c in enumerate(commands) if "git merge" in c) :]
    assert is_subsequence(deploy_yml_commands(), [" ".join(c.split()[1:4]) for c in merged])
    status = (out / "status.txt").read_text()
    assert "staging:\n  version   0.2.0" in status
    assert "production:\n  version   0.1.0" in status
    tags = subprocess.run(
        ["git", "tag", "--list"], cwd=out / "origin.git", capture_output=True, text=True
    ).stdout.split()
    assert {"churn-model@v0.1.0", "churn-model@v0.2.0"} <= set(tags)
    # GTO numbers every stage tag of the artifact in one sequence.
    assert {"churn-model#staging#1", "churn-model#production#2", "churn-model#staging#3"} <= set(
        tags
    )
    branches = subprocess.run(
        ["git", "branch", "--list"], cwd=out / "origin.git", capture_output=True, text=True
    ).stdout
    assert "retrain/drift" in branches and "pr/learning-rate" in branches
    shipped = sorted((out / "traffic/captured").rglob("*.jsonl.gz"))  # the servers' capture
    log = [line for path in shipped for line in gzip.decompress(path.read_bytes()).splitlines()]
    served = [line for line in log if json.loads(line)["model_version"] == "0.2.0"]
    assert len(served) >= TRAFFIC_ROWS
    current = read_current(out / "deployments")
    assert current is not None and current.version == "0.2.0"
    assert (
        not Path(f"/proc/{current.pid}/cmdline").exists()
        or b"serving" not in Path(f"/proc/{current.pid}/cmdline").read_bytes()
    )  # stopped at the end (--keep-serving leaves it up)


def deploy_yml_commands() -> list[str]:
    """The `gitops-ml` commands of deploy.yml's publish and deploy jobs, in order, each as its
    subcommand and first word (`gitops-ml bundle --output`)."""
    workflow = yaml.safe_load((REPO_ROOT / ".github/workflows/deploy.yml").read_text())
    scripts = [
        str(step.get("run", ""))
        for job in ("publish", "deploy")
        for step in workflow["jobs"][job]["steps"]
    ]
    return re.findall(r"gitops-ml [\w-]+ [\w-]+", "\n".join(scripts))


def is_subsequence(wanted: list[str], seen: list[str]) -> bool:
    remaining = iter(seen)
    return all(any(item == each for each in remaining) for item in wanted)
