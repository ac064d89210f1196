"""Run a stage's joblib work on a Ray cluster when one is configured, and locally otherwise.

Evaluate's fits and drift's partitions are `joblib.Parallel` calls that name no backend, so
whoever runs them chooses where they go. This module is that choice: with Ray's own
`RAY_ADDRESS` variable set to a head node's GCS address (`HOST:PORT`), a CLI connects to the
cluster (`ray.init`), registers Ray's joblib backend and runs the stage under
`joblib.parallel_config(backend="ray")`; unset, nothing changes and Ray is never imported.

The address is an environment variable, not a param: where the work runs changes no number
(a test checks that the cluster gives the local results), so it must not invalidate DVC's
record of a stage; and it is the variable Ray's own tools read. Ray is the optional `scale`
extra (docs/scale.md).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import joblib

from gitops_ml.errors import UserError

ADDRESS_VARIABLE = "RAY_ADDRESS"
INSTALL_HINT = "uv sync --extra pipeline --extra scale, or pip install 'gitops-ml[scale]'"
CONNECT_TIMEOUT_S = 5.0  # a head that does not answer in 5 s is down, not slow


class ClusterError(UserError):
    """RAY_ADDRESS is set but the cluster cannot be used (no Ray, bad address, unreachable)."""


def head_address(environ: Mapping[str, str]) -> tuple[str, int] | None:
    """The (host, port) RAY_ADDRESS names, or None when it is unset or empty."""
    address = environ.get(ADDRESS_VARIABLE, "").strip()
    if not address:
        return None
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in address:
        raise ClusterError(
            f"{ADDRESS_VARIABLE}={address!r} is not a Ray head's GCS address HOST:PORT "
            "(e.g. raycluster-head-svc:6379); unset it to run locally"
        )
    return host, int(port)


def check_reachable(host: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast when nothing answers at the head's address: Ray itself retries for minutes."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ClusterError(
            f"cannot reach the Ray cluster at {ADDRESS_VARIABLE}={host}:{port} ({reason}); "
            "start it (`ray start --head`) or unset the variable to run locally"
        ) from None


@contextmanager
def joblib_backend(environ: Mapping[str, str] = os.environ) -> Iterator[str | None]:
    """Within the block, joblib work goes to the Ray cluster at RAY_ADDRESS (yields its
    address), or stays local when the variable is unset (yields None)."""
    head = head_address(environ)
    if head is None:
        yield None
        return
    host, port = head
    address = f"{host}:{port}"
    check_reachable(host, port)
    try:
        import ray
        from ray.util.joblib import register_ray
    except ImportError:
        raise ClusterError(
            f"{ADDRESS_VARIABLE}={address} is set but Ray is not installed: install the scale "
            f"extra ({INSTALL_HINT}) or unset the variable to run locally"
        ) from None
    try:
        ray.init(address=address)
    except (ConnectionError, RuntimeError) as exc:
        raise ClusterError(f"cannot join the Ray cluster at {address}: {exc}") from None
    try:
        register_ray()
        with joblib.parallel_config(backend="ray"):
            yield address
    finally:
        ray.shutdown()
