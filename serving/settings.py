"""The one settings object of serving, read by the server, the capture sidecar and the
healthcheck (docs/serving.md).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gitops_ml import paths
from gitops_ml.errors import UserError

ENV_PREFIX = "SERVING_"
MIB = 1024 * 1024


class Settings(BaseSettings):
    """`python -m serving`: load and verify the model, then serve it over HTTP.

    Each option is also read from the environment as SERVING_ + its name in capitals
    (--max-rows: SERVING_MAX_ROWS, --model: SERVING_MODEL, --port: SERVING_PORT,
    --capture-url: SERVING_CAPTURE_URL); a flag overrides its variable.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        frozen=True,
        protected_namespaces=(),
        use_attribute_docstrings=True,
        cli_prog_name="python -m serving",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_hide_none_type=True,
        cli_avoid_json=True,
    )

    model: str | None = None
    """bundle directory or model.onnx"""
    contract: str = str(paths.CONTRACT)
    """data contract for a bare model.onnx"""
    metadata: str | None = None
    """metrics/export.json whose onnx.sha256 a bare model must match"""
    model_name: str | None = None
    """model name in the V2 paths (default: the bundle's, else the model artifact's name in
    ./dvc.yaml, else 'model')"""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    """serve /metrics, /docs and /openapi.json on this port"""

    # Limits: one request, one connection, the whole server.
    max_body_bytes: int = Field(default=8 * MIB, ge=1)
    """larger bodies get 413"""
    max_rows: int = Field(default=10_000, ge=1)
    """more rows in one request get 413"""
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    """a larger request head (line and headers) gets 431"""
    limit_concurrency: int = Field(default=512, ge=1)
    """requests in flight beyond which a request gets a JSON 503"""
    keep_alive_timeout: int = Field(default=5, ge=1)
    """seconds an idle keep-alive connection stays open"""
    header_timeout: float = Field(default=10.0, gt=0)
    """seconds for a request head to arrive, else the connection closes"""
    body_timeout: float = Field(default=30.0, gt=0)
    """seconds for a request body, else 408"""

    # Capture of the predictions to object storage or a directory (docs/monitoring.md).
    log_sample_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    """share of rows captured"""
    capture_url: str | None = None
    """capture predictions here: s3://bucket/prefix, file:///dir or a dir"""
    capture_dir: Path | None = None
    """local spool directory (its own volume)"""
    capture_max_bytes: int = Field(default=64 * MIB, ge=1)
    """close a spool file at this size"""
    capture_max_seconds: float = Field(default=300.0, gt=0)
    """close a spool file at this age"""
    capture_backlog_bytes: int = Field(default=1024 * MIB, ge=1)
    """closed files kept while the store is down; oldest dropped"""
    capture_drain_seconds: float = Field(default=20.0, ge=0)
    """time to ship on shutdown"""
    capture_host: str | None = None
    """name prefix of captured files (default: the host name, the pod's)"""

    log_level: str = "info"
    access_log: bool = False
    """log every request (costs throughput)"""

    @field_validator("capture_url")
    @classmethod
    def _local_directory_is_a_file_url(cls, url: str | None) -> str | None:
        """A bare local directory reads as file://; anything else goes to fsspec as given."""
        return "file://" + os.path.abspath(url) if url and "://" not in url else url

    @model_validator(mode="after")
    def _capture_is_consistent(self) -> Settings:
        if self.capture_url and self.capture_dir is None:
            raise ValueError(
                "--capture-url needs --capture-dir, the local spool directory (SERVING_CAPTURE_URL "
                "needs SERVING_CAPTURE_DIR)"
            )
        return self


def load_settings(argv: Sequence[str] | None = None) -> Settings:
    """The settings from the environment, overridden by the flags in `argv` (default: the
    command line); a bad value is a UserError naming the variable and the rule."""
    try:
        return Settings(_cli_parse_args=sys.argv[1:] if argv is None else list(argv))  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            field = "_".join(str(part) for part in error["loc"])
            name = f"{ENV_PREFIX}{field.upper()} (--{field.replace('_', '-')}): " if field else ""
            problems.append(name + error["msg"].removeprefix("Value error, "))
        raise UserError("serving settings: " + "; ".join(problems)) from None
