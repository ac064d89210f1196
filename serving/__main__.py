"""`python -m serving --model PATH [--host H] [--port P]`: load, verify, then serve (settings:
docs/serving.md). The model is loaded and checked before the server binds its port: a missing
or corrupt model prints `error: ...` and exits non-zero.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from gitops_ml.errors import UserError
from serving.settings import load_settings


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = load_settings(argv)
        if not settings.model:
            raise UserError("no model given: pass --model PATH or set SERVING_MODEL")
        # Imported here so that `--help` and argument errors stay instant.
        import uvicorn

        from serving.app import create_app, with_operations_port
        from serving.connections import http_protocol, limit_log_floods
        from serving.model import load_model

        capture = None
        if settings.capture_url:  # capture's modules (and fsspec) are imported only then
            from serving.capture.segments import Segments

            capture = Segments(settings)
        model = load_model(
            settings.model, settings.contract, settings.metadata, settings.model_name
        )
        prediction_log = None
        if capture is not None:
            from serving.capture.writer import PredictionLog

            capture.open()  # a spool that cannot be written stops the server here
            prediction_log = PredictionLog(
                capture, settings.log_sample_rate, model.info.name, model.info.version
            )
        app = create_app(model, settings, prediction_log)  # runs the model on its examples
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    metrics_port = settings.metrics_port
    print(
        f"serving {model.info.name} {model.info.version} (sha256 {model.info.onnx_sha256[:12]}…) "
        f"on http://{settings.host}:{settings.port}",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(
        app if metrics_port is None else with_operations_port(app, metrics_port),
        host=settings.host,
        port=settings.port,
        http=http_protocol(settings.header_timeout, settings.max_header_bytes),
        timeout_keep_alive=settings.keep_alive_timeout,
        log_level=settings.log_level,
        access_log=settings.access_log,
        server_header=False,
    )
    sockets = None
    if metrics_port is not None:  # one server on two sockets, both bound the same way
        operations = uvicorn.Config(app, host=settings.host, port=metrics_port)
        sockets = [config.bind_socket(), operations.bind_socket()]
    limit_log_floods()
    uvicorn.Server(config).run(sockets=sockets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
