"""What deploy.yml rolls out and how the image is built: the network and admission policies
in serving/k8s and the hashed installer in serving/Dockerfile (docs/security.md).

Rendered with a real `kubectl kustomize` when kubectl is installed, else read as YAML.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from kustomize import base_documents

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "serving/k8s"


def _rendered() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in base_documents(K8S)}


def test_network_policy_admits_http_from_anywhere_metrics_from_monitoring_and_no_egress() -> None:
    docs = _rendered()
    policy = docs["NetworkPolicy"]["spec"]
    pod = docs["Deployment"]["spec"]["template"]

    assert policy["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert policy.get("egress") == []
    http, metrics = policy["ingress"]
    assert http == {"ports": [{"port": "http", "protocol": "TCP"}]}
    assert metrics["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    (source,) = metrics["from"]
    assert source["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    (container,) = pod["spec"]["containers"]
    assert {port["name"] for port in container["ports"]} == {"http", "metrics"}


def test_metrics_are_scraped_on_their_own_port_and_the_service_exposes_only_http() -> None:
    docs = _rendered()
    pod = docs["Deployment"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    (source,) = container["envFrom"]
    assert source["configMapRef"]["name"].startswith("churn-model-serving")
    env = dotenv_values(K8S / "serving.env")  # the ConfigMap's data

    assert env["SERVING_METRICS_PORT"] == str(ports["metrics"])
    assert env["SERVING_PORT"] == str(ports["http"])
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == str(ports["metrics"])
    assert [port["targetPort"] for port in docs["Service"]["spec"]["ports"]] == ["http"]


def test_admission_policy_admits_only_images_attested_by_this_repos_deploy_workflow() -> None:
    policy = yaml.safe_load((K8S / "policy/clusterimagepolicy.yaml").read_text())
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    image = kustomization["images"][0]["newName"]

    assert policy["kind"] == "ClusterImagePolicy"
    assert policy["apiVersion"].startswith("policy.sigstore.dev/")
    (glob,) = [entry["glob"] for entry in policy["spec"]["images"]]
    assert glob.startswith(image)
    (authority,) = policy["spec"]["authorities"]
    (identity,) = authority["keyless"]["identities"]
    assert identity["issuer"] == "https://token.actions.githubusercontent.com"
    subject = re.compile(identity["subjectRegExp"])
    workflow = "https://github.com/example/churn-gitops/.github/workflows/deploy.yml"
    assert subject.fullmatch(f"{workflow}@refs/heads/main")
    for other in (
        f"{workflow}@refs/heads/feature",  # a dispatch from another branch
        workflow.replace("deploy.yml", "pr.yml") + "@refs/heads/main",
        workflow.replace("example/churn-gitops", "example/fork") + "@refs/heads/main",
    ):
        assert not subject.fullmatch(other), other
    (attestation,) = authority["attestations"]
    assert attestation["predicateType"] == "https://slsa.dev/provenance/v1"


def test_make_install_and_the_image_install_uv_from_one_file_pinned_by_hash() -> None:
    requirements = (ROOT / "serving/uv-requirements.txt").read_text()
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")  # continued lines joined
    dockerfile = (ROOT / "serving/Dockerfile").read_text()

    for name, text in (("Makefile", makefile), ("serving/Dockerfile", dockerfile)):
        install = [line for line in text.splitlines() if "pip install" in line]
        assert install, name
        for line in install:
            assert "--require-hashes" in line and "--no-deps" in line, (name, line)
            assert "uv-requirements.txt" in line, (name, line)  # the one pin
    assert re.findall(r"^uv==\S+", requirements, re.M)  # one version, in this file only
    assert not re.search(r"uv==|UV_VERSION", makefile)
    hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})\b", requirements)
    assert len(hashes) >= 2  # a wheel per platform
