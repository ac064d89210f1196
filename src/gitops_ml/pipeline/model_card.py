"""The model card (`reports/model_card.md`): what the model is, how well it does, and its limits.

Rendered by the export stage from files the pipeline already wrote (params, the data contract,
metrics/*.json), so it is reviewed in the pull request next to the numbers it quotes and ships
inside the bundle. Deterministic: no dates or paths from the machine, so reruns are byte-identical
and a diff of the card is a diff of the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gitops_ml import io as gio
from gitops_ml import paths
from gitops_ml.contract import Column, Contract

MODEL_NAME = "churn-model"
NOT_AVAILABLE = "n/a"
METRIC_LABELS: dict[str, str] = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC (average precision)",
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "log_loss": "log loss",
    "brier": "Brier score",
}
LOWER_IS_BETTER = ("log_loss", "brier")
METRICS_FILES: dict[str, str] = {
    "data": "data.json",
    "validation": "validation.json",
    "evaluation": "evaluate.json",
}


def _dig(mapping: Mapping[str, Any] | None, *keys: str) -> Any:
    """mapping[k1][k2]…, or None when any level is missing (older or partial metrics files)."""
    value: Any = mapping
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _num(value: Any, spec: str = ".4f") -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return NOT_AVAILABLE
    return format(value, spec)


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _checks_text(column: Column) -> str:
    checks = column.checks
    if checks.allowed:
        return "one of " + ", ".join(f"`{v}`" for v in checks.allowed)
    if checks.min is not None or checks.max is not None:
        low = NOT_AVAILABLE if checks.min is None else f"{checks.min:g}"
        high = NOT_AVAILABLE if checks.max is None else f"{checks.max:g}"
        return f"{low} … {high}"
    return ""


def _model_section(params: Mapping[str, Any], model_name: str) -> list[str]:
    model = _dig(params, "model") or {}
    hyper = model.get("hyperparams") or {}
    lines = [
        "## Model",
        "",
        *_table(
            ["", ""],
            [
                ["name", f"`{model_name}`"],
                ["estimator", f"`{model.get('type', NOT_AVAILABLE)}` (scikit-learn Pipeline)"],
                ["seed", model.get("seed", NOT_AVAILABLE)],
                ["decision threshold", _dig(params, "evaluate", "threshold") or NOT_AVAILABLE],
                [
                    "outputs",
                    "`probabilities[:, 1]` = churn probability (compare it with the decision "
                    "threshold); `label` = the estimator's own 0.5 cut",
                ],
            ],
        ),
        "",
    ]
    if hyper:
        lines += [
            "Hyperparameters (`model.hyperparams` in `params.yaml`):",
            "",
            *_table(["name", "value"], [[k, hyper[k]] for k in sorted(hyper)]),
            "",
        ]
    return lines


def _intended_use_section(contract: Contract) -> list[str]:
    return [
        "## Intended use",
        "",
        f"- Score current customers ({contract.name}: one row per customer snapshot) by their",
        "  probability of churning in the next month, to decide who receives a retention offer.",
        "- Used as a ranking and triage aid with the threshold below; the business view shows",
        "  the expected cost of that choice.",
        "- Out of scope: decisions with legal or similarly significant effect on a person",
        "  (pricing, credit, contract termination), populations or products unlike the training",
        "  data, and reading the scores as causal effects of a feature.",
        "",
    ]


def _inputs_section(contract: Contract) -> list[str]:
    header = ["feature", "type", "nullable", "valid values"]
    rows = [
        [f"`{c.name}`", c.type, "yes" if c.nullable else "no", _checks_text(c)]
        for c in contract.features
    ]
    if any(c.description for c in contract.features):
        header.append("description")
        rows = [[*row, c.description] for row, c in zip(rows, contract.features, strict=True)]
    return [
        "## Inputs",
        "",
        f"{len(contract.features)} features from the data contract (`data/schema.yaml`); the ONNX",
        "model takes one `[N, 1]` input per feature (float32, or string for categories).",
        "",
        *_table(header, rows),
        "",
    ]


def _data_section(
    params: Mapping[str, Any],
    data: Mapping[str, Any] | None,
    validation: Mapping[str, Any] | None,
) -> list[str]:
    lines = ["## Data", ""]
    source = _dig(params, "data", "source")
    if source is not None:
        lines.append(f"- Source: `{source}` (`data.source` in `params.yaml`).")
    if data is None:
        lines.append("- Split summary: not available (metrics/data.json missing).")
    else:
        rows = _dig(data, "rows") or {}
        rate = _dig(data, "churn_rate") or {}
        split = _dig(data, "split") or {}
        lines.append(
            f"- Rows: {_num(rows.get('total'), ',')} in total, "
            f"{_num(rows.get('train'), ',')} for training, {_num(rows.get('test'), ',')} for test."
        )
        lines.append(
            f"- Churn rate: {_num(rate.get('train'), '.1%')} in training, "
            f"{_num(rate.get('test'), '.1%')} in test."
        )
        method = split.get("method", NOT_AVAILABLE)
        if method == "time":
            lines.append(
                f"- Split by time: training up to {split.get('train_end', NOT_AVAILABLE)}, "
                f"test from {split.get('test_start', NOT_AVAILABLE)} (the newest rows)."
            )
        else:
            lines.append(f"- Split method: {method}.")
    if validation is None:
        lines.append("- Validation: not available (metrics/validation.json missing).")
    else:
        lines.append(
            f"- Validation against the contract: **{validation.get('status', NOT_AVAILABLE)}** "
            f"({_num(validation.get('failed_checks'), 'd')} failed checks, "
            f"{_num(validation.get('failing_rows'), ',')} failing rows of "
            f"{_num(validation.get('rows'), ',')})."
        )
        missing = validation.get("missing_rate") or {}
        present = {k: v for k, v in missing.items() if isinstance(v, int | float) and v > 0}
        if present:
            listed = ", ".join(f"`{k}` {present[k]:.1%}" for k in sorted(present))
            lines.append(f"- Missing values: {listed}.")
    lines.append("")
    return lines


def _evaluation_section(
    params: Mapping[str, Any], evaluation: Mapping[str, Any] | None
) -> list[str]:
    if evaluation is None:
        return ["## Evaluation", "", "Not available (metrics/evaluate.json missing).", ""]
    test = _dig(evaluation, "test") or {}
    threshold = _dig(evaluation, "business", "threshold")
    rows = []
    for key, label in METRIC_LABELS.items():
        low, high = _dig(evaluation, "ci95", key, "low"), _dig(evaluation, "ci95", key, "high")
        interval = f"{_num(low)} – {_num(high)}" if low is not None else NOT_AVAILABLE
        direction = "lower" if key in LOWER_IS_BETTER else "higher"
        rows.append([label, _num(test.get(key)), interval, direction])
    lines = [
        "## Evaluation",
        "",
        f"Test set: {_num(_dig(evaluation, 'rows', 'test'), ',')} rows never seen in training. "
        f"Threshold metrics (accuracy, precision, recall, F1) at threshold {_num(threshold, 'g')}. "
        "Intervals: percentile bootstrap over "
        f"{_num(_dig(params, 'evaluate', 'bootstrap_samples'), 'd')} resamples of the test set.",
        "",
        *_table(["metric", "test", "95 % interval", "better"], rows),
        "",
    ]
    cv = _dig(evaluation, "cv") or {}
    if cv:
        folds = _num(_dig(params, "evaluate", "cv_folds"), "d")
        lines += [
            f"Cross-validation on the training window ({folds} stratified folds):",
            "",
            *_table(
                ["metric", "mean", "std"],
                [
                    [METRIC_LABELS.get(k, k), _num(_dig(cv, k, "mean")), _num(_dig(cv, k, "std"))]
                    for k in ("roc_auc", "pr_auc", "log_loss")
                    if k in cv
                ],
            ),
            "",
        ]
    confusion = _dig(evaluation, "confusion")
    if confusion:
        lines += [
            f"Confusion matrix on the test set at threshold {_num(threshold, 'g')}:",
            "",
            *_table(
                ["", "predicted stays", "predicted churns"],
                [
                    ["stays", _num(confusion.get("tn"), ","), _num(confusion.get("fp"), ",")],
                    ["churns", _num(confusion.get("fn"), ","), _num(confusion.get("tp"), ",")],
                ],
            ),
            "",
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
        f"Costs per customer (`evaluate.costs`): {_num(fp_cost, ',.2f')} for an offer to a "
        f"customer who would have stayed (false positive), {_num(fn_cost, ',.2f')} for a churner "
        "who got no offer (false negative).",
        "",
        *_table(
            ["threshold", "chosen by", "expected cost per 1,000 customers (test)"],
            [
                [
                    _num(business.get("threshold"), "g"),
                    "`evaluate.threshold`",
                    _num(business.get("cost_per_1000"), ",.2f"),
                ],
                [
                    _num(business.get("best_threshold"), "g"),
                    "lowest cost on out-of-fold CV predictions",
                    _num(business.get("cost_per_1000_at_best"), ",.2f"),
                ],
            ],
        ),
        "",
        "The cost-minimising threshold is chosen on the training window (out-of-fold), not on",
        "the test set, so its test cost is an honest estimate.",
        "",
    ]


def _export_section(export: Mapping[str, Any]) -> list[str]:
    onnx = _dig(export, "onnx") or {}
    parity = _dig(export, "parity") or {}
    size = onnx.get("size_bytes")
    lines = [
        "## ONNX export",
        "",
        *_table(
            ["", ""],
            [
                ["file", f"`{onnx.get('path', NOT_AVAILABLE)}`"],
                ["sha256", f"`{onnx.get('sha256', NOT_AVAILABLE)}`"],
                ["size", f"{_num(size, ',')} bytes"],
                ["opset", onnx.get("opset", NOT_AVAILABLE)],
            ],
        ),
        "",
        f"Parity with scikit-learn: max |Δ probability| {_num(parity.get('max_abs_diff'), '.2e')} "
        f"(tolerance {_num(parity.get('tolerance'), '.0e')}), "
        f"{_num(parity.get('label_flips'), 'd')} label flips on "
        f"{_num(parity.get('rows_checked'), ',')} rows.",
        "",
    ]
    slices = parity.get("slices") or {}
    if slices:
        lines += [
            *_table(
                ["slice", "rows", "max abs diff", "label flips"],
                [
                    [
                        name,
                        _num(_dig(slices, name, "rows"), ","),
                        _num(_dig(slices, name, "max_abs_diff"), ".2e"),
                        _num(_dig(slices, name, "label_flips"), "d"),
                    ]
                    for name in sorted(slices)
                ],
            ),
            "",
        ]
    versions = _dig(export, "versions") or {}
    if versions:
        listed = ", ".join(f"{k} {versions[k]}" for k in sorted(versions))
        lines += [f"Converted with {listed}.", ""]
    return lines


def _limitations_section(params: Mapping[str, Any]) -> list[str]:
    lines = ["## Limitations", ""]
    if _dig(params, "data", "source") == "synthetic":
        lines.append(
            "- Trained and tested on **synthetic** data from `gitops_ml.synthetic`: the numbers\n"
            "  describe the generator, not real customers. Set `data.source` to your data first."
        )
    lines += [
        "- The test set is one later time window; performance on future months will drift. The",
        "  scheduled drift check compares production data with `models/reference_profile.json`.",
        "- Probabilities are only as calibrated as `plots/calibration.json` shows; the threshold",
        "  and the business view depend on the costs in `params.yaml`, which are assumptions.",
        "- Scores are correlational: a high score does not mean an offer will retain the customer.",
        "- No fairness audit is part of this pipeline. Review the inputs above for attributes that",
        "  are protected where you operate (for example age) before any decision about a person.",
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
        "Every input that decides this model is in Git: `params.yaml`, `data/schema.yaml`,",
        "`dvc.lock` (hashes of data and model files) and the code in `src/`.",
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
    model_name: str = MODEL_NAME,
) -> str:
    """Markdown model card from the whole params.yaml, the contract and the metrics files.

    `export` is metrics/export.json; `data`, `validation` and `evaluation` are metrics/data.json,
    metrics/validation.json and metrics/evaluate.json (None renders "not available").
    """
    lines = [f"# Model card: {model_name}", ""]
    if contract.description:
        lines += [contract.description, ""]
    lines += _model_section(params, model_name)
    lines += _intended_use_section(contract)
    lines += _data_section(params, data, validation)
    lines += _inputs_section(contract)
    lines += _evaluation_section(params, evaluation)
    lines += _business_section(params, evaluation)
    lines += _export_section(export)
    lines += _limitations_section(params)
    lines += _reproduce_section()
    return "\n".join(lines).rstrip("\n") + "\n"


def model_card_from_files(
    params: Mapping[str, Any],
    contract: Contract,
    export: Mapping[str, Any],
    metrics_dir: str | Path = paths.METRICS_DIR,
    model_name: str = MODEL_NAME,
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
        model_name=model_name,
    )
