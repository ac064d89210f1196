"""`gitops-ml status`: what each environment runs, according to Git alone.

For every environment: the pinned bundle version and image digest (`deploy/<env>/pin/`, as
committed), the commit that last changed the pin (the deployment, or its revert), the commit the
version was built from (its `<model>@vX.Y.Z` tag) with that commit's key metrics, and the latest
GTO stage tag, flagged when a revert moved the pin away from it. No cluster is asked: in pull
mode this is what Argo CD / Flux converge to, in push mode what the last workflow applied.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gitops_ml import paths
from gitops_ml.evaluate_metrics import EvaluateMetricsError, evaluate_metrics_from_json
from gitops_ml.metric_registry import METRICS
from gitops_ml.release import environments, versions

KEY_METRICS = ("roc_auc", "pr_auc", "f1")


@dataclass(frozen=True)
class EnvironmentStatus:
    environment: str
    version: str | None
    image: str | None
    digest: str | None
    pin_commit: str | None  # last commit touching the pin file
    pin_subject: str | None
    release_tag: str | None
    release_commit: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    stage_tag: str | None = None  # latest <model>#<env>#N
    stage_version: str | None = None


def _metrics_at(root: str | Path, rev: str) -> dict[str, float]:
    """The key test metrics committed at `rev`; none when its metrics file is absent or of
    another shape (an older revision's)."""
    source = f"{rev}:{paths.EVALUATE_METRICS}"
    text = versions.git(root, "show", source, check=False)
    try:
        test = evaluate_metrics_from_json(text, source).test if text else {}
    except EvaluateMetricsError:
        return {}
    return {k: value for k in KEY_METRICS if (value := test.get(k)) is not None}


def environment_status(
    root: str | Path, env: str, rev: str = "HEAD", name: str | None = None
) -> EnvironmentStatus:
    name = name or versions.model_name(root)
    pin = environments.read_pin(root, env, rev=rev)
    log = versions.git(
        root, "log", "-1", "--format=%H%x00%s", rev, "--", environments.pin_path(env), check=False
    )
    pin_commit, _, subject = log.partition("\0")
    release_tag = release_commit = None
    metrics: dict[str, float] = {}
    if pin.version is not None:
        tag = versions.version_tag(name, pin.version)
        found = versions.git(root, "rev-list", "-n", "1", tag, check=False)
        if found:
            release_tag, release_commit = tag, found
            metrics = _metrics_at(root, found)
    stage_tag, stage_version = environments.latest_stage_tag(root, name, env)
    return EnvironmentStatus(
        env,
        pin.version,
        pin.image,
        pin.digest,
        pin_commit or None,
        subject or None,
        release_tag,
        release_commit,
        metrics,
        stage_tag,
        stage_version,
    )


def render(statuses: list[EnvironmentStatus]) -> str:
    """A block per environment; what a person needs to answer "what runs where, since when"."""
    blocks = []
    for s in statuses:
        lines = [f"{s.environment}:"]
        if s.version is None:
            lines.append("  nothing pinned yet")
        else:
            lines.append(f"  version   {s.version}")
            lines.append(f"  image     {s.image}@{s.digest}")
            built = (
                f"{s.release_commit[:12]} ({s.release_tag})"
                if s.release_commit
                else "unknown: no version tag for it"
            )
            lines.append(f"  built at  {built}")
            if s.metrics:
                shown = ", ".join(
                    f"{METRICS[k].label if k in METRICS else k} {v:.4f}"
                    for k, v in s.metrics.items()
                )
                lines.append(f"  metrics   {shown}")
        if s.pin_commit and s.version is not None:
            lines.append(f"  pinned by {s.pin_commit[:12]} {s.pin_subject}")
        if s.stage_tag:
            note = ""
            if s.stage_version != s.version:
                note = f"  (Git now pins {s.version or 'nothing'}: the pin was reverted or moved)"
            lines.append(f"  stage tag {s.stage_tag} -> {s.stage_version or '?'}{note}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def status(root: str | Path = ".", rev: str = "HEAD") -> list[EnvironmentStatus]:
    name = versions.model_name(root)
    return [environment_status(root, env, rev, name) for env in environments.environments(root)]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rev", default="HEAD", help="read Git as of this revision")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    statuses = status(".", args.rev)
    if not statuses:
        raise environments.EnvironmentError(
            f"no environments: expected {environments.DEPLOY_DIR}/<env>/pin/kustomization.yaml"
        )
    if args.json:
        payload: list[dict[str, Any]] = [asdict(s) for s in statuses]
        print(json.dumps(payload, indent=2))
    else:
        print(render(statuses))
    return 0
