"""`python -m serving.healthcheck`: exit 0 when the local server is ready, 1 otherwise.

The container HEALTHCHECK; uses only the standard library and the same SERVING_PORT the
server reads, so the check follows the port wherever the deployment moves it.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    port = os.environ.get("SERVING_PORT", "8080")
    url = f"http://127.0.0.1:{port}/v2/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"not ready: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
