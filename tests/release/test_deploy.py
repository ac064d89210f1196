"""Local deployment: only a bundle that passes its smoke test replaces what is serving."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from project_fixtures import CONTRACT_PATH
from release_repo import (
    GIT_ENV,
    clone_repo,
    commit_all,
    forge_bundle,
    git,
    make_release_repo,
    reproduced_pipeline,
    run_tool,
    write_model,
)
from workflow_harness import set_params

from gitops_ml.cli import main
from gitops_ml.contract import load_contract
from gitops_ml.release.bundle import build_bundle, load_bundle, sha256_file
from gitops_ml.release.deploy import (
    SMOKE_ROWS,
    Answer,
    DeployError,
    check_v2_response,
    deploy_local,
    local_version,
    read_current,
    smoke_frame,
    stop_local,
)
from gitops_ml.release.versions import VersionError
from gitops_ml.v2_request import v2_request
from serving.v2 import parse_infer_request
from serving.validation import request_table

# ---------------------------------------------------------------------------------------------
# The smoke test's pure parts
# ---------------------------------------------------------------------------------------------


def test_the_smoke_request_is_one_the_server_accepts_ids_and_missing_values_included() -> None:
    contract = load_contract(CONTRACT_PATH)
    request = v2_request(smoke_frame(contract), contract, request_id="smoke-test")

    parsed = parse_infer_request(request, request_table(contract), 10)

    assert parsed.rows == SMOKE_ROWS and parsed.ids is not None
    assert np.isnan(parsed.feeds["total_charges"][-1, 0]), "nullable features are left missing"


def _response(probabilities: list[list[float]], labels: list[int]) -> dict:
    return {
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [len(labels)], "data": labels},
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [len(probabilities), 2],
                "data": [p for row in probabilities for p in row],
            },
        ]
    }


EXPECTED = Answer(np.array([[0.8, 0.2], [0.1, 0.9]]), [0, 1])


def test_smoke_check_accepts_the_bundles_own_answers() -> None:
    response = _response([[0.8, 0.2], [0.1, 0.9]], [0, 1])
    assert check_v2_response(response, EXPECTED) == pytest.approx(0.0)


def test_smoke_check_reads_each_task_s_answer() -> None:
    classes = Answer(np.array([[0.7, 0.2, 0.1]]), ["red"])
    multiclass = {
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [1], "data": ["red"]},
            {"name": "probabilities", "datatype": "FP32", "shape": [1, 3], "data": [0.7, 0.2, 0.1]},
        ]
    }
    assert check_v2_response(multiclass, classes, "multiclass") == pytest.approx(0.0, abs=1e-7)
    values = Answer(np.array([[151.0], [75.5]]), None)
    regression = {
        "outputs": [{"name": "predict", "datatype": "FP64", "shape": [2], "data": [151.0, 75.5]}]
    }
    assert check_v2_response(regression, values, "regression") == 0.0
    off = {"outputs": [{"name": "predict", "shape": [2], "data": [151.0, 80.0]}]}
    with pytest.raises(DeployError, match=r"differ from the bundle's model by 0\.0298"):
        check_v2_response(off, values, "regression")  # 4.5 of 151: relative to the scale
    with pytest.raises(DeployError, match="expected 'predict'"):
        check_v2_response(multiclass, values, "regression")


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (_response([[0.3, 0.7], [0.1, 0.9]], [0, 1]), "differ from the bundle's model by 0.5"),
        ({"outputs": [{"name": "label", "data": [0, 1]}]}, "expected 'label' and 'probabilities'"),
        (_response([[0.8, 0.2]], [0]), "'probabilities' has 2 values, expected 2 x 2"),
        (_response([[0.8, 0.2], [0.1, 0.9]], [0, 7]), "'label' is \\[0, 7\\], expected \\[0, 1\\]"),
        (_response([[0.8, 0.8], [0.1, 0.9]], [0, 1]), "do not sum to 1"),
    ],
)
def test_smoke_check_names_what_is_wrong_with_a_response(response: dict, message: str) -> None:
    with pytest.raises(DeployError, match=message):
        check_v2_response(response, EXPECTED)


def test_uncommitted_changes_deploy_as_a_dev_version_and_are_never_tagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    repo = make_release_repo(tmp_path / "repo", b"model-1")
    assert local_version(repo, repo / "models/model.onnx") == "0.1.0"
    write_model(repo, b"model-2, not committed")

    digest = hashlib.sha256(b"model-2, not committed").hexdigest()[:8]
    assert local_version(repo, repo / "models/model.onnx") == f"0.1.0-dev.{digest}"
    with pytest.raises(VersionError, match="--tag needs a clean checkout"):
        deploy_local(repo, tag=True)
    assert not (repo / "deployments").exists()


# ---------------------------------------------------------------------------------------------
# Real deployments: a reproduced pipeline, real servers on loopback
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def repo(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A clone of the reproduced pipeline as the working directory; servers stopped after."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    cloned = clone_repo(reproduced_pipeline(tmp_path_factory), tmp_path / "repo")
    monkeypatch.chdir(cloned)
    yield cloned
    stop_local(cloned / "deployments")


def _infer(repo: Path) -> dict:
    """One V2 request to whatever `deployments/current.json` says is serving."""
    current = read_current(repo / "deployments")
    assert current is not None
    contract = load_contract(repo / "data/schema.yaml")
    request = v2_request(smoke_frame(contract), contract)
    response = httpx.post(f"{current.url}/v2/models/churn-model/infer", json=request, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _alive(pid: int) -> bool:
    try:
        return not Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return False


def _bundle_with_unloadable_model(repo: Path, dest: Path) -> Path:
    """Consistent hashes, but the model is not ONNX: only starting the server finds out."""
    bundle = build_bundle(dest, "0.3.0", root=repo)
    bundle.model_path.write_bytes(b"this is not an onnx model")
    forge_bundle(bundle.path, lambda metadata: None)
    assert load_bundle(dest).onnx_sha256 == sha256_file(bundle.model_path)
    return dest


@pytest.mark.slow
def test_merges_deploy_v0_1_0_then_v0_2_0_and_broken_models_never_replace_it(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # merge 1: the reproduced pipeline is deployed and tagged
    assert main(["deploy-local", "--tag"]) == 0
    out = capsys.readouterr().out
    assert "deployed churn-model 0.1.0 at http://127.0.0.1:" in out
    assert "tagged churn-model@v0.1.0" in out
    v1 = read_current(repo / "deployments")
    assert v1 is not None and _infer(repo)["model_version"] == "0.1.0"

    # merge 2: changed params, pipeline reproduced and committed -> minor version
    set_params(repo, {"model.hyperparams.max_iter": 45})
    run_tool(repo, "dvc", "repro")
    commit_all(repo, "merge: more boosting iterations")
    assert main(["deploy-local", "--tag"]) == 0
    assert "deployed churn-model 0.2.0" in capsys.readouterr().out
    assert os.readlink(repo / "deployments/current") == "0.2.0"
    assert not _alive(v1.pid), "the 0.1.0 server should stop once 0.2.0 serves"
    v2 = read_current(repo / "deployments")
    assert v2 is not None and v2.onnx_sha256 != v1.onnx_sha256

    # merge 3: a bundle whose ONNX file no longer matches its metadata is refused up front
    broken = build_bundle(repo.parent / "broken", "0.3.0", root=repo).path
    (broken / "model.onnx").write_bytes((broken / "model.onnx").read_bytes()[:-64])
    assert main(["deploy-local", "--bundle", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "refused: bundle" in err and "model.onnx has sha256" in err
    assert f"churn-model 0.2.0 keeps serving at {v2.url}" in err
    assert read_current(repo / "deployments") == v2
    assert _infer(repo)["model_version"] == "0.2.0"

    # a bundle with consistent hashes but an unloadable model fails when its server starts
    unloadable = _bundle_with_unloadable_model(repo, repo.parent / "unloadable")
    assert main(["deploy-local", "--bundle", str(unloadable)]) == 1
    err = capsys.readouterr().err
    assert "churn-model 0.3.0 was not deployed: the server exited with code" in err
    assert "error:" in err  # the server's own reason, from its log
    assert f"churn-model 0.2.0 keeps serving at {v2.url}" in err
    assert not (repo / "deployments/0.3.0").exists()
    assert read_current(repo / "deployments") == v2
    assert _infer(repo)["model_version"] == "0.2.0"
    assert git(repo, "tag", "--list").split() == ["churn-model@v0.1.0", "churn-model@v0.2.0"]

    # rolling back by hand: redeploy the previous bundle kept in deployments/
    assert main(["deploy-local", "--bundle", "deployments/0.1.0"]) == 0
    assert "deployed churn-model 0.1.0" in capsys.readouterr().out
    assert os.readlink(repo / "deployments/current") == "0.1.0"
    assert _infer(repo)["model_version"] == "0.1.0"
    assert not _alive(v2.pid)
    assert main(["deploy-local", "--status"]) == 0
    assert "churn-model 0.1.0 keeps serving" in capsys.readouterr().out
