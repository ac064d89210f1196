"""`gitops-ml demo` (`make demo`): the whole loop in a few minutes, on this machine only.

In a scratch directory it plays what GitHub, a registry and a cluster would do, with local
stand-ins: a bare Git repository is `origin`, the project's local DVC remote stores data and
models, `gitops-ml deploy-local` is the deployment. Every step is the make target or `gitops-ml`
command the workflow's step runs (`commands.log` lists them with their output), so the timeline
it prints says what each workflow will do on GitHub and where to look at the result; the pull
request's report is the markdown pr.yml posts, charts included. The artifacts stay for
inspection. It runs on the project's own data: the scratch copy gets Git's files and the files
DVC tracks (a fork's CSV), so it needs those in the workspace (`make dvc-pull`) and says so when
they are not.

The story: main reproduced and deployed as v0.1.0 (staging, then promoted to production) → a
pull request changing a hyperparameter, its report and gates → merge, then deploy.yml's commands:
version bump, bundle, tag, staging pinned, rollout with smoke test (v0.2.0 serving, v0.1.0
stopped), stage tag → traffic through the
server into the prediction log → a drifted window, its drift report and issue text → a
retraining branch with its report → a broken bundle refused while v0.2.0 keeps serving.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import yaml

from gitops_ml import paths
from gitops_ml.errors import UserError
from gitops_ml.evaluate_metrics import (
    EvaluateMetrics,
    evaluate_metrics_from_json,
    read_evaluate_metrics,
)
from gitops_ml.markdown import num
from gitops_ml.metric_registry import label, metric_sets
from gitops_ml.params_edit import set_params_file
from gitops_ml.stage_metrics import read_data_metrics

if TYPE_CHECKING:  # the release tools are imported where a step needs them
    from gitops_ml.release.deploy import Deployment

# The drifted window (`gitops-ml simulate --scenario`): the first numeric feature of the contract
# moved by one reference standard deviation, so it works on any fork's data.
DRIFT_SCENARIO = "shift:+1sd"
# The pull request's change; any `params.yaml` key works (`--change KEY=VALUE`).
PR_CHANGE = ("model.hyperparams.learning_rate", 0.04)
# Small but honest: enough rows for the gates, the smoke test and the drift test to mean something.
SMALL_PARAMS: dict[str, Any] = {
    "evaluate.bootstrap_samples": 20,
    "evaluate.cv_folds": 2,
    "evaluate.refits": 2,  # the fewest that measure training noise for the report
    "drift.bootstrap_samples": 20,
}
TRAFFIC_ROWS = 600
WINDOW_ROWS = 2000
BATCH = 50
MARKER = ".gitops-ml-demo"
LOCAL_IMAGE = "local/{model}"  # the pin's image: locally, the bundle stands in for an image
BUNDLE = "dist/bundle"  # where deploy.yml builds the bundle (ignored by Git)
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "gitops-ml demo",
    "GIT_AUTHOR_EMAIL": "demo@example.invalid",
    "GIT_COMMITTER_NAME": "gitops-ml demo",
    "GIT_COMMITTER_EMAIL": "demo@example.invalid",
}


class DemoError(UserError):
    """A step of the demo failed; the message names the command and its output."""

    exit_code = 1


# ---------------------------------------------------------------------------------------------
# Pure helpers
# ---------------------------------------------------------------------------------------------


def parse_change(text: str) -> tuple[str, Any]:
    """`--change KEY=VALUE` (argparse reports a malformed one as a usage error, exit 2)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, e.g. model.seed=7")
    return key, yaml.safe_load(value)


@dataclass(frozen=True)
class Event:
    seconds: float
    what: str
    where: str
    workflow: str  # what does this on GitHub


def render_timeline(events: list[Event], out: Path, total: float) -> str:
    lines = [f"gitops-ml demo: the loop in {total:.0f} s; artifacts in {out}", ""]
    for e in events:
        minutes, seconds = divmod(int(e.seconds), 60)
        lines.append(f"{minutes:2d}:{seconds:02d}  {e.what}")
        lines.append(f"       look: {e.where}")
        lines.append(f"       on GitHub: {e.workflow}")
    lines += [
        "",
        f"The pull request's report (the markdown pr.yml posts): {out / 'review' / 'pr-1.md'}",
        f"Every command with its output and time: {out / 'commands.log'}",
        f"The repository (clone it, `git log --graph --all`, `make status`): {out / 'work'}",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# The story
# ---------------------------------------------------------------------------------------------


class Demo:
    def __init__(
        self,
        source: Path,
        out: Path,
        rows: int,
        change: tuple[str, Any] = PR_CHANGE,
        keep_serving: bool = False,
    ) -> None:
        self.source = source.resolve()
        self.out = out.resolve()
        self.rows = rows
        self.change = change
        self.keep_serving = keep_serving
        self.work = self.out / "work"
        self.deployments = self.out / "deployments"
        self.bin = Path(sys.executable).parent
        self.events: list[Event] = []
        self.started = time.monotonic()
        self.env = {
            **os.environ,
            **GIT_IDENTITY,
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            # The scratch copy's own code runs (the .venv's editable install is the source tree).
            "PYTHONPATH": os.pathsep.join([str(self.work / "src"), str(self.work)]),
            "DVC_NO_ANALYTICS": "1",
            "ITERATIVE_DO_NOT_TRACK": "1",
            # Capture to a local store (a file:// store), a segment closed each second.
            "SERVING_CAPTURE_URL": str(self.out / "traffic" / "captured"),
            "SERVING_CAPTURE_DIR": str(self.out / "traffic" / "spool"),
            "SERVING_CAPTURE_MAX_SECONDS": "1",
        }
        self.env.pop("VIRTUAL_ENV", None)

    # -- plumbing ------------------------------------------------------------------------------

    def call(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run a command in the work tree (tools from this environment), logging its output.

        `gitops-ml` commands run in this process (`cli.main`, what the console script calls)
        with the work tree as their directory, the demo's environment and their output
        captured: a new interpreter per step would re-import pandas, scikit-learn and
        onnxruntime some 25 times, a third of the demo's time. Everything else (make, dvc,
        git) is a process of its own, so the pipeline's stages run the scratch copy's code."""
        started = time.monotonic()
        if argv[0] == "gitops-ml":
            done = self._in_process(argv)
        else:
            tool = str(self.bin / argv[0]) if (self.bin / argv[0]).exists() else argv[0]
            done = subprocess.run(
                [tool, *argv[1:]], cwd=self.work, env=self.env, capture_output=True, text=True
            )
        with open(self.out / "commands.log", "a") as log:
            seconds = time.monotonic() - started
            log.write(f"$ {' '.join(argv)}    # exit {done.returncode}, {seconds:.1f} s\n")
            log.write(f"{done.stdout}{done.stderr}\n")
        return done

    def _in_process(self, argv: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        from gitops_ml import cli

        stdout, stderr = io.StringIO(), io.StringIO()
        with (
            mock.patch.dict(os.environ, self.env, clear=True),
            contextlib.chdir(self.work),
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            try:
                code = cli.main(argv[1:])
            except SystemExit as exit_:  # argparse's usage errors
                code = exit_.code if isinstance(exit_.code, int) else 1
            except Exception:  # a bug: its traceback, as the process would have printed it
                traceback.print_exc()
                code = 1
        return subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())

    def sh(self, *argv: str) -> str:
        """`call` that must succeed; returns stdout."""
        done = self.call(*argv)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            raise DemoError(f"`{' '.join(argv)}` exited {done.returncode}:\n{tail}")
        return done.stdout

    def event(self, what: str, where: Path | str, workflow: str) -> None:
        path = Path(where)
        where_text = str(path.relative_to(self.out)) if path.is_absolute() else str(path)
        event = Event(time.monotonic() - self.started, what, where_text, workflow)
        self.events.append(event)
        print(f"[{event.seconds:5.0f} s] {what}", flush=True)

    def data_rows(self) -> int:
        return read_data_metrics(self.work / paths.DATA_METRICS).rows.total

    def headline(self, evaluation: EvaluateMetrics | None = None) -> str:
        """The task's headline test metric, as people read it ("ROC AUC 0.862", "R² 0.365")."""
        found = evaluation or read_evaluate_metrics(self.work / paths.EVALUATE_METRICS)
        name = metric_sets(found.task).headline
        return f"{label(name)} {num(found.test.get(name), '.3f')}"

    # -- the scratch repository ---------------------------------------------------------------

    def prepare(self) -> None:
        # The workflows' make targets run .venv/bin's tools and check .tools' uv is there.
        tools = self.source / ".tools"
        if not tools.is_dir():
            raise DemoError(f"{tools} is missing: run `make demo`, which installs it first")
        if self.out.exists():
            if any(self.out.iterdir()) and not (self.out / MARKER).exists():
                raise DemoError(f"{self.out} exists and was not made by the demo; pick --dir")
            from gitops_ml.release.deploy import stop_local

            stop_local(self.deployments)
            shutil.rmtree(self.out)
        self.out.mkdir(parents=True)
        (self.out / MARKER).write_text("made by `gitops-ml demo`; deleted by its next run\n")
        names = worktree_files(self.source)
        pointers = [name for name in names if name.endswith(".dvc")]
        tracked = dvc_tracked(self.source, pointers)
        missing = [name for name in tracked if not (self.source / name).exists()]
        if missing:
            raise DemoError(
                f"the demo runs in a scratch copy ({self.work}) and needs {', '.join(missing)}, "
                "which DVC tracks but this workspace does not hold: run `make dvc-pull` first"
            )
        for name in [*names, *tracked]:
            src = self.source / name
            if name.startswith((".venv", ".tools")) or not src.exists():
                continue
            (self.work / name).parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, self.work / name, symlinks=True)
            else:
                shutil.copy2(src, self.work / name, follow_symlinks=False)
        (self.work / ".venv").symlink_to(sys.prefix)
        (self.work / ".tools").symlink_to(tools.resolve())
        set_params_file(self.work / paths.PARAMS, {"data.rows": self.rows, **SMALL_PARAMS})
        self.sh("git", "init", "--quiet", "--initial-branch=main")
        (self.work / ".git" / "info" / "exclude").write_text("/.venv\n/.tools\n")  # links
        self.sh("git", "init", "--quiet", "--bare", str(self.out / "origin.git"))
        self.sh("git", "remote", "add", "origin", str(self.out / "origin.git"))
        if pointers:  # the copied data into the scratch copy's own DVC cache, for `dvc push`
            self.sh("dvc", "commit", "--force", "--quiet", *pointers)

    def commit(self, message: str, *paths_: str) -> None:
        self.sh("git", "add", "--all", *(paths_ or ("--",)))
        self.sh("git", "commit", "--quiet", "--allow-empty", "--message", message)

    def push(self, ref: str = "main") -> None:
        self.sh("git", "push", "--quiet", "origin", ref, "--tags")

    def repro_and_push(self) -> None:
        self.sh("make", "repro")
        self.sh("dvc", "push", "--quiet")

    # -- release helpers -----------------------------------------------------------------------

    def current(self) -> Deployment:
        from gitops_ml.release.deploy import read_current

        current = read_current(self.deployments)
        if current is None:
            raise DemoError(f"nothing is deployed in {self.deployments}")
        return current

    def deploy(self) -> Deployment:
        """deploy.yml's commands in its order. publish: the next version, the bundle built and
        checked against dvc.lock, the version tag. deploy: the bundle checked again (its version
        too), staging pinned, rolled out and smoke-tested (locally `deploy-local --bundle`
        starts the server and keeps the previous one serving on failure: the rollback), then
        the stage tag. Locally the bundle stands in for the image, so the pinned digest is its
        metadata's sha256 (which names the model's and the contract's hashes)."""
        from gitops_ml.release.bundle import read_metadata

        version = self.sh("gitops-ml", "version", "--next").strip()
        self.sh("gitops-ml", "bundle", "--output", BUNDLE, "--version", version)
        self.sh("gitops-ml", "bundle", "--output", BUNDLE, "--verify", "--lock", paths.DVC_LOCK)
        self.sh("gitops-ml", "version", "--tag")
        self.push()
        self.sh(
            "gitops-ml", "bundle", "--output", BUNDLE, "--verify", "--lock", paths.DVC_LOCK,
            "--version", version,
        )  # fmt: skip
        metadata = self.work / BUNDLE / "metadata.json"
        digest = "sha256:" + hashlib.sha256(metadata.read_bytes()).hexdigest()
        image = LOCAL_IMAGE.format(model=read_metadata(self.work / BUNDLE).model_name)
        self.sh(
            "gitops-ml", "env", "pin", "staging", "--image", image, "--digest", digest,
            "--version", version, "--commit",
        )  # fmt: skip
        self.sh(
            "gitops-ml", "deploy-local", "--bundle", BUNDLE, "--deployments", str(self.deployments)
        )
        self.sh("gitops-ml", "version", "--promote", "staging", "--version", version)
        self.push()
        return self.current()

    def review(self, name: str) -> tuple[bool, str, Path]:
        """pr.yml's review step against main (`make pr-report`: the report its comment posts,
        exit 1 when a gate fails); passed?, the report's headline, the report."""
        rendered = self.work / paths.PR_REPORT
        rendered.unlink(missing_ok=True)
        done = self.call("make", "pr-report", "BASE=main")
        if not rendered.exists():  # make exits 2 for either: only a written report is a verdict
            raise DemoError(f"make pr-report failed:\n{done.stderr.strip()}")
        report = self.out / "review" / f"{name}.md"
        report.parent.mkdir(exist_ok=True)
        shutil.copyfile(rendered, report)
        headline = report.read_text().splitlines()[0].lstrip("# ").replace("**", "")
        return done.returncode == 0, headline, report

    # -- the story ------------------------------------------------------------------------------

    def main_v1(self) -> None:
        self.commit("The template, as forked")
        self.repro_and_push()
        self.commit("main: pipeline reproduced")
        self.push()
        self.event(
            f"main reproduced ({self.data_rows():,} rows): {self.headline()}; "
            "data and model in the DVC remote",
            self.work / paths.EVALUATE_METRICS,
            "ci.yml lints and tests; the pipeline's state is dvc.lock in Git",
        )
        deployment = self.deploy()
        self.sh("gitops-ml", "env", "promote", "--expect-version", deployment.version)
        self.push()
        self.event(
            f"v{deployment.version} bundled, tagged, smoke-tested and serving at "
            f"{deployment.url}; pinned in staging and promoted to production",
            self.work / "deploy",
            "deploy.yml (publish, deploy to staging), promote.yml (production)",
        )

    def pull_request(self) -> str:
        key, value = self.change
        branch = f"pr/{key.rsplit('.', 1)[-1].replace('_', '-')}"
        self.sh("git", "switch", "--quiet", "--create", branch)
        set_params_file(self.work / paths.PARAMS, {key: value})
        self.repro_and_push()
        self.commit(f"Try {key} = {value}")
        self.push(branch)
        passed, headline, page = self.review("pr-1")
        self.event(
            f"pull request `{branch}` sets {key} = {value}: {self.headline()}; {headline}",
            page,
            "pr.yml posts this report as one sticky comment; a failed gate fails the check",
        )
        if not passed:
            raise DemoError(
                f"the demo's change {key} = {value} fails a gate ({self.out}/review/pr-1.md); "
                "pick another with --change KEY=VALUE"
            )
        return branch

    def merge(self, branch: str) -> Deployment:
        from gitops_ml.release.deploy import is_running

        before = self.current()
        self.sh("git", "switch", "--quiet", "main")
        self.sh("git", "merge", "--quiet", "--no-ff", branch, "--message", f"Merge {branch}")
        self.push()
        bump = self.call("gitops-ml", "version", "--next").stderr.strip()
        deployment = self.deploy()
        if is_running(self.deployments, before):
            raise DemoError(f"v{before.version} (pid {before.pid}) is still running")
        (self.out / "status.txt").write_text(self.sh("gitops-ml", "status"))
        self.event(
            f"merged: v{deployment.version} ({bump}); smoke-tested and serving at "
            f"{deployment.url}, v{before.version} stopped; staging pins v{deployment.version}, "
            f"production still v{before.version} until promoted",
            self.out / "status.txt",
            "deploy.yml: verify, publish (bundle, image, tag, release), deploy to staging",
        )
        return deployment

    def traffic(self, deployment: Deployment) -> None:
        from gitops_ml.contract import load_contract

        traffic = self.out / "traffic"
        requests = traffic / "requests.parquet"
        self.simulate("none", TRAFFIC_ROWS, requests, seed=7)
        import pandas as pd

        contract = load_contract(self.work / paths.CONTRACT)
        frame = pd.read_parquet(requests)[[c.name for c in contract.features]]
        records = json.loads(frame.to_json(orient="records", date_format="iso"))
        log = Path(self.env["SERVING_CAPTURE_URL"])
        before = _lines(log)
        # The capture sidecar beside the server, as in a pod: it ships the spool to the store.
        with (traffic / "sidecar.log").open("wb") as output:
            sidecar = subprocess.Popen(
                [sys.executable, "-m", "serving.capture"],
                cwd=self.work,
                env=self.env,
                stdout=output,
                stderr=output,
            )
        try:
            for start in range(0, len(records), BATCH):
                body = json.dumps(records[start : start + BATCH]).encode()
                request = urllib.request.Request(
                    f"{deployment.url}/predict",
                    data=body,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=30) as response:
                    if response.status != 200:
                        raise DemoError(f"POST /predict answered {response.status}")
            logged = _wait_for_lines(log, before + len(records))
        finally:
            sidecar.terminate()
            sidecar.wait(timeout=60)
        verdict = self.drift(log, traffic / "drift")
        self.event(
            f"{len(records)} requests through v{deployment.version}'s /predict; the capture "
            f"holds {logged} rows (smoke tests included); drift check on it: {verdict}",
            log,
            "your traffic; the capture is what drift.yml reads",
        )

    def simulate(
        self, scenario: str, rows: int, output: Path, seed: int = 42, labels: bool = False
    ) -> None:
        """The one simulate call: rows resampled from the training split, as drift.yml does."""
        self.sh(
            "gitops-ml", "simulate", "--scenario", scenario, "--rows", str(rows),
            "--seed", str(seed), "--model", paths.MODEL_ONNX, "--train", paths.TRAIN,
            "--output", str(output), *(["--labels"] if labels else []),
        )  # fmt: skip

    def drift(self, current: Path, out_dir: Path) -> str:
        self.sh(
            "gitops-ml", "drift", "--current", str(current), "--model", paths.MODEL_ONNX,
            "--output-dir", str(out_dir),
        )  # fmt: skip
        return str(json.loads((out_dir / "drift.json").read_text())["verdict"])

    def drifted_window(self) -> Path:
        window = self.out / "drift" / "window.parquet"
        self.simulate(DRIFT_SCENARIO, WINDOW_ROWS, window, labels=True)
        verdict = self.drift(window, self.out / "drift" / "report")
        issue = self.out / "drift" / "issue.md"
        report = (self.out / "drift" / "report" / "drift.md").read_text()
        issue.write_text(
            f"{report}\n---\nLatest check: `gitops-ml demo` (source: simulate {DRIFT_SCENARIO})\n"
        )
        self.event(
            f"a drifted window ({WINDOW_ROWS:,} labelled rows, scenario {DRIFT_SCENARIO}): "
            f"verdict {verdict}; issue text written",
            issue,
            "drift.yml (schedule) opens or updates one `model-drift` issue with this text",
        )
        return window

    def retrain(self, window: Path) -> None:
        self.sh("git", "switch", "--quiet", "--create", "retrain/drift")
        self.sh("gitops-ml", "retrain", "--window", str(window))
        self.sh("dvc", "add", "--quiet", paths.RETRAIN_DATA)
        self.repro_and_push()
        self.commit("Retrain on the drifted production window")
        self.push("retrain/drift")
        _, headline, page = self.review("retrain")
        self.sh("git", "switch", "--quiet", "main")
        retrained = self.headline(self._evaluation_at("retrain/drift"))
        self.event(
            f"retraining branch `retrain/drift`: {retrained} on its new test set (drifted rows "
            f"included); {headline}",
            page,
            "drift.yml (retrain mode) opens this pull request; pr.yml reviews it like any other",
        )

    def _evaluation_at(self, rev: str) -> EvaluateMetrics:
        source = f"{rev}:{paths.EVALUATE_METRICS}"
        return evaluate_metrics_from_json(self.sh("git", "show", source), source)

    def broken_bundle(self, deployment: Deployment) -> None:
        from gitops_ml.release.bundle import load_bundle
        from gitops_ml.release.deploy import smoke_test

        broken = self.out / "broken-bundle"
        shutil.copytree(self.deployments / deployment.bundle, broken)
        metadata = json.loads((broken / "metadata.json").read_text())
        metadata["version"] = "0.2.1"  # looks like a newer release …
        (broken / "metadata.json").write_text(json.dumps(metadata, indent=2))
        with open(broken / "model.onnx", "ab") as model:  # … but its model was tampered with
            model.write(b"\0tampered")
        deployments = str(self.deployments)
        done = self.call(
            "gitops-ml", "deploy-local", "--bundle", str(broken), "--deployments", deployments
        )
        (self.out / "broken-bundle.txt").write_text(done.stdout + done.stderr)
        if done.returncode == 0:
            raise DemoError(f"the tampered bundle {broken} was deployed")
        current = self.current()
        result = smoke_test(current.url, load_bundle(self.deployments / current.bundle))
        if current.version != deployment.version:
            raise DemoError(f"{current.version} serves instead of {deployment.version}")
        self.event(
            f"a tampered bundle (claims v0.2.1) refused: sha256 mismatch; v{result.version} "
            f"keeps serving and passes its smoke test",
            self.out / "broken-bundle.txt",
            "deploy.yml's smoke test and rollback; serving refuses bundles that fail their hashes",
        )

    def run(self) -> list[Event]:
        self.prepare()
        try:
            self.main_v1()
            branch = self.pull_request()
            deployment = self.merge(branch)
            self.traffic(deployment)
            window = self.drifted_window()
            self.retrain(window)
            self.broken_bundle(deployment)
        finally:
            if not self.keep_serving:
                from gitops_ml.release.deploy import stop_local

                stop_local(self.deployments)
        return self.events


def worktree_files(root: Path) -> list[str]:
    """What a clone of the checkout at `root` would hold now: the files Git tracks and the new
    ones it does not ignore (relative, sorted); the scratch copies start from these."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted(set(filter(None, listed.split("\0"))))


def dvc_tracked(root: Path, pointers: list[str]) -> list[str]:
    """The files and directories that the `.dvc` files `pointers` (paths relative to `root`)
    track, relative to `root`: what a copy made from Git's files alone lacks."""
    tracked = []
    for pointer in pointers:
        raw = yaml.safe_load((root / pointer).read_text()) or {}
        folder = Path(pointer).parent
        tracked += [(folder / out["path"]).as_posix() for out in raw.get("outs") or []]
    return tracked


def _lines(store: Path) -> int:
    """The lines shipped to a local capture store."""
    return sum(len(gzip.decompress(p.read_bytes()).splitlines()) for p in store.rglob("*.gz"))


def _wait_for_lines(path: Path, expected: int, timeout: float = 30.0) -> int:
    """The sidecar ships each segment after it closes: give it time to ship what it queued."""
    deadline = time.monotonic() + timeout
    while (count := _lines(path)) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return count


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=Path("build/demo"), help="scratch directory")
    parser.add_argument(
        "--rows", type=int, default=3000, help="rows the generator makes (stage generate)"
    )
    parser.add_argument(
        "--change",
        type=parse_change,
        default=PR_CHANGE,
        help=f"the pull request's params change (default {PR_CHANGE[0]}={PR_CHANGE[1]})",
    )
    parser.add_argument(
        "--keep-serving", action="store_true", help="leave v0.2.0 running at the end"
    )


def run(args: argparse.Namespace) -> int:
    demo = Demo(Path("."), args.dir, args.rows, args.change, args.keep_serving)
    events = demo.run()
    total = time.monotonic() - demo.started
    timeline = render_timeline(events, demo.out, total)
    (demo.out / "timeline.txt").write_text(timeline + "\n")
    print()
    print(timeline)
    if args.keep_serving:
        print(f"Stop the server: gitops-ml deploy-local --deployments {demo.deployments} --stop")
    return 0
