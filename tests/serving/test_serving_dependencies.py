"""The serving image runs on what it installs, and nothing else.

The image's package set is computed from the lock itself: what `uv sync --frozen --no-dev`
installs with the extras `serving/Dockerfile` passes (its `UV_EXTRAS`, the one list). Every
other distribution installed here is made unimportable, and the image's real entry points run
as the image runs them (`python -m ...`, with the Dockerfile's environment and a baked bundle):
the server until ready and one V2 inference over HTTP, the capture sidecar shipping one record
to a `file://` store, and the container's healthcheck.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from conftest import REPO_ROOT, ExportedModel
from dockerfile import exec_form, image_env, instructions, uv_extras
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from release_repo import make_release_repo
from serving_support import RunningServer, running_server, server_env, sidecar
from test_capture import shipped

from gitops_ml.release.bundle import build_bundle
from gitops_ml.v2_request import v2_request

UV = REPO_ROOT / ".tools/bin/uv"
PROJECT = "gitops-ml"
EXPORT_TEXT = ("--no-hashes", "--no-header", "--no-annotate", "--no-emit-project")

BLOCKER = """\
import importlib.abc
import sys

NOT_IN_THE_IMAGE = frozenset({blocked!r})


class NotInTheImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in NOT_IN_THE_IMAGE:
            raise ModuleNotFoundError(
                f"No module named {{name!r}} (not installed in the serving image)", name=name
            )
        return None


sys.meta_path.insert(0, NotInTheImage())
"""


def locked_distributions(*uv_flags: str) -> set[str]:
    """The distributions `uv sync --frozen --no-dev <uv_flags>` installs on this platform."""
    exported = subprocess.run(
        [str(UV), "export", "--frozen", "--no-dev", *uv_flags, *EXPORT_TEXT],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requirements = [Requirement(line) for line in exported.splitlines() if line.strip()]
    return {
        canonicalize_name(req.name)
        for req in requirements
        if req.marker is None or req.marker.evaluate()
    } | {PROJECT}


def modules_not_in(distributions: set[str]) -> set[str]:
    """Top-level modules installed here that none of `distributions` provides."""
    return {
        module
        for module, providers in metadata.packages_distributions().items()
        if not {canonicalize_name(p) for p in providers} & distributions
    }


def image_python_env(tmp_path: Path, distributions: set[str]) -> dict[str, str]:
    """The Dockerfile's environment, plus a sitecustomize that makes every module outside
    `distributions` unimportable (imported at interpreter start, before `-m` runs)."""
    blocker = tmp_path / "not-in-the-image"
    blocker.mkdir()
    blocked = sorted(modules_not_in(distributions))
    (blocker / "sitecustomize.py").write_text(BLOCKER.format(blocked=blocked))
    search = [str(blocker), str(REPO_ROOT), str(REPO_ROOT / "src")]
    env = {k: v for k, v in image_env().items() if k != "PATH"}  # PATH: this interpreter
    return {**env, "PYTHONPATH": os.pathsep.join(search)}


@pytest.fixture(scope="module")
def bundle(exported_model: ExportedModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the image bakes in: `gitops-ml bundle` of a committed pipeline run."""
    root = tmp_path_factory.mktemp("image-bundle")
    repo = make_release_repo(root / "repo", exported_model.onnx_path.read_bytes())
    return build_bundle(root / "bundle", "0.1.0", root=repo).path


def infer_one_row(server: RunningServer, exported_model: ExportedModel) -> None:
    frame = exported_model.test_frame.head(1)
    response = httpx.post(
        f"{server.url}/v2/models/churn-model/infer",
        json=v2_request(frame, exported_model.contract),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    (label,) = next(o for o in response.json()["outputs"] if o["name"] == "label")["data"]
    assert label in (0, 1)


def as_the_image_runs(keyword: str) -> list[str]:
    """The Dockerfile's CMD or HEALTHCHECK with this environment's `python`."""
    python, *argv = exec_form(keyword)
    assert python == "python"
    return [sys.executable, *argv]


def healthcheck(server: RunningServer, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    port = server.url.rsplit(":", 1)[1]
    return subprocess.run(
        as_the_image_runs("HEALTHCHECK"),
        env=server_env({**env, "SERVING_PORT": port}),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_image_installs_the_projects_extras_in_every_uv_sync_but_not_the_pipeline() -> None:
    syncs = [args for word, args in instructions() if word == "RUN" and "uv sync" in args]
    assert syncs and all("${UV_EXTRAS}" in shlex.split(args) for args in syncs)
    flags = uv_extras()
    extras = flags[1::2]
    assert flags[::2] == ["--extra"] * len(extras)
    optional = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert set(extras) <= set(optional) - {"pipeline"}


@pytest.mark.slow
def test_the_server_without_capture_serves_on_the_runtime_dependencies_alone(
    bundle: Path, exported_model: ExportedModel, tmp_path: Path
) -> None:
    """Capture off: no capture package and no store client is imported (no extras at all)."""
    env = {**image_python_env(tmp_path, locked_distributions()), "SERVING_MODEL": str(bundle)}
    with running_server(as_the_image_runs("CMD"), tmp_path, env=env) as server:
        infer_one_row(server, exported_model)


@pytest.mark.slow
def test_the_image_serves_ships_captured_rows_with_its_sidecar_and_passes_its_healthcheck(
    bundle: Path, exported_model: ExportedModel, tmp_path: Path
) -> None:
    store, spool = tmp_path / "store", tmp_path / "spool"
    env = {
        **image_python_env(tmp_path, locked_distributions(*uv_extras())),
        "SERVING_MODEL": str(bundle),
        "SERVING_CAPTURE_URL": f"file://{store}",
        "SERVING_CAPTURE_DIR": str(spool),
    }
    # Leaving the block stops the server (closing its last file), then the sidecar (shipping it).
    with (
        sidecar(env, tmp_path),
        running_server(as_the_image_runs("CMD"), tmp_path, env=env) as server,
    ):
        infer_one_row(server, exported_model)
        check = healthcheck(server, env)
        assert check.returncode == 0, check.stderr
    row_id = exported_model.test_frame[exported_model.contract.id_column].iloc[0]
    assert [line["id"] for lines in shipped(store).values() for line in lines] == [str(row_id)]
