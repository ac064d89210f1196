"""serving/Dockerfile read as the image builds and runs it (with dockerfile-parse): its
instructions, the command and healthcheck it runs, the environment it sets and the extras it
installs from uv.lock."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from dockerfile_parse import DockerfileParser

DOCKERFILE = Path(__file__).resolve().parents[2] / "serving" / "Dockerfile"


def _parsed() -> DockerfileParser:
    return DockerfileParser(str(DOCKERFILE), cache_content=True)


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments left out."""
    return [
        (step["instruction"], step["value"])
        for step in _parsed().structure
        if step["instruction"] != "COMMENT"
    ]


def exec_form(keyword: str) -> list[str]:
    """The argv of the last CMD or HEALTHCHECK (its `CMD [...]` part)."""
    arguments = [args for word, args in instructions() if word == keyword][-1]
    if keyword == "HEALTHCHECK":
        arguments = arguments[arguments.index("CMD ") + 4 :].strip()
    return list(json.loads(arguments))


def image_env() -> dict[str, str]:
    """The ENV of the final stage (the image that runs); a reference to a variable the base
    image sets (`$PATH`) reads as empty."""
    return dict(_parsed().envs)


def uv_extras() -> list[str]:
    """The `uv sync` flags of the image's extras: the default of the build's UV_EXTRAS."""
    for word, arguments in instructions():
        name, _, default = arguments.partition("=")
        if word == "ARG" and name == "UV_EXTRAS":
            (value,) = shlex.split(default)  # the quoted default, then the words the shell sees
            return shlex.split(value)
    raise AssertionError(f"{DOCKERFILE.name} declares no ARG UV_EXTRAS")
