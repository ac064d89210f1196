"""What the pipeline's metrics files hold after a run (metrics/export.json, data.json,
validation.json, evaluate.json), as the readers of those files see them in tests."""

from __future__ import annotations

from typing import Any

SHA = "3f" * 32

EXPORT: dict[str, Any] = {
    "onnx": {
        "sha256": SHA,
        "size_bytes": 123456,
        "opset": 17,
        "opset_used": {"ai.onnx": 16, "ai.onnx.ml": 1},
        "path": "models/model.onnx",
        "inputs": 17,
    },
    "parity": {
        "measure": "max |Δp|",
        "max_abs_diff": 1.2e-7,
        "label_flips": 0,
        "rows_checked": 10200,
        "tolerance": 1e-4,
        "slices": {
            "test": {"rows": 10000, "max_abs_diff": 1.2e-7, "label_flips": 0},
            "unseen_categories": {"rows": 100, "max_abs_diff": 5.0e-8, "label_flips": 0},
        },
    },
    "versions": {"onnxruntime": "1.32.0", "scikit-learn": "1.7.2", "skl2onnx": "1.20.0"},
}
DATA = {
    "rows": {"total": 50000, "train": 40000, "test": 10000},
    "positive_rate": {"train": 0.245, "test": 0.251},
    "split": {"method": "time", "train_end": "2025-08-07", "test_start": "2025-08-07"},
}
VALIDATION = {
    "status": "passed",
    "rows": 50000,
    "columns": 20,
    "failed_checks": 0,
    "failing_rows": 0,
    "missing_rate": {"total_charges": 0.058, "age": 0.0},
    "dropped_columns": [],
}
EVALUATION = {
    "test": {
        "roc_auc": 0.862598,
        "pr_auc": 0.717163,
        "accuracy": 0.8508,
        "precision": 0.749735,
        "recall": 0.580937,
        "f1": 0.65463,
        "log_loss": 0.370698,
        "brier": 0.113375,
    },
    "ci95": {
        "roc_auc": {"low": 0.854605, "high": 0.871269},
        "pr_auc": {"low": 0.695382, "high": 0.736816},
        "accuracy": {"low": 0.844395, "high": 0.8571},
        "precision": {"low": 0.730481, "high": 0.769848},
        "recall": {"low": 0.561634, "high": 0.601978},
        "f1": {"low": 0.639286, "high": 0.672694},
        "log_loss": {"low": 0.359737, "high": 0.381267},
        "brier": {"low": 0.109365, "high": 0.116944},
    },
    "cv": {
        "roc_auc": {"mean": 0.853792, "std": 0.003374},
        "pr_auc": {"mean": 0.699825, "std": 0.007553},
        "log_loss": {"mean": 0.383081, "std": 0.003805},
    },
    "business": {
        "threshold": 0.5,
        "cost_per_1000": 26680.0,
        "best_threshold": 0.1,
        "cost_per_1000_at_best": 14165.0,
    },
    "confusion": {"tn": 7094, "fp": 472, "fn": 1020, "tp": 1414},
    "rows": {"test": 10000},
    "slices": {
        "senior_citizen": {
            "groups": {
                "false": {
                    "rows": 8400,
                    "roc_auc": 0.86,
                    "recall": 0.57,
                    "positive_rate": 0.18,
                    "calibration_error": 0.012,
                },
                "true": {
                    "rows": 1600,
                    "roc_auc": 0.84,
                    "recall": 0.62,
                    "positive_rate": 0.24,
                    "calibration_error": 0.02,
                },
            },
            "gap": {
                "roc_auc": 0.02,
                "recall": 0.05,
                "positive_rate": 0.06,
                "calibration_error": 0.008,
            },
        }
    },
}
