"""Bit-exact resume after a kill (engine and every training stage) and MLflow runs orphaned by a SIGKILL.

A run killed at an epoch boundary and rerun must give the same weights and metrics as an
uninterrupted one: the engine's :class:`~pipeline.training.engine.ResumeRNG` stores the RNG states
of the epoch-end checkpoint and restores them where the next epoch's train iterator is created.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from pipeline.training import engine, tracking
from pipeline.training.engine import TrainConfig

TRAIN = TrainConfig(progress_bar=False, log_every_n_steps=1, checkpoint_every_n_epochs=1)
EPOCHS = 4


class KillError(Exception):
    """Simulated crash."""


class Net(L.LightningModule):
    """A tiny regressor that draws from every global RNG: dropout (torch), a numpy and a python
    ``random`` jitter per training step, noise in validation (so also in a sanity check)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        jitter = 1.0 + 0.01 * float(np.random.rand()) + 0.01 * random.random()
        loss = F.mse_loss(self.net(x * jitter), y)
        self.log("train/loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val/loss", F.mse_loss(self.net(x + 0.1 * torch.randn_like(x)), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=1e-2)


class History(L.Callback):
    """The metrics of every epoch, as Lightning has them at the epoch's end."""

    def __init__(self) -> None:
        self.epochs: dict[int, dict[str, float]] = {}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epochs[trainer.current_epoch] = {k: float(v) for k, v in trainer.callback_metrics.items()}


class Kill(L.Callback):
    """Stop a fit after the checkpoint of epoch ``epoch - 1``: raise when epoch ``epoch`` starts (with
    ``epoch=None``: when training ends, after the last epoch's checkpoint); with ``sigterm``, as
    Lightning stops on SIGTERM instead (at the end of epoch ``epoch - 1``, writing ``on_exception.ckpt``)."""

    def __init__(self, epoch: int | None, sigterm: bool = False) -> None:
        self.epoch, self.sigterm = epoch, sigterm

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch and not self.sigterm:
            raise KillError("killed")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.sigterm and trainer.current_epoch + 1 == self.epoch:
            trainer._signal_connector.received_sigterm = True  # what Lightning's SIGTERM handler sets

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.epoch is None:
            raise KillError("killed")


def _loaders() -> tuple[DataLoader, DataLoader]:
    """Shuffled train batches (40 samples, 5 batches) and the dev loader."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=g)
    y = x.sum(1, keepdim=True) + 0.1 * torch.randn(40, 1, generator=g)
    dev = torch.randn(12, 4, generator=g)
    train = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True)
    return train, DataLoader(TensorDataset(dev, dev.sum(1, keepdim=True)), batch_size=6)


def _rng_digest() -> str:
    """SHA-1 of the global torch, numpy and python RNG states (what code after ``fit`` draws from)."""
    h = hashlib.sha1(torch.get_rng_state().numpy().tobytes())
    h.update(repr(np.random.get_state()).encode())
    h.update(repr(random.getstate()).encode())
    return h.hexdigest()


def _fit(ckpt: Path, callbacks: list[L.Callback] | None = None) -> dict[str, Any]:
    """Seed, build :class:`Net` and fit it for ``EPOCHS`` through the engine's Trainer (resuming the
    newest checkpoint of ``ckpt``); its weights, per-epoch and final metrics and the RNG after fit."""
    engine.seed(11)
    module, history = Net(), History()
    trainer, resume = engine.make_trainer(TRAIN, ckpt, EPOCHS, callbacks=[history, *(callbacks or [])])
    trainer.fit(module, *_loaders(), ckpt_path=resume)
    return {
        "state": {k: v.clone() for k, v in module.state_dict().items()},
        "epochs": history.epochs,
        "final": {k: float(v) for k, v in trainer.callback_metrics.items()},
        "rng": _rng_digest(),
    }


def _killed_and_resumed(ckpt: Path, epoch: int | None, how: str = "sigkill") -> dict[str, Any]:
    """Fit killed after the checkpoint of epoch ``epoch - 1`` (see :class:`Kill`), then the rerun
    that resumes it. ``how``: ``sigkill`` leaves only the periodic checkpoints (no
    ``on_exception.ckpt``); ``sigterm`` stops as Lightning does on SIGTERM (the rerun resumes its
    ``on_exception.ckpt``)."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    with pytest.raises(SIGTERMException if how == "sigterm" else KillError):
        _fit(ckpt, [Kill(epoch, sigterm=how == "sigterm")])
    exception_ckpt = ckpt / f"{engine.ON_EXCEPTION}.ckpt"
    if how == "sigkill":
        exception_ckpt.unlink()
    else:
        assert engine.resume_path(ckpt) == str(exception_ckpt)
    return _fit(ckpt)


def _assert_same(a: dict[str, Any], b: dict[str, Any], from_epoch: int) -> None:
    """Same weights, RNG states and metrics of the epochs from ``from_epoch`` (and at the end, when
    ``b`` trained at all)."""
    assert a["state"].keys() == b["state"].keys()
    for k, v in a["state"].items():
        assert torch.equal(v, b["state"][k]), k
    assert a["rng"] == b["rng"]
    assert {e: m for e, m in a["epochs"].items() if e >= from_epoch} == b["epochs"]
    if b["epochs"]:
        assert a["final"] == b["final"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _fit(tmp_path_factory.mktemp("uninterrupted"))


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
@pytest.mark.parametrize("epoch", [1, 3])
def test_resumed_fit_is_bit_identical(
    uninterrupted: dict[str, Any], tmp_path: Path, epoch: int, how: str
) -> None:
    """Killed after the checkpoint of epoch ``epoch - 1``: the rerun's weights, metrics and RNG
    (what the stage computes after fit draws from) equal the uninterrupted run's."""
    resumed = _killed_and_resumed(tmp_path, epoch, how)
    _assert_same(uninterrupted, resumed, epoch)


def test_resume_of_a_finished_fit_leaves_the_rng_as_the_uninterrupted_run(
    uninterrupted: dict[str, Any], tmp_path: Path
) -> None:
    """Killed after the last epoch's checkpoint (e.g. while saving the model): nothing is left to
    train, and the stage's code after ``fit`` sees the uninterrupted run's RNG."""
    resumed = _killed_and_resumed(tmp_path, None)
    _assert_same(uninterrupted, resumed, EPOCHS)


def test_without_rng_restore_the_resumed_fit_differs(
    uninterrupted: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above has teeth: without :class:`ResumeRNG` (the engine before it) the rerun differs;
    a fresh fit does not depend on it (its RNG states are read, never set)."""
    monkeypatch.setattr(engine, "ResumeRNG", L.Callback)
    fresh = _fit(tmp_path / "fresh")
    _assert_same(uninterrupted, fresh, 0)
    resumed = _killed_and_resumed(tmp_path / "resumed", 2)
    assert any(not torch.equal(v, resumed["state"][k]) for k, v in uninterrupted["state"].items())


def test_mid_epoch_checkpoint_resumes_without_rng_restore(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A checkpoint written inside an epoch (``on_exception.ckpt`` of a crash or Ctrl+C) carries no
    epoch-end RNG states: it resumes as before, and says that the result is not bit-identical."""

    class MidEpoch(L.Callback):
        def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
            if (trainer.current_epoch, args[-1]) == (1, 2):
                raise KillError("killed")

    with pytest.raises(KillError):
        _fit(tmp_path, [MidEpoch()])
    saved = torch.load(tmp_path / f"{engine.ON_EXCEPTION}.ckpt", weights_only=True)
    assert saved["callbacks"]["ResumeRNG"] == {"rng": None}
    assert torch.load(tmp_path / engine.LAST, weights_only=True)["callbacks"]["ResumeRNG"]["rng"]
    with caplog.at_level("WARNING", logger=engine.__name__):
        result = _fit(tmp_path)
    assert "not be bit-identical" in caplog.text and result["epochs"].keys() == {1, 2, 3}


# -- every training stage: uninterrupted vs killed after its first epoch and rerun -------------
BASELINE = {"epochs": 3, "batch_size": 4, "lr": 1e-3, "cpu_threads": 1}
SMALL = {"d_model": 16, "heads": 2}


def _workspace(root: Path, profile: str = "tiny", **sections: Any) -> Path:
    """``root`` as the working directory of a stage run (as the ``workspace`` fixture): the
    repository's params.yaml with ``profile``, ``sections`` deep-merged into its overlay (they win),
    an MLflow store of its own."""
    from conftest import ROOT

    from pipeline.config import deep_merge

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["profile"] = profile
    params["profiles"][profile] = deep_merge(params["profiles"][profile], sections)
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    os.chdir(root)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    return root


def _pretrain_vae(root: Path) -> Any:
    from test_tracking import fake_lifted

    from pipeline.stages import pretrain_vae

    fake_lifted(_workspace(root, vae={"epochs": 3}) / "data" / "lifted")
    return pretrain_vae


def _train_student(root: Path) -> Any:
    from conftest import save_tiny_bert
    from test_train_student import write_data

    from pipeline.stages import train_student

    bert = root.parent / "bert"  # shared: the model's config names it
    if not bert.exists():
        save_tiny_bert(bert, max_positions=64, seed=0)
    student = {"text_encoder": "bert", "pretrained": str(bert), "freeze_bert": False, "dropout": 0.1}
    student |= {"decoder_dim": 16, "decoder_layers": 1, "decoder_heads": 2, "decoder_ffn": 32}
    student |= {"length_hidden": [16], "max_frames": None, "on_long": "truncate"}
    student |= {"epochs": 3, "batch_size": 4, "lr": 1e-3}
    write_data(_workspace(root, student=student))
    return train_student


def _train_fgd_encoder(root: Path) -> Any:
    from conftest import save_lifted
    from test_fgd_encoder import _motion, _store

    from pipeline.stages import train_fgd_encoder

    _workspace(root, fgd_encoder={"stride": 17, "epochs": 3, "batch_size": 8})
    rng = np.random.default_rng(2)
    save_lifted(root, {"train": _store(8, rng), "dev": _motion([20, 60, 90], rng)})
    return train_fgd_encoder


def _train_backtranslator(root: Path) -> Any:
    from conftest import save_lifted
    from test_backtranslator import _store

    from pipeline.stages import train_backtranslator

    _workspace(root, backtranslator={"epochs": 3})
    rng = np.random.default_rng(0)
    save_lifted(root, {split: _store(n, rng) for split, n in (("train", 12), ("dev", 4), ("test", 4))})
    return train_backtranslator


def _train_pt(root: Path) -> Any:
    from test_train_baselines import write_data

    from pipeline.stages import train_pt

    tiny = BASELINE | SMALL | {"encoder_layers": 1, "decoder_layers": 1, "ffn": 32, "fp_frames": 3}
    write_data(_workspace(root, progressive=tiny))
    return train_pt


def _train_nslpg(root: Path) -> Any:
    from test_train_baselines import write_data

    from pipeline.stages import train_nslpg

    tiny = BASELINE | SMALL | {"enc_layers": 1, "dec_layers": 1, "gloss_layers": 1, "ffn": 32}
    tiny |= {"variants": ["gs", "base_ft"]}
    write_data(_workspace(root, nslpg=tiny))
    return train_nslpg


STAGES: dict[str, tuple[Callable[[Path], Any], str]] = {  # set-up, the output compared byte for byte
    "pretrain_vae": (_pretrain_vae, "models/vae"),
    "train_student": (_train_student, "models/student"),
    "train_fgd_encoder": (_train_fgd_encoder, "models/fgd_encoder"),
    "train_backtranslator": (_train_backtranslator, "models/backtranslator"),
    "train_pt": (_train_pt, "models/pt"),
    "train_nslpg": (_train_nslpg, "models/nslpg"),
}


def _timing(key: str) -> bool:
    """A metrics key that measures time or says where the run resumed."""
    return key == "resumed_from_epoch" or key.endswith(("_seconds", "_per_s"))


def out_digests(root: Path, out: str) -> dict[str, str]:
    """SHA-256 of every file under ``root/out``, by path relative to ``root`` (of a metrics JSON
    saved with the model, ``summary.json``, without its timing keys)."""
    digests = {}
    for p in sorted(p for p in (root / out).rglob("*") if p.is_file()):
        data = p.read_bytes()
        if p.name == "summary.json":
            data = json.dumps(_untimed(json.loads(data)), sort_keys=True).encode()
        digests[str(p.relative_to(root))] = hashlib.sha256(data).hexdigest()
    return digests


def _untimed(metrics: Any) -> Any:
    """``metrics`` without the keys that measure time or say where the run resumed."""
    if isinstance(metrics, dict):
        return {k: _untimed(v) for k, v in metrics.items() if not _timing(k)}
    return metrics


class FinalWeights(L.Callback):
    """Appends the SHA-1 of the module's weights at the end of each fit to ``digests`` (a stage's
    saved model may be an earlier epoch's, e.g. the back-translator's best)."""

    def __init__(self, digests: list[str]) -> None:
        self.digests = digests

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        h = hashlib.sha1()
        for k, v in pl_module.state_dict().items():
            data = v.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
            h.update(k.encode() + data.numpy().tobytes())
        self.digests.append(h.hexdigest())


def run_stage(name: str, root: Path, kill: bool = False) -> dict[str, Any]:
    """Stage ``name`` in ``root``: its output's digests, metrics and final weights of each fit. With
    ``kill``, its first fit is first killed at the start of epoch 1 (after epoch 0's checkpoint) as
    a SIGKILL leaves it (the periodic checkpoints, no ``on_exception.ckpt``), then the stage is rerun."""
    setup, out = STAGES[name]
    stage = setup(root)
    real, fits, calls = engine.make_trainer, [], []

    def patched(*args: Any, callbacks: list | None = None, **kwargs: Any) -> Any:
        extra: list[L.Callback] = [FinalWeights(fits)]
        if kill and not calls:
            extra.append(Kill(1))
        calls.append(1)
        return real(*args, callbacks=[*(callbacks or []), *extra], **kwargs)

    engine.make_trainer = patched
    try:
        if kill:
            with pytest.raises(KillError):
                stage.main([])
            killed = list(root.rglob(f"{engine.ON_EXCEPTION}.ckpt"))
            assert killed and list(root.rglob(engine.LAST))
            for p in killed:
                p.unlink()
            fits.clear()
        metrics = stage.main([])
    finally:
        engine.make_trainer = real
    return {"files": out_digests(root, out), "metrics": json.loads(json.dumps(metrics)), "fits": fits}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(STAGES))
def test_stage_killed_after_first_epoch_resumes_bit_identically(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("DVC_ROOT", "DVC_EXP_NAME", "DVC_STAGE"):
        monkeypatch.delenv(var, raising=False)
    # restored afterwards: run_stage changes into its root and sets the store there
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    a = run_stage(name, tmp_path / "uninterrupted")
    b = run_stage(name, tmp_path / "resumed", kill=True)
    assert a["files"] and a["files"] == b["files"]
    assert a["fits"] and a["fits"] == b["fits"]
    assert _untimed(a["metrics"]) == _untimed(b["metrics"])


# -- MLflow runs left RUNNING by a SIGKILL -------------------------------------------------------
PARAMS = {"profile": "default", "seed": 5, "tracking": {"experiment": "orphans"}}


@pytest.fixture()
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    """An MLflow sqlite store of this test's own and params.yaml in the cwd."""
    for var in ("DVC_EXP_NAME", "DVC_STAGE", "DVC_ROOT", "RANK", "LOCAL_RANK", "SLURM_PROCID", "NODE_RANK"):
        monkeypatch.delenv(var, raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    return MlflowClient(uri)


def _dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stage_run_marks_dead_runs_of_its_stage_killed(store: MlflowClient) -> None:
    """Only runs of the same stage whose recorded process is gone on this host are ended KILLED;
    a live process's run (a parallel queue worker), another host's and an untagged one stay RUNNING."""
    with tracking.stage_run("s", PARAMS) as first:
        tags = first.data.tags
        assert tags[tracking.PID_TAG] == str(os.getpid()) and tags[tracking.HOST_TAG] == socket.gethostname()
    exp = first.info.experiment_id
    host = socket.gethostname()

    def running(stage: str, pid: int | None, on: str = host) -> str:
        tags = {"dvc.stage": stage}
        if pid is not None:
            tags |= {tracking.PID_TAG: str(pid), tracking.HOST_TAG: on}
        return store.create_run(exp, run_name=stage, tags=tags).info.run_id

    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        dead, alive = running("s", _dead_pid()), running("s", worker.pid)
        other_host = running("s", _dead_pid(), on=host + "-elsewhere")
        untagged, other_stage = running("s", None), running("t", _dead_pid())
        with tracking.stage_run("s", PARAMS) as run:
            assert store.get_run(dead).info.status == "KILLED"
            assert store.get_run(run.info.run_id).info.status == "RUNNING"
    finally:
        worker.kill()
        worker.wait()
    for rid in (alive, other_host, untagged, other_stage):
        assert store.get_run(rid).info.status == "RUNNING"
    assert store.get_run(first.info.run_id).info.status == "FINISHED"


@pytest.mark.slow
def test_sigkilled_stage_run_is_killed_by_the_next_run(store: MlflowClient, tmp_path: Path) -> None:
    """A real SIGKILL inside a stage's run leaves it RUNNING; the next run of the stage ends it KILLED."""
    code = (
        "import os, signal\n"
        "from pipeline.training import tracking\n"
        f"with tracking.stage_run('s', {PARAMS!r}):\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    exp = store.get_experiment_by_name("orphans").experiment_id
    [orphan] = store.search_runs([exp], "attributes.run_name = 's'")
    assert orphan.info.status == "RUNNING"
    with tracking.stage_run("s", PARAMS):
        pass
    assert store.get_run(orphan.info.run_id).info.status == "KILLED"
