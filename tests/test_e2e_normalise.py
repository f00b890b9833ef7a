"""End to end: ``dvc repro normalise`` (synthesize -> ingest -> normalise) in a temporary copy."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import load_params
from pipeline.store import SPLITS, SplitStore

ROOT = Path(__file__).resolve().parents[1]


def copy_repo(dst: Path) -> None:
    """Tracked and untracked-but-not-ignored files of the working tree (no data/metrics)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if rel.startswith(("metrics/", "data/", "models/")) or not src.is_file():
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / rel)


@pytest.mark.e2e
def test_dvc_repro_normalise_tiny(tmp_path: Path) -> None:
    if not (ROOT / "pipeline" / "synthesize.py").exists():
        pytest.skip("pipeline/synthesize.py (the synthesize stage) is not there yet")
    if shutil.which("dvc") is None or shutil.which("git") is None:
        pytest.skip("dvc/git not installed")
    repo = tmp_path / "repo"
    copy_repo(repo)
    params = repo / "params.yaml"
    text, n = re.subn(r"(?m)^profile:\s*\S+", "profile: tiny", params.read_text())
    assert n == 1
    params.write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    run = subprocess.run(["dvc", "repro", "normalise"], cwd=repo, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    ingest = json.loads((repo / "metrics" / "ingest.json").read_text())
    normalised = json.loads((repo / "metrics" / "normalise.json").read_text())
    assert ingest["source"] == "synthetic" and ingest["frames_per_s"] > 0
    for split in SPLITS:
        raw = SplitStore.load(repo / "data" / "ingested" / split)
        out = SplitStore.load(repo / "data" / "normalised" / split)
        assert len(raw) == ingest[split]["sequences"] > 0 and ingest[split]["skipped_total"] == 0
        assert out.poses.shape[1:] == (50, 3) and out.channels == ["x", "y", "c"]
        assert out.poses.min() >= 0 and out.poses.max() <= 1
        assert len(out) == normalised[split]["sequences"]
        assert out.poses.shape[0] == raw.poses.shape[0] - normalised[split]["frames_dropped"]
        assert "gt3d" in raw.arrays and out.arrays["gt3d"].shape == (out.poses.shape[0], 50, 3)
        assert all("centre" in e and e["scale"] > 0 for e in out.index)
    # the tiny profile's corpus sizes reach the stores
    synthetic = load_params(params)["synthetic"]
    assert normalised["train"]["sequences_in"] == synthetic["n_train"]
    assert normalised["dev"]["sequences_in"] == synthetic["n_dev"]
    transform = json.loads((repo / "data" / "normalised" / "transform.json").read_text())
    assert np.all(np.asarray(transform["high"]) > np.asarray(transform["low"]))
    # a second repro is a no-op (deps and outs are declared completely)
    again = subprocess.run(["dvc", "status", "normalise"], cwd=repo, capture_output=True, text=True)
    assert "changed" not in again.stdout, again.stdout
