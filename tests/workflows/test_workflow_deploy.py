"""deploy.yml's `run:` steps, executed in a scratch clone with recorders for docker, gh, kubectl.

The recorders (tests/support/recorders/) log each call instead of reaching GitHub, a registry or a
cluster; git, dvc, gitops-ml and the smoke test's HTTP server are real. `uses:` steps that move
artifacts between jobs are replaced by copies; the attestation steps are recorded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kustomize import kustomize
from release_repo import GIT_ENV, clone_repo, commit_all, git, reproduced_pipeline, run_tool
from workflow_harness import JobResult, UsesCall, recorder_env, run_job, set_params

from gitops_ml.release.bundle import BundleError, build_bundle
from gitops_ml.release.deploy import free_port, start_server, stop_process, wait_ready
from gitops_ml.release.environments import Pin, read_pin
from gitops_ml.release.versions import tag_version

# Every test runs the workflow's jobs in scratch clones: end-to-end, so slow.
pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = REPO_ROOT / ".github/workflows/deploy.yml"
KUBECONFIG = "apiVersion: v1\nkind: Config\nclusters: []\n"
# The verify job's `make test` on a few tests that use neither the suite's fixtures nor
# Hypothesis (whose pytest plugin imports it whole: 0.9 s of CPU), in one process (an empty
# PYTEST_PARALLEL: no xdist workers to start, each importing the test plugins).
QUICK_TESTS = (
    "tests/release/test_versions.py -k bump_rule -q -p no:cacheprovider --noconftest"
    " -p no:hypothesispytest"
)
QUICK_VERIFY = {"PYTEST_ADDOPTS": QUICK_TESTS, "PYTEST_PARALLEL": ""}
ARCHIVE = "churn-model-{version}.bundle.tar.gz"


def archive_bundle(bundle: Path, archive: Path) -> Path:
    """The publish job's archive of a bundle directory, made with the same command."""
    script = (
        'tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$1" -cf - bundle'
        ' | gzip -n > "$2"'
    )
    subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script, "_", bundle.parent, archive], check=True
    )
    return archive


def unpack(archive: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xzf", archive, "-C", dest], check=True)
    return dest / "bundle"


class Runner:
    """Runs the jobs of deploy.yml in one scratch clone, carrying artifacts between them."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.store = repo.parent / "artifacts"
        self.attestations: list[dict[str, str]] = []

    def _upload(self, call: UsesCall) -> None:
        target = self.store / call.with_["name"]
        source = self.repo / call.with_["path"]
        shutil.rmtree(target, ignore_errors=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            target.mkdir(parents=True)
            shutil.copy2(source, target / source.name)

    def _download(self, call: UsesCall) -> None:
        source, target = self.store / call.with_["name"], self.repo / call.with_["path"]
        shutil.copytree(source, target, dirs_exist_ok=True)

    def _attest(self, call: UsesCall) -> None:
        self.attestations.append(dict(call.with_))

    def run(
        self,
        job: str,
        *,
        vars: Mapping[str, str] | None = None,
        secrets: Mapping[str, str] | None = None,
        needs: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        ref: str = "refs/heads/main",
        event: str = "push",
    ) -> JobResult:
        contexts = {
            "github": {
                "repository": "Acme/churn-gitops",
                "sha": git(self.repo, "rev-parse", "HEAD"),
                "ref": ref,
                "event_name": event,
                "event": {"repository": {"default_branch": "main"}},
                "actor": "octocat",
                "token": "ghs_recorded_not_real",
            },
            "vars": dict(vars or {}),
            "secrets": dict(secrets or {}),
            "needs": dict(needs or {}),
        }
        uses = {
            "actions/upload-artifact": self._upload,
            "actions/download-artifact": self._download,
            "actions/attest-build-provenance": self._attest,
        }
        return run_job(WORKFLOW, job, self.repo, contexts=contexts, uses=uses, env=env)


def _calls(result: JobResult, tool: str | None = None) -> list[list[str]]:
    return [[e["tool"], *e["argv"]] for e in result.recorded if tool in (None, e["tool"])]


def _publish_needs(publish: JobResult) -> dict[str, Any]:
    outputs = {**publish.outputs["version"], **publish.outputs["image"]}
    return {"publish": {"outputs": outputs}}


@pytest.fixture
def repo(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    for key, value in GIT_ENV.items():  # tags made in-process need an identity too
        monkeypatch.setenv(key, value)
    return clone_repo(reproduced_pipeline(tmp_path_factory), tmp_path / "repo")


@pytest.fixture
def server_factory() -> Iterator[Any]:
    """Start real servers from bundles (standing in for the cluster behind port-forward)."""
    started: list[int] = []

    def start(bundle: Path, port: int) -> None:
        log = bundle.parent / f"server-{port}.log"
        process = start_server(bundle, port, log)
        started.append(process.pid)
        wait_ready(f"http://127.0.0.1:{port}", 60, process, log)

    yield start
    for pid in started:
        stop_process(pid)


def test_jobs_are_chained_verify_then_publish_then_deploy_behind_the_environment() -> None:
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    assert list(jobs) == ["verify", "publish", "deploy"]
    assert jobs["publish"]["needs"] == "verify" and jobs["deploy"]["needs"] == "publish"
    assert jobs["deploy"]["environment"] == "staging"  # production: promote.yml only


@pytest.mark.slow
def test_a_merge_is_verified_published_by_digest_deployed_and_tagged(
    repo: Path, server_factory: Any
) -> None:
    runner = Runner(repo)
    verify = runner.run("verify", env=QUICK_VERIFY)
    assert verify.ok, verify.explain()
    assert "passed" in verify.step("Run the tests").stdout
    assert _calls(verify) == []  # verify publishes nothing

    publish = runner.run("publish")
    assert publish.ok, publish.explain()
    version, tag = publish.outputs["version"]["version"], publish.outputs["version"]["tag"]
    image, digest = publish.outputs["image"]["image"], publish.outputs["image"]["digest"]
    sha = git(repo, "rev-parse", "HEAD")
    assert (version, tag, image) == ("0.1.0", "churn-model@v0.1.0", "ghcr.io/acme/churn-model")
    assert digest.startswith("sha256:")
    calls = _calls(publish)
    assert [" ".join(c[:3]) for c in calls] == [
        "docker login ghcr.io",
        "docker buildx imagetools",  # nothing pushed yet for this commit ...
        "docker buildx imagetools",  # ... nor for this version: build
        "docker build --file",
        "docker push " + f"{image}:0.1.0",
        "docker push " + f"{image}:{sha}",
        "docker inspect --format",
        "gh release view",  # no Release yet: create it
        "gh release create",
    ]
    build = calls[3]
    for expected in (
        f"{image}:0.1.0",
        f"{image}:{sha}",
        "BUNDLE=dist/bundle",
        "serving/Dockerfile",
    ):
        assert expected in build
    release = calls[8]
    assert release[2:4] == ["create", tag] and "--verify-tag" in release
    assert "dist/churn-model-0.1.0.bundle.tar.gz" in release
    assert "dist/bundle/model_card.md" in release
    assert runner.attestations[0]["subject-digest"] == digest
    assert runner.attestations[1]["subject-path"] == "dist/churn-model-0.1.0.bundle.tar.gz"
    assert git(repo, "cat-file", "-t", tag) == "tag"
    assert git(repo, "ls-remote", "--tags", "origin", tag)  # pushed

    port = free_port()
    archive = runner.store / "bundle" / ARCHIVE.format(version="0.1.0")
    server_factory(unpack(archive, repo.parent / "served"), port)
    deploy_args: dict[str, Any] = {
        "vars": {"SMOKE_LOCAL_PORT": str(port)},
        "secrets": {"KUBECONFIG": KUBECONFIG},
        "needs": _publish_needs(publish),
    }
    deploy = runner.run("deploy", **deploy_args)
    assert deploy.ok, deploy.explain()
    verified = [c for c in _calls(deploy, "gh") if c[1:3] == ["attestation", "verify"]]
    assert [c[3] for c in verified] == [f"oci://{image}@{digest}", f"dist/{archive.name}"]
    for call in verified:
        assert call[call.index("--signer-workflow") + 1].endswith("/.github/workflows/deploy.yml")
    kubectl = _calls(deploy, "kubectl")
    assert [c[1:3] for c in kubectl] == [
        ["kustomize", "deploy/staging"],
        ["apply", "--filename"],
        ["rollout", "status"],
        ["port-forward", "deployment/churn-model"],
    ]
    assert kubectl[2][4:6] == ["--namespace", "churn-model-staging"]
    git(repo, "fetch", "--quiet", "origin")
    assert read_pin(repo, "staging", rev="origin/main") == Pin(image, digest, "0.1.0")
    manifests = kustomize(repo / "deploy/staging")  # a real kubectl, outside the job's PATH
    if manifests is not None:
        assert f"image: {image}@{digest}" in manifests
    assert "smoke test passed: churn-model 0.1.0" in deploy.step("smoke").stdout
    assert deploy.step("Roll back (the previous ReplicaSet takes over again)").status == "skipped"
    assert git(repo, "ls-remote", "--tags", "origin", "churn-model#staging#1")
    assert "as `churn-model#staging#1`" in deploy.summary

    # re-running the deploy job rolls out the same digest again, adds no commit and no tag
    head = git(repo, "ls-remote", "origin", "main")
    again = runner.run("deploy", **deploy_args)
    assert again.ok, again.explain()
    assert git(repo, "tag", "--list", "churn-model#*").split() == ["churn-model#staging#1"]
    assert git(repo, "ls-remote", "origin", "main") == head


def _published(repo: Path, runner: Runner) -> dict[str, Any]:
    """What a publish job leaves behind, made directly: bundle archive artifact and version tag."""
    bundle = build_bundle(repo.parent / "built" / "bundle", "0.1.0", root=repo).path
    (runner.store / "bundle").mkdir(parents=True)
    archive_bundle(bundle, runner.store / "bundle" / ARCHIVE.format(version="0.1.0"))
    tag_version(repo)
    outputs = {
        "version": "0.1.0",
        "model_name": "churn-model",  # the fixture contract's name
        "image": "ghcr.io/acme/churn-model",
        "digest": "sha256:" + "a" * 64,
    }
    return {"publish": {"outputs": outputs}}


class _WrongModelHandler(BaseHTTPRequestHandler):
    """Ready, speaks V2, but answers 0.5 for everyone: pods running something else."""

    def _send(self, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send({"ready": True})

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        rows = request["inputs"][0]["shape"][0]
        self._send(
            {
                "model_name": "churn-model",
                "model_version": "0.1.0",
                "outputs": [
                    {"name": "label", "datatype": "INT64", "shape": [rows], "data": [0] * rows},
                    {
                        "name": "probabilities",
                        "datatype": "FP32",
                        "shape": [rows, 2],
                        "data": [0.5] * (2 * rows),
                    },
                ],
            }
        )

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def wrong_model_server() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WrongModelHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_failed_smoke_test_rolls_back_and_tags_no_stage(
    repo: Path, wrong_model_server: int
) -> None:
    runner = Runner(repo)

    deploy = runner.run(
        "deploy",
        vars={"SMOKE_LOCAL_PORT": str(wrong_model_server)},
        secrets={"KUBECONFIG": KUBECONFIG},
        needs=_published(repo, runner),
    )

    assert deploy.failed_step is not None and deploy.failed_step.id == "smoke"
    assert "differ from the bundle's model" in deploy.failed_step.stderr
    kubectl = [c[1:3] for c in _calls(deploy, "kubectl")]
    assert kubectl[-2:] == [["rollout", "undo"], ["rollout", "status"]]
    assert "Rolled back" in deploy.summary
    assert git(repo, "tag", "--list", "churn-model#*") == ""


def test_a_failed_rollout_rolls_back_without_a_smoke_test(repo: Path) -> None:
    runner = Runner(repo)
    needs = _published(repo, runner)

    deploy = runner.run(
        "deploy",
        secrets={"KUBECONFIG": KUBECONFIG},
        needs=needs,
        env=recorder_env(repo.parent / "recorder.jsonl", fail=["kubectl apply"]),
    )

    assert deploy.failed_step is not None and deploy.failed_step.id == "rollout"
    assert deploy.step("smoke").status == "skipped"
    kubectl = [c[1:3] for c in _calls(deploy, "kubectl")]
    assert kubectl[-2:] == [["rollout", "undo"], ["rollout", "status"]]
    assert git(repo, "tag", "--list", "churn-model#*") == ""


def test_pull_mode_only_commits_the_staging_pin_and_tags_it(repo: Path) -> None:
    runner = Runner(repo)
    needs = _published(repo, runner)
    git(repo, "push", "--quiet", "origin", "main", "--tags")

    deploy = runner.run("deploy", vars={"DELIVERY_MODE": "pull"}, needs=needs)

    assert deploy.ok, deploy.explain()
    assert _calls(deploy, "kubectl") == []  # Argo CD / Flux roll it out from Git
    git(repo, "fetch", "--quiet", "origin")
    outputs = needs["publish"]["outputs"]
    expected = Pin(outputs["image"], outputs["digest"], outputs["version"])
    assert read_pin(repo, "staging", rev="origin/main") == expected
    assert git(repo, "ls-remote", "--tags", "origin", "churn-model#staging#1")


def test_without_a_cluster_the_deploy_job_says_so_and_stops_cleanly(repo: Path) -> None:
    runner = Runner(repo)

    deploy = runner.run("deploy", needs=_published(repo, runner))

    assert deploy.ok, deploy.explain()
    assert "No cluster configured: nothing deployed" in deploy.summary
    assert "KUBECONFIG" in deploy.summary and "EKS_CLUSTER" in deploy.summary
    assert _calls(deploy, "kubectl") == []
    git(repo, "fetch", "--quiet", "origin")
    assert read_pin(repo, "staging", rev="origin/main") == Pin()  # nothing runs: nothing pinned
    skipped = {s.id for s in deploy.steps if s.status == "skipped"}
    assert {"rollout", "smoke"} <= skipped
    assert git(repo, "tag", "--list", "churn-model#*") == ""


@pytest.mark.slow
def test_verify_refuses_a_merge_whose_committed_dvc_lock_is_stale(repo: Path) -> None:
    generator = repo / "src/gitops_ml/synthetic.py"  # a dependency of the generate stage
    generator.write_text(generator.read_text() + "\n# edited, but `dvc repro` not run\n")
    commit_all(repo, "merge: generator edited, dvc.lock not updated")
    runner = Runner(repo)

    verify = runner.run("verify", env=QUICK_VERIFY)

    assert verify.failed_step is not None and verify.failed_step.id == "fresh", verify.explain()
    assert "reproducing the pipeline changed" in verify.failed_step.stderr
    assert "`dvc.lock`" in verify.failed_step.stderr
    assert "Run `make run` and commit these." in verify.failed_step.stderr
    later = [s.status for s in verify.steps[verify.steps.index(verify.failed_step) + 1 :]]
    assert set(later) == {"skipped"}  # no parity check, no tests, no model handed on
    assert not (runner.store / "model").exists()
    assert subprocess.run(["git", "diff", "--quiet", "dvc.lock"], cwd=repo).returncode == 1


def _raise_false_negative_cost(repo: Path) -> None:
    """Change the business cost of a missed churner (whatever it is now) and reproduce."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    cost = float(params["evaluate"]["costs"]["false_negative"])
    set_params(repo, {"evaluate.costs.false_negative": cost + 50})
    run_tool(repo, "dvc", "repro")


def _later_steps(result: JobResult) -> set[str]:
    assert result.failed_step is not None
    return {s.status for s in result.steps[result.steps.index(result.failed_step) + 1 :]}


@pytest.mark.slow
def test_verify_refuses_a_merge_that_committed_params_and_lock_but_stale_metrics(
    repo: Path,
) -> None:
    _raise_false_negative_cost(repo)
    git(repo, "checkout", "HEAD", "--", "metrics/evaluate.json", "reports/model_card.md")
    commit_all(repo, "merge: new cost, params.yaml + dvc.lock only")

    # the bundle refuses the stale files on its own (the publish job's second line of defence)
    with pytest.raises(BundleError, match=r"metrics/evaluate\.json: md5 \w+ differs from dvc"):
        build_bundle(repo.parent / "stale-bundle", "0.1.0", root=repo)
    verify = Runner(repo).run("verify", env=QUICK_VERIFY)

    assert verify.failed_step is not None and verify.failed_step.id == "fresh", verify.explain()
    err = verify.failed_step.stderr
    assert "`metrics/evaluate.json`" in err and "`reports/model_card.md`" in err
    assert "`params.yaml`" not in err and "Run `make run` and commit these." in err
    assert _later_steps(verify) == {"skipped"}


@pytest.mark.slow
def test_a_stale_committed_export_report_is_reported_as_stale_not_as_nondeterminism(
    repo: Path,
) -> None:
    report = repo / "metrics/export.json"
    report.write_text(report.read_text().replace("{", '{\n  "edited_by_hand": true,', 1))
    commit_all(repo, "merge: export.json edited after the pipeline ran")

    verify = Runner(repo).run("verify", env=QUICK_VERIFY)

    assert verify.failed_step is not None and verify.failed_step.id == "fresh", verify.explain()
    assert "`metrics/export.json`" in verify.failed_step.stderr
    assert "not deterministic" not in verify.explain()


@pytest.mark.slow
def test_a_changed_cost_that_is_fully_committed_passes_verify(repo: Path) -> None:
    _raise_false_negative_cost(repo)
    commit_all(repo, "merge: new cost, every output committed")

    verify = Runner(repo).run("verify", env=QUICK_VERIFY)

    assert verify.ok, verify.explain()
    assert "Committed outputs match the reproduced pipeline" in verify.summary
    parity = verify.step("Re-check ONNX parity (re-export; the model must come out byte-identical)")
    assert parity.status == "success"


def _verified_model(repo: Path, runner: Runner) -> None:
    """The artifact the verify job hands on: the reproduced model."""
    (runner.store / "model").mkdir(parents=True)
    shutil.copy2(repo / "models/model.onnx", runner.store / "model")


@pytest.mark.slow
def test_rerunning_publish_for_a_released_commit_reuses_everything_and_moves_no_tag(
    repo: Path,
) -> None:
    runner = Runner(repo)
    _verified_model(repo, runner)
    first = runner.run("publish")
    assert first.ok, first.explain()
    tag = first.outputs["version"]["tag"]
    tag_object = git(repo, "rev-parse", tag)
    calls_before, attested_before = len(_calls(first)), len(runner.attestations)

    again = runner.run("publish")  # "Re-run all jobs" on the same commit

    assert again.ok, again.explain()
    assert again.outputs["version"]["tagged"] == "true"
    assert again.outputs["image"]["digest"] == first.outputs["image"]["digest"]
    rerun = [" ".join(c[:3]) for c in _calls(again)[calls_before:]]
    assert not [c for c in rerun if c.startswith(("docker build ", "docker push", "gh release c"))]
    assert "gh release download" in rerun
    assert rerun.count("gh attestation verify") == 2
    assert len(runner.attestations) == attested_before  # nothing attested twice
    assert git(repo, "rev-parse", tag) == tag_object
    assert git(repo, "ls-remote", "--tags", "origin", tag).split()[0] == tag_object
    assert "already exists with this bundle: reused" in again.summary

    # a Release whose bundle is not the one this commit builds is refused, loudly
    state = repo.parent / "recorder.jsonl.state" / "releases" / tag.replace("/", "%2F")
    asset = state / ARCHIVE.format(version=first.outputs["version"]["version"])
    asset.write_bytes(asset.read_bytes() + b"\0")
    refused = runner.run("publish")
    assert refused.failed_step is not None, refused.explain()
    assert "differs from the one released as" in refused.failed_step.stdout


@pytest.mark.slow
def test_publish_refuses_to_move_an_image_tag_that_another_commit_published(repo: Path) -> None:
    runner = Runner(repo)
    _verified_model(repo, runner)
    first = runner.run("publish")
    assert first.ok, first.explain()
    tag = first.outputs["version"]["tag"]
    git(repo, "tag", "--delete", tag)  # someone deleted the version tag, then merged again
    git(repo, "push", "--quiet", "origin", f":refs/tags/{tag}")
    commit_all(repo, "merge: another commit that would be released as the same version")
    builds = len([c for c in _calls(first) if c[:2] == ["docker", "build"]])

    second = runner.run("publish")

    assert second.failed_step is not None and second.failed_step.id == "image", second.explain()
    assert f"{first.outputs['image']['image']}:0.1.0 already exists" in second.failed_step.stdout
    assert "refusing to move it" in second.failed_step.stdout
    assert len([c for c in _calls(second) if c[:2] == ["docker", "build"]]) == builds
    assert git(repo, "tag", "--list") == ""


def test_a_dispatch_from_another_branch_publishes_nothing(repo: Path) -> None:
    runner = Runner(repo)
    for job in ("verify", "publish"):
        result = runner.run(job, ref="refs/heads/experiment", event="workflow_dispatch")

        assert result.failed_step is not None and result.failed_step is result.steps[0]
        assert "publishes only from main; refusing refs/heads/experiment" in (
            result.failed_step.stdout
        )
        assert _later_steps(result) <= {"skipped"}
    assert _calls(result) == [] and git(repo, "tag", "--list") == ""
