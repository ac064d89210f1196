"""Each path is written once in src/gitops_ml/paths.py; dvc.yaml must declare the same ones.

The one path that is not the template's is the data's: dvc.yaml names it by its params key
(`${data.source}`), so params.yaml says it once.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gitops_ml import paths
from gitops_ml.config import load_params

ROOT = Path(__file__).resolve().parents[1]
PATH_CONSTANTS = {
    value for name, value in vars(paths).items() if name.isupper() and isinstance(value, str)
}


def _declared(entries: list) -> list[str]:
    out = []
    for entry in entries or []:
        out.append(next(iter(entry)) if isinstance(entry, dict) else str(entry))
    return out


def test_every_data_output_and_dependency_of_dvc_yaml_is_a_paths_constant() -> None:
    dvc = yaml.safe_load((ROOT / paths.DVC_YAML).read_text())
    params = load_params(ROOT / paths.PARAMS)
    unknown = []
    for stage, spec in dvc["stages"].items():
        for kind in ("deps", "outs", "metrics", "plots"):
            for path in _declared(spec.get(kind)):
                if path.startswith(("src/", "serving/")) and path.endswith(".py"):
                    assert (ROOT / path).is_file(), f"{stage}: {path} does not exist"
                elif path == "${data.source}":  # the data file, wherever params.yaml says
                    assert isinstance(params["data"]["source"], str), "data.source is no path"
                elif path not in PATH_CONSTANTS:
                    unknown.append(f"{stage}.{kind}: {path}")
    assert not unknown, f"paths in dvc.yaml missing from gitops_ml.paths: {unknown}"


def test_the_model_artifact_path_is_the_onnx_path() -> None:
    dvc = yaml.safe_load((ROOT / paths.DVC_YAML).read_text())
    assert [a["path"] for a in dvc["artifacts"].values()] == [paths.MODEL_ONNX]
