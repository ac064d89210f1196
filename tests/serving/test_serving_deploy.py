"""Serving as it is deployed: refusing bad models at startup, serving a release bundle, the
Dockerfile's own command and healthcheck run locally, and the Kubernetes manifests checked
offline (no Docker engine or cluster here)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from dockerfile import DOCKERFILE, exec_form, image_env
from kustomize import base_documents
from release_repo import make_release_repo
from serving_support import (
    REPO_ROOT,
    free_port,
    run_server_expecting_failure,
    running_server,
    serve_command,
    server_env,
    v2_body,
)

from gitops_ml.release.bundle import build_bundle
from gitops_ml.v2_request import records

pytestmark = pytest.mark.slow

K8S = REPO_ROOT / "serving" / "k8s"


@pytest.fixture(scope="module")
def bundle_dir(exported_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`gitops-ml bundle` of a committed pipeline run around the exported model."""
    root = tmp_path_factory.mktemp("release")
    repo = make_release_repo(root / "repo", exported_model.onnx_path.read_bytes())
    return build_bundle(root / "bundle", "1.4.2", root=repo).path


def test_missing_model_is_a_clear_startup_error_with_nonzero_exit(tmp_path: Path) -> None:
    result = run_server_expecting_failure(["--model", str(tmp_path / "nope.onnx")])

    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.onnx'}: model file not found"


def test_corrupt_model_is_a_clear_startup_error(tmp_path: Path, exported_model: Any) -> None:
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(exported_model.onnx_path.read_bytes()[:5000])

    result = run_server_expecting_failure(
        ["--model", str(corrupt), "--contract", str(exported_model.contract_path)]
    )

    assert result.returncode == 2
    assert "not a loadable ONNX model" in result.stderr
    assert "Traceback" not in result.stderr


def test_model_whose_sha256_differs_from_its_export_metadata_is_refused(
    tmp_path: Path, exported_model: Any
) -> None:
    recorded = json.loads(exported_model.export_metrics_path.read_text())  # the export stage's
    recorded["onnx"]["sha256"] = "0" * 64
    metadata = tmp_path / "export.json"
    metadata.write_text(json.dumps(recorded))

    result = run_server_expecting_failure(
        ["--model", str(exported_model.onnx_path), "--metadata", str(metadata)]
    )

    assert result.returncode == 2
    assert "does not match the recorded 000000000000" in result.stderr


def test_export_metadata_not_of_the_export_stages_shape_is_refused_naming_the_field(
    tmp_path: Path, exported_model: Any
) -> None:
    metadata = tmp_path / "export.json"
    metadata.write_text(json.dumps({"onnx": {"sha256": "0" * 64}}))

    result = run_server_expecting_failure(
        ["--model", str(exported_model.onnx_path), "--metadata", str(metadata)]
    )

    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {metadata}: ") and "onnx.path" in result.stderr
    assert "Traceback" not in result.stderr


def test_model_served_with_a_different_contract_is_refused(
    tmp_path: Path, exported_model: Any
) -> None:
    raw = yaml.safe_load(exported_model.contract_path.read_text())
    raw["columns"] = [c for c in raw["columns"] if c["name"] != "age"]
    contract = tmp_path / "schema.yaml"
    contract.write_text(yaml.safe_dump(raw))

    result = run_server_expecting_failure(
        ["--model", str(exported_model.onnx_path), "--contract", str(contract)]
    )

    assert result.returncode == 2
    assert "inputs do not match the data contract (missing: none, not in contract: ['age']" in (
        result.stderr
    )


def test_tampered_bundle_is_refused_at_startup(tmp_path: Path, bundle_dir: Path) -> None:
    tampered = tmp_path / "bundle"
    shutil.copytree(bundle_dir, tampered)
    (tampered / "model.onnx").write_bytes((tampered / "model.onnx").read_bytes() + b"\x00")

    result = run_server_expecting_failure(["--model", str(tampered)])

    assert result.returncode == 2
    assert "the bundle was modified after it was built" in result.stderr


def test_dockerfile_command_and_healthcheck_serve_a_baked_in_bundle(
    tmp_path: Path, bundle_dir: Path, exported_model: Any
) -> None:
    """CMD and HEALTHCHECK exactly as written, with the image's ENV (model path and loopback
    host swapped for this machine's; `python` is the image venv's interpreter)."""
    command = exec_form("CMD")
    healthcheck = exec_form("HEALTHCHECK")
    image_vars = {k: v for k, v in image_env().items() if k.startswith(("SERVING_", "OMP_"))}
    assert command == ["python", "-m", "serving"]
    assert image_vars["OMP_NUM_THREADS"] == "1" and image_vars["SERVING_MODEL"] == "/app/model"
    local_env = {**image_vars, "SERVING_MODEL": str(bundle_dir), "SERVING_HOST": "127.0.0.1"}

    with running_server([sys.executable, *command[1:]], tmp_path, env=local_env) as server:
        check = subprocess.run(
            [sys.executable, *healthcheck[1:]],
            env=server_env({"SERVING_PORT": server.url.rsplit(":", 1)[1]}),
            cwd=REPO_ROOT,
            capture_output=True,
            check=False,
        )
        meta = httpx.get(f"{server.url}/v2/models/churn-model").json()
        rows = records(exported_model.test_frame.iloc[:5], exported_model.contract)
        infer = httpx.post(
            f"{server.url}/v2/models/churn-model/versions/1.4.2/infer",
            json=v2_body(rows, exported_model.contract),
        )

    assert check.returncode == 0, check.stderr
    assert meta["versions"] == ["1.4.2"]
    built = json.loads((bundle_dir / "metadata.json").read_text())
    assert meta["parameters"]["git_revision"] == built["git_revision"]
    assert meta["parameters"]["sha256_verified"] is True
    assert meta["parameters"]["metrics"]["evaluate"] == {"test": {"roc_auc": 0.86}}
    assert infer.status_code == 200 and infer.headers["x-model-version"] == "1.4.2"


def test_healthcheck_fails_when_nothing_is_listening(tmp_path: Path) -> None:
    healthcheck = exec_form("HEALTHCHECK")
    env = server_env({"SERVING_PORT": str(free_port())})  # bound by nobody

    result = subprocess.run(
        [sys.executable, *healthcheck[1:]], env=env, cwd=REPO_ROOT, capture_output=True, check=False
    )

    assert result.returncode == 1 and b"not ready" in result.stderr


def test_dockerfile_pins_base_by_digest_runs_as_non_root_and_bakes_the_model_in() -> None:
    text = DOCKERFILE.read_text()

    assert "python:3.11-slim@sha256:" in text
    assert "\nUSER 10001:10001\n" in text
    assert "COPY --chown=root:root ${BUNDLE}/ /app/model/" in text
    assert "uv sync --frozen --no-dev" in text
    ignored = [line for line in (REPO_ROOT / ".dockerignore").read_text().splitlines() if line]
    assert "*" in ignored and "!dist/" in ignored, "an allow-list: only what the image needs"


def test_kubernetes_base_has_probes_on_v2_health_one_cpu_hpa_and_pdb() -> None:
    docs = {doc["kind"]: doc for doc in base_documents(K8S)}

    assert set(docs) - {"ConfigMap"} == {  # the settings' ConfigMap is generated by kustomize
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
    }
    deployment = docs["Deployment"]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["resources"]["requests"]["cpu"] == "1"
    assert container["resources"]["limits"]["cpu"] == "1"
    assert container["ports"][0]["containerPort"] == int(image_env()["SERVING_PORT"])
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert docs["Service"]["spec"]["selector"] == selector
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    target = docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


def test_kserve_example_runs_the_image_with_the_v2_protocol() -> None:
    service = yaml.safe_load((K8S / "kserve" / "inferenceservice.yaml").read_text())
    predictor = service["spec"]["predictor"]

    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert service["kind"] == "InferenceService"
    assert predictor["protocolVersion"] == "v2"
    (container,) = predictor["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["resources"]["limits"]["cpu"] == "1"


def test_help_lists_the_environment_variables_a_container_sets() -> None:
    result = subprocess.run(
        [*serve_command("--help")], capture_output=True, text=True, env=server_env(), check=True
    )
    for variable in ("SERVING_MODEL", "SERVING_PORT", "SERVING_CAPTURE_URL"):
        assert variable in result.stdout
