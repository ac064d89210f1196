"""Every `${{ }}` in every workflow names only the contexts GitHub offers where it stands.

GitHub evaluates an expression with the contexts its "Context availability" table lists for
that workflow key (docs.github.com › Actions › Contexts reference); `runner`, for example,
exists only once a job runs on a runner, so `${{ runner.temp }}` in a job-level `env:` makes
the whole file invalid and none of its jobs ever starts. zizmor and the JSON schema do not look
at this; actionlint does (ci.yml runs it), and this test keeps the rule in `make test`, where
actionlint cannot be installed. A key GitHub does not evaluate at all (`uses:`, `shell:`,
`permissions:` …) is reported too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from workflow_harness import expression_names

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))

# GitHub's table, key by key: the contexts and the special functions each one allows.
JOB = frozenset({"github", "inputs", "matrix", "needs", "strategy", "vars"})
STEP = JOB | {"env", "job", "runner", "secrets", "steps"}
STATUS = frozenset({"always", "cancelled", "failure", "success"})
NONE: frozenset[str] = frozenset()
AVAILABILITY: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "run-name": (frozenset({"github", "inputs", "vars"}), NONE),
    "concurrency": (frozenset({"github", "inputs", "vars"}), NONE),
    "env": (frozenset({"github", "inputs", "secrets", "vars"}), NONE),
    "on.workflow_call.inputs.<inputs_id>.default": (frozenset({"github", "inputs", "vars"}), NONE),
    "on.workflow_call.outputs.<output_id>.value": (
        frozenset({"github", "inputs", "jobs", "vars"}),
        NONE,
    ),
    "jobs.<job_id>.concurrency": (JOB, NONE),
    "jobs.<job_id>.container": (JOB, NONE),
    "jobs.<job_id>.container.image": (JOB, NONE),
    "jobs.<job_id>.container.credentials": (JOB | {"env", "secrets"}, NONE),
    "jobs.<job_id>.container.env.<env_id>": (STEP - {"steps"}, NONE),
    "jobs.<job_id>.continue-on-error": (JOB, NONE),
    "jobs.<job_id>.defaults.run": (JOB | {"env"}, NONE),
    "jobs.<job_id>.env": (JOB | {"secrets"}, NONE),
    "jobs.<job_id>.environment": (JOB, NONE),
    "jobs.<job_id>.environment.url": (STEP - {"secrets"}, NONE),
    "jobs.<job_id>.if": (frozenset({"github", "inputs", "needs", "vars"}), STATUS),
    "jobs.<job_id>.name": (JOB, NONE),
    "jobs.<job_id>.outputs.<output_id>": (STEP, NONE),
    "jobs.<job_id>.runs-on": (JOB, NONE),
    "jobs.<job_id>.secrets.<secrets_id>": (JOB | {"secrets"}, NONE),
    "jobs.<job_id>.services": (JOB, NONE),
    "jobs.<job_id>.services.<service_id>.credentials": (JOB | {"env", "secrets"}, NONE),
    "jobs.<job_id>.services.<service_id>.env.<env_id>": (STEP - {"steps"}, NONE),
    "jobs.<job_id>.steps.continue-on-error": (STEP, frozenset({"hashfiles"})),
    "jobs.<job_id>.steps.env": (STEP, frozenset({"hashfiles"})),
    "jobs.<job_id>.steps.if": (STEP - {"secrets"}, STATUS | {"hashfiles"}),
    "jobs.<job_id>.steps.name": (STEP, frozenset({"hashfiles"})),
    "jobs.<job_id>.steps.run": (STEP, frozenset({"hashfiles"})),
    "jobs.<job_id>.steps.timeout-minutes": (STEP, frozenset({"hashfiles"})),
    "jobs.<job_id>.steps.with": (STEP, frozenset({"hashfiles"})),
    "jobs.<job_id>.steps.working-directory": (STEP, frozenset({"hashfiles"})),
    "jobs.<job_id>.strategy": (frozenset({"github", "inputs", "needs", "vars"}), NONE),
    "jobs.<job_id>.timeout-minutes": (JOB, NONE),
    "jobs.<job_id>.with.<with_id>": (JOB, NONE),
}
SPECIAL = STATUS | {"hashfiles"}  # every other function (contains, format, …) works anywhere
STEP_KEYS = ["continue-on-error", "env", "if", "name", "run", "timeout-minutes", "with"]
STEP_KEYS += ["working-directory"]
JOB_KEYS = ["concurrency", "continue-on-error", "environment", "if", "name", "runs-on"]
JOB_KEYS += ["services", "strategy", "timeout-minutes"]
# Where in a workflow each key of the table lies, most specific first ("*" = any id or index).
PLACES: list[tuple[tuple[str, ...], str]] = [
    (("run-name",), "run-name"),
    (("concurrency",), "concurrency"),
    (("env", "*"), "env"),
    (
        ("on", "workflow_call", "inputs", "*", "default"),
        "on.workflow_call.inputs.<inputs_id>.default",
    ),
    (
        ("on", "workflow_call", "outputs", "*", "value"),
        "on.workflow_call.outputs.<output_id>.value",
    ),
    (("jobs", "*", "container", "credentials"), "jobs.<job_id>.container.credentials"),
    (("jobs", "*", "container", "env", "*"), "jobs.<job_id>.container.env.<env_id>"),
    (("jobs", "*", "container", "image"), "jobs.<job_id>.container.image"),
    (("jobs", "*", "container"), "jobs.<job_id>.container"),
    (("jobs", "*", "defaults", "run"), "jobs.<job_id>.defaults.run"),
    (("jobs", "*", "env", "*"), "jobs.<job_id>.env"),
    (("jobs", "*", "environment", "url"), "jobs.<job_id>.environment.url"),
    (("jobs", "*", "outputs", "*"), "jobs.<job_id>.outputs.<output_id>"),
    (("jobs", "*", "secrets", "*"), "jobs.<job_id>.secrets.<secrets_id>"),
    (
        ("jobs", "*", "services", "*", "credentials"),
        "jobs.<job_id>.services.<service_id>.credentials",
    ),
    (
        ("jobs", "*", "services", "*", "env", "*"),
        "jobs.<job_id>.services.<service_id>.env.<env_id>",
    ),
    (("jobs", "*", "with", "*"), "jobs.<job_id>.with.<with_id>"),
    *((("jobs", "*", "steps", "*", key), f"jobs.<job_id>.steps.{key}") for key in STEP_KEYS),
    *((("jobs", "*", key), f"jobs.<job_id>.{key}") for key in JOB_KEYS),
]
CONDITIONS = {"jobs.<job_id>.if", "jobs.<job_id>.steps.if"}  # an expression with or without ${{ }}


def table_key(path: tuple[str, ...]) -> str | None:
    """The key of GitHub's table that governs the value at `path`, or None (not evaluated)."""
    for pattern, key in PLACES:
        if len(path) >= len(pattern) and all(
            p in ("*", part) for p, part in zip(pattern, path, strict=False)
        ):
            return key
    return None


def _values(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _values(value, (*path, "on" if key is True else str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _values(value, (*path, str(index)))
    elif node is not None:
        yield path, str(node).lower() if isinstance(node, bool) else str(node)


def expressions(doc: dict[Any, Any]) -> Iterator[tuple[str, str | None, str]]:
    """(where, table key, expression) for every expression GitHub would evaluate in `doc`."""
    for path, text in _values(doc):
        key = table_key(path)
        found = [m.split("}}", 1)[0] for m in text.split("${{")[1:]]
        if key in CONDITIONS and not found:
            found = [text]
        for expr in found:
            yield ".".join(path), key, expr.strip()


def violations(doc: dict[Any, Any]) -> list[str]:
    """Every use of a context or special function where GitHub's table does not offer it."""
    problems = []
    for where, key, expr in expressions(doc):
        if key is None:
            problems.append(f"{where}: ${{{{ {expr} }}}}: GitHub evaluates no expression here")
            continue
        contexts, functions = expression_names(expr)
        allowed, special = AVAILABILITY[key]
        for name in sorted(contexts - allowed):
            problems.append(
                f"{where}: ${{{{ {expr} }}}}: context {name!r} is not available in {key} "
                f"(available: {', '.join(sorted(allowed))})"
            )
        for name in sorted((functions & SPECIAL) - special):
            problems.append(f"{where}: ${{{{ {expr} }}}}: {name}() is not available in {key}")
    return problems


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_every_expression_uses_only_contexts_github_offers_where_it_stands(path: Path) -> None:
    doc = yaml.safe_load(path.read_text())
    assert list(expressions(doc)), f"{path.name}: no expression found: the walk is broken"
    problems = violations(doc)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_the_rules_reject_what_github_refuses_to_load() -> None:
    """A runner path in a job's env (drift.yml before its fix), a step's output in a job `if:`,
    a secret in a step `if:`, hashFiles() in a job env and an expression in `uses:`."""
    bad = yaml.safe_load(
        """
on: push
env:
  TOP: ${{ env.OTHER }}
jobs:
  j:
    if: steps.s.outputs.x == 'y' && always()
    runs-on: ubuntu-24.04
    env:
      WINDOW_DIR: ${{ runner.temp }}/window
      KEY: ${{ hashFiles('uv.lock') }}
    steps:
      - if: secrets.TOKEN != ''
        uses: actions/checkout@${{ github.sha }}
      - run: echo "${{ runner.temp }} ${{ hashFiles('x') }} ${{ steps.a.outputs.b }}"
"""
    )
    problems = violations(bad)
    assert problems == [
        "env.TOP: ${{ env.OTHER }}: context 'env' is not available in env "
        "(available: github, inputs, secrets, vars)",
        "jobs.j.if: ${{ steps.s.outputs.x == 'y' && always() }}: context 'steps' is not "
        "available in jobs.<job_id>.if (available: github, inputs, needs, vars)",
        "jobs.j.env.WINDOW_DIR: ${{ runner.temp }}: context 'runner' is not available in "
        "jobs.<job_id>.env (available: github, inputs, matrix, needs, secrets, strategy, vars)",
        "jobs.j.env.KEY: ${{ hashFiles('uv.lock') }}: hashfiles() is not available in "
        "jobs.<job_id>.env",
        "jobs.j.steps.0.if: ${{ secrets.TOKEN != '' }}: context 'secrets' is not available in "
        "jobs.<job_id>.steps.if (available: env, github, inputs, job, matrix, needs, runner, "
        "steps, strategy, vars)",
        "jobs.j.steps.0.uses: ${{ github.sha }}: GitHub evaluates no expression here",
    ]
