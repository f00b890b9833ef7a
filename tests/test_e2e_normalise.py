"""End to end: ``dvc repro normalise`` (synthesize -> ingest -> normalise) in a temporary copy."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SHARED

from pipeline.config import load_params
from pipeline.data.store import SPLITS, SplitStore
from pipeline.data.transform import UnitRange
from pipeline.preprocess.normalise import denormalise
from pipeline.tools.smoke import SKIP_PREFIXES, copy_tree


def copy_repo(dst: Path) -> None:
    """The working tree without data, models and metrics (the stages under test write them)."""
    copy_tree(ROOT, dst, skip=(*SKIP_PREFIXES, "metrics/"))


def shared_git_copy(tmp_path: Path) -> Path:
    """:func:`copy_repo` into ``tmp_path/repo`` as a committed git repository, with ``../shared``
    resolving to the real-data fixtures (the README's real-data commands use that path)."""
    (tmp_path / "shared").symlink_to(SHARED)
    repo = tmp_path / "repo"
    copy_repo(repo)
    git = ["git", "-c", "user.email=test@example.com", "-c", "user.name=test"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "copy"], cwd=repo, check=True)
    return repo


@pytest.mark.slow
@pytest.mark.e2e
def test_dvc_repro_normalise_tiny(tmp_path: Path) -> None:
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
        assert out.poses.shape[1:] == (120, 3) and out.channels == ["x", "y", "c"]  # manual + face
        assert out.poses.min() >= 0 and out.poses.max() <= 1
        assert len(out) == normalised[split]["sequences"]
        assert out.poses.shape[0] == raw.poses.shape[0] - normalised[split]["frames_dropped"]
        assert "gt3d" in raw.arrays and out.arrays["gt3d"].shape == (out.poses.shape[0], 120, 3)
        assert all("centre" in e and e["scale"] > 0 for e in out.index)
        # the main signer is followed (spurious second people are not picked): the confident
        # neck never jumps by half a shoulder width between kept frames
        transform = UnitRange.load(repo / "data" / "normalised" / "transform.json")
        for seq in out.sequences():
            body = denormalise(seq, transform)
            neck = body[seq[:, 1, 2] > 0, 1, :2]
            assert np.abs(np.diff(neck, axis=0)).max() < 0.5
    # the tiny profile's corpus sizes reach the stores
    synthetic = load_params(params)["synthetic"]
    assert normalised["train"]["sequences_in"] == synthetic["n_train"]
    assert normalised["dev"]["sequences_in"] == synthetic["n_dev"]
    transform = json.loads((repo / "data" / "normalised" / "transform.json").read_text())
    assert np.all(np.asarray(transform["high"]) > np.asarray(transform["low"]))
    # a second repro is a no-op (deps and outs are declared completely)
    again = subprocess.run(["dvc", "status", "normalise"], cwd=repo, capture_output=True, text=True)
    assert "changed" not in again.stdout, again.stdout


@pytest.mark.slow
@pytest.mark.e2e
def test_dvc_exp_run_real_sources(tmp_path: Path) -> None:
    """The README's real-data commands through `lift`: pt_skels sample and the Czech OpenPose demo."""
    if not (SHARED / "data" / "phoenix14t-pt-sample").is_dir():
        pytest.skip(f"real data fixtures under {SHARED} not available")
    if shutil.which("dvc") is None or shutil.which("git") is None:
        pytest.skip("dvc/git not installed")
    repo = shared_git_copy(tmp_path)

    def exp_run(*sets: str) -> subprocess.CompletedProcess[str]:
        cmd = ["dvc", "exp", "run", "lift"] + [a for s in sets for a in ("-S", s)]
        run = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=600)
        return run

    run = exp_run("data.source=pt_skels", "data.path=../shared/data/phoenix14t-pt-sample")
    assert run.returncode != 0 and "set normalise.face: false" in run.stderr + run.stdout  # .skels: no face
    pt_sample = "data.path=../shared/data/phoenix14t-pt-sample"
    run = exp_run("data.source=pt_skels", pt_sample, "normalise.face=false")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    ingest = json.loads((repo / "metrics" / "ingest.json").read_text())
    assert ingest["source"] == "pt_skels" and ingest["train"]["sequences"] == 5
    out = SplitStore.load(repo / "data" / "normalised" / "test")
    assert out.channels == ["x", "y", "z"] and len(out) == 5
    lifted = SplitStore.load(repo / "data" / "lifted" / "test")  # 3D passes through, mapped to [0, 1]
    assert lifted.poses.shape == out.poses.shape
    assert lifted.poses.min() >= 0.0 and lifted.poses.max() <= 1.0
    assert json.loads((repo / "metrics" / "lift.json").read_text())["test"]["sequences"] == 5

    demo = tmp_path / "czech"
    shutil.copytree(SHARED / "data" / "openpose-czech-demo", demo)
    header = "name|video|start|end|speaker|orth|translation\n"
    (demo / "demo.train.corpus.csv").write_text(header + "rec01|rec01/1/*.png|-1|-1|A|X|x .\n")
    (demo / "demo.dev.corpus.csv").write_text(header + "rec02|rec02/1/*.png|-1|-1|B|Y|y .\n")
    run = exp_run("data.source=openpose", f"data.path={demo}", "normalise.face=false")  # no test split
    assert run.returncode != 0 and "no test split" in run.stderr + run.stdout
    shutil.copytree(demo / "rec02", demo / "rec03")  # a test recording (each folder serves one row)
    (demo / "demo.test.corpus.csv").write_text(header + "rec03|rec03/1/*.png|-1|-1|B|Y|y .\n")
    run = exp_run("data.source=openpose", f"data.path={demo}", "normalise.face=false")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    normalised = json.loads((repo / "metrics" / "normalise.json").read_text())
    assert normalised["train"]["frames_dropped_no_person"] == 1
    out = SplitStore.load(repo / "data" / "normalised" / "train")
    assert out.channels == ["x", "y", "c"] and out.poses.shape == (31, 50, 3)
    lifted = SplitStore.load(repo / "data" / "lifted" / "train")  # 2D -> 3D
    assert lifted.poses.shape == (31, 50, 3)
    lift = json.loads((repo / "metrics" / "lift.json").read_text())
    assert lift["train"]["reprojection_error"] < 0.1 and lift["train"]["bone_length_cv"] < 0.02


@pytest.mark.slow
@pytest.mark.e2e
def test_dvc_exp_run_pose_sample_through_evaluate(tmp_path: Path) -> None:
    """Issue 16: the whole chain on the real PHOENIX sentence as sign-language-datasets ships it
    (MediaPipe Holistic `.pose`), tiny profile, `dvc exp run` as README gives it."""
    if not (SHARED / "data" / "phoenix14t-holistic-sample").is_dir():
        pytest.skip(f"real data fixtures under {SHARED} not available")
    if shutil.which("dvc") is None or shutil.which("git") is None:
        pytest.skip("dvc/git not installed")
    repo = shared_git_copy(tmp_path)
    sets = ["data.source=pose", "data.path=../shared/data/phoenix14t-holistic-sample", "profile=tiny"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cmd = ["dvc", "exp", "run"] + [a for s in sets for a in ("-S", s)]
    run = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "Running stage 'evaluate'" in run.stdout
    ingest = json.loads((repo / "metrics" / "ingest.json").read_text())
    assert ingest["source"] == "pose" and ingest["frames"] == 3 * 86
    evaluated = json.loads((repo / "metrics" / "eval.json").read_text())
    assert evaluated["test.student.max_frames"] == 86 and evaluated["test.student.refs_over_max_frames"] == 0
    assert (
        np.isfinite(evaluated["test.student.fgd_paired_x10"]) and 0 <= evaluated["test.student.bleu1"] <= 100
    )
