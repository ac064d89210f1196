"""`python -m serving --model PATH [--host H] [--port P]`: load, verify, then serve.

Every option also reads an environment variable (SERVING_MODEL, SERVING_PORT, ...) so a
container is configured without changing its command. The model is loaded and checked before
the server binds its port: a missing or corrupt model prints `error: ...` and exits non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from gitops_ml import paths
from gitops_ml.errors import UserError

ENV_PREFIX = "SERVING_"


def _env(name: str, default: Any, kind: Callable[[str], Any] = str) -> Any:
    raw = os.environ.get(ENV_PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise UserError(f"environment variable {ENV_PREFIX}{name}={raw!r} is not valid") from None


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError(text)
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m serving", description=__doc__.splitlines()[0] if __doc__ else None
    )
    p.add_argument(
        "--model",
        default=_env("MODEL", None),
        help="bundle directory or model.onnx [SERVING_MODEL]",
    )
    p.add_argument(
        "--contract",
        default=_env("CONTRACT", paths.CONTRACT),
        help="data contract for a bare model.onnx [SERVING_CONTRACT] (default: %(default)s)",
    )
    p.add_argument(
        "--metadata",
        default=_env("METADATA", None),
        help="metrics/export.json whose onnx.sha256 a bare model must match [SERVING_METADATA]",
    )
    p.add_argument(
        "--model-name",
        default=_env("MODEL_NAME", None),
        help="model name in the V2 paths (default: the bundle's, else the model artifact's "
        "name in ./dvc.yaml, else 'model') [SERVING_MODEL_NAME]",
    )
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="[SERVING_HOST]")
    p.add_argument("--port", type=int, default=_env("PORT", 8080, int), help="[SERVING_PORT]")
    p.add_argument(
        "--metrics-port",
        type=int,
        default=_env("METRICS_PORT", None, int),
        help="serve /metrics, /docs and /openapi.json on this port instead of --port "
        "[SERVING_METRICS_PORT]",
    )
    p.add_argument(
        "--max-body-bytes", type=int, default=_env("MAX_BODY_BYTES", 8 * 1024 * 1024, int)
    )
    p.add_argument("--max-rows", type=int, default=_env("MAX_ROWS", 10_000, int))
    p.add_argument(
        "--limit-concurrency",
        type=int,
        default=_env("LIMIT_CONCURRENCY", 512, int),
        help="open connections or requests in flight beyond which requests get a JSON 503 "
        "[SERVING_LIMIT_CONCURRENCY] (default: %(default)s)",
    )
    p.add_argument(
        "--keep-alive-timeout",
        type=int,
        default=_env("KEEP_ALIVE_TIMEOUT", 5, int),
        help="seconds an idle keep-alive connection stays open [SERVING_KEEP_ALIVE_TIMEOUT] "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        default=_env("HEADER_TIMEOUT", 10.0, float),
        help="seconds for a request head to arrive once a connection is open or idle "
        "[SERVING_HEADER_TIMEOUT] (default: %(default)s)",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        default=_env("BODY_TIMEOUT", 30.0, float),
        help="seconds for a request body to arrive, else 408 [SERVING_BODY_TIMEOUT] "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--prediction-log",
        default=_env("PREDICTION_LOG", None),
        help="append sampled predictions as JSON lines here [SERVING_PREDICTION_LOG]",
    )
    p.add_argument(
        "--log-sample-rate",
        type=_rate,
        default=_env("LOG_SAMPLE_RATE", 1.0, _rate),
        help="share of rows written to the prediction log, 0..1 [SERVING_LOG_SAMPLE_RATE]",
    )
    capture = p.add_argument_group(
        "capture", "ship the sampled prediction log to object storage (docs/monitoring.md)"
    )
    capture.add_argument(
        "--capture-url",
        default=_env("CAPTURE_URL", None),
        help="s3://bucket/predictions, file:///dir or a directory [SERVING_CAPTURE_URL]",
    )
    capture.add_argument(
        "--capture-dir",
        default=_env("CAPTURE_DIR", None),
        help="local spool directory (its own volume) [SERVING_CAPTURE_DIR]",
    )
    capture.add_argument(
        "--capture-max-bytes",
        type=int,
        default=_env("CAPTURE_MAX_BYTES", 64 * 1024 * 1024, int),
        help="close a file at this size [SERVING_CAPTURE_MAX_BYTES] (default: %(default)s)",
    )
    capture.add_argument(
        "--capture-max-seconds",
        type=float,
        default=_env("CAPTURE_MAX_SECONDS", 300.0, float),
        help="close a file at this age [SERVING_CAPTURE_MAX_SECONDS] (default: %(default)s)",
    )
    capture.add_argument(
        "--capture-backlog-bytes",
        type=int,
        default=_env("CAPTURE_BACKLOG_BYTES", 1024 * 1024 * 1024, int),
        help="closed files kept while the store is down; oldest dropped beyond "
        "[SERVING_CAPTURE_BACKLOG_BYTES] (default: %(default)s)",
    )
    capture.add_argument(
        "--capture-drain-seconds",
        type=float,
        default=_env("CAPTURE_DRAIN_SECONDS", 20.0, float),
        help="time to ship on shutdown [SERVING_CAPTURE_DRAIN_SECONDS] (default: %(default)s)",
    )
    capture.add_argument(
        "--capture-ship",
        choices=("inline", "sidecar"),
        default=_env("CAPTURE_SHIP", "inline"),
        help="who expands, gzips and uploads closed files: a thread of this server, or "
        "`python -m serving.capture` beside it, off the serving core "
        "[SERVING_CAPTURE_SHIP] (default: %(default)s)",
    )
    capture.add_argument(
        "--capture-host",
        default=_env("CAPTURE_HOST", None),
        help="name prefix of captured files (default: the host name, the pod's name) "
        "[SERVING_CAPTURE_HOST]",
    )
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "info"))
    p.add_argument(
        "--access-log",
        action="store_true",
        default=_env("ACCESS_LOG", False, lambda v: v.lower() in ("1", "true", "yes")),
        help="log every request (off by default: it costs throughput) [SERVING_ACCESS_LOG]",
    )
    return p


def sidecar(config: Any) -> Any:
    """A second uvicorn server for the same event loop that leaves signals to the main one;
    `serve_both` stops it when the main server stops."""
    import uvicorn

    class Sidecar(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Sidecar(config)


async def serve_both(main_server: Any, sidecar: Any) -> None:
    side = asyncio.create_task(sidecar.serve())
    try:
        await main_server.serve()
    finally:
        sidecar.should_exit = True
        await side


def build_capture(args: argparse.Namespace) -> Any:
    """The capture the settings ask for, or None; inconsistent settings are a UserError."""
    import socket
    from pathlib import Path

    from serving.capture.segments import CaptureConfig, environment_url
    from serving.capture.shipper import open_capture

    url = environment_url(args.capture_url)
    if url is None:
        return None
    if args.prediction_log:
        raise UserError(
            "--prediction-log and --capture-url both set: capture writes its own files under "
            "--capture-dir; keep one"
        )
    if not args.capture_dir:
        raise UserError(
            "--capture-url needs --capture-dir (SERVING_CAPTURE_DIR), the local spool directory"
        )
    config = CaptureConfig(
        url,
        Path(args.capture_dir),
        args.capture_max_bytes,
        args.capture_max_seconds,
        args.capture_backlog_bytes,
        args.capture_drain_seconds,
        args.capture_host or socket.gethostname(),
        args.capture_ship,
    )
    return open_capture(config)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if not args.model:
            raise UserError("no model given: pass --model PATH or set SERVING_MODEL")
        limits = (args.max_rows, args.max_body_bytes, args.limit_concurrency)
        timeouts = (args.keep_alive_timeout, args.header_timeout, args.body_timeout)
        if min(limits) < 1 or min(timeouts) <= 0:
            raise UserError(
                "--max-rows, --max-body-bytes, --limit-concurrency and the timeouts must be "
                "positive"
            )
        # Imported here so that `--help` and argument errors stay instant.
        import uvicorn

        from serving.app import Settings, create_app, operations_app
        from serving.connections import http_protocol, limit_log_floods
        from serving.model import load_model

        capture = build_capture(args)
        model = load_model(args.model, args.contract, args.metadata, args.model_name)
        prediction_log = None
        if args.prediction_log or capture is not None:
            from serving.capture.writer import PredictionLog

            prediction_log = PredictionLog(
                capture or args.prediction_log,
                args.log_sample_rate,
                model.info.name,
                model.info.version,
            )
            prediction_log.open()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    apart = args.metrics_port is not None
    settings = Settings(args.max_body_bytes, args.max_rows, args.body_timeout)
    app = create_app(model, settings, prediction_log, apart)
    logging.getLogger("serving").info("serving %s from %s", model.info.name, model.info.source)
    print(
        f"serving {model.info.name} {model.info.version} (sha256 {model.info.onnx_sha256[:12]}…) "
        f"on http://{args.host}:{args.port}",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        workers=1,
        http=http_protocol(args.header_timeout, args.limit_concurrency),
        timeout_keep_alive=args.keep_alive_timeout,
        log_level=args.log_level,
        access_log=args.access_log,
        server_header=False,
    )
    limit_log_floods()
    if not apart:
        uvicorn.Server(config).run()
        return 0
    operations = uvicorn.Config(
        operations_app(app),
        host=args.host,
        port=args.metrics_port,
        lifespan="off",
        log_level=args.log_level,
        access_log=False,
        server_header=False,
    )
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(serve_both(uvicorn.Server(config), sidecar(operations)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
