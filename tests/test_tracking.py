"""MLflow tracking: parent/child runs, params, metrics, FAILED status, store location; stage e2e."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from pipeline.config import flatten
from pipeline.data.skeleton import MANUAL_JOINTS
from pipeline.data.store import SplitStore
from pipeline.data.transform import UnitRange
from pipeline.training import tracking

PARAMS = {
    "profile": "default",
    "seed": 5,
    "vae": {
        "hidden": [16, 8],
        "latent": 4,
        "loss": "bce",
        "kl_weight": 1e-4,
        "epochs": 2,
        "batch_size": 64,
        "lr": 3e-3,
    },  # fmt: skip
    "train": {"progress_bar": False, "log_every_n_steps": 2},
    "tracking": {"experiment": "test-exp"},
}


@pytest.fixture(scope="module")
def db_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sqlite store for the module (creating one costs seconds); tests use own experiments."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture()
def store(db_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """The shared store, an experiment of this test's own, params.yaml in the cwd."""
    for var in ("DVC_EXP_NAME", "DVC_STAGE", "DVC_ROOT", "RANK", "LOCAL_RANK", "SLURM_PROCID", "NODE_RANK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", db_uri)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(PARAMS, "tracking", {"experiment": f"exp-{request.node.name}"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    yield MlflowClient(db_uri)
    while mlflow.active_run():
        mlflow.end_run()


def _runs(client: MlflowClient, experiment: str | None = None) -> dict[str, list]:
    """Runs of ``experiment`` (default: this test's) by run name."""
    exp = client.get_experiment_by_name(experiment or PARAMS["tracking"]["experiment"])
    out: dict[str, list] = {}
    for r in client.search_runs([exp.experiment_id]):
        out.setdefault(r.info.run_name, []).append(r)
    return out


def test_flatten() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": {}}) == {
        "a.b": 1,
        "a.c.d": [1, 2],
        "e": {},
    }


def test_parent_child_params_metrics(store: MlflowClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DVC_EXP_NAME", "brisk-fox")
    with tracking.stage_run("pretrain_vae", PARAMS) as run:
        tracking.log_final_metrics(run, {"dev": {"mse": 0.25, "n": 3}, "note": "text"})
    monkeypatch.setenv("DVC_STAGE", "train_student")  # DVC's stage name wins over the argument
    with tracking.stage_run("ignored", PARAMS) as run2:
        tracking.log_final_metrics(run2, {"loss": 1.5})
    runs = _runs(store)
    assert sorted(runs) == ["brisk-fox", "pretrain_vae", "train_student"]
    parent, child = runs["brisk-fox"][0], runs["pretrain_vae"][0]
    assert len(runs["brisk-fox"]) == 1  # the second stage found the same parent
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert runs["train_student"][0].data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert child.data.tags["dvc.exp_name"] == "brisk-fox"
    assert child.data.tags["mlflow.source.git.commit"] == tracking.git_commit()
    assert child.data.params["vae.latent"] == "4" and child.data.params["vae.hidden"] == "[16, 8]"
    assert child.data.params["train.progress_bar"] == "false" and child.data.params["seed"] == "5"
    assert parent.data.params == child.data.params  # the experiment's run shows its params too
    assert child.data.metrics == {"dev.mse": 0.25, "dev.n": 3.0}
    assert parent.data.metrics == {"pretrain_vae.dev.mse": 0.25, "pretrain_vae.dev.n": 3.0,
                                   "train_student.loss": 1.5}  # fmt: skip
    assert child.info.status == parent.info.status == "FINISHED"


def test_new_params_give_a_new_parent(store: MlflowClient, tmp_path: Path) -> None:
    with tracking.stage_run("a", PARAMS):
        pass
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**PARAMS, "seed": 6}))
    with tracking.stage_run("a", PARAMS):
        pass
    runs = _runs(store)
    assert len(runs["workspace"]) == 2 and len(runs["a"]) == 2
    assert {r.data.tags["mlflow.parentRunId"] for r in runs["a"]} == {
        r.info.run_id for r in runs["workspace"]
    }


def test_exception_marks_run_failed(store: MlflowClient) -> None:
    with pytest.raises(RuntimeError, match="boom"), tracking.stage_run("crashy", PARAMS):
        raise RuntimeError("boom")
    runs = _runs(store)
    assert runs["crashy"][0].info.status == "FAILED" and runs["workspace"][0].info.status == "FAILED"
    assert mlflow.active_run() is None


def test_nonzero_rank_creates_nothing(store: MlflowClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "1")
    with tracking.stage_run("x", PARAMS) as run:
        assert run is None and tracking.mlflow_logger(run) is False
        assert tracking.log_final_metrics(run, {"a": 1}) == {}
    assert store.get_experiment_by_name(PARAMS["tracking"]["experiment"]) is None


def test_default_store_follows_dvc_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Queued experiments run in a temporary copy; the store must be the original repository's."""
    root, copy = tmp_path / "repo", tmp_path / "repo" / ".dvc" / "tmp" / "exps" / "tmp123"
    copy.mkdir(parents=True)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(root))
    monkeypatch.setenv("DVC_EXP_NAME", "queued-exp")
    monkeypatch.chdir(copy)
    (copy / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    assert tracking.tracking_uri() == f"sqlite:///{root / 'mlflow.db'}"
    (copy / "note.txt").write_text("hi")
    with tracking.stage_run("s", PARAMS) as run:
        tracking.log_artifacts(run, copy / "note.txt")
    assert (root / "mlflow.db").exists() and not (copy / "mlflow.db").exists()
    assert list((root / "mlartifacts").rglob("note.txt")) and not (copy / "mlruns").exists()


def fake_lifted(root: Path, n_train: int = 12, n_dev: int = 4, seed: int = 0) -> None:
    """A lifted store of smooth low-dimensional motion in (0, 1): 50 joints x [x, y, z]."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(0, 1.0, (4, 150))
    for split, n in (("train", n_train), ("dev", n_dev)):
        seqs = []
        for _ in range(n):
            t = np.linspace(0, 1, int(rng.integers(20, 40)))[:, None]
            z = np.sin(2 * np.pi * (t * rng.uniform(0.5, 2, 4) + rng.uniform(0, 1, 4)))
            seqs.append((1 / (1 + np.exp(-z @ mix))).reshape(-1, 50, 3).astype(np.float32))
        index = [{"name": f"{split}{i}", "text": "regen", "gloss": "REGEN"} for i in range(n)]
        SplitStore.from_sequences(seqs, index, MANUAL_JOINTS, ["x", "y", "z"]).save(root / split)
    UnitRange([-2.0, 0.0, 1.0], [2.0, 1.0, 3.0]).save(root / "transform.json")


@pytest.mark.slow
def test_pretrain_vae_end_to_end(workspace: Callable[..., Path]) -> None:
    from pipeline.models.vae import load_vae
    from pipeline.stages import pretrain_vae

    sections = {k: PARAMS[k] for k in ("seed", "vae", "train")}
    root = workspace(profile="default", tracking={"experiment": "test-vae"}, **sections)
    fake_lifted(root / "data" / "lifted")
    metrics = pretrain_vae.main([])
    assert json.loads((root / "metrics/vae.json").read_text()) == metrics
    dev = metrics["dev"]
    assert set(dev["mpjpe_unit"]) == {"all", "body", "left_hand", "right_hand"}
    # lifted 3D units: x spans 4 units per [0, 1], y 1, z 2 -> the 3D error is between 1x and 4x
    for part, err in dev["mpjpe_unit"].items():
        assert 1.0 * err <= dev["mpjpe_3d"][part] <= 4.0 * err
    assert metrics["epochs"] == 2 and metrics["clipped"] == {"train": 0, "dev": 0}
    vae = load_vae(root / "models/vae")
    assert vae.config.n_features == 150 and vae.config.latent == 4
    assert not list((root / "models/vae_ckpt").glob("*.ckpt"))  # cleared after success
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    runs = _runs(client, "test-vae")
    child = runs["pretrain_vae"][0]
    assert child.info.status == "FINISHED" and child.data.params["vae.epochs"] == "2"
    history = client.get_metric_history(child.info.run_id, "train/total_step")
    assert len(history) >= 2 and "val/total" in child.data.metrics
    assert child.data.metrics["dev.mpjpe_unit.all"] == pytest.approx(dev["mpjpe_unit"]["all"])
    parent = runs["workspace"][0]
    assert parent.data.metrics["pretrain_vae.dev.mpjpe_3d.body"] == pytest.approx(dev["mpjpe_3d"]["body"])
    artifacts = {a.path for a in client.list_artifacts(child.info.run_id, "model")}
    assert artifacts == {"model/config.json", "model/model.pt"}
