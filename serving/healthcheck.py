"""`python -m serving.healthcheck`: exit 0 when the local server is ready, 1 otherwise.

The container HEALTHCHECK; reads the server's own settings (serving/settings.py), so the check
follows the port wherever the deployment moves it.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from gitops_ml.errors import UserError
from serving.settings import load_settings


def main() -> int:
    try:
        port = load_settings([]).port
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    url = f"http://127.0.0.1:{port}/v2/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"not ready: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
