"""params.yaml edited in place, the way `dvc exp run --set-param KEY=VALUE` edits it.

A dotted key names a value that params.yaml already holds (`model.hyperparams.max_iter`); the
new value replaces it and everything else stays as written: comments, order, layout, the
spelling of other values. As in DVC, a key that params.yaml does not hold is an error, and so
is a key that names a section rather than a value: the file's shape is the one `gitops_ml.config`
validates, and an edit never adds to it. The YAML is ruamel.yaml's round trip (what DVC itself
uses to edit params files). One editor for every caller: `gitops-ml source`, the demo and the
tests' scratch clones.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.errors import UserError


class ParamsEditError(UserError):
    """A key cannot be set: params.yaml does not hold it, or it names a section."""


def set_params(text: str, changes: Mapping[str, Any], source: str = paths.PARAMS) -> str:
    """`text` (the content of `source`) with each dotted key set to its new value."""
    yaml = YAML()
    yaml.width = 2**16  # never fold a long value (a path) onto a second line
    try:
        document = yaml.load(text)
    except YAMLError as exc:
        raise ParamsEditError(f"{source}: not valid YAML: {exc}") from None
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = document
        for key in parents:
            node = node.get(key) if isinstance(node, Mapping) else None
        if not isinstance(node, MutableMapping) or leaf not in node:
            raise ParamsEditError(f"{source}: has no {dotted}")
        if isinstance(node[leaf], Mapping):
            raise ParamsEditError(f"{source}: {dotted} is a section, not a value")
        node[leaf] = value
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def set_params_file(path: str | Path, changes: Mapping[str, Any]) -> None:
    """Set each dotted key of the params file at `path` (written atomically)."""
    path = Path(path)
    gio.write_text(path, set_params(path.read_text(), changes, str(path)))
