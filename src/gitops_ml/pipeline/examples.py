"""examples: the request examples in serving/examples (what the README's curl commands send),
drawn from the data contract so they fit whatever columns the project has; a stage, so
`dvc status` says when they no longer fit the contract.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gitops_ml import paths
from gitops_ml.contract import Contract, load_contract
from gitops_ml.v2_request import example_payloads

EXAMPLES_DIR = Path(paths.EXAMPLE_PREDICT).parent


def render(payload: Any) -> str:
    """One record or one tensor per line: readable in the README and in a diff."""
    if isinstance(payload, list):
        return "[\n" + ",\n".join(f"  {json.dumps(item)}" for item in payload) + "\n]\n"
    head = json.dumps({k: v for k, v in payload.items() if k != "inputs"})[1:-1]
    tensors = ",\n".join(f"  {json.dumps(item)}" for item in payload["inputs"])
    return f'{{{head}, "inputs": [\n{tensors}\n]}}\n'


def stale_examples(contract: Contract, directory: Path = EXAMPLES_DIR) -> list[str]:
    """Names of the example files that differ from what the contract generates."""
    stale = []
    for name, payload in example_payloads(contract).items():
        path = directory / name
        if not path.exists() or path.read_text() != render(payload):
            stale.append(name)
    return stale


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--contract", default=paths.CONTRACT, help="default: %(default)s")
    parser.add_argument("--output", type=Path, default=EXAMPLES_DIR, help="directory to write")


def run(args: argparse.Namespace) -> int:
    contract = load_contract(args.contract)
    args.output.mkdir(parents=True, exist_ok=True)
    for name, payload in example_payloads(contract).items():
        (args.output / name).write_text(render(payload))
        print(f"examples: wrote {args.output / name}")
    return 0
