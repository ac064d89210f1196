"""The workflow harness itself: steps run like on a GitHub runner, recorders log every call."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from workflow_harness import (
    HarnessError,
    condition,
    git,
    recorder_env,
    run_job,
    scratch_repo,
    substitute,
)

WORKFLOW = textwrap.dedent(
    """
    name: toy
    on: pull_request
    permissions: {}
    env:
      TOP: top
    jobs:
      j:
        runs-on: ubuntu-latest
        env:
          JOBV: ${{ inputs.x }}-job
        steps:
          - uses: actions/checkout@0000000000000000000000000000000000000000 # v4
          - uses: actions/setup-python@0000000000000000000000000000000000000000 # v5
            id: py
            with:
              python-version: "3.11"
          - id: a
            run: |
              echo "v=hello" >> "$GITHUB_OUTPUT"
              { echo "multi<<EOF"; echo l1; echo l2; echo EOF; } >> "$GITHUB_OUTPUT"
              echo "EXP=exported" >> "$GITHUB_ENV"
              echo "$TOP $JOBV ${{ steps.py.outputs.python-version }}"
          - id: b
            if: steps.a.outputs.v == 'hello' && github.event_name == 'pull_request'
            working-directory: sub
            env:
              M: ${{ steps.a.outputs.multi }}
            run: |
              echo "M=$M EXP=$EXP in $(basename "$PWD")"
              echo "## summary line" >> "$GITHUB_STEP_SUMMARY"
              echo hi > r.md
              cml comment update --target=pr --watermark-title=x --publish=false r.md
              number="$(gh issue list --json number,title --jq '.[0].number')"
              echo "issue=$number" >> "$GITHUB_OUTPUT"
          - id: fail
            run: false | cat
          - id: after
            run: echo never
          - id: cleanup
            if: always()
            run: kubectl rollout status deployment/churn-model
    """
)


@pytest.fixture
def toy(tmp_path: Path):
    (tmp_path / "wf.yml").write_text(WORKFLOW)
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    log = tmp_path / "log.jsonl"
    seen: list[dict[str, str]] = []

    def setup_python(call):
        seen.append(call.with_)
        return {"python-version": call.with_["python-version"]}

    result = run_job(
        tmp_path / "wf.yml",
        "j",
        work,
        contexts={"github": {"event_name": "pull_request"}, "inputs": {"x": "X"}},
        uses={"actions/setup-python": setup_python},
        env=recorder_env(log, gh_issues=[{"number": 7, "title": "drift"}], fail=["kubectl"]),
        log=log,
    )
    return result, seen


def test_run_steps_layer_env_outputs_and_github_env_files(toy) -> None:
    result, seen = toy
    assert seen == [{"python-version": "3.11"}]
    assert result.step("a").stdout.strip() == "top X-job 3.11"
    assert result.outputs["a"] == {"v": "hello", "multi": "l1\nl2"}
    assert "M=l1\nl2 EXP=exported in sub" in result.step("b").stdout
    assert result.summary == "## summary line\n"
    assert result.outputs["b"] == {"issue": "7"}
    assert result.skipped_uses == ["actions/checkout@0000000000000000000000000000000000000000"]


def test_failing_pipe_fails_the_step_and_skips_the_rest_except_always(toy) -> None:
    result, _ = toy
    assert result.failed_step is not None and result.failed_step.id == "fail"
    assert result.step("after").status == "skipped"
    assert result.step("cleanup").status == "failure"  # ran, and the recorder was told to fail


def test_recorders_log_argv_step_and_markdown(toy) -> None:
    result, _ = toy
    calls = [(e["tool"], e["step"], e["exit_code"]) for e in result.recorded]
    assert calls == [("cml", "b", 0), ("gh", "b", 0), ("kubectl", "cleanup", 1)]
    assert result.recorded[0]["markdown"] == "hi\n"
    assert result.recorded[0]["argv"][:2] == ["comment", "update"]


def test_conditions_follow_github_status_rules() -> None:
    ctx = {"github": {"event": {"pull_request": {"head": {"repo": {"fork": True}}}}}}
    assert condition("github.event.pull_request.head.repo.fork", ctx, "success")
    assert not condition("github.event.pull_request.head.repo.fork", ctx, "failure")
    assert condition("${{ failure() }}", ctx, "failure")
    assert not condition("!github.event.pull_request.head.repo.fork", ctx, "success")
    assert substitute("a-${{ format('{0}/{1}', 'x', 1) }}", ctx) == "a-x/1"


def test_unknown_expression_function_is_an_error_not_a_guess() -> None:
    with pytest.raises(HarnessError, match="not emulated"):
        substitute("${{ join(github.x) }}", {})


def test_scratch_repo_is_a_committed_copy_with_params_override(tmp_path: Path) -> None:
    repo = scratch_repo(tmp_path / "repo", params={"data.rows": 3000})
    assert "rows: 3000" in (repo / "params.yaml").read_text()
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "rev-parse", "main") == git(repo, "rev-parse", "origin/main")
    assert (repo / ".venv" / "bin" / "python").exists()


def test_scratch_repo_never_writes_its_uv_stub_into_a_symlinked_shared_tools_dir(
    tmp_path: Path,
) -> None:
    """Worktrees symlink `.tools` to a shared one; the stub must not replace the real uv."""
    shared = tmp_path / "shared-tools"
    (shared / "bin").mkdir(parents=True)
    (shared / "bin" / "uv").write_text("the real uv\n")
    source = tmp_path / "worktree"
    source.mkdir()
    git(source, "init", "--quiet")
    (source / "params.yaml").write_text("data:\n  rows: 10\n")
    (source / ".tools").symlink_to(shared)

    repo = scratch_repo(tmp_path / "repo", source=source, origin=False, project=None)

    assert (shared / "bin" / "uv").read_text() == "the real uv\n"
    assert not (repo / ".tools").is_symlink()
    assert "uv stub" in (repo / ".tools" / "bin" / "uv").read_text()


IDENTITY_WORKFLOW = textwrap.dedent(
    """
    on: push
    permissions: {}
    jobs:
      j:
        runs-on: ubuntu-latest
        steps:
          - id: bare
            continue-on-error: true
            run: git commit --quiet --allow-empty -m "no identity configured"
          - id: configured
            run: |
              git config user.name "github-actions[bot]"
              git config user.email "41898282+github-actions[bot]@users.noreply.github.com"
              git commit --quiet --allow-empty -m "identity configured by the step"
    """
)


def test_steps_have_no_git_identity_unless_they_configure_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A GitHub-hosted runner has no git identity: a step that commits without configuring one
    fails there, so it fails here too, whatever this machine's ~/.gitconfig or env says."""
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Someone Here")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Someone Here")
    repo = scratch_repo(tmp_path / "repo", project=None)
    workflow = tmp_path / "identity.yml"
    workflow.write_text(IDENTITY_WORKFLOW)

    result = run_job(workflow, "j", repo, env=recorder_env(tmp_path / "log.jsonl"))

    assert result.step("bare").status == "failure"
    assert "Please tell me who you are" in result.step("bare").stderr
    assert result.step("configured").status == "success", result.explain()
    assert git(repo, "log", "-1", "--format=%an").strip() == "github-actions[bot]"
