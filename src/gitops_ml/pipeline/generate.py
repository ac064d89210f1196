"""generate: the seeded demo data (gitops_ml.synthetic) as a file, for projects without their own.

A stage of its own with exactly the params it reads (`data.rows`, `data.seed`, `data.scenario`),
so DVC reruns it when one of them changes and never otherwise. `data.source` names its output by
default; a project with its own data points `data.source` elsewhere (`gitops-ml source --set`)
and this stage's output is then read by nothing.
"""

from __future__ import annotations

import argparse

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.config import DataParams, load_params
from gitops_ml.synthetic import generate_churn


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default=paths.PARAMS)
    parser.add_argument("--output", default=paths.SYNTHETIC_DATA, help="Parquet file to write")


def run(args: argparse.Namespace) -> int:
    params = DataParams.from_params(load_params(args.params))
    frame = generate_churn(params.rows, params.seed, params.scenario)
    gio.write_parquet(args.output, frame)
    print(
        f"generate: wrote {len(frame):,} rows (seed {params.seed}, scenario {params.scenario}) "
        f"to {args.output}",
        flush=True,
    )
    return 0
