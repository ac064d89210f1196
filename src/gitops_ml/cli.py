"""`gitops-ml`: one command over every stage, review, release and monitoring step.

Each subcommand lives in its own module exposing `configure(parser)` and `run(args) -> int`;
modules are imported only when their command runs, so `gitops-ml --help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gitops_ml.errors import UserError

COMMANDS: dict[str, tuple[str, str]] = {
    "source": ("gitops_ml.pipeline.source", "point data.source at a file or URL, tracked by DVC"),
    "generate": ("gitops_ml.pipeline.generate", "write the demo data (data.rows, seed, scenario)"),
    "ingest": ("gitops_ml.pipeline.ingest", "copy the data file data.source names into data/raw"),
    "validate": ("gitops_ml.pipeline.validate", "check raw data against the data contract"),
    "split": ("gitops_ml.pipeline.split", "split validated data into train and test"),
    "train": ("gitops_ml.pipeline.train", "fit the configured model"),
    "evaluate": ("gitops_ml.pipeline.evaluate", "metrics with confidence intervals and plots"),
    "export": ("gitops_ml.pipeline.export", "export to ONNX and check parity"),
    "examples": ("gitops_ml.pipeline.examples", "request examples for the served model"),
    "summary": ("gitops_ml.summary", "print the key metrics of the last pipeline run"),
    "schema": ("gitops_ml.schema_infer", "draft a data contract from a CSV/Parquet file"),
    "report": ("gitops_ml.review.report", "markdown report of this change against a base rev"),
    "profile": ("gitops_ml.monitor.profile", "reference profile for drift monitoring"),
    "drift": ("gitops_ml.monitor.drift", "check current data for drift against the profile"),
    "simulate": ("gitops_ml.monitor.simulate", "synthetic production traffic for a scenario"),
    "retrain": ("gitops_ml.monitor.retrain", "append a labelled window to the training data"),
    "bundle": ("gitops_ml.release.bundle", "pack a deployable, verifiable model bundle"),
    "version": ("gitops_ml.release.versions", "next model version and its Git tag"),
    "deploy-local": ("gitops_ml.release.deploy", "deploy a bundle locally with smoke test"),
    "env": ("gitops_ml.release.environments", "show, pin or promote an environment's image"),
    "status": ("gitops_ml.release.status", "what each environment runs, according to Git"),
    "demo": ("gitops_ml.demo", "play the whole loop locally in a scratch directory"),
    "check-committed": (
        "gitops_ml.repo_state",
        "fail (exit 1) when reproducing changed committed files, naming them",
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gitops-ml", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module_name).configure(sub_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
