"""Run the `run:` steps of a GitHub Actions workflow locally, in a scratch clone, with recorders.

We have no GitHub runner here, so workflow tests execute the shell steps of a job the way the
runner would (bash `-eo pipefail`, env layering, `GITHUB_OUTPUT`/`GITHUB_ENV`/... files) while
`cml`, `gh`, `docker`, `kubectl` and `npm` are replaced by *recorders*
(`tests/support/recorders/`) that log each call as one JSON line and answer plausibly.
`uses:` steps are skipped (and listed) or replaced by a callable the test supplies.

API (tests/support is on sys.path under pytest: `from workflow_harness import run_job, ...`)
---------------------------------------------------------------------------------
scratch_repo(dest, *, params=None, source=REPO_ROOT, origin=True, project="churn") -> Path
    Copy the work tree (tracked + untracked-not-ignored files, mtimes kept) to `dest`,
    apply dotted `params` overrides to params.yaml (e.g. {"data.rows": 3000}), `git init`,
    commit on `main`; with `origin=True` the repo is its own `origin` remote and fetched,
    so `origin/main` exists. `.venv` is symlinked (and git-excluded) so `make install` and
    `.venv/bin/...` work without installing; `.tools/bin/uv` is a no-op stub so nothing ever
    syncs the shared environment. Like on a GitHub runner, `.venv/bin` is NOT on the steps'
    PATH (inherited `*/.venv/bin` entries are dropped): a step calling `.venv/bin/dvc repro`
    whose stages run `gitops-ml` must add it (`echo "$PWD/.venv/bin" >> "$GITHUB_PATH"`);
    `make` targets get it from the Makefile.
set_params(repo, overrides) -> None       dotted overrides into repo/params.yaml
git(repo, *args) -> str                   run git in repo (identity preset), return stdout
configure_identity(repo) -> None          GIT_IDENTITY as repo-local user.name/user.email
commit_all(repo, message) -> str          `git add -A && git commit`, return the new sha

run_job(workflow, job, workdir, *, contexts=None, uses=None, env=None, log=None,
        step_timeout=900) -> JobResult
    Execute job `job` of the workflow file `workflow` in `workdir`.
    contexts: {"github": {...}, "inputs": {...}, "secrets": {...}, "vars": {...}} for
              `${{ }}`; `env.*` and `steps.<id>.outputs.*` are filled in by the runner.
    uses:     {"actions/checkout": callable | None, ...} keyed by the action without `@ref`;
              callable(UsesCall) -> Mapping[str, str] | None (the step's outputs). Actions
              not in the dict are skipped and listed in JobResult.skipped_uses.
    env:      extra process env for every step (e.g. recorder settings); lowest precedence.
    log:      recorder log file; defaults to workdir/../recorder.jsonl (RECORDER_LOG).
JobResult: .steps (list[StepResult]), .ok, .failed_step, .outputs (by step id), .env,
    .summary (GITHUB_STEP_SUMMARY text), .skipped_uses, .recorded (recorder log entries),
    .step(id_or_name) -> StepResult.
StepResult: .id, .name, .kind ("run"|"uses"), .status ("success"|"failure"|"skipped"|
    "uses-skipped"|"uses-replaced"), .returncode, .stdout, .stderr, .outputs, .seconds.
JobResult.explain() -> str: every step's status, time and output, for assertion messages.
recorder_env(log, *, gh_issues=None, fail=()) -> dict   env for the recorders (see below)
read_log(path) -> list[dict]                             the recorder log, one dict per call
expression_names(expr) -> (contexts, functions)          what one `${{ }}` expression names

Recorders (tests/support/recorders/, first on PATH): each call appends
    {"tool", "argv", "cwd", "step", ...} to $RECORDER_LOG; `cml comment create|update` adds
    "markdown" (the file's text), `gh ... --body/--body-file/-F` adds "body". Settings:
    RECORDER_GH_ISSUES  JSON file answering `gh issue list/view --json` (default: `[]`)
    RECORDER_FAIL       `;`-separated argv prefixes that exit 1, e.g. "kubectl rollout status"

Supported workflow features (enough for our workflows; anything else raises HarnessError):
    HOME is a fresh directory with no git identity, as on a GitHub-hosted runner (a step that
    commits configures its own), and `GIT_AUTHOR_*`/`GIT_COMMITTER_*` are not passed on.
    env layering workflow < job < GITHUB_ENV < step, `defaults.run.working-directory`,
    step `working-directory`, `shell: bash` (default) and `shell: python`, `continue-on-error`,
    `${{ }}` with context paths, string/number/bool/null literals, `== != < > <= >= && || !`,
    parentheses, and the functions success() failure() always() cancelled() contains()
    startsWith() endsWith() format() toJSON() fromJSON() hashFiles() (a fixed fake hash).
    `if:` uses the same evaluator; without a status function it means `success() && (...)`.
    Job-level `if:`, `strategy`, `services`, `container` and `needs` outputs are ignored.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gitops_ml import paths
from gitops_ml.demo import worktree_files
from gitops_ml.params_edit import set_params_file

REPO_ROOT = Path(__file__).resolve().parents[2]
RECORDERS_DIR = Path(__file__).resolve().parent / "recorders"
RECORDER_TOOLS = ("cml", "gh", "docker", "kubectl", "npm")
LOCAL_ENVIRONMENTS = (".venv", ".tools")  # per-checkout environments, never part of a clone
# A scratch pipeline small enough for a test, large enough for a meaningful model and time split.
# No refits: training noise is tested in tests/review and the PR workflow.
SMALL_PIPELINE: dict[str, Any] = {
    "data.rows": 3000,
    "evaluate.bootstrap_samples": 20,
    "evaluate.refits": 0,
    "evaluate.cv_folds": 2,
    "model.hyperparams.max_iter": 40,
}
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Workflow Test",
    "GIT_AUTHOR_EMAIL": "workflow-test@example.invalid",
    "GIT_COMMITTER_NAME": "Workflow Test",
    "GIT_COMMITTER_EMAIL": "workflow-test@example.invalid",
}
UV_STUB = """#!/usr/bin/env bash
# Stub written by tests/workflow_harness.py: scratch clones reuse the project .venv, so
# `make install` must never sync (and so modify) that shared environment.
echo "uv stub (scratch clone): skipped: uv $*"
"""


class HarnessError(RuntimeError):
    """The workflow uses something the harness does not emulate; extend it, do not guess."""


# ----------------------------------------------------------------------------- scratch repos


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_IDENTITY}
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout


def configure_identity(repo: Path) -> None:
    """GIT_IDENTITY as the repository's own `user.name`/`user.email`, for commands that commit
    and read identity from config files only (DVC's git library ignores GIT_AUTHOR_*)."""
    git(repo, "config", "user.name", GIT_IDENTITY["GIT_AUTHOR_NAME"])
    git(repo, "config", "user.email", GIT_IDENTITY["GIT_AUTHOR_EMAIL"])


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def set_params(repo: Path, overrides: Mapping[str, Any]) -> None:
    """Apply dotted overrides (`{"model.hyperparams.max_iter": 20}`) to repo/params.yaml,
    with the project's one params editor (comments kept; a key must exist)."""
    set_params_file(Path(repo) / paths.PARAMS, overrides)


def scratch_repo(
    dest: Path,
    *,
    params: Mapping[str, Any] | None = None,
    source: Path = REPO_ROOT,
    origin: bool = True,
    project: str | None = "churn",
) -> Path:
    """A real git repo at `dest` holding the current work tree, committed on `main`.

    `project` names a fixture project under tests/fixtures that replaces the live one
    (`project_fixtures.use_fixture_project`: contract, params, examples, no `.dvc` data), so
    template tests never depend on the data a fork switched to; None keeps the live files (the
    tests of the project's own data)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in worktree_files(source):
        if name.split("/", 1)[0] in LOCAL_ENVIRONMENTS:
            continue  # a worktree may symlink them; never copy (or write through) those links
        src = source / name
        if not src.is_file() and not src.is_symlink():
            continue  # deleted in the work tree but still in the index
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)  # keep mtimes: make stays a no-op
    venv = source / ".venv"
    if venv.exists():
        (dest / ".venv").symlink_to(venv)
    tools = dest / ".tools"
    if tools.is_symlink():  # the stub must land in the scratch clone, not in a shared .tools
        tools.unlink()
    uv = tools / "bin" / "uv"
    uv.parent.mkdir(parents=True, exist_ok=True)
    uv.write_text(UV_STUB)
    uv.chmod(0o755)
    if project is not None:
        from project_fixtures import use_fixture_project

        use_fixture_project(dest, source / "tests" / "fixtures" / project)
    if params:
        set_params(dest, params)
    git(dest, "init", "--quiet", "--initial-branch=main")
    exclude = dest / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    exclude.write_text("/.venv\n/.tools\n")
    commit_all(dest, "base: scratch copy of the work tree")
    if origin:
        git(dest, "remote", "add", "origin", str(dest.resolve()))
        git(dest, "fetch", "--quiet", "origin")
    return dest


# ----------------------------------------------------------------------------- expressions

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<str>'(?:[^']|'')*')"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\],.*])|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)
_STATUS_FUNCS = ("success", "failure", "always", "cancelled")


def _tokens(text: str) -> list[tuple[str, str]]:
    pos, out = 0, []
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise HarnessError(f"cannot parse expression at {text[pos:]!r} in {text!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", 0.0)


def _to_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _loose_eq(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    if {type(a), type(b)} <= {int, float, bool} or a is None or b is None:
        return a == b
    return _to_str(a).lower() == _to_str(b).lower()


class _Evaluator:
    """Recursive-descent evaluator for the GitHub expression subset named in the module doc."""

    def __init__(self, text: str, contexts: Mapping[str, Any], status: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.contexts = contexts
        self.status = status  # "success" or "failure" so far in the job

    def parse(self) -> Any:
        value = self._or()
        if self.i != len(self.toks):
            raise HarnessError(f"trailing tokens in expression: {self.toks[self.i :]}")
        return value

    def _peek(self) -> str | None:
        return self.toks[self.i][1] if self.i < len(self.toks) else None

    def _take(self, expected: str | None = None) -> tuple[str, str]:
        tok = self.toks[self.i]
        if expected is not None and tok[1] != expected:
            raise HarnessError(f"expected {expected!r}, got {tok[1]!r}")
        self.i += 1
        return tok

    def _or(self) -> Any:
        return self._fold("||", self._and, lambda left, right: left if _truthy(left) else right)

    def _and(self) -> Any:
        return self._fold("&&", self._cmp, lambda left, right: right if _truthy(left) else left)

    def _fold(self, op: str, operand: Callable[[], Any], combine: Callable[[Any, Any], Any]) -> Any:
        """A left-associative chain `a op b op c`, combining values like GitHub does."""
        left = operand()
        while self._peek() == op:
            self._take()
            left = combine(left, operand())
        return left

    def _cmp(self) -> Any:
        left = self._unary()
        ops = {"==", "!=", "<", ">", "<=", ">="}
        while self._peek() in ops:
            op = self._take()[1]
            right = self._unary()
            if op == "==":
                left = _loose_eq(left, right)
            elif op == "!=":
                left = not _loose_eq(left, right)
            else:
                a, b = float(left or 0), float(right or 0)
                left = {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        return left

    def _unary(self) -> Any:
        if self._peek() == "!":
            self._take()
            return not _truthy(self._unary())
        return self._primary()

    def _primary(self) -> Any:
        kind, text = self._take()
        if text == "(":
            inner = self._or()
            self._take(")")
            return inner
        if kind == "num":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind != "name":
            raise HarnessError(f"unexpected token {text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self._peek() == "(":
            return self._call(text)
        value: Any = self.contexts.get(text)
        while self._peek() in (".", "["):
            if self._take()[1] == ".":
                key = self._take()[1]
            else:
                key = _to_str(self._or())
                self._take("]")
            value = value.get(key) if isinstance(value, Mapping) else None
        return value

    def _call(self, name: str) -> Any:
        self._take("(")
        args: list[Any] = []
        while self._peek() != ")":
            args.append(self._or())
            if self._peek() == ",":
                self._take()
        self._take(")")
        lname = name.lower()
        if lname == "success":
            return self.status == "success"
        if lname == "failure":
            return self.status == "failure"
        if lname == "always":
            return True
        if lname == "cancelled":
            return False
        if lname == "contains":
            hay, needle = args
            if isinstance(hay, list):
                return any(_loose_eq(x, needle) for x in hay)
            return _to_str(needle).lower() in _to_str(hay).lower()
        if lname == "startswith":
            return _to_str(args[0]).lower().startswith(_to_str(args[1]).lower())
        if lname == "endswith":
            return _to_str(args[0]).lower().endswith(_to_str(args[1]).lower())
        if lname == "format":
            out = _to_str(args[0])
            for n, arg in enumerate(args[1:]):
                out = out.replace("{" + str(n) + "}", _to_str(arg))
            return out
        if lname == "tojson":
            return json.dumps(args[0], indent=2)
        if lname == "fromjson":
            return json.loads(_to_str(args[0]))
        if lname == "hashfiles":
            return "0" * 64
        raise HarnessError(f"expression function {name}() is not emulated")


def expression_names(expr: str) -> tuple[set[str], set[str]]:
    """The contexts (`github`, `runner`, ...) and the functions (lower-cased) that one
    expression (without the `${{ }}`) names: what GitHub's context-availability rules judge."""
    toks = _tokens(expr)
    contexts: set[str] = set()
    functions: set[str] = set()
    for i, (kind, text) in enumerate(toks):
        if kind != "name" or text in ("true", "false", "null"):
            continue
        if i > 0 and toks[i - 1][1] == ".":
            continue  # a property (`github.event`), not a context
        if i + 1 < len(toks) and toks[i + 1][1] == "(":
            functions.add(text.lower())
        else:
            contexts.add(text)
    return contexts, functions


def evaluate(expr: str, contexts: Mapping[str, Any], status: str = "success") -> Any:
    """Evaluate one expression (without the `${{ }}`)."""
    return _Evaluator(expr, contexts, status).parse()


_SUBST = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def substitute(text: str, contexts: Mapping[str, Any], status: str = "success") -> str:
    """Replace every `${{ expr }}` in `text` with its string value, as the runner does."""
    return _SUBST.sub(lambda m: _to_str(evaluate(m.group(1), contexts, status)), text)


def condition(expr: Any, contexts: Mapping[str, Any], status: str) -> bool:
    """A step `if:`; the implicit `success() &&` applies unless a status function is used."""
    if expr is None:
        return status == "success"
    if isinstance(expr, bool):
        return expr and status == "success"
    text = str(expr).strip()
    m = re.fullmatch(r"\$\{\{(.*)\}\}", text, re.S)
    if m:
        text = m.group(1)
    names = {t[1].lower() for t in _tokens(text) if t[0] == "name"}
    value = _truthy(evaluate(text, contexts, status))
    if not names & set(_STATUS_FUNCS):
        value = value and status == "success"
    return value


# ----------------------------------------------------------------------------- running


@dataclass
class UsesCall:
    """What a `uses:` replacement callable receives."""

    uses: str
    with_: dict[str, str]
    env: dict[str, str]
    workdir: Path
    step_id: str | None


UsesHandler = Callable[[UsesCall], Mapping[str, str] | None] | None


@dataclass
class StepResult:
    id: str | None
    name: str
    kind: str
    status: str
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0  # wall time, for diagnosing slow tests (never assert on it)


@dataclass
class JobResult:
    steps: list[StepResult]
    env: dict[str, str]
    summary: str
    skipped_uses: list[str]
    log: Path

    @property
    def ok(self) -> bool:
        return self.failed_step is None

    @property
    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if s.status == "failure"), None)

    @property
    def outputs(self) -> dict[str, dict[str, str]]:
        return {s.id: s.outputs for s in self.steps if s.id}

    @property
    def recorded(self) -> list[dict[str, Any]]:
        return read_log(self.log)

    def step(self, key: str) -> StepResult:
        for s in self.steps:
            if key in (s.id, s.name):
                return s
        raise KeyError(f"no step {key!r}; steps: {[s.id or s.name for s in self.steps]}")

    def explain(self) -> str:
        """Every step's status and output, for assertion messages."""
        parts = []
        for s in self.steps:
            parts.append(f"--- {s.status}: {s.id or s.name} (rc={s.returncode}, {s.seconds:.1f}s)")
            if s.stdout.strip():
                parts.append(s.stdout.rstrip()[-4000:])
            if s.stderr.strip():
                parts.append(s.stderr.rstrip()[-4000:])
        return "\n".join(parts)


def read_log(path: Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def recorder_env(
    log: Path, *, gh_issues: Any | None = None, fail: Iterable[str] = ()
) -> dict[str, str]:
    """Env for the recorders; `gh_issues` (a JSON-able list) is written beside the log."""
    env = {"RECORDER_LOG": str(log)}
    if gh_issues is not None:
        fixture = Path(log).with_suffix(".gh-issues.json")
        fixture.write_text(json.dumps(gh_issues))
        env["RECORDER_GH_ISSUES"] = str(fixture)
    fail = list(fail)
    if fail:
        env["RECORDER_FAIL"] = ";".join(fail)
    return env


def _parse_kv_file(path: Path) -> dict[str, str]:
    """Parse a GITHUB_OUTPUT / GITHUB_ENV file: `k=v` lines and `k<<EOF ... EOF` blocks."""
    out: dict[str, str] = {}
    lines = path.read_text().splitlines() if path.exists() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delim = line.split("<<", 1)
            body: list[str] = []
            while i < len(lines) and lines[i] != delim:
                body.append(lines[i])
                i += 1
            if i >= len(lines):
                raise HarnessError(f"{path.name}: heredoc for {key!r} not closed by {delim!r}")
            i += 1
            out[key] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
        else:
            raise HarnessError(f"{path.name}: malformed line {line!r}")
    return out


def _str_env(raw: Mapping[str, Any] | None, contexts: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): substitute(_to_str(v), contexts) for k, v in (raw or {}).items()}


def _inherited_path() -> list[str]:
    """PATH without any `.venv/bin`: a GitHub runner has none, so steps must add it themselves."""
    entries = os.environ.get("PATH", "").split(os.pathsep)
    return [e for e in entries if e and Path(e).parts[-2:] != (".venv", "bin")]


# What a GitHub-hosted runner does not have: a git identity, in the environment or in a config.
NOT_ON_A_RUNNER = ("GITHUB_", "RUNNER_", "GIT_AUTHOR_", "GIT_COMMITTER_", "GIT_CONFIG_")


def _base_env(workdir: Path, runner_dir: Path, github: Mapping[str, Any]) -> dict[str, str]:
    """The steps' environment: like a GitHub-hosted runner's, a HOME without any git identity
    (GIT_CONFIG_GLOBAL at a file that only forbids guessing one from the host name, which fails
    on a runner; DVC's git library reads $HOME/.gitconfig itself), so a step that commits must
    configure its own identity, as it must on GitHub."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(NOT_ON_A_RUNNER)}
    for key in ("VIRTUAL_ENV", "XDG_CONFIG_HOME"):
        env.pop(key, None)
    home = runner_dir / "home"
    home.mkdir()
    (home / "runner.gitconfig").write_text("[user]\n\tuseConfigOnly = true\n")
    env.update({"HOME": str(home), "GIT_CONFIG_GLOBAL": str(home / "runner.gitconfig")})
    pythonpath = [str(workdir / "src"), str(workdir)]
    env.update(
        {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(workdir),
            "RUNNER_TEMP": str(runner_dir / "temp"),
            "RUNNER_OS": "Linux",
            "PYTHONPATH": os.pathsep.join(pythonpath),
            "PATH": os.pathsep.join([str(RECORDERS_DIR), *_inherited_path()]),
            # The recorders' interpreter by its path: `python3` on PATH may be a version
            # manager's shim, ~50 ms of CPU a call.
            "RECORDER_PYTHON": sys.executable,
        }
    )
    for key in ("event_name", "repository", "sha", "ref", "base_ref", "head_ref", "run_id"):
        if key in github:
            env[f"GITHUB_{key.upper()}"] = _to_str(github[key])
    return env


def run_job(
    workflow: Path | str,
    job: str,
    workdir: Path,
    *,
    contexts: Mapping[str, Any] | None = None,
    uses: Mapping[str, UsesHandler] | None = None,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
    step_timeout: float = 900,
) -> JobResult:
    """Execute the steps of `job` in `workdir`; see the module docstring."""
    workdir = Path(workdir).resolve()
    doc = yaml.safe_load(Path(workflow).read_text())
    jobs = doc.get("jobs") or {}
    if job not in jobs:
        raise HarnessError(f"{workflow}: no job {job!r}; jobs: {sorted(jobs)}")
    spec = jobs[job]
    ctx: dict[str, Any] = {k: dict(v) for k, v in (contexts or {}).items()}
    for name in ("github", "inputs", "secrets", "vars", "matrix", "needs"):
        ctx.setdefault(name, {})
    ctx["steps"] = {}
    ctx["runner"] = {"os": "Linux", "temp": ""}
    runner_dir = Path(tempfile.mkdtemp(prefix="runner-", dir=workdir.parent))
    (runner_dir / "temp").mkdir()
    ctx["runner"]["temp"] = str(runner_dir / "temp")
    log = Path(log) if log else workdir.parent / "recorder.jsonl"
    base = _base_env(workdir, runner_dir, ctx["github"])
    base.update(env or {})
    base.setdefault("RECORDER_LOG", str(log))

    ctx["env"] = {}
    workflow_env = _str_env(doc.get("env"), ctx)
    ctx["env"] = dict(workflow_env)
    job_env = _str_env(spec.get("env"), ctx)
    exported: dict[str, str] = {}
    extra_path: list[str] = []
    summary_file = runner_dir / "step_summary.md"
    summary_file.touch()
    defaults = (
        (spec.get("defaults") or {}).get("run") or (doc.get("defaults") or {}).get("run") or {}
    )
    results: list[StepResult] = []
    skipped_uses: list[str] = []
    status = "success"

    for index, step in enumerate(spec.get("steps") or []):
        step_id = step.get("id")
        name = str(step.get("name") or step.get("uses") or f"step {index + 1}")
        ctx["env"] = {**workflow_env, **job_env, **exported}
        step_env = _str_env(step.get("env"), ctx)
        ctx["env"].update(step_env)
        kind = "uses" if "uses" in step else "run"
        if not condition(step.get("if"), ctx, status):
            results.append(StepResult(step_id, name, kind, "skipped"))
            if step_id:
                ctx["steps"][step_id] = {"outputs": {}, "outcome": "skipped"}
            continue
        proc_env = {**base, **workflow_env, **job_env, **exported, **step_env}
        proc_env["PATH"] = os.pathsep.join([*reversed(extra_path), proc_env["PATH"]])
        proc_env["HARNESS_STEP"] = step_id or name
        started = time.monotonic()
        if kind == "uses":
            result = _run_uses(step, step_id, name, ctx, uses or {}, proc_env, workdir)
            if result.status == "uses-skipped":
                skipped_uses.append(str(step["uses"]))
        else:
            result = _run_script(
                step, step_id, name, ctx, proc_env, workdir, defaults, runner_dir, step_timeout
            )
            exported.update(_parse_kv_file(runner_dir / "env"))
            (runner_dir / "env").write_text("")
            path_file = runner_dir / "path"
            if path_file.exists():
                extra_path += [p for p in path_file.read_text().splitlines() if p.strip()]
                path_file.write_text("")
        result.seconds = time.monotonic() - started
        results.append(result)
        outcome = result.status if result.status == "failure" else "success"
        if step_id:
            ctx["steps"][step_id] = {"outputs": result.outputs, "outcome": outcome}
        if result.status == "failure" and not step.get("continue-on-error"):
            status = "failure"

    summary = summary_file.read_text()
    return JobResult(
        steps=results,
        env={**workflow_env, **job_env, **exported},
        summary=summary,
        skipped_uses=skipped_uses,
        log=log,
    )


def _run_uses(
    step: Mapping[str, Any],
    step_id: str | None,
    name: str,
    ctx: Mapping[str, Any],
    handlers: Mapping[str, UsesHandler],
    env: dict[str, str],
    workdir: Path,
) -> StepResult:
    action = str(step["uses"]).split("@", 1)[0]
    handler = handlers.get(action)
    if handler is None:
        return StepResult(step_id, name, "uses", "uses-skipped")
    call = UsesCall(
        uses=str(step["uses"]),
        with_=_str_env(step.get("with"), ctx),
        env=env,
        workdir=workdir,
        step_id=step_id,
    )
    outputs = handler(call) or {}
    return StepResult(step_id, name, "uses", "uses-replaced", 0, outputs=dict(outputs))


def _run_script(
    step: Mapping[str, Any],
    step_id: str | None,
    name: str,
    ctx: Mapping[str, Any],
    env: dict[str, str],
    workdir: Path,
    defaults: Mapping[str, Any],
    runner_dir: Path,
    timeout: float,
) -> StepResult:
    shell = str(step.get("shell") or defaults.get("shell") or "bash")
    script = substitute(str(step["run"]), ctx)
    cwd_rel = step.get("working-directory") or defaults.get("working-directory")
    cwd = workdir / substitute(str(cwd_rel), ctx) if cwd_rel else workdir
    output_file = runner_dir / "output"
    output_file.write_text("")
    env.update(
        {
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_ENV": str(runner_dir / "env"),
            "GITHUB_PATH": str(runner_dir / "path"),
            "GITHUB_STEP_SUMMARY": str(runner_dir / "step_summary.md"),
        }
    )
    script_file = runner_dir / f"step-{step_id or 'anon'}.sh"
    script_file.write_text(script)
    if shell == "bash":
        argv = ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script_file)]
    elif shell == "python":
        argv = ["python", str(script_file)]
    else:
        raise HarnessError(f"step {name!r}: shell {shell!r} is not emulated")
    try:
        done = subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
        )
        rc, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        rc, out, err = 124, partial, f"harness: step timed out after {timeout}s"
    status = "success" if rc == 0 else "failure"
    outputs = _parse_kv_file(output_file)
    return StepResult(step_id, name, "run", status, rc, out, err, outputs)
