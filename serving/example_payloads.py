"""Example requests generated from the data contract: `serving/examples/*.json` (what the README's
curl commands send) and the examples in the OpenAPI document.

`python -m serving.example_payloads [--contract PATH] [--output DIR]` writes them: the
pipeline's `examples` stage, so `dvc status` says when they no longer fit the contract.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gitops_ml import paths
from gitops_ml.contract import Contract, load_contract
from gitops_ml.v2_request import example_rows, records, v2_request

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
PREDICT_FILE = Path(paths.EXAMPLE_PREDICT).name
INFER_FILE = Path(paths.EXAMPLE_INFER).name


def example_payloads(contract: Contract) -> dict[str, Any]:
    """File name → request body: the same two example rows as records and as V2 tensors."""
    rows = example_rows(contract, rows=2)
    return {
        PREDICT_FILE: records(rows, contract),
        INFER_FILE: v2_request(rows, contract, request_id="example"),
    }


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.example_payloads")
    parser.add_argument("--contract", default=paths.CONTRACT, help="default: %(default)s")
    parser.add_argument("--output", type=Path, default=EXAMPLES_DIR, help="directory to write")
    args = parser.parse_args(argv)
    contract = load_contract(args.contract)
    args.output.mkdir(parents=True, exist_ok=True)
    for name, payload in example_payloads(contract).items():
        (args.output / name).write_text(render(payload))
        print(f"wrote {args.output / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
