#!/usr/bin/env bash
# Pull DVC-tracked files from the team's remote when one is configured and reachable; otherwise
# say why and succeed, so whatever is missing gets reproduced. Every workflow calls this (via
# `make dvc-pull`), so "no remote", "fork without secrets" and "remote down" behave the same.
#   DVC_REMOTE_URL   optional remote URL (a repository variable); overrides the default remote
#   usage: scripts/dvc-pull.sh [TARGET ...]     no target: everything dvc.lock records
set -euo pipefail

if [ -n "${DVC_REMOTE_URL:-}" ]; then
  dvc remote add --local --force --default ci "$DVC_REMOTE_URL"
fi
name="$(dvc config core.remote 2>/dev/null || true)"
url=""
if [ -n "$name" ]; then
  url="$(dvc config "remote.${name}.url" 2>/dev/null || true)"
fi
case "$url" in
  "")
    echo "no DVC remote configured: nothing to pull"
    exit 0 ;;
  *://*) ;;
  /*)
    if [ ! -d "$url" ]; then
      echo "DVC remote '$name' ($url) does not exist on this machine: nothing to pull"
      exit 0
    fi ;;
  *)
    if [ ! -d ".dvc/$url" ]; then  # relative remote paths are relative to .dvc/
      echo "DVC remote '$name' ($url) does not exist on this machine: nothing to pull"
      exit 0
    fi ;;
esac
if ! dvc pull --allow-missing "$@"; then
  echo "::warning::dvc pull from '$name' failed; missing outputs will be reproduced"
fi
