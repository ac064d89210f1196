"""`python -m serving.capture`: the capture sidecar, shipping the server's spool off the serving
core with the server's own settings (docs/monitoring.md, "In the pod"). With the URL empty it
idles (capture off) instead of failing; SIGTERM ships what is closed within the drain time.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence

from gitops_ml.errors import UserError
from serving.settings import load_settings


def main(argv: Sequence[str] | None = None) -> int:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        settings = load_settings(argv)
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
        )
        shipper = None
        if settings.capture_url:  # fsspec and the store's client are imported only then
            from serving.capture.shipper import Shipper

            shipper = Shipper(settings)
            shipper.start()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: capture spool: {exc.strerror or exc}", file=sys.stderr)
        return 2
    log = logging.getLogger("serving.capture")
    if shipper is None:
        log.info("capture off (SERVING_CAPTURE_URL is empty); idling until stopped")
    else:
        log.info("shipping %s to %s", shipper.spool, shipper.url)
    while not stop.wait(1.0):  # a timeout, so the signal handler runs promptly
        pass
    if shipper is not None:
        shipper.drain()
        log.info("stopped: %s", ", ".join(f"{k} {v}" for k, v in shipper.counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
