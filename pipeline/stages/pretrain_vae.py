"""Stage ``pretrain_vae``: train the single-frame pose VAE (LGM/PGM teacher, paper §3.2, Eq. 1-2).

Reads ``data/lifted/{train,dev}`` (SplitStore, channels x, y, z in [0, 1], 50 or 120 joints) and
``data/lifted/transform.json``; trains :class:`pipeline.models.vae.VAE` on every train frame
(validation on the dev frames) with the training engine; writes

- ``models/vae/`` (``config.json`` + ``model.pt``, read by :func:`pipeline.models.vae.load_vae`);
- ``metrics/vae.json``: dev reconstruction error per body part as mean per-joint position error
  and MSE in [0, 1] units, and mean per-joint position error in lifted 3D units
  (``UnitRange.inverse``), plus the dev loss terms and training figures;
- ``models/vae_ckpt/``: Lightning checkpoints. A killed run resumes from its newest checkpoint
  when the stage is rerun with the same params and data (``fingerprint.json``); the checkpoints
  are deleted after a successful fit.

Values outside [0, 1] (dev/test may leave the train range slightly) are clipped before BCE and
counted in ``clipped``. With ``vae.features: local`` the VAE's feature map is fitted on the train
frames before training (:meth:`pipeline.models.vae.VAE.fit_features`) and saved with its weights.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from pipeline.config import Stage, check_seed, parse_section
from pipeline.data.skeleton import part_slices
from pipeline.data.store import SplitStore, StoreError
from pipeline.data.transform import UnitRange
from pipeline.models.io import save_model
from pipeline.models.vae import VAE
from pipeline.training import engine
from pipeline.training.sections import VAESection

LIFTED = Path("data/lifted")
OUT, CKPT, METRICS = Path("models/vae"), Path("models/vae_ckpt"), Path("metrics/vae.json")
STAGE = Stage(
    "pretrain_vae",
    ("seed", "vae", "train"),
    (LIFTED,),
    (OUT, CKPT, METRICS, engine.curves_dir("pretrain_vae")),
)
log = logging.getLogger(__name__)


def load_frames(store: SplitStore, where: str | Path) -> tuple[np.ndarray, int]:
    """All frames of ``store`` flattened to ``[F, J*3]`` float32, clipped to [0, 1]; and #clipped values."""
    if store.channels != ["x", "y", "z"]:
        raise StoreError(f"{where}: channels {store.channels}, expected ['x', 'y', 'z']")
    poses = np.asarray(store.poses, dtype=np.float32)
    bad = ~np.isfinite(poses).all(axis=(1, 2))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StoreError(f"{where}: frame {i} has non-finite values ({int(bad.sum())} frames)")
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
    """Dev reconstruction (``z = mu``) errors per body part in [0, 1] and lifted 3D units
    (``recon_bce`` in the VAE's feature space, ``recon_mse`` and the rest on absolute poses)."""
    vae.eval()
    y = torch.from_numpy(frames)
    out = []
    recon = {"bce": 0.0, "mse": 0.0, "kl": 0.0}
    for start in range(0, len(y), batch_size):
        batch = y[start : start + batch_size]
        mu, logvar = vae.encode(batch)
        logits = vae.decode_logits(mu)
        pred = vae.decode(mu)  # absolute frames (features: local maps the Sigmoid output back)
        n = len(batch)
        target = vae.features(batch)  # the BCE's space: the frames, or the local features
        recon["bce"] += float(torch.nn.functional.binary_cross_entropy_with_logits(logits, target)) * n
        recon["mse"] += float(torch.nn.functional.mse_loss(pred, batch)) * n
        recon["kl"] += float((-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)).sum())
        out.append(pred.numpy())
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


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m pipeline.stages.pretrain_vae``; returns the metrics written to metrics/vae.json."""
    params = STAGE.start(__doc__, argv)
    sec = parse_section(params, "vae", VAESection)
    seed = check_seed(params["seed"])
    stores = {s: SplitStore.load(LIFTED / s, mmap=True) for s in ("train", "dev")}
    transform = UnitRange.load(LIFTED / "transform.json")
    (train, clip_train), (dev, clip_dev) = (load_frames(stores[s], LIFTED / s) for s in ("train", "dev"))
    if len(train) == 0 or len(dev) == 0:
        raise StoreError(f"{LIFTED}: train has {len(train)} frames, dev {len(dev)}; both must be non-empty")
    config = dataclasses.replace(sec.model, n_features=train.shape[1])
    fingerprint = {"vae": dataclasses.asdict(sec), "seed": seed, "data": engine.data_digest(train, dev)}

    with engine.training_run(STAGE, params, CKPT, fingerprint, seed, sec.fit) as job:
        vae = VAE(config)
        vae.fit_features(torch.from_numpy(train))  # features: local -> ranges of the train frames
        module = engine.LossModule(vae, sec.fit.lr)  # Eq. 2
        batch, workers = sec.fit.batch_size, job.workers
        fit = job.fit(module, loader(train, batch, True, workers), loader(dev, batch * 4, False, workers))
        if not fit.is_global_zero:
            return {}
        vae = module.model.cpu().float()
        save_model(vae, OUT)
        metrics = {
            "train_frames": len(train),
            "epochs": fit.epochs,
            "resumed_from_epoch": fit.start_epoch,
            "train_seconds": round(fit.seconds, 2),
            "train_frames_per_s": round(len(train) * fit.epochs_run / fit.seconds, 1),
            "clipped": {"train": clip_train, "dev": clip_dev},
            "dev": reconstruction_metrics(vae, dev, transform),
        }
        job.finish(metrics, METRICS, OUT)
        log.debug("dev mpjpe_unit %s", metrics["dev"]["mpjpe_unit"])
        mpjpe = metrics["dev"]["mpjpe_unit"]
        STAGE.summary(
            f"{fit.epochs} epochs ({fit.start_epoch} resumed); "
            f"dev recon MSE {metrics['dev']['recon_mse']:.3g}, "
            f"MPJPE all {mpjpe['all']:.4f} / hands {mpjpe['left_hand']:.4f}, {mpjpe['right_hand']:.4f}"
        )
        return metrics


if __name__ == "__main__":
    main()
