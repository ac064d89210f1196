"""The Ray seam: with RAY_ADDRESS unset a stage runs as it always did (Ray never imported); set,
evaluate's fits and drift's partitions run on that cluster and give the local numbers, and a
cluster that cannot be used is a clear `error:` (exit 2), never a Ray traceback or a hang.

The slow tests start a real Ray head on loopback (`ray start --head`, two CPUs, no dashboard),
once for the module, and stop it by its process group afterwards: `make test` installs the
`scale` extra they need.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO_ROOT, ExportedModel
from dockerfile import instructions
from kustomize import base_documents
from project_fixtures import CONTRACT_PATH, PARAMS_PATH, drift_settings

from gitops_ml import io as gio
from gitops_ml.cli import main
from gitops_ml.cluster import ClusterError, check_reachable, head_address
from gitops_ml.monitor.profile import build_model_profile
from gitops_ml.params_edit import set_params_file
from gitops_ml.pipeline.train import save_model

BIN = Path(sys.executable).parent
HEAD_START_S = 60  # a loaded 2-core machine starts a head in 3-10 s
TIMELINE_WAIT_S = 30  # workers report their task events to the head about once a second


def free_port() -> int:
    """A loopback port nothing listens on (the OS's pick, released at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ----------------------------------------------------------------------- without a cluster


def test_without_ray_address_work_stays_local_and_ray_is_never_imported() -> None:
    script = (
        "import os, sys\n"
        "from joblib import Parallel, delayed\n"
        "from gitops_ml.cluster import joblib_backend\n"
        "with joblib_backend({'RAY_ADDRESS': ''}) as where:\n"
        "    pids = Parallel(n_jobs=2, prefer='threads')(delayed(os.getpid)() for _ in range(4))\n"
        "assert where is None, where\n"
        "assert set(pids) == {os.getpid()}, pids\n"
        "assert 'ray' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


@pytest.mark.parametrize(
    "address",
    ["head", "head:port", "head:0", "head:70000", ":6379", "ray://head:10001", "http://head:8265"],
)
def test_an_address_that_is_not_host_colon_port_is_refused_naming_the_variable(
    address: str,
) -> None:
    with pytest.raises(ClusterError, match=r"RAY_ADDRESS=.*is not a Ray head's GCS address"):
        head_address({"RAY_ADDRESS": address})


def test_the_address_is_read_from_ray_address() -> None:
    assert head_address({"RAY_ADDRESS": " raycluster-head-svc:6379 "}) == (
        "raycluster-head-svc",
        6379,
    )
    assert head_address({}) is None


def evaluate_args(tmp_path: Path) -> list[str]:
    """`gitops-ml evaluate` on files that need not exist: the seam is entered first."""
    return ["evaluate", "--model", str(tmp_path / "model.joblib"), "--params", str(PARAMS_PATH)]


def drift_args(tmp_path: Path) -> list[str]:
    return ["drift", "--current", str(tmp_path / "window.parquet"), "--params", str(PARAMS_PATH)]


@pytest.mark.parametrize("args", [evaluate_args, drift_args], ids=["evaluate", "drift"])
def test_an_unreachable_cluster_is_a_clear_error_not_a_hang(
    args: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{free_port()}")

    assert main(args(tmp_path)) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the Ray cluster at RAY_ADDRESS=127.0.0.1:"), err
    assert "unset the variable to run locally" in err and "Traceback" not in err


@pytest.mark.parametrize("args", [evaluate_args, drift_args], ids=["evaluate", "drift"])
def test_a_configured_cluster_without_ray_installed_names_the_scale_extra(
    args: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as head:
        monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{head.getsockname()[1]}")
        monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees without Ray

        assert main(args(tmp_path)) == 2

    err = capsys.readouterr().err
    assert err.startswith("error: RAY_ADDRESS=127.0.0.1:"), err
    assert "Ray is not installed: install the scale extra (uv sync --extra pipeline" in err


# ----------------------------------------------------------------------- on a real cluster


@pytest.fixture(scope="module")
def ray_head() -> Iterator[str]:
    """A Ray head on loopback (two CPUs, no dashboard): its GCS address, HOST:PORT."""
    ray = BIN / "ray"
    if not ray.exists():
        pytest.fail("Ray is not installed: `make test` installs the scale extra these tests use")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ray") as temp_dir:  # short: Ray's socket paths
        head = subprocess.Popen(
            [
                str(ray),
                "start",
                "--head",
                "--block",
                "--node-ip-address=127.0.0.1",
                f"--port={port}",
                "--num-cpus=2",
                "--include-dashboard=false",
                "--disable-usage-stats",
                f"--temp-dir={temp_dir}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # the head and every process it starts: one group to stop
        )
        try:
            deadline = time.monotonic() + HEAD_START_S
            while True:
                try:
                    check_reachable("127.0.0.1", port, timeout=1.0)
                    break
                except ClusterError:
                    if head.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"the Ray head did not start (exit {head.poll()})")
                    time.sleep(0.5)
            yield f"127.0.0.1:{port}"
        finally:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()


def cluster_batches(address: str) -> int:
    """How many joblib batches the cluster has run (PoolActor.run_batch in Ray's timeline)."""
    import ray

    ray.init(address=address)
    try:
        return sum(1 for event in ray.timeline() if event.get("name") == "run_batch")
    finally:
        ray.shutdown()


def ran_on_cluster(address: str, before: int) -> bool:
    """Whether the cluster reports joblib batches beyond `before` within TIMELINE_WAIT_S."""
    deadline = time.monotonic() + TIMELINE_WAIT_S
    while cluster_batches(address) == before:
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def here_then_on_the_cluster(
    address: str, args: Callable[[str], list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`gitops-ml` with `args("local")` in this process and no RAY_ADDRESS, then with
    `args("cluster")` in its own process pointed at the cluster by RAY_ADDRESS, which must say
    so and show the work in the cluster's timeline."""
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(args("local")) == 0
    before = cluster_batches(address)
    env = {**os.environ, "RAY_ADDRESS": address}
    done = subprocess.run(
        [str(BIN / "gitops-ml"), *args("cluster")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "on the Ray cluster at " + address in done.stdout, done.stdout
    assert ran_on_cluster(address, before)


@pytest.mark.slow
def test_evaluate_on_the_cluster_writes_the_local_metrics_and_plots(
    ray_head: str,
    exported_model: ExportedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gio.write_parquet(tmp_path / "train.parquet", exported_model.train_frame)
    gio.write_parquet(tmp_path / "test.parquet", exported_model.test_frame)
    save_model(exported_model.model, tmp_path / "model.joblib")
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS_PATH.read_text())
    set_params_file(  # small: 3 folds, 2 refits, 25 trees
        params,
        {
            "model.hyperparams.max_iter": 25,
            "evaluate.bootstrap_samples": 50,
            "evaluate.cv_folds": 3,
            "evaluate.refits": 2,
        },
    )

    def args(out: str) -> list[str]:
        return [
            "evaluate",
            *("--model", str(tmp_path / "model.joblib")),
            *("--train", str(tmp_path / "train.parquet")),
            *("--test", str(tmp_path / "test.parquet")),
            *("--contract", str(CONTRACT_PATH)),
            *("--params", str(tmp_path / "params.yaml")),
            *("--metrics", str(tmp_path / out / "evaluate.json")),
            *("--plots-dir", str(tmp_path / out / "plots")),
        ]

    here_then_on_the_cluster(ray_head, args, monkeypatch)

    local, cluster = tmp_path / "local", tmp_path / "cluster"
    assert (cluster / "evaluate.json").read_bytes() == (local / "evaluate.json").read_bytes()
    plots = sorted(p.name for p in (local / "plots").iterdir())
    assert plots and plots == sorted(p.name for p in (cluster / "plots").iterdir())
    for name in plots:
        assert (cluster / "plots" / name).read_bytes() == (local / "plots" / name).read_bytes()


@pytest.mark.slow
def test_drift_on_the_cluster_gives_the_local_verdict_and_statistics(
    ray_head: str,
    exported_model: ExportedModel,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile = build_model_profile(
        exported_model.train_frame,
        exported_model.contract,
        drift_settings(),
        exported_model.onnx_path,
    )
    gio.write_json(tmp_path / "profile.json", profile)
    window = tmp_path / "window"
    window.mkdir()
    test = exported_model.test_frame
    for part in range(4):  # partitions, as captured hours are
        gio.write_parquet(window / f"part-{part}.parquet", test.iloc[part::4])

    def args(out: str) -> list[str]:
        return [
            "drift",
            *("--profile", str(tmp_path / "profile.json")),
            *("--current", str(window)),
            *("--model", str(exported_model.onnx_path)),
            *("--contract", str(exported_model.contract_path)),
            *("--params", str(PARAMS_PATH)),
            *("--output-dir", str(tmp_path / out)),
            *("--workers", "2"),  # a window this small is otherwise read in one process
        ]

    here_then_on_the_cluster(ray_head, args, monkeypatch)

    local = json.loads((tmp_path / "local" / "drift.json").read_text())
    cluster = json.loads((tmp_path / "cluster" / "drift.json").read_text())
    assert cluster == local


# ----------------------------------------------------------------------- the KubeRay example


def test_the_kuberay_cluster_runs_the_locked_ray_from_the_pipeline_image_without_a_dashboard() -> (
    None
):
    docs = {doc["kind"]: doc for doc in base_documents(REPO_ROOT / "deploy/ray")}
    spec = docs["RayCluster"]["spec"]
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    (locked_ray,) = [p["version"] for p in lock["package"] if p["name"] == "ray"]
    head, (workers,) = spec["headGroupSpec"], spec["workerGroupSpecs"]
    # serving/Dockerfile's build stage, built with the scale extra, is the image (docs/scale.md)
    steps = instructions()
    first, second = [n for n, (word, _) in enumerate(steps) if word == "FROM"][:2]
    assert steps[first][1].endswith(" AS build")
    build_stage = [arguments for word, arguments in steps[first:second] if word == "ENV"]
    assert any("UV_PROJECT_ENVIRONMENT=/app/.venv" in arguments for arguments in build_stage)

    assert spec["rayVersion"] == locked_ray
    assert head["rayStartParams"] == {"num-cpus": "0", "include-dashboard": "false"}
    for group in (head, workers):
        (container,) = group["template"]["spec"]["containers"]
        env = {item["name"]: item["value"] for item in container["env"]}
        assert env["PATH"].startswith("/app/.venv/bin:")
        assert container["readinessProbe"] and container["livenessProbe"]
    (gcs,) = head["template"]["spec"]["containers"][0]["ports"]
    assert gcs["containerPort"] == 6379  # RAY_ADDRESS=gitops-ml-head-svc…:6379 in docs/scale.md
