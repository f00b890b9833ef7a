"""Lightning engine: the train section, checkpoints, resume after a simulated kill, seed determinism,
and the training-stage skeleton (training_run: fit, finish, MLflow)."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from pipeline.config import ParamsError, Stage, parse_section
from pipeline.models.vae import VAE, VAEConfig
from pipeline.stages.pretrain_vae import loader
from pipeline.training import engine
from pipeline.training.engine import StartEpoch, TrainConfig

TRAIN = TrainConfig(progress_bar=False, log_every_n_steps=1, checkpoint_every_n_epochs=1)
CONFIG = {"n_features": 12, "hidden": [8, 6], "latent": 3, "kl_weight": 1e-4, "loss": "bce"}


def _frames(n: int = 96, seed: int = 0) -> np.ndarray:
    """``n`` random frames of 12 features in (0.1, 0.9)."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 0.9, (n, 12)).astype(np.float32)


class Kill(L.Callback):
    """Raise at batch ``batch`` of epoch ``epoch`` (a crash / SIGTERM stand-in)."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: object, batch_idx: int
    ) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            raise RuntimeError("simulated kill")


def _vae_module() -> engine.LossModule:
    """The tiny VAE of ``CONFIG`` in the engine's LossModule, as pretrain_vae trains it."""
    return engine.LossModule(VAE(VAEConfig(**CONFIG)), lr=1e-2)


def _fit(
    ckpt_dir: Path, epochs: int, seed: int = 7, callbacks: list | None = None
) -> tuple[L.Trainer, engine.LossModule, StartEpoch]:
    """Seed, then fit the tiny VAE for ``epochs`` in ``ckpt_dir`` (resuming its newest checkpoint)."""
    engine.seed(seed)
    module = _vae_module()
    start = StartEpoch()
    trainer, resume = engine.make_trainer(TRAIN, ckpt_dir, epochs, callbacks=[start, *(callbacks or [])])
    dev = loader(_frames(32, 1), 32, False, 0)
    trainer.fit(module, loader(_frames(), 16, True, 0), dev, ckpt_path=resume)
    return trainer, module, start


def _train_section(**values: object) -> TrainConfig:
    """The ``train`` section ``values`` parsed as params.yaml is."""
    return parse_section({"train": values}, "train", TrainConfig)


def test_resolve_auto_on_cpu_and_errors() -> None:
    p = _train_section().resolved()
    if not torch.cuda.is_available():
        assert (p.accelerator, p.precision, p.deterministic) == ("cpu", "32-true", True)
    assert _train_section(precision="bf16-mixed").resolved().precision == "bf16-mixed"
    assert _train_section(accelerator="cpu", deterministic=False).resolved().deterministic is False
    assert p.grad_clip == 1.0 and p.num_workers == 0  # defaults filled in
    with pytest.raises(ParamsError, match=r"unknown key\(s\) train.epoch \(known: \["):
        _train_section(epoch=3)
    with pytest.raises(ParamsError, match=r"train.grad_clip=-1 is invalid"):
        _train_section(grad_clip=-1)
    with pytest.raises(ParamsError, match=r"train.num_nodes=0 is invalid"):
        _train_section(num_nodes=0)


def test_make_trainer_settings(tmp_path: Path) -> None:
    trainer, resume = engine.make_trainer(dataclasses.replace(TRAIN, grad_clip=0.5), tmp_path / "ck", 4)
    assert resume is None and trainer.max_epochs == 4 and trainer.gradient_clip_val == 0.5
    kinds = {type(c).__name__ for c in trainer.callbacks}
    assert {"ModelCheckpoint", "OnExceptionCheckpoint"} <= kinds
    assert trainer.checkpoint_callback.save_last is True
    (tmp_path / "ck" / "last.ckpt").write_bytes(b"x")
    assert engine.make_trainer(TRAIN, tmp_path / "ck", 4)[1] == str(tmp_path / "ck" / "last.ckpt")


@pytest.mark.slow
def test_resume_after_kill_between_epochs(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    with pytest.raises(RuntimeError, match="simulated kill"):
        _fit(ck, 4, callbacks=[Kill(epoch=2, batch=0)])
    assert (ck / "last.ckpt").exists() and (ck / "on_exception.ckpt").exists()
    saved = torch.load(ck / "on_exception.ckpt", weights_only=False)["state_dict"]
    # rerun: picks the newest checkpoint, continues at epoch 2 with the saved weights
    engine.seed(7)
    module = _vae_module()
    start = StartEpoch()
    trainer, resume = engine.make_trainer(TRAIN, ck, 4, callbacks=[start])
    assert resume == str(ck / "on_exception.ckpt")

    class Check(L.Callback):
        def on_train_start(self, trainer: L.Trainer, pl_module: engine.LossModule) -> None:
            for k, v in pl_module.state_dict().items():
                torch.testing.assert_close(v, saved[k])

    trainer.callbacks.append(Check())
    trainer.fit(module, loader(_frames(), 16, True, 0), ckpt_path=resume)
    assert start.epoch == 2 and trainer.current_epoch == 4


@pytest.mark.slow
def test_resume_after_kill_mid_epoch(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    with pytest.raises(RuntimeError):
        _fit(ck, 3, callbacks=[Kill(epoch=1, batch=3)])
    trainer, _, start = _fit(ck, 3)
    assert start.epoch == 1 and trainer.current_epoch == 3
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == 3 * 6


@pytest.mark.slow
def test_seed_determinism(tmp_path: Path) -> None:
    _, a, _ = _fit(tmp_path / "a", 2, seed=3)
    _, b, _ = _fit(tmp_path / "b", 2, seed=3)
    _, c, _ = _fit(tmp_path / "c", 2, seed=4)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, b.state_dict()[k], rtol=0, atol=0)
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())


def test_prepare_ckpt_dir_drops_stale_checkpoints(tmp_path: Path) -> None:
    d = engine.prepare_ckpt_dir(tmp_path / "ck", {"vae": {"latent": 8}})
    (d / "last.ckpt").write_bytes(b"x")
    engine.prepare_ckpt_dir(d, {"vae": {"latent": 8}})
    assert (d / "last.ckpt").exists()  # same fingerprint: kept for resuming
    engine.prepare_ckpt_dir(d, {"vae": {"latent": 16}})
    assert not (d / "last.ckpt").exists() and engine.resume_path(d) is None


def test_configure_gpu_kernels_turns_off_cudnn_attention_with_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.backends.cuda.cudnn_sdp_enabled()
    try:
        torch.backends.cuda.enable_cudnn_sdp(True)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        engine.configure_gpu_kernels()
        assert torch.backends.cuda.cudnn_sdp_enabled()  # CPU: left alone
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        engine.configure_gpu_kernels()
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.mem_efficient_sdp_enabled()  # the length-agnostic kernels stay
    finally:
        torch.backends.cuda.enable_cudnn_sdp(before)


def test_data_digest_is_order_and_content_sensitive(tmp_path: Path) -> None:
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, dtype=np.float32)
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    ref = hashlib.sha1(a.tobytes() + b"text" + b.tobytes() + b"weights").hexdigest()
    assert engine.data_digest(a, "text", b, f) == ref
    assert engine.data_digest([(a, "text"), [b]], f) == ref  # nesting only groups, same stream
    assert engine.data_digest(a.T.copy().T, "text", b, f) == ref  # layout-independent (C-order bytes)
    assert engine.data_digest(b, "text", a, f) != ref
    f.write_bytes(b"other")
    assert engine.data_digest(a, "text", b, f) != ref
    with pytest.raises(TypeError, match="cannot hash a dict"):
        engine.data_digest({"a": 1})


TOY = Stage(
    "toy",
    params=("seed", "train"),
    deps=(),
    outs=("models/toy", "models/toy_ckpt", "metrics/toy.json", "plots/curves/toy"),
)


@pytest.mark.slow
def test_training_run_fits_finishes_and_tracks(workspace: Callable[..., Path]) -> None:
    from mlflow.tracking import MlflowClient

    from pipeline.models.io import save_model
    from pipeline.models.vae import load_vae

    root = workspace(profile="tiny", seed=11)
    params = TOY.start(None, [])
    train, dev = _frames(), _frames(32, 1)
    fingerprint = {"data": engine.data_digest(train, dev)}
    torch.set_num_threads(2)
    fit_config = engine.FitConfig(epochs=2, batch_size=16, lr=1e-2, cpu_threads=1)
    with engine.training_run(TOY, params, "models/toy_ckpt", fingerprint, params["seed"], fit_config) as job:
        assert torch.get_num_threads() == 1 and job.workers == 0  # the stage's cpu_threads
        module = _vae_module()  # built after the seed
        fit = job.fit(module, loader(train, 16, True, 0), loader(dev, 32, False, 0))
        assert fit.is_global_zero and (fit.epochs, fit.start_epoch, fit.epochs_run) == (2, 0, 2)
        assert fit.seconds > 0 and type(fit.trainer.logger).__name__ == "MLFlowLogger"
        ckpt = root / "models/toy_ckpt"
        assert (ckpt / "last.ckpt").is_file()
        saved = json.loads((ckpt / "fingerprint.json").read_text())
        assert saved["data"] == fingerprint["data"]
        assert saved["train"]["log_every_n_steps"] == 5  # the resolved train section (tiny profile)
        save_model(module.model, "models/toy")
        dev_loss = float(module.model.eval().loss(torch.from_numpy(dev))["total"].detach())
        metrics = {"epochs": fit.epochs, "dev": {"total": dev_loss}, "note": "text"}
        with pytest.raises(ValueError, match=r"writes elsewhere.json, which is not one of its outs"):
            job.finish(metrics, "elsewhere.json")
        job.finish(metrics, "metrics/toy.json", "models/toy")
    assert json.loads((root / "metrics/toy.json").read_text()) == metrics
    curve = list(csv.DictReader((root / "plots/curves/toy/model.csv").read_text().splitlines()))  # the curve
    assert [r["epoch"] for r in curve] == ["0", "1"] and curve[1]["val_loss"] == curve[1]["val_total"]
    assert float(curve[1]["train_loss"]) < float(curve[0]["train_loss"])
    assert not list(ckpt.glob("*.ckpt")) and (ckpt / "fingerprint.json").is_file()  # cleared after finish
    assert load_vae(root / "models/toy").config.latent == CONFIG["latent"]
    # the same seed gives the same weights as a plain seeded fit
    _, again, _ = _fit(root / "again", 2, seed=11)
    again_dev = float(again.model.eval().loss(torch.from_numpy(dev))["total"].detach())
    assert again_dev == pytest.approx(dev_loss, rel=1e-6)
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name(params.resolved["tracking"]["experiment"])
    (run,) = client.search_runs([exp.experiment_id], "attributes.run_name = 'toy'")
    assert run.info.status == "FINISHED" and run.data.tags["dvc.stage"] == "toy"
    assert run.data.params["seed"] == "11" and run.data.tags["nar.profile"] == "tiny"
    assert run.data.metrics["dev.total"] == pytest.approx(dev_loss) and run.data.metrics["epochs"] == 2.0
    assert "note" not in run.data.metrics and "val/total" in run.data.metrics  # Lightning's logger
    assert len(client.get_metric_history(run.info.run_id, "train/total_step")) == 2  # 12 steps, every 5th
    parent = client.get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["toy.dev.total"] == pytest.approx(dev_loss)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
    assert artifacts == {"model/config.json", "model/model.pt"}
    assert [a.path for a in client.list_artifacts(run.info.run_id, "metrics")] == ["metrics/toy.json"]


@pytest.mark.slow
def test_training_run_parts_share_the_run(workspace: Callable[..., Path]) -> None:
    """Several models in one stage run: each part has its own checkpoints and fingerprint, is
    reseeded, logs as ``<name>/<metric>``; finish clears every part's checkpoints; a part whose
    checkpoint holds its last epoch is resumed without training."""
    from mlflow.tracking import MlflowClient

    workspace(profile="tiny", seed=11)
    params = TOY.start(None, [])
    train, dev = loader(_frames(), 16, True, 0), loader(_frames(32, 1), 32, False, 0)
    fit_config = engine.FitConfig(epochs=2, batch_size=16, lr=1e-2, cpu_threads=1)
    ckpt = Path("models/toy_ckpt")

    def run(names: tuple[str, ...], finish: bool) -> dict[str, engine.Fit]:
        fits = {}
        with engine.training_run(TOY, params, ckpt, {"toy": 1}, 11, fit_config) as job:
            for name in names:
                part = job.part(name, ckpt / name, {"part": name}, 11)
                assert part.name == name and part.run is job.run and part.config == fit_config
                fits[name] = part.fit(_vae_module(), train, dev)
            if finish:
                job.finish({"parts": len(names)}, "metrics/toy.json")
        return fits

    fits = run(("a", "b"), finish=False)
    assert all((fits[n].start_epoch, fits[n].epochs_run) == (0, 2) for n in "ab")
    a, b = (torch.load(ckpt / n / "last.ckpt", weights_only=False)["state_dict"] for n in "ab")
    for key in a:  # the same seed per part: the same weights
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert json.loads((ckpt / "a/fingerprint.json").read_text())["part"] == "a"
    again = run(("a", "b"), finish=True)  # checkpoints of the last epoch: resumed, nothing trained
    assert all((again[n].start_epoch, again[n].epochs, again[n].epochs_run) == (2, 2, 0) for n in "ab")
    assert not list(ckpt.rglob("*.ckpt")) and (ckpt / "b/fingerprint.json").is_file()
    for name in "ab":  # each part's curve, whole although the finishing run trained nothing (checkpoint)
        curve = list(csv.DictReader(Path(f"plots/curves/toy/{name}.csv").read_text().splitlines()))
        assert [r["epoch"] for r in curve] == ["0", "1"] and all(r["val_loss"] for r in curve)
    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name(params.resolved["tracking"]["experiment"])
    runs = client.search_runs([exp.experiment_id], "attributes.run_name = 'toy'")
    metrics = runs[-1].data.metrics  # the first stage run
    assert {"a/val/total", "b/val/total", "a/train/total_step"} <= set(metrics) and "val/total" not in metrics
