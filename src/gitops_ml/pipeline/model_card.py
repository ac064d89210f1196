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

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitops_ml import paths
from gitops_ml.config import DataParams, EvaluateParams, ModelParams, SplitParams
from gitops_ml.contract import Column, Contract
from gitops_ml.evaluate_metrics import EvaluateMetrics, read_evaluate_metrics
from gitops_ml.markdown import MISSING, cell, code, escape, num, table
from gitops_ml.metric_registry import label, metric, metric_sets
from gitops_ml.stage_metrics import (
    DataMetrics,
    ExportMetrics,
    StratifiedSplit,
    TimeSplit,
    ValidationMetrics,
    read_data_metrics,
    read_validation_metrics,
)
from gitops_ml.tasks import TASKS, Task


@dataclass(frozen=True)
class CardParams:
    """The params.yaml sections the card quotes, typed."""

    data: DataParams
    split: SplitParams
    model: ModelParams
    evaluate: EvaluateParams

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> CardParams:
        return cls(
            data=DataParams.from_params(params),
            split=SplitParams.from_params(params),
            model=ModelParams.from_params(params),
            evaluate=EvaluateParams.from_params(params),
        )


def _lines(header: list[str], rows: list[list[Any]]) -> list[str]:
    return [table(header, rows), ""]


def _positive(contract: Contract) -> str:
    """How the card names the positive class: `target` = label."""
    return f"{code(contract.target)} = {escape(contract.positive_label)}"


def _classes(contract: Contract) -> str:
    return ", ".join(code(c) for c in contract.classes)


def _range(contract: Contract) -> str:
    text = _checks_text(contract.column(contract.target))
    return f" ({text})" if text else ""


@dataclass(frozen=True)
class TaskWords:
    """How the card speaks of a model of one task (the task is the contract's)."""

    outputs: Callable[[Contract], str]  # what the ONNX model's outputs hold
    use: Callable[[Contract], str]  # what a row's prediction is good for
    aid: str  # how to use it
    target: Callable[[Contract], str]  # the target, for the Inputs section
    threshold: bool  # a decision threshold turns the prediction into a decision
    limitation: tuple[str, ...]  # what the predictions are not (lines of one bullet)


WORDS: dict[Task, TaskWords] = {
    "binary": TaskWords(
        outputs=lambda c: (
            f"`probabilities[:, 1]` = probability that {_positive(c)} (compare "
            "it with the decision threshold); `label` = the estimator's own 0.5 cut"
        ),
        use=lambda c: (
            f"Rank rows shaped like {code(c.name)} (the data contract) by their "
            f"probability that {_positive(c)},"
        ),
        aid="as a triage aid with the decision threshold below",
        target=lambda c: f"{code(c.target)}, positive when {escape(c.positive_label)}",
        threshold=True,
        limitation=(
            f"- Probabilities are only as calibrated as `{paths.CALIBRATION_PLOT}` shows; the",
        ),
    ),
    "multiclass": TaskWords(
        outputs=lambda c: (
            "`probabilities[:, i]` = probability of the i-th class of "
            f"{_classes(c)}; `label` = the index of the most probable class"
        ),
        use=lambda c: (
            f"Sort rows shaped like {code(c.name)} (the data contract) into the "
            f"{len(c.classes)} classes of {code(c.target)} by their most probable class,"
        ),
        aid="as a suggestion a person confirms, with the per-class recall below in mind",
        target=lambda c: f"{code(c.target)}, one of {_classes(c)} (the model's output order)",
        threshold=False,
        limitation=(
            "- The class probabilities are the estimator's own, not calibrated by the pipeline;",
            "  a class with few test rows has wide intervals for its recall and precision.",
        ),
    ),
    "regression": TaskWords(
        outputs=lambda c: f"`variable` = the predicted value of {code(c.target)}",
        use=lambda c: (
            f"Estimate {code(c.target)} for rows shaped like {code(c.name)} (the data contract),"
        ),
        aid="as an estimate with the typical error (RMSE, MAE) below",
        target=lambda c: f"{code(c.target)}, a number{_range(c)}",
        threshold=False,
        limitation=(
            "- Each prediction is a point estimate without an interval of its own; values",
            "  outside the range seen in training are not predicted well.",
        ),
    ),
}


def _checks_text(column: Column) -> str:
    checks = column.checks
    if checks.allowed:
        return "one of " + ", ".join(code(v) for v in checks.allowed)
    if checks.min is not None or checks.max is not None:
        return f"{num(checks.min, 'g')} … {num(checks.max, 'g')}"
    return ""


def _model_section(params: CardParams, contract: Contract) -> list[str]:
    model = params.model
    hyper = model.hyperparams
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
                ["estimator", f"{code(model.type)} (scikit-learn Pipeline)"],
                ["seed", model.seed],
                ["task", f"{contract.task}: the model gives {TASKS[contract.task].predicts}"],
                *(
                    [["decision threshold", params.evaluate.threshold]]
                    if WORDS[contract.task].threshold
                    else []
                ),
                ["outputs", WORDS[contract.task].outputs(contract)],
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
    words = WORDS[contract.task]
    use = (
        [
            f"  {words.aid}; the business view shows the",
            "  expected cost of that choice under the costs in `evaluate.costs`.",
        ]
        if costed
        else [f"  {words.aid}."]
    )
    return [
        "## Intended use",
        "",
        f"- {words.use(contract)}",
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
        f"Target: {WORDS[contract.task].target(contract)}{about}.",
        "",
        *_lines(header, rows),
    ]


def _split_text(split: TimeSplit | StratifiedSplit) -> str:
    if isinstance(split, TimeSplit):
        return (
            f"- Split by time: training up to {escape(split.train_end)}, test "
            f"from {escape(split.test_start)} (the newest rows)."
        )
    return (
        f"- Split: a stratified random sample (seed {split.seed}) is the test set; the contract "
        "has no timestamp, so the test set is not later in time than the training rows."
    )


def _target_lines(contract: Contract, data: DataMetrics) -> list[str]:
    """What the split says about the target on each side, in the task's terms."""
    lines = []
    rate = data.positive_rate
    if rate:
        lines.append(
            f"- Positive rate ({_positive(contract)}): {num(rate.train, '.1%')} in "
            f"training, {num(rate.test, '.1%')} in test."
        )
    shares = data.class_shares
    if shares:
        listed = ", ".join(
            f"{code(c)} {num(share, '.1%')} / {num(shares.test.get(c), '.1%')}"
            for c, share in shares.train.items()
        )
        lines.append(f"- Class shares (training / test): {listed}.")
    mean, sd = data.target_mean, data.target_std
    if mean and sd:
        lines.append(
            f"- {code(contract.target)}: mean {num(mean.train, ',.4g')} (sd "
            f"{num(sd.train, ',.4g')}) in training, {num(mean.test, ',.4g')} "
            f"(sd {num(sd.test, ',.4g')}) in test."
        )
    return lines


def _data_section(
    params: CardParams,
    contract: Contract,
    data: DataMetrics | None,
    validation: ValidationMetrics | None,
) -> list[str]:
    lines = ["## Data", ""]
    lines.append(f"- Source: {code(params.data.source)} (`data.source` in `params.yaml`).")
    if data is None:
        lines.append(f"- Split summary: not available ({paths.DATA_METRICS} missing).")
    else:
        rows = data.rows
        lines.append(
            f"- Rows: {num(rows.total, ',')} in total, "
            f"{num(rows.train, ',')} for training, {num(rows.test, ',')} for test."
        )
        lines += _target_lines(contract, data)
        lines.append(_split_text(data.split))
    if validation is None:
        lines.append(f"- Validation: not available ({paths.VALIDATION_METRICS} missing).")
    else:
        lines.append(
            f"- Validation against the contract: **{escape(validation.status)}** "
            f"({num(validation.failed_checks, 'd')} failed checks, "
            f"{num(validation.failing_rows, ',')} failing rows of "
            f"{num(validation.rows, ',')})."
        )
        present = {k: v for k, v in validation.missing_rate.items() if v > 0}
        if present:
            listed = ", ".join(f"{code(k)} {present[k]:.1%}" for k in sorted(present))
            lines.append(f"- Missing values: {listed}.")
    lines.append("")
    return lines


def _threshold(params: CardParams, evaluation: EvaluateMetrics) -> float:
    """The decision threshold the threshold metrics were counted at."""
    business = evaluation.business
    return business.threshold if business else params.evaluate.threshold


def _evaluation_section(
    params: CardParams, contract: Contract, evaluation: EvaluateMetrics | None
) -> list[str]:
    if evaluation is None:
        return ["## Evaluation", "", f"Not available ({paths.EVALUATE_METRICS} missing).", ""]
    threshold = _threshold(params, evaluation)
    test_rows = evaluation.rows.test if evaluation.rows else None
    metrics = metric_sets(contract.task, contract.classes)
    rows = []
    for key in metrics.test:
        ci = evaluation.ci95.get(key)
        interval = f"{num(ci.low)} – {num(ci.high)}" if ci and ci.low is not None else MISSING
        rows.append(
            [escape(label(key)), num(evaluation.test.get(key)), interval, metric(key).better]
        )
    counted = (
        f"Threshold metrics (accuracy, precision, recall, F1) at threshold {num(threshold, 'g')}. "
        if WORDS[contract.task].threshold
        else ""
    )
    lines = [
        "## Evaluation",
        "",
        f"Test set: {num(test_rows, ',')} rows never seen in training. {counted}"
        "Intervals: percentile bootstrap over "
        f"{num(params.evaluate.bootstrap_samples, 'd')} resamples of the test set.",
        "",
        *_lines(["metric", "test", "95 % interval", "better"], rows),
    ]
    cv = evaluation.cv
    if cv:
        stratified = "stratified " if TASKS[contract.task].classification else ""
        lines += [
            "Cross-validation on the training rows "
            f"({num(params.evaluate.cv_folds, 'd')} {stratified}folds):",
            "",
            *_lines(
                ["metric", "mean", "std"],
                [[label(k), num(cv[k].mean), num(cv[k].std)] for k in metrics.cv if k in cv],
            ),
        ]
    confusion = evaluation.confusion
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
    matrix = evaluation.confusion_matrix
    if matrix:
        lines += [
            "Confusion matrix on the test set (a row per actual class, a column per predicted "
            "class, the most probable one):",
            "",
            *_lines(
                ["actual", *(escape(c) for c in matrix.classes)],
                [
                    [escape(c), *(num(n, ",") for n in row)]
                    for c, row in zip(matrix.classes, matrix.counts, strict=True)
                ],
            ),
        ]
    return lines


def _slices_section(contract: Contract, evaluation: EvaluateMetrics | None) -> list[str]:
    slices = evaluation.slices if evaluation else {}
    if not slices:
        return []
    shown = metric_sets(contract.task).slice
    lines = [
        "## Slices",
        "",
        "Test metrics per group of the contract's `slice: true` columns (numeric columns in "
        "quantile bins; *small* groups have too few rows to count towards the gap).",
        "",
    ]
    for column in sorted(slices):
        rows = [
            [
                escape(group) + (" (small)" if entry.small else ""),
                num(entry.rows, ","),
                *(num(entry.metric(m), metric(m).spec) for m in shown),
            ]
            for group, entry in slices[column].groups.items()
        ]
        gaps = slices[column].gap
        gap_text = ", ".join(f"{label(m)} {num(gaps.get(m))}" for m in shown)
        lines += [
            f"{code(column)}: largest gap between groups: {gap_text}.",
            "",
            *_lines(["group", "rows", *(label(m) for m in shown)], rows),
        ]
    return lines


def _business_section(params: CardParams, evaluation: EvaluateMetrics | None) -> list[str]:
    business = evaluation.business if evaluation else None
    if business is None:
        return []
    costs = params.evaluate.costs
    fp_cost = costs.false_positive if costs else None
    fn_cost = costs.false_negative if costs else None
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
                    num(business.threshold, "g"),
                    "`evaluate.threshold`",
                    num(business.cost_per_1000, ",.2f"),
                ],
                [
                    num(business.best_threshold, "g"),
                    "lowest cost on out-of-fold CV predictions",
                    num(business.cost_per_1000_at_best, ",.2f"),
                ],
            ],
        ),
        "The cost-minimising threshold is chosen on the training rows (out-of-fold), not on",
        "the test set, so its test cost is an honest estimate.",
        "",
    ]


def _export_section(export: ExportMetrics) -> list[str]:
    onnx, parity = export.onnx, export.parity
    lines = [
        "## ONNX export",
        "",
        *_lines(
            ["", ""],
            [
                ["file", code(onnx.path)],
                ["sha256", code(onnx.sha256)],
                ["size", f"{num(onnx.size_bytes, ',')} bytes"],
                ["opset", onnx.opset],
            ],
        ),
        f"Parity with scikit-learn: {escape(parity.measure)} "
        f"{num(parity.max_abs_diff, '.2e')} "
        f"(tolerance {num(parity.tolerance, '.0e')})"
        + (
            f", {num(parity.label_flips, 'd')} label flips"
            if parity.label_flips is not None
            else ""
        )
        + f" on {num(parity.rows_checked, ',')} rows.",
        "",
    ]
    slices = parity.slices
    flips = any(entry.label_flips is not None for entry in slices.values())  # classifiers only
    if slices:
        lines += _lines(
            ["slice", "rows", "max abs diff", *(["label flips"] if flips else [])],
            [
                [
                    escape(name),
                    num(slices[name].rows, ","),
                    num(slices[name].max_abs_diff, ".2e"),
                    *([num(slices[name].label_flips, "d")] if flips else []),
                ]
                for name in sorted(slices)
            ],
        )
    versions = export.versions
    if versions:
        listed = ", ".join(f"{escape(k)} {escape(versions[k])}" for k in sorted(versions))
        lines += [f"Converted with {listed}.", ""]
    return lines


def _limitations_section(
    params: CardParams,
    contract: Contract,
    data: DataMetrics | None,
    evaluation: EvaluateMetrics | None,
) -> list[str]:
    words = WORDS[contract.task]
    lines = ["## Limitations", ""]
    if params.data.source == paths.SYNTHETIC_DATA:
        lines.append(
            "- Trained and tested on **synthetic** data from `gitops_ml.synthetic`: the numbers\n"
            "  describe the generator, not the world. Set `data.source` to your data first."
        )
    if data and isinstance(data.split, TimeSplit):
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
    slices = sorted(evaluation.slices if evaluation else {})
    fairness = (
        f"- Per-group metrics cover {', '.join(code(s) for s in slices)} only (see Slices);"
        if slices
        else "- No column is marked `slice: true` in the contract, so no per-group metrics;"
    )
    threshold = (
        [
            "  threshold and the business view depend on the costs in `params.yaml`, which are",
            "  assumptions.",
        ]
        if evaluation and evaluation.business
        else ["  threshold (`evaluate.threshold`) is a choice, not a property of the data."]
    )
    lines += [
        *words.limitation,
        *(threshold if words.threshold else []),
        "- Predictions are correlational: they do not say that an action will change the outcome.",
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
    export: ExportMetrics,
    *,
    data: DataMetrics | None = None,
    validation: ValidationMetrics | None = None,
    evaluation: EvaluateMetrics | None = None,
) -> str:
    """Markdown model card from the whole params.yaml, the contract and the metrics files.

    `export` is metrics/export.json; `data`, `validation` and `evaluation` are metrics/data.json,
    metrics/validation.json and metrics/evaluate.json (None renders "not available").
    """
    card_params = CardParams.from_params(params)
    lines = ["# Model card", ""]
    if contract.description:
        lines += [escape(contract.description), ""]
    lines += _model_section(card_params, contract)
    lines += _intended_use_section(contract, costed=bool(evaluation and evaluation.business))
    lines += _data_section(card_params, contract, data, validation)
    lines += _inputs_section(contract)
    lines += _evaluation_section(card_params, contract, evaluation)
    lines += _slices_section(contract, evaluation)
    lines += _business_section(card_params, evaluation)
    lines += _export_section(export)
    lines += _limitations_section(card_params, contract, data, evaluation)
    lines += _reproduce_section()
    return "\n".join(lines).rstrip("\n") + "\n"


def model_card_from_files(
    params: Mapping[str, Any],
    contract: Contract,
    export: ExportMetrics,
    metrics_dir: str | Path = paths.METRICS_DIR,
) -> str:
    """`render_model_card` with data/validation/evaluation read from `metrics_dir` (if present)."""
    metrics_dir = Path(metrics_dir)
    data, validation, evaluation = (
        metrics_dir / Path(name).name
        for name in (paths.DATA_METRICS, paths.VALIDATION_METRICS, paths.EVALUATE_METRICS)
    )
    return render_model_card(
        params,
        contract,
        export,
        data=read_data_metrics(data) if data.is_file() else None,
        validation=read_validation_metrics(validation) if validation.is_file() else None,
        evaluation=read_evaluate_metrics(evaluation) if evaluation.is_file() else None,
    )
