"""Stage ``train_fgd_encoder``: train the TAE whose latents define FGD (paper §5.1, Eq. 12).

Reads ``data/lifted/{train,dev}`` (SplitStore, channels x, y, z in [0, 1]); cuts every
ground-truth sequence into windows of ``fgd.window`` (34) frames with :func:`pipeline.metrics.windows`
(stride ``fgd.train_stride`` for training and ``fgd.stride`` for the dev check; sequences shorter
than a window are padded by repeating their last frame, exactly as at evaluation); values are
clipped to [0, 1] for BCE (the count is reported). Trains :class:`pipeline.models.tae.TAE` with BCE
reconstruction through :func:`pipeline.training.make_trainer` and writes

- ``models/fgd_encoder/``: ``config.json`` + ``model.pt`` (read by :func:`pipeline.models.tae.load_tae`)
  and ``summary.json`` (dev BCE/MSE, window counts, train time);
- ``models/fgd_encoder_ckpt/`` (DVC ``persist: true``): Lightning checkpoints for resuming a killed
  run; deleted after a successful fit.

It depends only on the data (and its params), so DVC reuses it across student experiments.
MLflow: child run ``train_fgd_encoder`` (:mod:`pipeline.tracking`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from pipeline import tracking, training
from pipeline.config import check_positive, load_params, section
from pipeline.metrics import windows
from pipeline.models.tae import TAE, TAEConfig, save_tae
from pipeline.store import SplitStore, StoreError

log = logging.getLogger(__name__)

LIFTED = Path("data/lifted")
OUT_DIR = Path("models/fgd_encoder")
CKPT_DIR = Path("models/fgd_encoder_ckpt")
SUMMARY = "summary.json"
TRAIN_KEYS = ("epochs", "batch_size", "lr", "train_stride", "stride")


class TAEModule(L.LightningModule):
    """Lightning wrapper: AdamW on the BCE reconstruction; logs ``train/bce`` and ``val/bce``."""

    def __init__(self, config: dict[str, Any], lr: float) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.tae = TAE(TAEConfig(**config))
        self.lr = lr

    def training_step(self, batch: tuple[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.tae.loss(batch[0])
        self.log("train/bce", loss, on_step=True, on_epoch=True, sync_dist=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor], batch_idx: int) -> None:
        self.log("val/bce", self.tae.loss(batch[0]), prog_bar=True, sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr)


def fgd_params(params: dict[str, Any]) -> dict[str, Any]:
    """The ``fgd`` section, validated."""
    p = section(params, "fgd")
    for key in (*TRAIN_KEYS, "window"):
        if key not in p:
            raise StoreError(f"params.yaml: missing fgd.{key}")
        check_positive(p[key], f"fgd.{key}")
    check_positive(p.get("cpu_threads", 0), "fgd.cpu_threads", allow_zero=True)
    return p


def split_windows(store: SplitStore, where: str | Path, size: int, stride: int) -> tuple[np.ndarray, int]:
    """Windows ``[W, size, J*3]`` float32 of every sequence of ``store``, clipped to [0, 1]; and #clipped."""
    if store.channels != ["x", "y", "z"]:
        raise StoreError(f"{where}: channels {store.channels}, expected ['x', 'y', 'z']")
    out, clipped = [], 0
    for i in range(len(store)):
        seq = np.asarray(store.sequence(i), dtype=np.float32)
        name = store.index[i].get("name", f"#{i}")
        if len(seq) == 0:
            raise StoreError(f"{where}: sequence {name!r} (row {i}) has no frames")
        if not np.isfinite(seq).all():
            raise StoreError(f"{where}: sequence {name!r} (row {i}) has non-finite values")
        clipped += int(((seq < 0) | (seq > 1)).sum())
        out.append(windows(np.clip(seq, 0.0, 1.0).reshape(len(seq), -1), size, stride))
    if not out:
        raise StoreError(f"{where}: no sequences")
    return np.concatenate(out), clipped


@torch.no_grad()
def reconstruction(tae: TAE, x: np.ndarray, batch_size: int = 512) -> dict[str, float]:
    """Mean BCE and MSE of the reconstruction of windows ``x``."""
    tae.eval()
    bce = mse = 0.0
    for s in range(0, len(x), batch_size):
        b = torch.from_numpy(x[s : s + batch_size])
        logits = tae(b)
        bce += float(torch.nn.functional.binary_cross_entropy_with_logits(logits, b)) * len(b)
        mse += float(torch.nn.functional.mse_loss(torch.sigmoid(logits), b)) * len(b)
    return {"bce": bce / len(x), "mse": mse / len(x)}


def main(lifted: Path = LIFTED, out_dir: Path = OUT_DIR, ckpt_dir: Path = CKPT_DIR) -> dict[str, Any]:
    """Run the stage; returns the summary written to ``out_dir/summary.json``."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    params = load_params()
    fp = fgd_params(params)
    train_params = params.get("train") or {}
    size = int(fp["window"])
    stores = {s: SplitStore.load(lifted / s, mmap=True) for s in ("train", "dev")}
    train, clip_train = split_windows(stores["train"], lifted / "train", size, int(fp["train_stride"]))
    dev, clip_dev = split_windows(stores["dev"], lifted / "dev", size, int(fp["stride"]))
    config = TAEConfig.from_params(fp, n_features=train.shape[-1])
    digest = training.data_digest(train, dev)
    fingerprint = {"fgd": fp, "train": train_params, "seed": params.get("seed"), "data": digest}

    training.set_cpu_threads(fp.get("cpu_threads", 0))
    with tracking.stage_run("train_fgd_encoder", params) as run:
        training.seed(params.get("seed", 0))
        module = TAEModule(vars(config), lr=float(fp["lr"]))
        training.prepare_ckpt_dir(ckpt_dir, fingerprint)
        workers = int(training.resolve(train_params)["num_workers"])
        trainer, resume = training.make_trainer(
            train_params, ckpt_dir, int(fp["epochs"]), logger=tracking.mlflow_logger(run)
        )
        bs = int(fp["batch_size"])
        t0 = time.perf_counter()
        trainer.fit(
            module,
            DataLoader(TensorDataset(torch.from_numpy(train)), bs, shuffle=True, num_workers=workers),
            DataLoader(TensorDataset(torch.from_numpy(dev)), bs * 4, num_workers=workers),
            ckpt_path=resume,
        )
        seconds = time.perf_counter() - t0
        if not trainer.is_global_zero:
            return {}
        tae = module.tae.cpu().float().eval()
        save_tae(tae, out_dir)
        summary = {
            "train_windows": len(train),
            "dev_windows": len(dev),
            "epochs": int(trainer.current_epoch),
            "train_seconds": round(seconds, 2),
            "clipped": {"train": clip_train, "dev": clip_dev},
            "dev": reconstruction(tae, dev),
        }
        (out_dir / SUMMARY).write_text(json.dumps(summary, indent=1))
        tracking.log_final_metrics(run, summary)
        tracking.log_artifacts(run, out_dir, artifact_path="model")
        training.clear_checkpoints(ckpt_dir)
        log.info("dev reconstruction %s (%d windows, %.1f s)", summary["dev"], len(dev), seconds)
        return summary


if __name__ == "__main__":
    main()
