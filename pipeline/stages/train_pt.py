"""Stage ``train_pt``: train the Progressive Transformers baseline's variants (PT, Saunders et al.
2020; the paper's AR baseline, §4.3).

Reads ``data/lifted/{train,dev}`` (SplitStore, channels x, y, z in [0, 1], index entries with
``text``). Texts are word ids of a vocabulary built from the train texts
(:class:`pipeline.models.backtranslator.Vocab`, words seen >= ``progressive.min_count`` times);
``T_max`` is ``progressive.max_frames`` or the longest train sequence (dev sequences longer than
it are cut and counted). For each variant of ``progressive.variants``
(:data:`pipeline.baselines.pt.VARIANTS`: ``base`` = one future frame and no Gaussian noise,
``fpgn`` = ``fp_frames`` future frames (FP) and Gaussian noise at ``noise_rate`` (GN), also ``fp``
and ``gn``) it trains :class:`pipeline.models.progressive.ProgressiveTransformer` with teacher
forcing on the MSE of :func:`~pipeline.models.progressive.pt_losses` (AdamW, ``progressive.lr``,
``weight_decay``) through the training engine, one part of the stage's run per variant
(:meth:`pipeline.training.engine.TrainingRun.part`, same seed). With GN the epoch's training
prediction errors are collected and ``noise_std`` is set from them at every epoch end
(:meth:`PTModule.on_train_epoch_end`; pending errors travel in the checkpoints, so a resumed run
continues exactly). Dev: teacher-forced losses every epoch; after training the dev losses and the
DurACC / mean absolute length error of greedy generation (the counter's stop rule). Writes

- ``models/pt/<variant>/``: :func:`pipeline.baselines.pt.save_pt` (config, weights incl.
  ``noise_std``, vocabulary), read by :func:`pipeline.baselines.pt.load_pt`;
- ``models/pt_ckpt/<variant>/``: Lightning checkpoints; a killed run resumes when rerun with the
  same params and data, variants already trained are not trained again (all are deleted after
  success);
- ``metrics/train_pt.json``: per variant (``<variant>.dev.total``, ...) the dev losses, DurACC,
  length MAE, mean GN ``noise_std``, train time and samples/s; corpus counts.

MLflow: one run for the stage; each variant's curves are ``<variant>/train/*`` and ``<variant>/val/*``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from pipeline.baselines.pt import PTGenerator, save_pt, variant_config
from pipeline.config import Stage, parse_section
from pipeline.data.sequences import PairDataset, Pairs, fit_max_frames, load_pairs, pad_sequences
from pipeline.data.store import SplitStore, StoreError
from pipeline.evaluation.metrics import duration_accuracy
from pipeline.models.backtranslator import Vocab, encode_batch
from pipeline.models.progressive import (
    ProgressiveTransformer,
    pt_losses,
    teacher_forcing,
)
from pipeline.training import engine
from pipeline.training.sections import PTSection

LIFTED = Path("data/lifted")
OUT, CKPT, METRICS = Path("models/pt"), Path("models/pt_ckpt"), Path("metrics/train_pt.json")
STAGE = Stage(
    "train_pt",
    ("seed", "progressive", "train"),
    (LIFTED,),
    (OUT, CKPT, METRICS, engine.curves_dir("train_pt")),
)
ERRORS_KEY = "pt_error_stats"  # a checkpoint's GN errors of an unfinished epoch
log = logging.getLogger(__name__)


class WordPoseCollate:
    """``(text, frames)`` items -> word ids, attention mask, poses padded to the batch's longest."""

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab

    def __call__(self, batch: list[tuple[str, np.ndarray]]) -> dict[str, torch.Tensor]:
        ids, mask = encode_batch(self.vocab, [t for t, _ in batch])
        poses, lengths = pad_sequences([f for _, f in batch])
        return {"input_ids": ids, "attention_mask": mask, "poses": poses, "lengths": lengths}


def make_loader(pairs: Pairs, vocab: Vocab, batch_size: int, shuffle: bool, workers: int) -> DataLoader:
    """Batches of :class:`WordPoseCollate`."""
    return DataLoader(
        PairDataset(pairs),
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=WordPoseCollate(vocab),
        num_workers=workers,
    )


class PTModule(L.LightningModule):
    """Lightning wrapper: teacher-forced PT on :func:`pt_losses` with AdamW; GN statistics per epoch."""

    def __init__(self, model: ProgressiveTransformer, lr: float, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.model, self.lr, self.weight_decay = model, lr, weight_decay

    @property
    def gn(self) -> bool:
        return self.model.config.noise_rate > 0

    def losses(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """``pt_losses`` of the batch, the outputs and the targets."""
        inputs, targets = teacher_forcing(batch["poses"], batch["lengths"], self.model.config.future_frames)
        outputs = self.model(batch["input_ids"], batch["attention_mask"], inputs)
        return pt_losses(outputs, targets, batch["lengths"]), outputs, targets

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses, outputs, targets = self.losses(batch)
        if self.gn:
            self.model.accumulate_errors(outputs.detach(), targets, batch["lengths"])
        logged = {f"train/{k}": v for k, v in losses.items()}
        self.log_dict(logged, on_step=True, on_epoch=True, batch_size=len(batch["lengths"]), sync_dist=True)
        return losses["total"]

    def on_train_epoch_end(self) -> None:
        """GN: ``noise_std`` <- the std of this epoch's training errors (PT's per-epoch update)."""
        if self.gn:
            self.log("train/noise_std_mean", self.model.update_noise_std().mean(), sync_dist=True)

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        losses, _, _ = self.losses(batch)
        logged = {f"val/{k}": v for k, v in losses.items()}
        self.log_dict(logged, prog_bar=True, batch_size=len(batch["lengths"]), sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Checkpoints saved after the epoch's last batch (before :meth:`on_train_epoch_end`) get
        that epoch's ``noise_std``; one saved mid-epoch keeps the errors collected so far."""
        stats = self.model.error_stats
        if not self.gn or stats is None:
            return
        trained = self.trainer.fit_loop.epoch_loop.batch_progress.current.completed
        if trained >= self.trainer.num_training_batches:  # the epoch's errors are complete
            checkpoint["state_dict"]["model.noise_std"] = self.model.pending_noise_std().cpu()
        else:
            checkpoint[ERRORS_KEY] = [t.cpu() for t in stats]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.model.error_stats = checkpoint.get(ERRORS_KEY)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)


@torch.no_grad()
def dev_metrics(
    module: PTModule, loader: DataLoader, generator: PTGenerator, texts: list[str], fps: float
) -> dict[str, float]:
    """Teacher-forced dev losses (frame-weighted) and DurACC (< ``fps`` frames, as the student's),
    mean absolute length error and mean length of greedy generation."""
    module.eval()
    sums: dict[str, float] = {}
    frames = 0
    true = []
    for batch in loader:
        batch = {k: v.to(module.device) for k, v in batch.items()}
        losses, _, _ = module.losses(batch)
        n = int(batch["lengths"].sum())
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
        frames += n
        true.append(batch["lengths"].cpu())
    result = {k: v / frames for k, v in sums.items()}
    t_hat = np.array([len(s) for s in generator.generate(texts)])
    t = torch.cat(true).numpy()
    result["dur_acc"] = duration_accuracy(t_hat, t, fps)
    result["length_mae_frames"] = float(np.abs(t_hat - t).mean())
    result["generated_frames_mean"] = float(t_hat.mean())
    result["sequences"] = len(t)
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m pipeline.stages.train_pt``; returns the metrics of metrics/train_pt.json."""
    params = STAGE.start(__doc__, argv)
    sec = parse_section(params, "progressive", PTSection)
    stores = {s: SplitStore.load(LIFTED / s, mmap=True) for s in ("train", "dev")}
    max_frames = fit_max_frames(sec.max_frames, stores["train"])
    pairs = {s: load_pairs(stores[s], LIFTED / s, max_frames, "truncate") for s in ("train", "dev")}
    if not len(pairs["train"]) or not len(pairs["dev"]):
        raise StoreError(f"{LIFTED}: train has {len(pairs['train'])} sequences, dev {len(pairs['dev'])}")
    vocab = Vocab.build(pairs["train"].texts, sec.min_count)
    n_features = pairs["train"].frames[0].shape[1]
    config = dataclasses.replace(
        sec.model, vocab_size=len(vocab), max_frames=max_frames, n_features=n_features
    )
    fps = float(stores["train"].fps)
    seed = engine.section_seed(params, "progressive")
    data = engine.data_digest([("\n".join(p.texts), p.frames) for p in pairs.values()])
    fingerprint = {"progressive": dataclasses.asdict(sec), "seed": seed, "data": data}
    meta = {"n_joints": pairs["train"].n_joints, "joints": stores["train"].joints, "fps": fps}
    dev_words = [w for t in pairs["dev"].texts for w in vocab.encode(t)[1:-1]]
    metrics: dict[str, Any] = {
        "train_sequences": len(pairs["train"]),
        "max_frames": max_frames,
        "vocab_size": len(vocab),
        "oov_rate_dev": float(np.mean([w == 3 for w in dev_words])) if dev_words else 0.0,
        "truncated": {s: p.truncated for s, p in pairs.items()},
        "clipped": {s: p.clipped for s, p in pairs.items()},
    }

    with engine.training_run(STAGE, params, CKPT, fingerprint, seed, sec.fit) as job:
        total = 0.0
        for variant in sec.variants:
            cfg = variant_config(config, variant, sec.fp_frames, sec.noise_rate)
            part_fp = {"variant": variant, "model": dataclasses.asdict(cfg), "seed": seed, "data": data}
            part_fp |= {"fit": dataclasses.asdict(sec.fit), "weight_decay": sec.weight_decay}
            part = job.part(variant, CKPT / variant, part_fp, seed)
            module = PTModule(ProgressiveTransformer(cfg), sec.fit.lr, sec.weight_decay)
            train_loader = make_loader(pairs["train"], vocab, sec.fit.batch_size, True, job.workers)
            dev_loader = make_loader(pairs["dev"], vocab, sec.fit.batch_size, False, job.workers)
            fit = part.fit(module, train_loader, dev_loader)
            if not fit.is_global_zero:
                return {}
            model = module.model.cpu().float()
            module = module.cpu()
            generator = PTGenerator(model, vocab, pairs["train"].n_joints, variant, fps)
            total += fit.seconds
            metrics[variant] = {
                "future_frames": cfg.future_frames,
                "noise_rate": cfg.noise_rate,
                **fit.summary(len(pairs["train"])),
                "noise_std_mean": float(model.noise_std.mean()),
                "dev": dev_metrics(module, dev_loader, generator, pairs["dev"].texts, fps),
            }
            save_pt(STAGE.out(OUT / variant), model, vocab, {"variant": variant, **meta})
            log.debug("%s: dev %s", variant, metrics[variant]["dev"])
        metrics["train_seconds"] = round(total, 2)
        job.finish(metrics, METRICS, OUT)
        STAGE.summary(
            "; ".join(
                f"{v}: dev pose {metrics[v]['dev']['pose']:.4g}, DurACC {metrics[v]['dev']['dur_acc']:.3f}, "
                f"{metrics[v]['dev']['generated_frames_mean']:.0f} frames generated on average"
                for v in sec.variants
            )
        )
        return metrics


if __name__ == "__main__":
    main()
