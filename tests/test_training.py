"""Lightning engine: param resolution, checkpoints, resume after a simulated kill, seed determinism."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from pipeline import training
from pipeline.config import ParamsError
from pipeline.pretrain_vae import StartEpoch, VAEModule, loader

TRAIN = {"progress_bar": False, "log_every_n_steps": 1, "checkpoint_every_n_epochs": 1}
CONFIG = {"n_features": 12, "hidden": [8, 6], "latent": 3, "kl_weight": 1e-4, "loss": "bce"}


def _frames(n: int = 96, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.1, 0.9, (n, 12)).astype(np.float32)


class Kill(L.Callback):
    """Raise at batch ``batch`` of epoch ``epoch`` (a crash / SIGTERM stand-in)."""

    def __init__(self, epoch: int, batch: int) -> None:
        self.epoch, self.batch = epoch, batch

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            raise RuntimeError("simulated kill")


def _fit(
    ckpt_dir: Path, epochs: int, seed: int = 7, callbacks: list | None = None
) -> tuple[L.Trainer, VAEModule, StartEpoch]:
    training.seed(seed)
    module = VAEModule(CONFIG, lr=1e-2)
    start = StartEpoch()
    trainer, resume = training.make_trainer(TRAIN, ckpt_dir, epochs, callbacks=[start, *(callbacks or [])])
    dev = loader(_frames(32, 1), 32, False, 0)
    trainer.fit(module, loader(_frames(), 16, True, 0), dev, ckpt_path=resume)
    return trainer, module, start


def test_resolve_auto_on_cpu_and_errors() -> None:
    p = training.resolve({})
    if not torch.cuda.is_available():
        assert (p["accelerator"], p["precision"], p["deterministic"]) == ("cpu", "32-true", True)
    assert training.resolve({"precision": "bf16-mixed"})["precision"] == "bf16-mixed"
    with pytest.raises(ParamsError, match=r"unknown key\(s\) in section 'train': \['epoch'\]"):
        training.resolve({"epoch": 3})
    with pytest.raises(ParamsError, match=r"train.grad_clip=-1 is invalid"):
        training.resolve({"grad_clip": -1})


def test_make_trainer_settings(tmp_path: Path) -> None:
    trainer, resume = training.make_trainer({"grad_clip": 0.5, **TRAIN}, tmp_path / "ck", 4)
    assert resume is None and trainer.max_epochs == 4 and trainer.gradient_clip_val == 0.5
    kinds = {type(c).__name__ for c in trainer.callbacks}
    assert {"ModelCheckpoint", "OnExceptionCheckpoint"} <= kinds
    assert trainer.checkpoint_callback.save_last is True
    (tmp_path / "ck" / "last.ckpt").write_bytes(b"x")
    assert training.make_trainer(TRAIN, tmp_path / "ck", 4)[1] == str(tmp_path / "ck" / "last.ckpt")


def test_resume_after_kill_between_epochs(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    with pytest.raises(RuntimeError, match="simulated kill"):
        _fit(ck, 4, callbacks=[Kill(epoch=2, batch=0)])
    assert (ck / "last.ckpt").exists() and (ck / "on_exception.ckpt").exists()
    saved = torch.load(ck / "on_exception.ckpt", weights_only=False)["state_dict"]
    # rerun: picks the newest checkpoint, continues at epoch 2 with the saved weights
    training.seed(7)
    module = VAEModule(CONFIG, lr=1e-2)
    start = StartEpoch()
    trainer, resume = training.make_trainer(TRAIN, ck, 4, callbacks=[start])
    assert resume == str(ck / "on_exception.ckpt")

    class Check(L.Callback):
        def on_train_start(self, trainer: L.Trainer, pl_module: VAEModule) -> None:
            for k, v in pl_module.state_dict().items():
                torch.testing.assert_close(v, saved[k])

    trainer.callbacks.append(Check())
    trainer.fit(module, loader(_frames(), 16, True, 0), ckpt_path=resume)
    assert start.epoch == 2 and trainer.current_epoch == 4


def test_resume_after_kill_mid_epoch(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    with pytest.raises(RuntimeError):
        _fit(ck, 3, callbacks=[Kill(epoch=1, batch=3)])
    trainer, _, start = _fit(ck, 3)
    assert start.epoch == 1 and trainer.current_epoch == 3
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == 3 * 6


def test_seed_determinism(tmp_path: Path) -> None:
    _, a, _ = _fit(tmp_path / "a", 2, seed=3)
    _, b, _ = _fit(tmp_path / "b", 2, seed=3)
    _, c, _ = _fit(tmp_path / "c", 2, seed=4)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(v, b.state_dict()[k], rtol=0, atol=0)
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())


def test_prepare_ckpt_dir_drops_stale_checkpoints(tmp_path: Path) -> None:
    d = training.prepare_ckpt_dir(tmp_path / "ck", {"vae": {"latent": 8}})
    (d / "last.ckpt").write_bytes(b"x")
    training.prepare_ckpt_dir(d, {"vae": {"latent": 8}})
    assert (d / "last.ckpt").exists()  # same fingerprint: kept for resuming
    training.prepare_ckpt_dir(d, {"vae": {"latent": 16}})
    assert not (d / "last.ckpt").exists() and training.resume_path(d) is None


def test_configure_gpu_kernels_turns_off_cudnn_attention_with_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.backends.cuda.cudnn_sdp_enabled()
    try:
        torch.backends.cuda.enable_cudnn_sdp(True)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        training.configure_gpu_kernels()
        assert torch.backends.cuda.cudnn_sdp_enabled()  # CPU: left alone
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        training.configure_gpu_kernels()
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.mem_efficient_sdp_enabled()  # the length-agnostic kernels stay
    finally:
        torch.backends.cuda.enable_cudnn_sdp(before)


def test_data_digest_is_order_and_content_sensitive(tmp_path: Path) -> None:
    a, b = np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(3, dtype=np.float32)
    f = tmp_path / "w.bin"
    f.write_bytes(b"weights")
    ref = hashlib.sha1(a.tobytes() + b"text" + b.tobytes() + b"weights").hexdigest()
    assert training.data_digest(a, "text", b, f) == ref
    assert training.data_digest([(a, "text"), [b]], f) == ref  # nesting only groups, same stream
    assert training.data_digest(a.T.copy().T, "text", b, f) == ref  # layout-independent (C-order bytes)
    assert training.data_digest(b, "text", a, f) != ref
    f.write_bytes(b"other")
    assert training.data_digest(a, "text", b, f) != ref
    with pytest.raises(TypeError, match="cannot hash a dict"):
        training.data_digest({"a": 1})
