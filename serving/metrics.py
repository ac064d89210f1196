"""Prometheus metrics of the server, on a registry of its own (one per app, so tests can share
a process). Scores are counted a request at a time, not one `observe()` per row: a 100-row
request would otherwise spend more time in the metrics library than in the model.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterable, Iterator

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from serving.model import ModelInfo
from serving.outputs import Outputs

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
ROW_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


class ScoreHistogram(Collector):
    """The per-row scores (serving.outputs). Lock-free: only the event loop thread updates it
    and serves `/metrics`."""

    def __init__(self, name: str, documentation: str, bounds: Iterable[float]) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = np.asarray(tuple(bounds), dtype=np.float64)
        self._bounds = self.bounds.tolist()
        self.counts = np.zeros(self.bounds.size + 1, dtype=np.int64)
        self.total = 0.0

    def observe_many(self, scores: np.ndarray) -> None:
        # Prometheus buckets are "less than or equal": bisect_left / side="left" put a score
        # equal to a bound into that bound's bucket.
        if scores.size <= 8:  # the common few-row request: numpy calls cost more than a loop
            for score in scores.tolist():
                self.counts[bisect.bisect_left(self._bounds, score)] += 1
                self.total += score
            return
        index = np.searchsorted(self.bounds, scores, side="left")
        self.counts += np.bincount(index, minlength=self.counts.size)
        self.total += float(np.sum(scores, dtype=np.float64))

    def collect(self) -> Iterator[HistogramMetricFamily]:
        bounds = [repr(bound) for bound in self._bounds] + ["+Inf"]
        buckets = list(zip(bounds, np.cumsum(self.counts).tolist(), strict=True))
        yield HistogramMetricFamily(
            self.name, self.documentation, buckets=buckets, sum_value=self.total
        )


class ServingMetrics:
    def __init__(self, info: ModelInfo, features: Iterable[str], outputs: Outputs) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "serving_requests",
            "HTTP requests by route, method and status code",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "serving_request_duration_seconds",
            "Time from request start to the end of the response, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.rows = Histogram(
            "serving_rows_per_request",
            "Rows (customers) scored per successful prediction request",
            ["api"],
            buckets=ROW_BUCKETS,
            registry=r,
        )
        # The task's per-row score, when it has a fixed range (a probability, not a value).
        self.scores: ScoreHistogram | None = None
        if outputs.score_buckets is not None:
            self.scores = ScoreHistogram(
                "serving_prediction_score", outputs.score_help, outputs.score_buckets
            )
            r.register(self.scores)
        self.unknown = Counter(
            "serving_unknown_category_values",
            "Category values not in the data contract's allowed list (scored, but counted)",
            ["feature"],
            registry=r,
        )
        for feature in features:
            self.unknown.labels(feature=feature)
        self.log_written = Counter(
            "serving_prediction_log_lines_written",
            "Rows captured (written to the spool)",
            registry=r,
        )
        self.log_dropped = Counter(
            "serving_prediction_log_lines_dropped",
            "Rows not captured because the queue was full or the write failed",
            registry=r,
        )
        model_info = Gauge(
            "serving_model_info",
            "The served model (value is always 1)",
            ["model", "version", "onnx_sha256", "git_revision"],
            registry=r,
        )
        model_info.labels(info.name, info.version, info.onnx_sha256, info.git_revision).set(1)
        # `labels()` takes a lock and rebuilds its key: each child is looked up once.
        self._rows_of = functools.cache(self.rows.labels)
        self._request_of = functools.cache(self._request_child)

    def record_predictions(
        self, api: str, rows: int, scores: np.ndarray, unknown: dict[str, int]
    ) -> None:
        self._rows_of(api).observe(rows)
        if self.scores is not None:
            self.scores.observe_many(scores)
        for feature, count in unknown.items():
            self.unknown.labels(feature=feature).inc(count)

    def record_request(self, route: str, method: str, status: int, seconds: float) -> None:
        count, observe = self._request_of(route, method, status)
        count()
        observe(seconds)

    def _request_child(
        self, route: str, method: str, status: int
    ) -> tuple[Callable[[], None], Callable[[float], None]]:
        latency = self.latency.labels(route)
        return self.requests.labels(route, method, str(status)).inc, latency.observe
