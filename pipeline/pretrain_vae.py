"""Stage ``pretrain_vae``: train the single-frame pose VAE (LGM/PGM teacher, paper §3.2, Eq. 1-2).

Reads ``data/lifted/{train,dev}`` (SplitStore, channels x, y, z in [0, 1], 50 or 120 joints) and
``data/lifted/transform.json``; trains :class:`pipeline.models.vae.VAE` on every train frame
(validation on the dev frames) with :func:`pipeline.training.make_trainer`; writes

- ``models/vae/`` (``config.json`` + ``model.pt``, read by :func:`pipeline.models.vae.load_vae`);
- ``metrics/vae.json``: dev reconstruction error per body part (``pipeline.skeleton.part_slices``)
  as mean per-joint position error and MSE in [0, 1] units, and mean per-joint position error in
  lifted 3D units (``UnitRange.inverse``), plus the dev loss terms and training figures;
- ``models/vae_ckpt/`` (DVC ``persist: true``, ``cache: false``): Lightning checkpoints. A
  killed run resumes from its newest checkpoint when the stage is rerun with the same params
  and data (``fingerprint.json``); the checkpoints are deleted after a successful fit.

Values outside [0, 1] (dev/test may leave the train range slightly) are clipped before BCE and
counted in ``clipped``. MLflow: one child run ``pretrain_vae`` (see :mod:`pipeline.tracking`).
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
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from pipeline import training
from pipeline.config import check_positive, load_params, section
from pipeline.models.vae import VAE, VAEConfig, save_vae
from pipeline.skeleton import part_slices
from pipeline.store import SplitStore, StoreError
from pipeline.transform import UnitRange

log = logging.getLogger(__name__)

LIFTED = Path("data/lifted")
OUT_DIR = Path("models/vae")
CKPT_DIR = Path("models/vae_ckpt")
METRICS = Path("metrics/vae.json")


class VAEModule(L.LightningModule):
    """Lightning wrapper: AdamW on Eq. 2; logs ``train/*`` per step and ``val/*`` per epoch."""

    def __init__(self, config: dict[str, Any], lr: float) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.vae = VAE(VAEConfig(**config))
        self.lr = lr

    def training_step(self, batch: tuple[torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self.vae.loss(batch[0])
        self.log_dict(
            {f"train/{k}": v for k, v in losses.items()}, prog_bar=False, on_epoch=True, sync_dist=True
        )
        return losses["total"]

    def validation_step(self, batch: tuple[torch.Tensor], batch_idx: int) -> None:
        losses = self.vae.loss(batch[0])
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, prog_bar=True, sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr)


class StartEpoch(L.Callback):
    """Remembers the epoch training started at (> 0 after resuming from a checkpoint)."""

    epoch = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch = int(trainer.current_epoch)


def load_frames(store: SplitStore, split: str) -> tuple[np.ndarray, int]:
    """All frames of ``store`` flattened to ``[F, J*3]`` float32, clipped to [0, 1]; and #clipped values."""
    if store.channels != ["x", "y", "z"]:
        raise StoreError(f"{LIFTED / split}: channels {store.channels}, expected ['x', 'y', 'z']")
    poses = np.asarray(store.poses, dtype=np.float32)
    bad = ~np.isfinite(poses).all(axis=(1, 2))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StoreError(f"{LIFTED / split}: frame {i} has non-finite values ({int(bad.sum())} frames)")
    clipped = int(((poses < 0) | (poses > 1)).sum())
    return np.clip(poses, 0.0, 1.0).reshape(len(poses), -1), clipped


def loader(frames: np.ndarray, batch_size: int, shuffle: bool, num_workers: int) -> DataLoader:
    """Batches of whole-tensor slices (no per-frame collate)."""
    ds = TensorDataset(torch.from_numpy(frames))
    sampler = RandomSampler(ds) if shuffle else SequentialSampler(ds)
    return DataLoader(
        ds,
        batch_size=None,
        sampler=BatchSampler(sampler, batch_size, drop_last=False),
        num_workers=num_workers,
    )


@torch.no_grad()
def reconstruction_metrics(
    vae: VAE, frames: np.ndarray, transform: UnitRange, batch_size: int = 4096
) -> dict[str, Any]:
    """Dev reconstruction (``z = mu``) errors per body part in [0, 1] and lifted 3D units."""
    vae.eval()
    y = torch.from_numpy(frames)
    out = []
    recon = {"bce": 0.0, "mse": 0.0, "kl": 0.0}
    for start in range(0, len(y), batch_size):
        batch = y[start : start + batch_size]
        mu, logvar = vae.encode(batch)
        logits = vae.decode_logits(mu)
        n = len(batch)
        recon["bce"] += float(torch.nn.functional.binary_cross_entropy_with_logits(logits, batch)) * n
        recon["mse"] += float(torch.nn.functional.mse_loss(torch.sigmoid(logits), batch)) * n
        recon["kl"] += float((-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)).sum())
        out.append(torch.sigmoid(logits).numpy())
    n_joints = frames.shape[1] // 3
    truth = frames.reshape(len(frames), n_joints, 3).astype(np.float64)
    pred = np.concatenate(out).reshape(truth.shape).astype(np.float64)
    truth3d, pred3d = transform.inverse(truth), transform.inverse(pred)
    parts = {"all": slice(0, n_joints), **part_slices(n_joints)}
    dist = np.linalg.norm(pred - truth, axis=-1)
    dist3d = np.linalg.norm(pred3d - truth3d, axis=-1)
    sq = ((pred - truth) ** 2).mean(axis=-1)
    return {
        "frames": len(frames),
        "recon_bce": recon["bce"] / len(frames),
        "recon_mse": recon["mse"] / len(frames),
        "kl": recon["kl"] / len(frames),
        "mpjpe_unit": {k: float(dist[:, s].mean()) for k, s in parts.items()},
        "mse_unit": {k: float(sq[:, s].mean()) for k, s in parts.items()},
        "mpjpe_3d": {k: float(dist3d[:, s].mean()) for k, s in parts.items()},
    }


def vae_params(params: dict[str, Any]) -> dict[str, Any]:
    """The ``vae`` section, validated."""
    p = section(params, "vae")
    for key in ("latent", "epochs", "batch_size", "lr"):
        if key not in p:
            raise StoreError(f"params.yaml: missing vae.{key}")
        check_positive(p[key], f"vae.{key}")
    check_positive(p.get("kl_weight", 1e-4), "vae.kl_weight", allow_zero=True)
    check_positive(p.get("cpu_threads", 0), "vae.cpu_threads", allow_zero=True)
    return p


def main(
    lifted: Path = LIFTED, out_dir: Path = OUT_DIR, ckpt_dir: Path = CKPT_DIR, metrics_path: Path = METRICS
) -> dict[str, Any]:
    """Run the stage; returns the metrics written to ``metrics_path``."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    params = load_params()
    vp = vae_params(params)
    train_params = params.get("train") or {}
    stores = {s: SplitStore.load(lifted / s, mmap=True) for s in ("train", "dev")}
    transform = UnitRange.load(lifted / "transform.json")
    (train, clip_train), (dev, clip_dev) = (load_frames(stores[s], s) for s in ("train", "dev"))
    if len(train) == 0 or len(dev) == 0:
        raise StoreError(f"{lifted}: train has {len(train)} frames, dev {len(dev)}; both must be non-empty")
    config = VAEConfig.from_params(vp, n_features=train.shape[1])
    fingerprint = {
        "vae": vp,
        "train": train_params,
        "seed": params.get("seed"),
        "data": training.data_digest(train, dev),
    }

    training.set_cpu_threads(vp.get("cpu_threads", 0))
    from pipeline import tracking  # here, not at import: the model code needs no MLflow (GPU benchmarks)

    with tracking.stage_run("pretrain_vae", params) as run:
        training.seed(params.get("seed", 0))
        module = VAEModule(vars(config) | {"hidden": list(config.hidden)}, lr=float(vp["lr"]))
        training.prepare_ckpt_dir(ckpt_dir, fingerprint)
        workers = int(training.resolve(train_params)["num_workers"])
        start = StartEpoch()
        trainer, resume = training.make_trainer(
            train_params, ckpt_dir, int(vp["epochs"]), logger=tracking.mlflow_logger(run), callbacks=[start]
        )
        t0 = time.perf_counter()
        trainer.fit(
            module,
            loader(train, int(vp["batch_size"]), True, workers),
            loader(dev, int(vp["batch_size"]) * 4, False, workers),
            ckpt_path=resume,
        )
        seconds = time.perf_counter() - t0
        if not trainer.is_global_zero:
            return {}
        vae = module.vae.cpu().float()
        save_vae(vae, out_dir)
        metrics = {
            "train_frames": len(train),
            "epochs": int(trainer.current_epoch),
            "resumed_from_epoch": start.epoch,
            "train_seconds": round(seconds, 2),
            "train_frames_per_s": round(len(train) * (trainer.current_epoch - start.epoch) / seconds, 1),
            "clipped": {"train": clip_train, "dev": clip_dev},
            "dev": reconstruction_metrics(vae, dev, transform),
        }
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        metrics_path.write_text(json.dumps(metrics, indent=1))
        tracking.log_metrics_file(run, metrics_path)
        tracking.log_artifacts(run, out_dir, artifact_path="model")
        training.clear_checkpoints(ckpt_dir)
        log.info("dev mpjpe_unit %s", metrics["dev"]["mpjpe_unit"])
        return metrics


if __name__ == "__main__":
    main()
