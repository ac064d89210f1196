"""What several benchmarks share (importable by name: a benchmark's own folder is on sys.path)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def serving_bench() -> Any:
    """benchmarks/serving.py by path: its module name would shadow the `serving` package."""
    spec = importlib.util.spec_from_file_location("bench_serving", ROOT / "benchmarks/serving.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
