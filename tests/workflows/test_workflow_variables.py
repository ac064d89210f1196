"""The docs name exactly the repository variables and secrets the workflows read.

A page that names a variable no workflow reads sends a user to configure something that is
silently ignored (the docs once said `AWS_ROLE_ARN` where the workflows read three role
variables, so following them skipped OIDC). docs/security.md holds the one inventory; every
other page may name them in passing, and each name it gives must be real.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
INVENTORY = ROOT / "docs" / "security.md"
INVENTORY_HEADING = "## Repository variables and secrets"
SETTING = re.compile(r"\b(vars|secrets)\.([A-Za-z_][A-Za-z0-9_]*)")
QUOTED_NAME = re.compile(r"`(?:(?:vars|secrets)\.)?([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)`")
SERVING_PREFIX = "SERVING_"  # the server reads its settings by this prefix (docs/serving.md)


def read_by_workflows() -> set[str]:
    """`vars.NAME` / `secrets.NAME` for every one any workflow reads."""
    return {f"{kind}.{name}" for p in WORKFLOWS for kind, name in SETTING.findall(p.read_text())}


def inventory(text: str) -> set[str]:
    """The first column of the table under INVENTORY_HEADING."""
    section = text.split(INVENTORY_HEADING, 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `((?:vars|secrets)\.\w+)` \|", section, re.M))


def named_in_passing(pages: list[Path]) -> dict[str, set[str]]:
    """Every `vars.X`/`secrets.X` a page writes, by page."""
    return {
        p.name: {f"{kind}.{name}" for kind, name in SETTING.findall(p.read_text())} for p in pages
    }


def names_nothing_reads(pages: list[Path], read: set[str]) -> dict[str, set[str]]:
    """Upper-case names a page quotes that no workflow reads and no file outside the docs
    mentions (code, Makefile, Dockerfile, manifests, test support): a setting that does not
    exist."""
    elsewhere = _text_outside_docs()
    bare = {r.split(".", 1)[1] for r in read}
    found: dict[str, set[str]] = {}
    for page in pages:
        for name in set(QUOTED_NAME.findall(page.read_text())):
            if name in bare or name.startswith(SERVING_PREFIX):
                continue
            if not re.search(rf"\b{name}\b", elsewhere):
                found.setdefault(page.name, set()).add(name)
    return found


def _text_outside_docs() -> str:
    roots = [".github", "src", "serving", "deploy", "scripts", "tests/support", "Makefile"]
    texts = []
    for root in roots:
        path = ROOT / root
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        texts += [f.read_text(errors="replace") for f in files if "__pycache__" not in f.parts]
    return "\n".join(texts)


def test_the_inventory_lists_exactly_what_the_workflows_read() -> None:
    read = read_by_workflows()
    listed = inventory(INVENTORY.read_text())
    assert read - listed == set(), f"read by a workflow, missing from {INVENTORY.name}"
    assert listed - read == set(), f"in {INVENTORY.name} but read by no workflow"


def test_every_page_names_only_variables_and_secrets_a_workflow_reads() -> None:
    read = read_by_workflows()
    unknown = {page: names - read for page, names in named_in_passing(PAGES).items()}
    assert {page: names for page, names in unknown.items() if names} == {}
    assert names_nothing_reads(PAGES, read) == {}


def test_a_page_naming_a_variable_nothing_reads_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "shipping.md"
    page.write_text(
        "OIDC: variables `AWS_ROLE_ARN`, `EKS_CLUSTER`; S3 through `vars.AWS_ROLE_ARN`.\n"
    )
    read = read_by_workflows()
    assert named_in_passing([page]) == {"shipping.md": {"vars.AWS_ROLE_ARN"}}
    assert "vars.AWS_ROLE_ARN" not in read
    assert names_nothing_reads([page], read) == {"shipping.md": {"AWS_ROLE_ARN"}}
