"""The `examples` stage: the committed request examples, drawn from the data contract."""

from __future__ import annotations

import json
from pathlib import Path

from serving_support import fork_contract

from gitops_ml import cli, paths
from gitops_ml.contract import Contract
from gitops_ml.pipeline.examples import render, stale_examples
from gitops_ml.v2_request import INFER_FILE, PREDICT_FILE, example_payloads


def test_the_stage_writes_both_examples_one_record_or_tensor_per_line(
    contract: Contract, tmp_path: Path
) -> None:
    assert cli.main(["examples", "--contract", paths.CONTRACT, "--output", str(tmp_path)]) == 0

    predict = (tmp_path / PREDICT_FILE).read_text()
    infer = (tmp_path / INFER_FILE).read_text()
    assert len(predict.splitlines()) == 2 + 2  # the brackets and two records
    assert len(infer.splitlines()) == 2 + len(json.loads(infer)["inputs"])
    assert json.loads(predict) == example_payloads(contract)[PREDICT_FILE]
    assert stale_examples(contract, tmp_path) == []


def test_examples_of_another_contract_are_stale(contract: Contract, tmp_path: Path) -> None:
    fork = fork_contract()
    for name, payload in example_payloads(fork).items():
        (tmp_path / name).write_text(render(payload))

    assert stale_examples(fork, tmp_path) == []
    assert stale_examples(contract, tmp_path) == [PREDICT_FILE, INFER_FILE]
    assert stale_examples(fork, tmp_path / "absent") == [PREDICT_FILE, INFER_FILE]
