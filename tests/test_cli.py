"""`gitops-ml`: one command over every step; a user's mistake is one `error:` line and an exit
code, never a traceback."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from gitops_ml.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_names_a_module_with_configure_and_run(command: str) -> None:
    module = importlib.import_module(COMMANDS[command][0])
    assert callable(module.configure) and callable(module.run)


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command, (_, help_text) in COMMANDS.items():
        assert command in out and help_text[:40] in " ".join(out.split())


def test_a_user_error_is_one_error_line_with_its_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bundle", "--output", str(tmp_path), "--lock", "dvc.lock"]) == 2

    assert capsys.readouterr().err == "error: --lock only applies with --verify\n"


def test_a_malformed_argument_is_a_usage_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--change", "model.seed"])

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --change: 'model.seed': expected KEY=VALUE" in err
    assert "Traceback" not in err
