"""Local deployment with a smoke test: the laptop-sized twin of the production deploy job.

`gitops-ml deploy-local` builds (or takes) a bundle, starts a server from it on loopback, sends
a smoke test through the V2 inference API and compares the answers with the bundle's model run
in-process. Only when that passes does `deployments/current` switch to the new bundle and the
previous server stop; otherwise the previous deployment keeps serving and the command fails
with the reason. The same smoke test runs against a cluster (`--smoke-url`) in deploy.yml.

State lives in `deployments/` (git-ignored): one bundle directory per version, a `current`
symlink, and `current.json` naming the server process, its port and URL.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gitops_ml import paths
from gitops_ml.contract import Contract
from gitops_ml.errors import UserError
from gitops_ml.io import write_json
from gitops_ml.model_view import model_frame, onnx_feeds
from gitops_ml.release import versions
from gitops_ml.release.bundle import Bundle, BundleError, build_bundle, load_bundle
from gitops_ml.tasks import task_spec
from gitops_ml.v2_request import example_rows, v2_request

DEPLOYMENTS_DIR = Path("deployments")
STATE_FILE = "current.json"
CURRENT_LINK = "current"
SMOKE_ROWS = 3
SMOKE_TOLERANCE = 1e-4
HOST = "127.0.0.1"


class DeployError(UserError):
    """The candidate did not pass its smoke test; the previous deployment is untouched."""

    exit_code = 1


# ---------------------------------------------------------------------------------------------
# The smoke test: pure request/response logic, then HTTP
# ---------------------------------------------------------------------------------------------


def smoke_frame(contract: Contract, rows: int = SMOKE_ROWS) -> pd.DataFrame:
    """Valid rows derived from the contract only (not from training data), so the smoke test
    works for any user's dataset and needs nothing but the bundle."""
    return pd.DataFrame(example_rows(contract, rows))


@dataclass(frozen=True)
class Answer:
    """What a server running the bundle's model must answer for the smoke rows: `numbers` of
    shape (n, width) and, for a classifier, one label per row as V2 spells it."""

    numbers: np.ndarray
    labels: list[Any] | None


def _classifier_answer(contract: Contract, onnx: dict[str, np.ndarray]) -> Answer:
    labels = np.asarray(onnx["label"]).reshape(-1).tolist()
    spelt = [contract.classes[i] for i in labels] if contract.classes else labels
    return Answer(np.asarray(onnx["probabilities"], dtype=np.float64), spelt)


def _regressor_answer(_: Contract, onnx: dict[str, np.ndarray]) -> Answer:
    return Answer(np.asarray(onnx["variable"], dtype=np.float64).reshape(-1, 1), None)


# How the exported model's outputs read as the server's V2 answer, per task.
SMOKE_ANSWERS: dict[str, Callable[[Contract, dict[str, np.ndarray]], Answer]] = {
    "binary": _classifier_answer,
    "multiclass": _classifier_answer,
    "regression": _regressor_answer,
}


def expected_answer(bundle: Bundle, frame: pd.DataFrame) -> Answer:
    """The bundle's model run in-process on `frame`: what the server must answer."""
    from gitops_ml.onnx_model import onnx_session, read_model

    session = onnx_session(read_model(bundle.model_path), str(bundle.model_path))
    contract = bundle.contract
    names = list(task_spec(contract.task).onnx_outputs)
    results = session.run(names, onnx_feeds(model_frame(frame, contract), contract))
    return SMOKE_ANSWERS[contract.task](contract, dict(zip(names, results, strict=True)))


def check_v2_response(
    response: Mapping[str, Any],
    expected: Answer,
    task: str = "binary",
    tolerance: float = SMOKE_TOLERANCE,
) -> float:
    """Return the max difference from `expected` (relative to the values' scale for a
    regressor's); raise DeployError saying what is wrong."""
    outputs = {o.get("name"): o for o in response.get("outputs") or [] if isinstance(o, dict)}
    names = task_spec(task).v2_outputs  # the server's, the numbers last
    wanted = names[-1]
    if not all(name in outputs for name in names):
        raise DeployError(
            f"smoke test: response has outputs {sorted(map(str, outputs))}, "
            f"expected {' and '.join(repr(n) for n in names)}"
        )
    rows, width = expected.numbers.shape
    data = outputs[wanted].get("data") or []
    try:
        numbers = np.asarray(data, dtype=np.float64).reshape(rows, width)
    except ValueError:
        raise DeployError(
            f"smoke test: {wanted!r} has {len(data)} values, expected {rows} x {width}"
        ) from None
    if not np.all(np.isfinite(numbers)):
        raise DeployError(f"smoke test: {wanted!r} holds values that are not finite")
    if expected.labels is not None:
        labels = list(outputs["label"].get("data") or [])
        if labels != expected.labels:
            raise DeployError(f"smoke test: 'label' is {labels}, expected {expected.labels}")
        if np.abs(numbers.sum(axis=1) - 1).max() > 1e-3:
            raise DeployError("smoke test: probabilities do not sum to 1")
    scale = 1.0 if expected.labels is not None else max(1.0, float(np.abs(expected.numbers).max()))
    diff = float(np.abs(numbers - expected.numbers).max()) / scale
    if not diff <= tolerance:
        raise DeployError(
            f"smoke test: served {wanted!r} differ from the bundle's model by "
            f"{diff:.3g} (tolerance {tolerance:g}); the server is not running this model"
        )
    return diff


def _http(method: str, url: str, payload: Any = None, timeout: float = 10.0) -> tuple[int, Any]:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    try:
        return status, json.loads(body) if body else None
    except json.JSONDecodeError:
        return status, body.decode(errors="replace")[:500]


@dataclass(frozen=True)
class SmokeResult:
    url: str
    model_name: str
    version: str
    rows: int
    max_abs_diff: float


def smoke_test(url: str, bundle: Bundle, timeout: float = 10.0) -> SmokeResult:
    """Ready, right model, right answers: the three things a deployment must prove."""
    url = url.rstrip("/")
    try:
        status, body = _http("GET", f"{url}/v2/health/ready", timeout=timeout)
        if status != 200:
            raise DeployError(f"smoke test: {url}/v2/health/ready answered {status}: {body}")
        frame = smoke_frame(bundle.contract)
        infer_url = f"{url}/v2/models/{bundle.model_name}/infer"
        request = v2_request(frame, bundle.contract, request_id="smoke-test")
        status, body = _http("POST", infer_url, request, timeout)
    except (urllib.error.URLError, OSError) as exc:
        raise DeployError(f"smoke test: cannot reach {url}: {exc}") from None
    if status != 200 or not isinstance(body, dict):
        raise DeployError(f"smoke test: POST {infer_url} answered {status}: {body}")
    served = body.get("model_version")
    if served is not None and str(served) != bundle.version:
        raise DeployError(f"smoke test: server runs version {served}, expected {bundle.version}")
    diff = check_v2_response(body, expected_answer(bundle, frame), bundle.contract.task)
    return SmokeResult(url, bundle.model_name, bundle.version, len(frame), diff)


# ---------------------------------------------------------------------------------------------
# Server processes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """One running local deployment, as recorded in deployments/current.json."""

    model_name: str
    version: str
    bundle: str  # directory name inside deployments/
    onnx_sha256: str
    pid: int
    port: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(bundle_dir: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """`python -m serving` from the bundle, detached so it outlives this command."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "serving", "--model", str(bundle_dir.resolve())]
    argv += ["--host", HOST, "--port", str(port)]
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _log_tail(path: Path | None, lines: int = 15) -> str:
    if path is None:
        return "(no log)"
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"


def wait_ready(
    url: str,
    timeout: float,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Poll /v2/health/ready; a server process that exits first fails fast with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise DeployError(
                f"the server exited with code {process.returncode} before it was ready; "
                f"its log ({log}):\n{_log_tail(log)}"
            )
        with contextlib.suppress(OSError, urllib.error.URLError):
            if _http("GET", f"{url}/v2/health/ready", timeout=2.0)[0] == 200:
                return
        time.sleep(0.2)
    where = f"; log ({log}):\n{_log_tail(log)}" if log else ""
    raise DeployError(f"{url} was not ready within {timeout:g} s{where}")


def _is_our_server(pid: int, bundle_dir: Path) -> bool:
    """Only signal a pid that still runs `serving` from this bundle (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serving" in cmdline and str(bundle_dir.resolve()).encode() in cmdline


def stop_process(pid: int, grace: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


# ---------------------------------------------------------------------------------------------
# Local deployment state
# ---------------------------------------------------------------------------------------------


def read_current(deployments: Path) -> Deployment | None:
    path = deployments / STATE_FILE
    if not path.exists():
        return None
    try:
        return Deployment(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise DeployError(
            f"{path}: unreadable ({exc}); stop the server by hand and delete the file"
        ) from None


def is_running(deployments: Path, current: Deployment | None) -> bool:
    return current is not None and _is_our_server(current.pid, deployments / current.bundle)


def _switch(deployments: Path, deployment: Deployment) -> None:
    """Point `current` and current.json at the new deployment, each with an atomic rename."""
    link = deployments / CURRENT_LINK
    tmp_link = deployments / f".{CURRENT_LINK}.tmp"
    tmp_link.unlink(missing_ok=True)
    tmp_link.symlink_to(deployment.bundle)
    os.replace(tmp_link, link)
    write_json(deployments / STATE_FILE, asdict(deployment))


@contextlib.contextmanager
def _deploy_lock(deployments: Path) -> Iterator[None]:
    deployments.mkdir(parents=True, exist_ok=True)
    with open(deployments / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DeployError(f"another deploy-local is running ({deployments}/.lock)") from None
        yield


def _describe(deployments: Path, current: Deployment | None) -> str:
    if current is None:
        return "nothing was deployed before"
    if not is_running(deployments, current):
        return f"the previous deployment {current.version} is not running"
    return f"{current.model_name} {current.version} keeps serving at {current.url}"


def local_version(root: Path, model: Path) -> str:
    """HEAD's release version; uncommitted changes make it a `-dev.<sha>` pre-release."""
    version = str(versions.next_version(root).version)
    if versions.is_dirty(root):
        digest = hashlib.sha256(model.read_bytes()).hexdigest()[:8] if model.exists() else "0"
        version = f"{version}-dev.{digest}"
    return version


def _stage_bundle(root: Path, deployments: Path, source: Path | None) -> Bundle:
    """The candidate bundle in deployments/<version>, built from HEAD or copied from `source`."""
    if source is not None:
        bundle = load_bundle(source)
        target = deployments / bundle.version
        if target.resolve() != bundle.path.resolve():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(bundle.path, target)
        return load_bundle(target)
    version = local_version(root, root / paths.MODEL_ONNX)
    return build_bundle(deployments / version, version, root=root)


def deploy_local(
    root: Path = Path("."),
    bundle_source: Path | None = None,
    deployments: Path | None = None,
    ready_timeout: float = 60.0,
    tag: bool = False,
) -> Deployment:
    """Deploy a bundle locally; on any failure the previous deployment is left as it was."""
    deployments = deployments or root / DEPLOYMENTS_DIR
    if tag and versions.is_dirty(root):
        raise versions.VersionError(
            "--tag needs a clean checkout: commit first, so the tag names what was deployed"
        )
    with _deploy_lock(deployments):
        current = read_current(deployments)
        running = is_running(deployments, current)
        if bundle_source is None and running and current is not None:
            candidate_version = local_version(root, root / paths.MODEL_ONNX)
            if candidate_version == current.version:
                print(f"{current.model_name} {current.version} is already serving at {current.url}")
                return current
        try:
            same = bundle_source is not None and load_bundle(bundle_source).version
            if running and current is not None and same == current.version:
                raise DeployError(f"version {current.version} is the current deployment")
            bundle = _stage_bundle(root, deployments, bundle_source)
        except BundleError as exc:
            raise BundleError(f"refused: {exc}; {_describe(deployments, current)}") from None
        port = free_port()
        log = deployments / "logs" / f"{bundle.version}.log"
        process = start_server(bundle.path, port, log)
        candidate = Deployment(
            bundle.model_name,
            bundle.version,
            bundle.path.name,
            bundle.onnx_sha256,
            process.pid,
            port,
        )
        try:
            wait_ready(candidate.url, ready_timeout, process, log)
            result = smoke_test(candidate.url, bundle)
        except BaseException as exc:  # whatever stops us, the candidate must not linger
            stop_process(process.pid)
            if bundle_source is None or bundle.path.resolve() != bundle_source.resolve():
                shutil.rmtree(bundle.path, ignore_errors=True)
            if not isinstance(exc, DeployError):
                raise
            raise DeployError(
                f"{bundle.model_name} {bundle.version} was not deployed: {exc}\n"
                f"{_describe(deployments, current)}"
            ) from None
        _switch(deployments, candidate)
        if current is not None and running:
            stop_process(current.pid)
        print(
            f"deployed {candidate.model_name} {candidate.version} at {candidate.url} "
            f"(smoke test: {result.rows} rows, max |Δp| {result.max_abs_diff:.2g})"
        )
        if tag:
            print(f"tagged {versions.tag_version(root, bundle.model_name)}")
        return candidate


def stop_local(deployments: Path) -> str:
    current = read_current(deployments)
    if current is None or not is_running(deployments, current):
        return "no local deployment is running"
    stop_process(current.pid)
    return f"stopped {current.model_name} {current.version} ({current.url})"


# ---------------------------------------------------------------------------------------------
# CLI: gitops-ml deploy-local [--bundle DIR] [--tag] | --status | --stop | --smoke-url URL
# ---------------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", type=Path, help="deploy this bundle instead of building one")
    parser.add_argument("--deployments", type=Path, default=DEPLOYMENTS_DIR, help="state directory")
    parser.add_argument("--ready-timeout", type=float, default=60.0, help="seconds to be ready")
    parser.add_argument(
        "--tag", action="store_true", help="on success, create HEAD's model version tag"
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--status", action="store_true", help="show the current deployment")
    action.add_argument("--stop", action="store_true", help="stop the current local server")
    action.add_argument(
        "--smoke-url",
        metavar="URL",
        help="only smoke-test the server at URL against --bundle (used by deploy.yml)",
    )


def run(args: argparse.Namespace) -> int:
    if args.stop:
        print(stop_local(args.deployments))
        return 0
    if args.status:
        current = read_current(args.deployments)
        print(_describe(args.deployments, current) if current else "nothing deployed")
        return 0 if is_running(args.deployments, current) else 1
    if args.smoke_url:
        if args.bundle is None:
            raise DeployError("--smoke-url needs --bundle (the bundle the server should run)")
        bundle = load_bundle(args.bundle)
        wait_ready(args.smoke_url.rstrip("/"), args.ready_timeout)
        result = smoke_test(args.smoke_url, bundle)
        print(
            f"smoke test passed: {result.model_name} {result.version} at {result.url}, "
            f"{result.rows} rows, max |Δp| {result.max_abs_diff:.2g}"
        )
        return 0
    deploy_local(
        Path("."), args.bundle, args.deployments, ready_timeout=args.ready_timeout, tag=args.tag
    )
    return 0
