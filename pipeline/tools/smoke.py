"""CI smoke run of the whole pipeline on the tiny profile, in a temporary copy of the repository.

``python -m pipeline.tools.smoke --out DIR`` copies the working tree (tracked and untracked-not-ignored
files; no ``data/``, ``models/``, MLflow store) into a temporary git repository
(:func:`make_tiny_repo`), sets ``profile: tiny`` in its ``params.yaml``, puts the committed tiny
baseline (``metrics/ci/*.json``) in place of its ``metrics/*.json`` and commits, then runs
``dvc repro`` there and exports (:func:`export`) into ``DIR``:

- ``DIR/metrics/*.json`` — the run's metrics files (input of ``python -m pipeline.tools.check_metrics``);
- ``DIR/metrics_diff.md`` — ``dvc metrics diff --md HEAD`` in the copy, i.e. the committed tiny
  baseline (the copy's HEAD) against this run (its workspace).

The repository's own ``metrics/`` (the default profile's results) is never touched.
``--update-baseline`` copies the run's metrics JSON files into ``metrics/ci/`` (commit them when a
change of the metrics is intended). The end-to-end test ``tests/test_e2e_experiments.py`` builds
its repository with the same :func:`make_tiny_repo`; ``.ci/run`` lets it export its first
experiment (the same tiny pipeline, run by ``dvc exp run``) through ``NAR_SMOKE_OUT`` instead of
running the pipeline twice, and falls back to this module when the test did not run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASELINE = Path("metrics/ci")
HEADLINE = "headline"  # metrics/headline/: the DVC metrics, one file per split and system
SKIP_PREFIXES = ("reports/", "mlruns/", "mlartifacts/")
GIT = ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", "-c", "commit.gpgsign=false"]
# Variables that would send the copy's runs elsewhere (an outer DVC run or MLflow store).
ENV_DROP = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "DVC_ROOT", "DVC_EXP_NAME", "DVC_STAGE")


class SmokeError(RuntimeError):
    """A step of the smoke run failed."""


def clean_env() -> dict[str, str]:
    """The current environment without the variables of :data:`ENV_DROP`."""
    return {k: v for k, v in os.environ.items() if k not in ENV_DROP}


def copy_tree(src: Path, dst: Path, skip: tuple[str, ...] = SKIP_PREFIXES) -> None:
    """Tracked and untracked-but-not-ignored files of ``src``'s working tree, except paths that
    start with one of ``skip`` (default: reports and MLflow stores; git-ignored files such as DVC
    outputs are never copied)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=src,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        path = src / rel
        if rel.startswith(skip) or not path.is_file():
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dst / rel)


def set_profile(params: Path, profile: str) -> None:
    """Replace the top-level ``profile:`` value of a params.yaml (keeps its comments)."""
    text, n = re.subn(r"(?m)^profile:\s*\S+", f"profile: {profile}", params.read_text())
    if n != 1:
        raise SmokeError(f"{params}: expected exactly one top-level 'profile:' line, found {n}")
    params.write_text(text)


def make_tiny_repo(dst: Path, src: Path = ROOT, baseline: Path | None = None) -> Path:
    """A committed git repository at ``dst``: ``src``'s tree, ``profile: tiny``, tiny baseline metrics.

    The baseline's JSON files (``src/metrics/ci`` unless given) replace ``metrics/*.json`` in the
    commit, so ``dvc metrics diff HEAD`` there compares a run with the tiny baseline.
    """
    dst.mkdir(parents=True, exist_ok=True)
    copy_tree(src, dst)
    set_profile(dst / "params.yaml", "tiny")
    base = baseline if baseline is not None else src / BASELINE
    for f in sorted(base.glob("*.json")) if base.is_dir() else []:
        shutil.copy2(f, dst / "metrics" / f.name)
    if (base / HEADLINE).is_dir():  # the DVC metrics (evaluate's headline files)
        shutil.copytree(base / HEADLINE, dst / "metrics" / HEADLINE, dirs_exist_ok=True)
    env = clean_env()
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True, env=env)
    subprocess.run(["git", "add", "-A"], cwd=dst, check=True, env=env)
    subprocess.run([*GIT, "commit", "-q", "-m", "tiny smoke copy"], cwd=dst, check=True, env=env)
    return dst


def run(cmd: list[str], cwd: Path, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in ``cwd`` with :func:`clean_env`; raises :class:`SmokeError` with its output tail."""
    proc = subprocess.run(cmd, cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stdout[-3000:] + "\n" + proc.stderr[-3000:]).strip()
        raise SmokeError(f"`{' '.join(cmd)}` failed with exit status {proc.returncode} in {cwd}:\n{tail}")
    return proc


def export(repo: Path, out: Path) -> Path:
    """Copy ``repo/metrics/*.json`` (and ``metrics/headline/``) to ``out/metrics/`` and write
    ``out/metrics_diff.md`` (``dvc metrics diff``: the headline files); returns it."""
    (out / "metrics").mkdir(parents=True, exist_ok=True)
    for f in sorted((repo / "metrics").glob("*.json")):
        shutil.copy2(f, out / "metrics" / f.name)
    if (repo / "metrics" / HEADLINE).is_dir():
        shutil.copytree(repo / "metrics" / HEADLINE, out / "metrics" / HEADLINE, dirs_exist_ok=True)
    diff = run(["dvc", "metrics", "diff", "--md", "HEAD"], repo).stdout.strip()
    text = diff or "_No metric differs from the committed tiny baseline._"
    path = out / "metrics_diff.md"
    path.write_text(text + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """CLI; returns the exit status."""
    ap = argparse.ArgumentParser(prog="python -m pipeline.tools.smoke", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="where the metrics and the diff go")
    ap.add_argument("--keep", action="store_true", help="keep the temporary repository (path is printed)")
    ap.add_argument("--update-baseline", action="store_true", help=f"copy the metrics into {BASELINE}/")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="nar-smoke-"))
    try:
        repo = make_tiny_repo(tmp / "repo")
        t0 = time.perf_counter()
        print(f"smoke: dvc repro (profile tiny) in {repo}", flush=True)
        run(["dvc", "repro"], repo)
        print(f"smoke: dvc repro took {time.perf_counter() - t0:.0f} s", flush=True)
        diff = export(repo, args.out)
        print(diff.read_text())
        if args.update_baseline:
            dst = ROOT / BASELINE
            dst.mkdir(parents=True, exist_ok=True)
            for f in sorted((args.out / "metrics").glob("*.json")):
                shutil.copy2(f, dst / f.name)
            if (args.out / "metrics" / HEADLINE).is_dir():
                shutil.copytree(args.out / "metrics" / HEADLINE, dst / HEADLINE, dirs_exist_ok=True)
            print(f"smoke: baseline updated in {dst} (review and commit it)")
    except (SmokeError, subprocess.TimeoutExpired) as exc:
        print(f"smoke: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"smoke: kept {tmp / 'repo'}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
