"""serving/Dockerfile read as the image builds and runs it: its instructions, the command and
healthcheck it runs, the environment it sets and the extras it installs from uv.lock."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[2] / "serving" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines)
        if word and not word.startswith("#")
    ]


def exec_form(keyword: str) -> list[str]:
    """The argv of the last CMD or HEALTHCHECK (its `CMD [...]` part)."""
    arguments = [args for word, args in instructions() if word == keyword][-1]
    if keyword == "HEALTHCHECK":
        arguments = arguments[arguments.index("CMD ") + 4 :].strip()
    return list(json.loads(arguments))


def image_env() -> dict[str, str]:
    """The ENV of the final stage (the image that runs)."""
    steps = instructions()
    final = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    env: dict[str, str] = {}
    for word, arguments in steps[final:]:
        if word == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(arguments))
    return env


def uv_extras() -> list[str]:
    """The `uv sync` flags of the image's extras: the default of the build's UV_EXTRAS."""
    for word, arguments in instructions():
        name, _, default = arguments.partition("=")
        if word == "ARG" and name == "UV_EXTRAS":
            (value,) = shlex.split(default)  # the quoted default, then the words the shell sees
            return shlex.split(value)
    raise AssertionError(f"{DOCKERFILE.name} declares no ARG UV_EXTRAS")
