"""Every path the pipeline reads or writes, written once.

`dvc.yaml` declares the same paths as stage dependencies and outputs (DVC needs them there);
`tests/test_paths.py` checks the two agree, so a path is changed in one place here and
in one place there, never hunted down across modules.
"""

from __future__ import annotations

PARAMS = "params.yaml"
CONTRACT = "data/schema.yaml"
DVC_YAML = "dvc.yaml"
DVC_LOCK = "dvc.lock"

DATA_DIR = "data"  # where `gitops-ml source --set URL` imports the data (`dvc import-url`)
SYNTHETIC_DATA = "data/synthetic/data.parquet"  # the demo generator's output (stage `generate`)
RAW = "data/raw/data.parquet"
RETRAIN_DATA = "data/retrain/data.parquet"  # training data + a labelled window (retraining PRs)
VALIDATED = "data/validated/data.parquet"
TRAIN = "data/split/train.parquet"
TEST = "data/split/test.parquet"
MODEL_JOBLIB = "models/model.joblib"
MODEL_ONNX = "models/model.onnx"
PROFILE = "models/reference_profile.json"

METRICS_DIR = "metrics"
VALIDATION_METRICS = "metrics/validation.json"
DATA_METRICS = "metrics/data.json"
EVALUATE_METRICS = "metrics/evaluate.json"
EXPORT_METRICS = "metrics/export.json"
PLOTS_DIR = "plots"
ROC_PLOT = "plots/roc.json"
PR_PLOT = "plots/precision_recall.json"
CALIBRATION_PLOT = "plots/calibration.json"
CONFUSION_PLOT = "plots/confusion.csv"
PREDICTED_ACTUAL_PLOT = "plots/predicted_actual.json"  # regression: by decile of the prediction
RESIDUALS_PLOT = "plots/residuals.json"

MODEL_CARD = "reports/model_card.md"
EXAMPLE_PREDICT = "serving/examples/predict.json"  # request examples generated from the contract
EXAMPLE_INFER = "serving/examples/infer_v2.json"
VALIDATION_FAILURES = "reports/validation_failures.md"
PR_REPORT = "reports/pr_report.md"
DRIFT_REPORT_DIR = "reports/drift"
