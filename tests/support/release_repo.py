"""Scratch Git repositories shaped like a pipeline run, for the release tests.

`make_release_repo` writes what `dvc repro` leaves behind (model, contract, model card, params,
metrics, dvc.yaml, a dvc.lock recording the model's md5) and commits it, so bundle and version
logic run against real git without paying for a pipeline run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from filelock import FileLock
from metrics_files import EXPORT
from project_fixtures import CONTRACT_PATH, PARAMS_PATH

from gitops_ml import io as gio
from gitops_ml.release.bundle import Metadata, release_model_card, sha256_file

REPO_ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Release Test",
    "GIT_AUTHOR_EMAIL": "release@example.com",
    "GIT_COMMITTER_NAME": "Release Test",
    "GIT_COMMITTER_EMAIL": "release@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
DVC_YAML: dict[str, Any] = {
    "stages": {"export": {"cmd": "gitops-ml export", "outs": ["models/model.onnx"]}},
    "artifacts": {
        "churn-model": {"path": "models/model.onnx", "type": "model", "desc": "churn model"}
    },
}


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_ENV}
    proc = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


def write_lock(repo: Path, outputs: dict[str, bytes]) -> None:
    """A dvc.lock in DVC 3's layout recording the md5 of each output."""
    outs = [
        {"path": path, "hash": "md5", "md5": hashlib.md5(data).hexdigest(), "size": len(data)}
        for path, data in sorted(outputs.items())
    ]
    lock = {"schema": "2.0", "stages": {"export": {"cmd": "gitops-ml export", "outs": outs}}}
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))


RECORDED = ("models/model.onnx", "data/schema.yaml", "reports/model_card.md", "metrics/*.json")


def record_lock(repo: Path) -> None:
    """Record the md5 of every pipeline file present (model, contract, card, metrics)."""
    paths = sorted({p for pattern in RECORDED for p in repo.glob(pattern) if p.is_file()})
    write_lock(repo, {p.relative_to(repo).as_posix(): p.read_bytes() for p in paths})


def write_model(repo: Path, onnx_bytes: bytes) -> None:
    """Put a model in place and record it in dvc.lock, as `dvc repro` would."""
    (repo / "models").mkdir(parents=True, exist_ok=True)
    (repo / "models/model.onnx").write_bytes(onnx_bytes)
    record_lock(repo)


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_release_repo(repo: Path, onnx_bytes: bytes) -> Path:
    """A committed repo holding one pipeline run's outputs around `onnx_bytes`."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "--quiet", "--initial-branch=main")
    (repo / "data").mkdir(exist_ok=True)
    shutil.copy(CONTRACT_PATH, repo / "data/schema.yaml")  # fixtures, never the live files
    shutil.copy(PARAMS_PATH, repo / "params.yaml")
    (repo / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    (repo / "reports").mkdir(exist_ok=True)
    (repo / "reports/model_card.md").write_text("# Model card\n\nHistGradientBoosting churn.\n")
    (repo / "metrics").mkdir(exist_ok=True)
    (repo / "metrics/evaluate.json").write_text('{"test": {"roc_auc": 0.86}}\n')
    gio.write_json(repo / "metrics/export.json", EXPORT)  # the export stage's shape
    write_model(repo, onnx_bytes)
    commit_all(repo, "pipeline run")
    return repo


# ---------------------------------------------------------------------------------------------
# A real pipeline run: one per test session, cloned by every test that needs one
# ---------------------------------------------------------------------------------------------

_REPRODUCED: dict[str, Path] = {}  # "root": where the build is, once this process knows


def tool_env(repo: Path) -> dict[str, str]:
    """Environment for `dvc`/`gitops-ml` in a scratch repo: its .venv first, its own code on
    PYTHONPATH (the shared .venv's editable install would run the live work tree), an identity."""
    path = f"{repo / '.venv/bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    pythonpath = os.pathsep.join([str(repo / "src"), str(repo)])
    return {
        **os.environ,
        **GIT_ENV,
        "PATH": path,
        "PYTHONPATH": pythonpath,
        "DVC_NO_ANALYTICS": "1",
    }


def run_tool(repo: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `.venv/bin/<argv[0]>` in `repo`; a failure shows the tool's own output."""
    done = subprocess.run(
        [str(repo / ".venv/bin" / argv[0]), *argv[1:]],
        cwd=repo,
        env=tool_env(repo),
        capture_output=True,
        text=True,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


def reproduced_pipeline(tmp_path_factory: Any) -> Path:
    """A scratch copy of this repo where `dvc repro` ran on small params, committed on main.

    Built once per test session (a real pipeline run: ~13 s of CPU): by the first xdist worker
    that asks, in the directory the workers share, while another that asks meanwhile waits on
    the lock; a build that did not finish is redone. Use `clone_repo` to get a copy of your
    own."""
    return _reproduced_root(tmp_path_factory) / "repo"


def reproduction_output(tmp_path_factory: Any) -> str:
    """What `dvc repro` printed when it built `reproduced_pipeline`: a cold run's stages."""
    return (_reproduced_root(tmp_path_factory) / "repro.log").read_text()


def _reproduced_root(tmp_path_factory: Any) -> Path:
    if "root" not in _REPRODUCED:
        from workflow_harness import SMALL_PIPELINE, scratch_repo

        base = tmp_path_factory.getbasetemp()
        shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
        root = shared / "reproduced_pipeline"
        with FileLock(shared / "reproduced_pipeline.lock"):
            if not (root / "done").exists():
                shutil.rmtree(root, ignore_errors=True)
                repo = scratch_repo(root / "repo", params=SMALL_PIPELINE)
                (root / "repro.log").write_text(run_tool(repo, "dvc", "repro").stdout)
                commit_all(repo, "merge: pipeline reproduced")
                (root / "done").touch()
        _REPRODUCED["root"] = root
    return _REPRODUCED["root"]


def clone_repo(template: Path, dest: Path) -> Path:
    """A full copy (work tree, .git, DVC cache) with a bare `origin` of its own beside it,
    so a test can tell what was pushed from what was only created locally."""
    shutil.copytree(template, dest, symlinks=True)
    origin = dest.parent / f"{dest.name}-origin.git"
    git(dest.parent, "init", "--quiet", "--bare", str(origin))
    git(dest, "remote", "set-url", "origin", str(origin))
    git(dest, "push", "--quiet", "origin", "main")
    return dest


def forge_bundle(bundle: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """An attacker who rewrites metadata.json and then recomputes every hash it holds: each
    file's sha256, onnx_sha256/schema_sha256, the dvc_lock md5 of each copied pipeline file and
    the model card's release header."""
    metadata = json.loads((bundle / "metadata.json").read_text())
    card = (bundle / "model_card.md").read_text()
    body = card[len(release_model_card("", Metadata.model_validate(metadata))) :]
    edit(metadata)
    for _ in range(2):  # the card's header names the model's sha256, the card has its own
        (bundle / "model_card.md").write_text(
            release_model_card(body, Metadata.model_validate(metadata))
        )
        for name, entry in metadata["files"].items():
            entry["sha256"] = sha256_file(bundle / name)
            if "source" in entry:
                data = body.encode() if name == "model_card.md" else (bundle / name).read_bytes()
                metadata["dvc_lock"][entry["source"]] = hashlib.md5(data).hexdigest()
        metadata["onnx_sha256"] = metadata["files"]["model.onnx"]["sha256"]
        metadata["schema_sha256"] = metadata["files"]["schema.yaml"]["sha256"]
    (bundle / "metadata.json").write_text(json.dumps(metadata))
