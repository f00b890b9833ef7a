"""Stage ``train_fgd_encoder``: train the FGD encoder whose latents define FGD (paper §5.1, Eq. 12).

Reads ``data/lifted/{train,dev}`` (SplitStore, channels x, y, z in [0, 1]); cuts every
ground-truth sequence into windows of ``fgd_encoder.window`` (34) frames with
:func:`pipeline.models.fgd_encoder.windows` (stride ``fgd_encoder.train_stride`` for training and
``fgd_encoder.stride`` for the dev check; sequences shorter than a window are padded by repeating
their last frame, exactly as at evaluation); values are clipped to [0, 1] for BCE (the count is
reported). Trains :class:`pipeline.models.fgd_encoder.FGDEncoder`, NSLP-G's Transformer
autoencoder (a window -> one mean-pooled vector z -> the window; input standardised with the train
windows' per-feature mean and std), on BCE reconstruction through the training engine, with AdamW
under a linear warm-up then cosine learning-rate schedule, and writes

- ``models/fgd_encoder/``: ``config.json`` + ``model.pt`` (read by
  :func:`pipeline.models.fgd_encoder.load_fgd_encoder`; the config holds the window and the
  evaluation stride) and ``summary.json``: window counts, train time, weight size and the dev
  reconstruction (:func:`reconstruction`): BCE with its floor (the BCE of a perfect reconstruction),
  MSE, and the MSE of two trivial reconstructions of the same windows, each window's own mean
  frame (``static``: a held pose) and the train mean frame (``train_mean``), as ratios and per
  body part; a TAE whose ``ratio_static`` is well below 1 carries the motion of a window in z;
- ``models/fgd_encoder_ckpt/``: Lightning checkpoints for resuming a killed run; deleted after a
  successful fit.

A fixed evaluator: its outputs are committed to git (dvc.yaml: ``cache: false``) and its declared
data dependency is the corpus (:func:`pipeline.data.store.corpus_files`: index + meta of train and
dev) and ``lift.method`` (recorded in summary.json as ``lift_method``: an encoder trained on poses
lifted one way is a shifted instrument for poses lifted another way), not the lifted poses, so a
fresh clone on any CPU and every student experiment reuse it; ``dvc repro -f -s train_fgd_encoder``
retrains it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from pipeline.config import Stage, check_seed, parse_section
from pipeline.data.skeleton import part_slices
from pipeline.data.store import SplitStore, StoreError, corpus_files
from pipeline.models.fgd_encoder import FGDEncoder, windows
from pipeline.models.io import WEIGHTS_FILE, save_model
from pipeline.training import engine
from pipeline.training.sections import FGDEncoderSection

LIFTED, OUT, CKPT = Path("data/lifted"), Path("models/fgd_encoder"), Path("models/fgd_encoder_ckpt")
SUMMARY = OUT / "summary.json"  # inside the model directory
# data dependency: the corpus and its lifting method, not the lifted floats (a fixed evaluator, see dvc.yaml)
STAGE = Stage(
    "train_fgd_encoder",
    ("seed", "lift.method", "fgd_encoder", "train"),
    corpus_files(LIFTED, ("train", "dev")),
    (OUT, CKPT, engine.curves_dir("train_fgd_encoder")),
)
log = logging.getLogger(__name__)


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


def _joint_sq(pred: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Squared errors summed over windows, frames and channels, per joint ``[J]`` (float64)."""
    return ((pred.double() - x.double()) ** 2).reshape(*x.shape[:2], -1, 3).sum(dim=(0, 1, 3))


@torch.no_grad()
def reconstruction(
    encoder: FGDEncoder, x: np.ndarray, batch_size: int = 512, mean_frame: np.ndarray | None = None
) -> dict[str, Any]:
    """Reconstruction of windows ``x [N, W, J*3]`` in [0, 1] against trivial ones.

    ``bce`` / ``mse``: the encoder's mean BCE and MSE; ``bce_floor``: the BCE of a perfect
    reconstruction (the targets' entropy); ``mse_static``: MSE of each window replaced by its own
    mean frame; ``mse_train_mean`` (with ``mean_frame [J*3]``): of every frame replaced by it;
    ``ratio_*`` = ``mse`` / that; ``parts``: the three MSEs per body part (50/120-joint layouts).
    """
    encoder.eval()
    mean = None if mean_frame is None else torch.as_tensor(mean_frame, dtype=torch.float32)
    n_joints = x.shape[-1] // 3
    sums = {"bce": 0.0, "bce_floor": 0.0}
    sq = {k: torch.zeros(n_joints, dtype=torch.float64) for k in ("mse", "static", "train_mean")}
    for s in range(0, len(x), batch_size):
        b = torch.from_numpy(np.ascontiguousarray(x[s : s + batch_size]))
        logits = encoder(b)
        sums["bce"] += float(F.binary_cross_entropy_with_logits(logits, b)) * len(b)
        sums["bce_floor"] += float(F.binary_cross_entropy(b, b)) * len(b)
        sq["mse"] += _joint_sq(torch.sigmoid(logits), b)
        sq["static"] += _joint_sq(b.mean(dim=1, keepdim=True).expand_as(b), b)
        if mean is not None:
            sq["train_mean"] += _joint_sq(mean.expand_as(b), b)
    per_joint = {k: v.numpy() / (len(x) * x.shape[1] * 3) for k, v in sq.items()}
    mse = {k: float(v.mean()) for k, v in per_joint.items()}
    out: dict[str, Any] = {k: v / len(x) for k, v in sums.items()}
    out.update(mse=mse["mse"], mse_static=mse["static"], ratio_static=mse["mse"] / mse["static"])
    keys = ("mse", "static") if mean is None else ("mse", "static", "train_mean")
    if mean is not None:
        out.update(mse_train_mean=mse["train_mean"], ratio_train_mean=mse["mse"] / mse["train_mean"])
    out["parts"] = {
        part: {k: float(per_joint[k][sl].mean()) for k in keys} for part, sl in part_slices(n_joints).items()
    }
    return out


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m pipeline.stages.train_fgd_encoder``; returns the summary written to summary.json."""
    params = STAGE.start(__doc__, argv)
    sec = parse_section(params, "fgd_encoder", FGDEncoderSection)
    seed = check_seed(params["seed"])
    size, stride = sec.model.window, sec.model.stride
    stores = {s: SplitStore.load(LIFTED / s, mmap=True) for s in ("train", "dev")}
    train, clip_train = split_windows(stores["train"], LIFTED / "train", size, sec.train_stride)
    dev, clip_dev = split_windows(stores["dev"], LIFTED / "dev", size, stride)
    config = dataclasses.replace(sec.model, n_features=train.shape[-1])
    digest = engine.data_digest(train, dev)
    fingerprint = {"fgd_encoder": dataclasses.asdict(sec), "seed": seed, "data": digest}

    with engine.training_run(STAGE, params, CKPT, fingerprint, seed, sec.fit) as job:
        model = FGDEncoder(config)
        model.fit_input_stats(torch.from_numpy(train))
        module = engine.LossModule(model, sec.fit.lr, name="bce", warmup=sec.warmup)
        bs = sec.fit.batch_size
        fit = job.fit(
            module,
            DataLoader(TensorDataset(torch.from_numpy(train)), bs, shuffle=True, num_workers=job.workers),
            DataLoader(TensorDataset(torch.from_numpy(dev)), bs * 4, num_workers=job.workers),
        )
        if not fit.is_global_zero:
            return {}
        encoder = module.model.cpu().float().eval()
        save_model(encoder, OUT)
        summary = {
            "lift_method": params["lift"]["method"],
            "train_windows": len(train),
            "dev_windows": len(dev),
            "epochs": fit.epochs,
            "train_seconds": round(fit.seconds, 2),
            "parameters": sum(p.numel() for p in encoder.parameters()),
            "weights_kb": round((OUT / WEIGHTS_FILE).stat().st_size / 1024, 1),
            "clipped": {"train": clip_train, "dev": clip_dev},
            "dev": reconstruction(encoder, dev, mean_frame=train.reshape(-1, train.shape[-1]).mean(axis=0)),
        }
        job.finish(summary, SUMMARY, OUT)
        d = summary["dev"]
        STAGE.summary(
            "dev reconstruction: BCE {:.4f} (floor {:.4f}), MSE {:.2e} = {:.3f} x static pose, "
            "{:.3f} x train mean".format(
                *(d[k] for k in ("bce", "bce_floor", "mse", "ratio_static", "ratio_train_mean"))
            )
        )
        return summary


if __name__ == "__main__":
    main()
