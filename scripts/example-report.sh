#!/usr/bin/env bash
# Regenerate the README's example PR report: in a scratch clone of HEAD, a "pull request" that
# lowers model.hyperparams.max_iter to 30 is reproduced with DVC and reported against main.
#   usage: scripts/example-report.sh [OUTPUT]     (default docs/example_pr_report.md)
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
output="$(realpath -m "${1:-$repo_root/docs/example_pr_report.md}")"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
export PATH="$repo_root/.venv/bin:$PATH" DVC_NO_ANALYTICS=1 ITERATIVE_DO_NOT_TRACK=1

git clone --quiet "$repo_root" "$scratch/repo"
cd "$scratch/repo"
ln -s "$repo_root/.venv" .venv                     # dvc.yaml's stages run .venv/bin/gitops-ml
echo /.venv >> .git/info/exclude                   # a link, not the ignored directory
git -c advice.detachedHead=false checkout --quiet -B main
dvc repro --quiet                                  # base: the committed state of main
git checkout --quiet -b fewer-trees
python -c 'from gitops_ml.params_edit import set_params_file as s; s("params.yaml", {"model.hyperparams.max_iter": 30})'
dvc repro --quiet
git -c user.name=example -c user.email=example@example.invalid commit --quiet -am "model: 30 trees"
gitops-ml report --base main --output "$output"
echo "wrote $output ($(wc -c < "$output") characters)"
