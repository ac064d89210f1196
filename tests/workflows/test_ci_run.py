"""`.ci/run` runs `make test` as a GitHub-hosted runner would: no git identity anywhere.

The machines we test on have `user.name`/`user.email` in `~/.gitconfig`; GitHub's runners do
not, so a test that commits without setting its own identity passes here and fails there
(deploy.yml's verify and ci.yml run `make test`). The caches keep their real places.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """test:
\t@echo "HOME=$$HOME"
\t@echo "GIT_CONFIG_GLOBAL=$$GIT_CONFIG_GLOBAL"
\t@echo "UV_CACHE_DIR=$$UV_CACHE_DIR"
\t@echo "PIP_CACHE_DIR=$$PIP_CACHE_DIR"
\t@test ! -e "$$HOME/.gitconfig" && echo "no ~/.gitconfig"
\t@git config --get user.name || echo "no user.name"
"""


def test_ci_runs_make_test_with_no_git_identity_and_the_real_caches(tmp_path: Path) -> None:
    (tmp_path / ".ci").mkdir()
    shutil.copy2(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    (tmp_path / "Makefile").write_text(PROBE)  # `make test` reports what the suite would see
    home = tmp_path / "developer"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = A Developer\n\temail = dev@example.com\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "XDG_", "UV_"))}
    env.pop("PIP_CACHE_DIR", None)
    env["HOME"] = str(home)

    done = subprocess.run(
        ["bash", str(tmp_path / ".ci" / "run")], env=env, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    seen = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    assert seen["HOME"] != str(home)
    assert Path(seen["GIT_CONFIG_GLOBAL"]).parent == Path(seen["HOME"])  # an empty file there
    assert "no ~/.gitconfig" in done.stdout and "no user.name" in done.stdout
    assert seen["UV_CACHE_DIR"] == str(home / ".cache" / "uv")
    assert seen["PIP_CACHE_DIR"] == str(home / ".cache" / "pip")
    assert not Path(seen["HOME"]).exists(), "the runner HOME is removed afterwards"
