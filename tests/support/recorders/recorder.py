#!/usr/bin/env python3
"""RECORDER standing in for `cml`, `gh`, `docker`, `kubectl` and `npm` in workflow tests.

Not the real tools: the sandbox has no GitHub, Docker engine, cluster or CML. Each call appends
one JSON line to $RECORDER_LOG (argv, cwd, the harness step, and for comments/issues/PRs the
markdown or body text) and answers the way the real tool plausibly would, so the workflow's
shell logic runs for real. Settings (all optional):
  RECORDER_LOG        where to append the JSON lines (default: ./recorder.jsonl)
  RECORDER_GH_ISSUES  JSON file answering `gh issue list/view --json` (default: [])
  RECORDER_GH_PRS     JSON file answering `gh pr list/view --json` (default: [])
  RECORDER_FAIL       `;`-separated argv prefixes that exit 1 after recording,
                      e.g. "kubectl rollout status;docker push"
State kept beside the log (`<log>.state/`), so a second workflow run sees what the first one
published: images pushed to the registry (`docker push` → `docker buildx imagetools inspect`),
Releases and their assets (`gh release create` → `gh release view|download`). Every
`docker build` gives a new digest, as real non-reproducible builds do.
Standard library only; invoked through the small wrappers beside this file.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = os.environ.get("GITHUB_REPOSITORY", "example/gitops-ml")
TOKEN_VARS = ("REPO_TOKEN", "GH_TOKEN", "GITHUB_TOKEN", "DRIFT_PR_TOKEN")


def _value(argv: list[str], *names: str) -> str | None:
    """The value of an option given as `--name value` or `--name=value` (last one wins)."""
    found = None
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                found = argv[i + 1]
            elif arg.startswith(name + "=") and name.startswith("--"):
                found = arg.split("=", 1)[1]
    return found


def _read(path: str) -> str:
    return sys.stdin.read() if path == "-" else Path(path).read_text()


def _fixture(var: str) -> list[dict]:
    path = os.environ.get(var)
    return json.loads(Path(path).read_text()) if path else []


def _print_json(payload: object, argv: list[str]) -> None:
    """Print JSON, through `jq -r` when the call used `--jq` (as gh does)."""
    text = json.dumps(payload)
    expr = _value(argv, "--jq", "-q")
    if expr:
        text = subprocess.run(
            ["jq", "-r", expr], input=text, capture_output=True, text=True, check=True
        ).stdout.rstrip("\n")
    print(text)


def _count(log: Path, tool: str) -> int:
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text().splitlines() if f'"tool": "{tool}"' in line)


def cml(argv: list[str], entry: dict) -> int:
    if argv[:1] == ["--version"]:
        print("0.20.6 (recorder)")
        return 0
    if argv[:1] == ["comment"] and argv[1:2] in (["create"], ["update"]):
        files = [a for a in argv[2:] if not a.startswith("-") and Path(a).is_file()]
        if not files:
            entry["markdown"] = None
            print("cml recorder: no markdown file given", file=sys.stderr)
            return 1
        entry["markdown_file"] = files[-1]
        entry["markdown"] = Path(files[-1]).read_text()
        print(f"https://github.com/{REPO}/pull/1#issuecomment-1000")
    elif argv[:2] == ["pr", "create"]:
        entry["files"] = [a for a in argv[2:] if not a.startswith("-") and Path(a).exists()]
        print(f"https://github.com/{REPO}/pull/42")
    return 0


def gh(argv: list[str], entry: dict) -> int:
    group, verb = [*argv, "", ""][:2]
    if group in ("issue", "pr"):
        body = _value(argv, "--body", "-b")
        body_file = _value(argv, "--body-file", "-F")
        if body_file is not None:
            entry["body_file"] = body_file
            body = _read(body_file)
        if body is not None:
            entry["body"] = body
        title = _value(argv, "--title", "-t")
        if title is not None:
            entry["title"] = title
        kind = "issues" if group == "issue" else "pull"
        fixture = _fixture("RECORDER_GH_ISSUES" if group == "issue" else "RECORDER_GH_PRS")
        if verb == "list":
            _print_json(fixture, argv)
        elif verb == "view":
            number = next((a for a in argv[2:] if a.isdigit()), None)
            match = next((i for i in fixture if str(i.get("number")) == number), {})
            _print_json(match, argv)
        elif verb == "create":
            print(f"https://github.com/{REPO}/{kind}/{100 + _count(LOG, 'gh')}")
        elif len(argv) > 2 and argv[2].isdigit():
            print(f"https://github.com/{REPO}/{kind}/{argv[2]}")
    elif group == "api":
        print("{}")
    elif group == "release":
        return _gh_release(verb, argv[2:], entry)
    elif group == "attestation" and verb == "verify":
        entry["subject"] = argv[2] if len(argv) > 2 else None
        print("Loaded 1 attestation from GitHub API (recorder)\n✓ Verification succeeded!")
    return 0


def _state() -> Path:
    state = LOG.parent / f"{LOG.name}.state"
    state.mkdir(parents=True, exist_ok=True)
    return state


def _gh_release(verb: str, args: list[str], entry: dict) -> int:
    """Releases persist in the state dir: create stores the assets, view/download read them."""
    tag = next((a for a in args if not a.startswith("-")), "")
    release = _state() / "releases" / tag.replace("/", "%2F")
    if verb == "create":
        if release.exists():
            print(f"a release with tag {tag} already exists", file=sys.stderr)
            return 1
        release.mkdir(parents=True)
        skip = {"--title", "-t", "--notes-file", "-F", "--notes", "-n", "--target"}
        assets = [
            a
            for i, a in enumerate(args[1:], 1)
            if not a.startswith("-") and args[i - 1] not in skip and Path(a).is_file()
        ]
        for asset in assets:
            (release / Path(asset).name).write_bytes(Path(asset).read_bytes())
        entry["assets"] = [Path(a).name for a in assets]
        print(f"https://github.com/{REPO}/releases/tag/{tag}")
        return 0
    if not release.exists():
        print("release not found", file=sys.stderr)
        return 1
    names = sorted(p.name for p in release.iterdir())
    if verb == "view":
        _print_json({"tagName": tag, "assets": [{"name": n} for n in names]}, args)
    elif verb == "download":
        pattern, target = (
            _value(args, "--pattern", "-p") or "*",
            Path(_value(args, "--dir", "-D") or "."),
        )
        target.mkdir(parents=True, exist_ok=True)
        for name in names:
            if fnmatch.fnmatch(name, pattern):
                (target / name).write_bytes((release / name).read_bytes())
    return 0


def _registry() -> dict:
    path = _state() / "docker.json"
    return (
        json.loads(path.read_text()) if path.exists() else {"local": {}, "remote": {}, "builds": 0}
    )


def _save_registry(registry: dict) -> None:
    (_state() / "docker.json").write_text(json.dumps(registry, indent=2, sort_keys=True))


def docker(argv: list[str], entry: dict) -> int:
    registry = _registry()
    if argv[:1] == ["build"]:
        registry["builds"] += 1
        seed = f"{registry['builds']} {' '.join(argv)}"
        digest = "sha256:" + hashlib.sha256(seed.encode()).hexdigest()
        for i, arg in enumerate(argv[:-1]):
            if arg in ("--tag", "-t"):
                registry["local"][argv[i + 1]] = digest
    elif argv[:1] == ["push"] and len(argv) > 1:
        ref = argv[-1]
        if ref not in registry["local"]:
            print(f"An image does not exist locally with the tag: {ref}", file=sys.stderr)
            return 1
        registry["remote"][ref] = registry["local"][ref]
        print(f"{ref}: digest: {registry['remote'][ref]} size: 1570")
    elif argv[:1] == ["inspect"]:
        ref = argv[-1]
        if ref not in registry["remote"]:
            print(f"Error: No such object: {ref} (or never pushed)", file=sys.stderr)
            return 1
        print(f"{ref.rsplit(':', 1)[0]}@{registry['remote'][ref]}")
    elif argv[:3] == ["buildx", "imagetools", "inspect"]:
        ref = next(a for a in reversed(argv[3:]) if not a.startswith("-") and "{{" not in a)
        if ref not in registry["remote"]:
            print(f"ERROR: {ref}: not found", file=sys.stderr)
            return 1
        manifest = {"mediaType": "application/vnd.oci.image.index.v1+json", "size": 1570}
        print(json.dumps({**manifest, "digest": registry["remote"][ref]}))
    elif argv[:3] == ["buildx", "imagetools", "create"]:
        source = argv[-1].split("@", 1)[1]
        for i, arg in enumerate(argv[:-1]):
            if arg in ("--tag", "-t"):
                registry["remote"][argv[i + 1]] = source
    elif argv[:1] == ["version"]:
        print("Docker version 27.0.0-recorder")
    _save_registry(registry)
    return 0


def kubectl(argv: list[str], entry: dict) -> int:
    target = next((a for a in argv[2:] if "/" in a), "deployment/churn-model")
    if argv[:2] == ["rollout", "status"]:
        print(f'deployment "{target.split("/")[-1]}" successfully rolled out')
    elif argv[:2] == ["rollout", "undo"]:
        print(f"{target} rolled back")
    elif argv[:1] == ["apply"]:
        print("deployment.apps/churn-model configured")
    elif argv[:2] == ["set", "image"]:
        print(f"{target} image updated")
    elif argv[:1] == ["version"]:
        print("Client Version: v1.31.0-recorder")
    elif argv[:1] == ["get"] and "json" in " ".join(argv):
        print('{"items": []}')
    return 0


def npm(argv: list[str], entry: dict) -> int:
    if argv[:1] in (["install"], ["i"], ["ci"]):
        packages = [a for a in argv[1:] if not a.startswith("-")]
        entry["packages"] = packages
        print(f"added {len(packages)} packages (recorder: nothing installed)")
    elif argv[:1] == ["--version"]:
        print("10.8.2")
    return 0


TOOLS = {"cml": cml, "gh": gh, "docker": docker, "kubectl": kubectl, "npm": npm}
LOG = Path(os.environ.get("RECORDER_LOG", "recorder.jsonl"))


def main(tool: str, argv: list[str]) -> int:
    entry: dict = {
        "tool": tool,
        "argv": argv,
        "cwd": os.getcwd(),
        "step": os.environ.get("HARNESS_STEP"),
        # whether the calling step could read a GitHub token (installs must not)
        "token_in_env": any(os.environ.get(k) for k in TOKEN_VARS),
    }
    code = TOOLS[tool](argv, entry)
    call = " ".join([tool, *argv])
    prefixes = [p.strip() for p in os.environ.get("RECORDER_FAIL", "").split(";") if p.strip()]
    if code == 0 and any(call.startswith(p) for p in prefixes):
        print(f"{tool} recorder: failing as told by RECORDER_FAIL", file=sys.stderr)
        code = 1
    entry["exit_code"] = code
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("a") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
