"""The inference image installs only the project's main dependencies (no `pipeline` extra):
serving must load a model and predict without importing any pipeline-only package."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import REPO_ROOT, ExportedModel

PIPELINE_ONLY = (
    "dvc",
    "pandera",
    "sklearn",
    "scipy",
    "skl2onnx",
    "onnx",
    "pyarrow",
    "joblib",
    "threadpoolctl",
)

SCRIPT = """
import importlib.abc, sys
blocked = set(sys.argv[1].split(","))

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"pipeline-only package imported by serving: {name}")
        return None

sys.meta_path.insert(0, Block())
from serving.app import create_app
from serving.model import load_model
model = load_model(sys.argv[2], sys.argv[3])
create_app(model)
import numpy as np
feeds = {}
for spec in model.specs:
    kind = np.str_ if spec.type == "category" else np.float32
    feeds[spec.name] = np.array([["" if kind is np.str_ else "nan"]], dtype=kind)
labels, probabilities = model.predict(feeds)
print(labels.shape, probabilities.shape)
"""


def test_pipeline_only_packages_are_an_optional_extra() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    for package in ("dvc", "pandera", "scikit-learn", "skl2onnx", "scipy"):
        assert package not in runtime
        assert any(dep.startswith(package) for dep in project["optional-dependencies"]["pipeline"])


def test_serving_loads_and_predicts_without_pipeline_packages(
    exported_model: ExportedModel,
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            ",".join(PIPELINE_ONLY),
            str(exported_model.onnx_path),
            str(Path(exported_model.contract_path)),
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "(1,) (1, 2)"
