"""The model card (`reports/model_card.md`): what the model is, how well it does, and its limits.

Rendered by the export stage from files the pipeline already wrote (params, the data contract,
metrics/*.json), so it is reviewed in the pull request next to the numbers it quotes and ships
inside the bundle. It says only what happened: the split kind recorded in metrics/data.json, the
target and its positive label and the column descriptions from the contract — the domain lives
in the contract, never in this module. The model's name and version head the card when a release
bundles it (`release_model_card`, from dvc.yaml's `artifacts:`): DVC cannot make dvc.yaml a
dependency of this stage, so the stage never reads it. Deterministic: no dates
or paths from the machine, so reruns are byte-identical and a diff of the card is a diff of the
model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.contract import Column, Contract
from gitops_ml.markdown import MISSING, cell, code, escape, num, table
from gitops_ml.metric_registry import CV_METRICS, SLICE_METRICS, TEST_METRICS, label, metric

METRICS_FILES: dict[str, str] = {
    "data": Path(paths.DATA_METRICS).name,
    "validation": Path(paths.VALIDATION_METRICS).name,
    "evaluation": Path(paths.EVALUATE_METRICS).name,
}


def _dig(mapping: Mapping[str, Any] | None, *keys: str) -> Any:
    """mapping[k1][k2]…, or None when any level is missing (older or partial metrics files)."""
    value: Any = mapping
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _lines(header: list[str], rows: list[list[Any]]) -> list[str]:
    return [table(header, rows), ""]


def _positive(contract: Contract) -> str:
    """How the card names the positive class: `target` = label."""
    return f"{code(contract.target)} = {escape(contract.positive_label)}"


def _checks_text(column: Column) -> str:
    checks = column.checks
    if checks.allowed:
        return "one of " + ", ".join(code(v) for v in checks.allowed)
    if checks.min is not None or checks.max is not None:
        return f"{num(checks.min, 'g')} … {num(checks.max, 'g')}"
    return ""


def _model_section(params: Mapping[str, Any], contract: Contract) -> list[str]:
    model = _dig(params, "model") or {}
    hyper = model.get("hyperparams") or {}
    lines = [
        "## Model",
        "",
        *_lines(
            ["", ""],
            [
                [
                    "artifact",
                    f"`{paths.MODEL_ONNX}`, the model artifact of `{paths.DVC_YAML}` (a release "
                    "heads this card with its name and version)",
                ],
                ["estimator", f"{code(model.get('type', MISSING))} (scikit-learn Pipeline)"],
                ["seed", model.get("seed", MISSING)],
                ["decision threshold", _dig(params, "evaluate", "threshold") or MISSING],
                [
                    "outputs",
                    f"`probabilities[:, 1]` = probability that {_positive(contract)} (compare "
                    "it with the decision threshold); `label` = the estimator's own 0.5 cut",
                ],
            ],
        ),
    ]
    if hyper:
        lines += [
            "Hyperparameters (`model.hyperparams` in `params.yaml`):",
            "",
            *_lines(["name", "value"], [[escape(k), cell(hyper[k])] for k in sorted(hyper)]),
        ]
    return lines


def _intended_use_section(contract: Contract, costed: bool) -> list[str]:
    use = (
        [
            "  as a triage aid with the decision threshold below; the business view shows the",
            "  expected cost of that choice under the costs in `evaluate.costs`.",
        ]
        if costed
        else ["  as a triage aid with the decision threshold below."]
    )
    return [
        "## Intended use",
        "",
        f"- Rank rows shaped like {code(contract.name)} (the data contract) by their probability "
        f"that {_positive(contract)},",
        *use,
        "- Out of scope: decisions with legal or similarly significant effect on a person,",
        "  populations unlike the training data, and reading the scores as causal effects.",
        "",
    ]


def _inputs_section(contract: Contract) -> list[str]:
    header = ["feature", "type", "nullable", "valid values"]
    rows = [
        [code(c.name), c.type, "yes" if c.nullable else "no", _checks_text(c)]
        for c in contract.features
    ]
    if any(c.description for c in contract.features):
        header.append("description")
        rows = [
            [*row, escape(c.description)] for row, c in zip(rows, contract.features, strict=True)
        ]
    target = contract.column(contract.target)
    about = f": {escape(target.description)}" if target.description else ""
    return [
        "## Inputs",
        "",
        f"{len(contract.features)} features from the data contract (`{paths.CONTRACT}`); the "
        "ONNX model takes one `[N, 1]` input per feature (float32, or string for categories). "
        f"Target: {code(contract.target)}, positive when {escape(contract.positive_label)}{about}.",
        "",
        *_lines(header, rows),
    ]


def _split_text(split: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    method = split.get("method")
    if method == "time":
        return (
            f"- Split by time: training up to {escape(split.get('train_end', MISSING))}, test "
            f"from {escape(split.get('test_start', MISSING))} (the newest rows)."
        )
    if method == "stratified":
        seed = split.get("seed", _dig(params, "split", "seed"))
        return (
            f"- Split: a stratified random sample (seed {seed}) is the test set; the contract "
            "has no timestamp, so the test set is not later in time than the training rows."
        )
    return f"- Split method: {escape(method or MISSING)}."


def _data_section(
    params: Mapping[str, Any],
    contract: Contract,
    data: Mapping[str, Any] | None,
    validation: Mapping[str, Any] | None,
) -> list[str]:
    lines = ["## Data", ""]
    source = _dig(params, "data", "source")
    if source is not None:
        lines.append(f"- Source: {code(source)} (`data.source` in `params.yaml`).")
    if data is None:
        lines.append(f"- Split summary: not available ({paths.DATA_METRICS} missing).")
    else:
        rows = _dig(data, "rows") or {}
        rate = _dig(data, "positive_rate") or {}
        lines.append(
            f"- Rows: {num(rows.get('total'), ',')} in total, "
            f"{num(rows.get('train'), ',')} for training, {num(rows.get('test'), ',')} for test."
        )
        lines.append(
            f"- Positive rate ({_positive(contract)}): {num(rate.get('train'), '.1%')} in "
            f"training, {num(rate.get('test'), '.1%')} in test."
        )
        lines.append(_split_text(_dig(data, "split") or {}, params))
    if validation is None:
        lines.append(f"- Validation: not available ({paths.VALIDATION_METRICS} missing).")
    else:
        lines.append(
            f"- Validation against the contract: **{escape(validation.get('status', MISSING))}** "
            f"({num(validation.get('failed_checks'), 'd')} failed checks, "
            f"{num(validation.get('failing_rows'), ',')} failing rows of "
            f"{num(validation.get('rows'), ',')})."
        )
        missing = validation.get("missing_rate") or {}
        present = {k: v for k, v in missing.items() if isinstance(v, int | float) and v > 0}
        if present:
            listed = ", ".join(f"{code(k)} {present[k]:.1%}" for k in sorted(present))
            lines.append(f"- Missing values: {listed}.")
    lines.append("")
    return lines


def _evaluation_section(
    params: Mapping[str, Any], contract: Contract, evaluation: Mapping[str, Any] | None
) -> list[str]:
    if evaluation is None:
        return ["## Evaluation", "", f"Not available ({paths.EVALUATE_METRICS} missing).", ""]
    test = _dig(evaluation, "test") or {}
    threshold = _dig(evaluation, "business", "threshold") or _dig(params, "evaluate", "threshold")
    rows = []
    for key in TEST_METRICS:
        low, high = _dig(evaluation, "ci95", key, "low"), _dig(evaluation, "ci95", key, "high")
        interval = f"{num(low)} – {num(high)}" if low is not None else MISSING
        rows.append([label(key), num(test.get(key)), interval, metric(key).better])
    lines = [
        "## Evaluation",
        "",
        f"Test set: {num(_dig(evaluation, 'rows', 'test'), ',')} rows never seen in training. "
        f"Threshold metrics (accuracy, precision, recall, F1) at threshold {num(threshold, 'g')}. "
        "Intervals: percentile bootstrap over "
        f"{num(_dig(params, 'evaluate', 'bootstrap_samples'), 'd')} resamples of the test set.",
        "",
        *_lines(["metric", "test", "95 % interval", "better"], rows),
    ]
    cv = _dig(evaluation, "cv") or {}
    if cv:
        folds = num(_dig(params, "evaluate", "cv_folds"), "d")
        lines += [
            f"Cross-validation on the training rows ({folds} stratified folds):",
            "",
            *_lines(
                ["metric", "mean", "std"],
                [
                    [label(k), num(_dig(cv, k, "mean")), num(_dig(cv, k, "std"))]
                    for k in CV_METRICS
                    if k in cv
                ],
            ),
        ]
    confusion = _dig(evaluation, "confusion")
    if confusion:
        lines += [
            f"Confusion matrix on the test set at threshold {num(threshold, 'g')} "
            f"(positive: {_positive(contract)}):",
            "",
            *_lines(
                ["", "predicted negative", "predicted positive"],
                [
                    ["negative", num(confusion.get("tn"), ","), num(confusion.get("fp"), ",")],
                    ["positive", num(confusion.get("fn"), ","), num(confusion.get("tp"), ",")],
                ],
            ),
        ]
    return lines


def _slices_section(evaluation: Mapping[str, Any] | None) -> list[str]:
    slices = _dig(evaluation, "slices") or {}
    if not slices:
        return []
    lines = [
        "## Slices",
        "",
        "Test metrics per group of the contract's `slice: true` columns (numeric columns in "
        "quantile bins; *small* groups have too few rows to count towards the gap).",
        "",
    ]
    for column in sorted(slices):
        groups = _dig(slices, column, "groups") or {}
        rows = [
            [
                escape(group) + (" (small)" if entry.get("small") else ""),
                num(entry.get("rows"), ","),
                *(num(entry.get(m), metric(m).spec) for m in SLICE_METRICS),
            ]
            for group, entry in groups.items()
        ]
        gaps = _dig(slices, column, "gap") or {}
        gap_text = ", ".join(f"{label(m)} {num(gaps.get(m))}" for m in SLICE_METRICS)
        lines += [
            f"{code(column)}: largest gap between groups: {gap_text}.",
            "",
            *_lines(["group", "rows", *(label(m) for m in SLICE_METRICS)], rows),
        ]
    return lines


def _business_section(params: Mapping[str, Any], evaluation: Mapping[str, Any] | None) -> list[str]:
    business = _dig(evaluation, "business")
    if not business:
        return []
    fp_cost = _dig(params, "evaluate", "costs", "false_positive")
    fn_cost = _dig(params, "evaluate", "costs", "false_negative")
    return [
        "## Business view",
        "",
        f"Costs per row (`evaluate.costs`): {num(fp_cost, ',.2f')} for a false positive "
        f"(flagged, but negative), {num(fn_cost, ',.2f')} for a false negative (a positive "
        "missed).",
        "",
        *_lines(
            ["threshold", "chosen by", "expected cost per 1,000 rows (test)"],
            [
                [
                    num(business.get("threshold"), "g"),
                    "`evaluate.threshold`",
                    num(business.get("cost_per_1000"), ",.2f"),
                ],
                [
                    num(business.get("best_threshold"), "g"),
                    "lowest cost on out-of-fold CV predictions",
                    num(business.get("cost_per_1000_at_best"), ",.2f"),
                ],
            ],
        ),
        "The cost-minimising threshold is chosen on the training rows (out-of-fold), not on",
        "the test set, so its test cost is an honest estimate.",
        "",
    ]


def _export_section(export: Mapping[str, Any]) -> list[str]:
    onnx = _dig(export, "onnx") or {}
    parity = _dig(export, "parity") or {}
    lines = [
        "## ONNX export",
        "",
        *_lines(
            ["", ""],
            [
                ["file", code(onnx.get("path", MISSING))],
                ["sha256", code(onnx.get("sha256", MISSING))],
                ["size", f"{num(onnx.get('size_bytes'), ',')} bytes"],
                ["opset", onnx.get("opset", MISSING)],
            ],
        ),
        f"Parity with scikit-learn: max |Δ probability| {num(parity.get('max_abs_diff'), '.2e')} "
        f"(tolerance {num(parity.get('tolerance'), '.0e')}), "
        f"{num(parity.get('label_flips'), 'd')} label flips on "
        f"{num(parity.get('rows_checked'), ',')} rows.",
        "",
    ]
    slices = parity.get("slices") or {}
    if slices:
        lines += _lines(
            ["slice", "rows", "max abs diff", "label flips"],
            [
                [
                    escape(name),
                    num(_dig(slices, name, "rows"), ","),
                    num(_dig(slices, name, "max_abs_diff"), ".2e"),
                    num(_dig(slices, name, "label_flips"), "d"),
                ]
                for name in sorted(slices)
            ],
        )
    versions = _dig(export, "versions") or {}
    if versions:
        listed = ", ".join(f"{escape(k)} {escape(versions[k])}" for k in sorted(versions))
        lines += [f"Converted with {listed}.", ""]
    return lines


def _limitations_section(
    params: Mapping[str, Any], data: Mapping[str, Any] | None, evaluation: Mapping[str, Any] | None
) -> list[str]:
    lines = ["## Limitations", ""]
    if _dig(params, "data", "source") == paths.SYNTHETIC_DATA:
        lines.append(
            "- Trained and tested on **synthetic** data from `gitops_ml.synthetic`: the numbers\n"
            "  describe the generator, not the world. Set `data.source` to your data first."
        )
    method = _dig(data, "split", "method")
    if method == "time":
        lines.append(
            "- The test set is the newest rows; performance on later data may drift. The\n"
            f"  scheduled drift check compares production data with `{paths.PROFILE}`."
        )
    else:
        lines.append(
            "- The test set is a random sample of the same period as the training rows, so it\n"
            "  does not show how the model ages; the scheduled drift check compares production\n"
            f"  data with `{paths.PROFILE}`."
        )
    slices = sorted(_dig(evaluation, "slices") or {})
    fairness = (
        f"- Per-group metrics cover {', '.join(code(s) for s in slices)} only (see Slices);"
        if slices
        else "- No column is marked `slice: true` in the contract, so no per-group metrics;"
    )
    lines += [
        f"- Probabilities are only as calibrated as `{paths.CALIBRATION_PLOT}` shows; the",
        *(
            [
                "  threshold and the business view depend on the costs in `params.yaml`, which are",
                "  assumptions.",
            ]
            if _dig(evaluation, "business")
            else ["  threshold (`evaluate.threshold`) is a choice, not a property of the data."]
        ),
        "- Scores are correlational: a high score does not mean an action will change the outcome.",
        fairness,
        "  review the inputs above for attributes that are protected where you operate before",
        "  any decision about a person.",
        "",
    ]
    return lines


def _reproduce_section() -> list[str]:
    return [
        "## How to reproduce",
        "",
        "```sh",
        "git checkout <the commit of this card>",
        "make install      # the locked environment (uv.lock)",
        "dvc pull          # cached data and model, if a DVC remote is configured",
        "dvc repro         # reruns only the stages whose inputs changed",
        "```",
        "",
        f"Every input that decides this model is in Git: `{paths.PARAMS}`, `{paths.CONTRACT}`,",
        f"`{paths.DVC_LOCK}` (hashes of data and model files) and the code in `src/`.",
        "",
    ]


def render_model_card(
    params: Mapping[str, Any],
    contract: Contract,
    export: Mapping[str, Any],
    *,
    data: Mapping[str, Any] | None = None,
    validation: Mapping[str, Any] | None = None,
    evaluation: Mapping[str, Any] | None = None,
) -> str:
    """Markdown model card from the whole params.yaml, the contract and the metrics files.

    `export` is metrics/export.json; `data`, `validation` and `evaluation` are metrics/data.json,
    metrics/validation.json and metrics/evaluate.json (None renders "not available").
    """
    lines = ["# Model card", ""]
    if contract.description:
        lines += [escape(contract.description), ""]
    lines += _model_section(params, contract)
    lines += _intended_use_section(contract, costed=bool(_dig(evaluation, "business")))
    lines += _data_section(params, contract, data, validation)
    lines += _inputs_section(contract)
    lines += _evaluation_section(params, contract, evaluation)
    lines += _slices_section(evaluation)
    lines += _business_section(params, evaluation)
    lines += _export_section(export)
    lines += _limitations_section(params, data, evaluation)
    lines += _reproduce_section()
    return "\n".join(lines).rstrip("\n") + "\n"


def model_card_from_files(
    params: Mapping[str, Any],
    contract: Contract,
    export: Mapping[str, Any],
    metrics_dir: str | Path = paths.METRICS_DIR,
) -> str:
    """`render_model_card` with data/validation/evaluation read from `metrics_dir` (if present)."""
    metrics_dir = Path(metrics_dir)
    found = {
        key: gio.read_json(metrics_dir / name) if (metrics_dir / name).is_file() else None
        for key, name in METRICS_FILES.items()
    }
    return render_model_card(
        params,
        contract,
        export,
        data=found["data"],
        validation=found["validation"],
        evaluation=found["evaluation"],
    )
