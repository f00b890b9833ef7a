"""Stage ``train_nslpg``: train the NSLP-G baseline's variants (Hwang et al. 2021; the paper's NAR
baseline, §4.3) on top of our pretrained VAE.

Reads ``data/lifted/{train,dev}`` (SplitStore, channels x, y, z in [0, 1], index entries with
``text`` and, for the GS variants, ``gloss``) and ``models/vae`` (:func:`pipeline.models.vae.load_vae`:
its decoder is NSLP-G's Gaussian-space decoder). Texts are word ids of a vocabulary built from the
train texts (:class:`pipeline.models.backtranslator.Vocab`, words seen >= ``nslpg.min_count``
times), glosses ids of the train glosses (:class:`pipeline.models.nslpg.GlossSeqVocab`). For each
variant of ``nslpg.variants`` (:data:`pipeline.baselines.nslpg.VARIANTS`: ``base``; ``gs`` =
gloss supervision at ``nslpg.gloss_weight``; ``base_ft`` / ``gs_ft`` = the same with the VAE
decoder fine-tuned, "+ft") it trains :class:`pipeline.models.nslpg.NSLPG` on
:meth:`~pipeline.models.nslpg.NSLPG.losses` (AdamW, ``nslpg.lr``) through the training engine,
one part of the stage's run per variant (same seed), each on a fresh copy of the VAE. Length:
``nslpg.length: oracle`` (NSLP-G: the true number of frames, also at test time) or ``regulator``
(our addition: a length regulator trained with BCE). Dev losses every epoch. Writes

- ``models/nslpg/<variant>/``: :func:`pipeline.baselines.nslpg.save_nslpg` (config, weights, the
  VAE it decodes with in ``vae/`` - fine-tuned for ``*_ft``, identical to ``models/vae`` otherwise -
  and the vocabularies), read by :func:`pipeline.baselines.nslpg.load_nslpg`;
- ``models/nslpg_ckpt/<variant>/``: Lightning checkpoints (resume as in ``train_pt``);
- ``metrics/train_nslpg.json``: per variant the dev losses (pose MSE, gloss cross-entropy with GS,
  length BCE, DurACC and length MAE with the regulator; ``oracle_length: 1`` with the oracle),
  train time and samples/s; corpus counts.

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
from torch.utils.data import DataLoader, Dataset

from pipeline.baselines.nslpg import save_nslpg, variant_config
from pipeline.config import Stage, parse_section
from pipeline.data.sequences import Pairs, fit_max_frames, load_pairs, pad_sequences
from pipeline.data.store import SplitStore, StoreError
from pipeline.evaluation.metrics import duration_accuracy
from pipeline.models.backtranslator import Vocab, encode_batch
from pipeline.models.nslpg import NSLPG, GlossSeqVocab
from pipeline.models.student import predict_frames
from pipeline.models.vae import load_vae
from pipeline.training import engine
from pipeline.training.sections import NSLPGSection

LIFTED, VAE_DIR = Path("data/lifted"), Path("models/vae")
OUT, CKPT, METRICS = Path("models/nslpg"), Path("models/nslpg_ckpt"), Path("metrics/train_nslpg.json")
STAGE = Stage(
    "train_nslpg",
    ("seed", "nslpg", "train"),
    (LIFTED, VAE_DIR),
    (OUT, CKPT, METRICS, engine.curves_dir("train_nslpg")),
)
log = logging.getLogger(__name__)


class SentenceDataset(Dataset):
    """Index -> ``(text, gloss, frames [T, J*3])`` of :class:`Pairs`."""

    def __init__(self, pairs: Pairs) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[str, str, np.ndarray]:
        p = self.pairs
        return p.texts[i], p.glosses[i] if p.glosses else "", p.frames[i]


class SentenceCollate:
    """Items -> word ids + mask, gloss ids (``<bos> .. <eos>``), poses padded to the batch's longest."""

    def __init__(self, vocab: Vocab, glosses: GlossSeqVocab) -> None:
        self.vocab, self.glosses = vocab, glosses

    def __call__(self, batch: list[tuple[str, str, np.ndarray]]) -> dict[str, torch.Tensor]:
        ids, mask = encode_batch(self.vocab, [t for t, _, _ in batch])
        gloss_ids, _ = encode_batch(self.glosses, [g for _, g, _ in batch])
        poses, lengths = pad_sequences([f for _, _, f in batch])
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "gloss_ids": gloss_ids,
            "poses": poses,
            "lengths": lengths,
        }


def make_loader(
    pairs: Pairs, vocab: Vocab, glosses: GlossSeqVocab, batch_size: int, shuffle: bool, workers: int
) -> DataLoader:
    """Batches of :class:`SentenceCollate`."""
    return DataLoader(
        SentenceDataset(pairs),
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=SentenceCollate(vocab, glosses),
        num_workers=workers,
    )


class NSLPGModule(L.LightningModule):
    """Lightning wrapper: :meth:`NSLPG.losses` with AdamW on :meth:`NSLPG.trainable_parameters`."""

    def __init__(self, model: NSLPG, lr: float, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.model, self.lr, self.weight_decay = model, lr, weight_decay

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        gloss_ids = batch["gloss_ids"] if self.model.config.gloss_weight > 0 else None
        return self.model.losses(
            batch["input_ids"], batch["attention_mask"], batch["poses"], batch["lengths"], gloss_ids
        )

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self.losses(batch)
        logged = {f"train/{k}": v for k, v in losses.items()}
        self.log_dict(logged, on_step=True, on_epoch=True, batch_size=len(batch["lengths"]), sync_dist=True)
        return losses["total"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logged = {f"val/{k}": v for k, v in self.losses(batch).items()}
        self.log_dict(logged, prog_bar=True, batch_size=len(batch["lengths"]), sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = list(self.model.trainable_parameters())
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)


@torch.no_grad()
def dev_metrics(module: NSLPGModule, loader: DataLoader, fps: float) -> dict[str, float]:
    """Dev losses (pose frame-weighted, gloss/length/total sequence-weighted) and, with the length
    regulator, DurACC (< ``fps`` frames) and mean absolute length error; ``oracle_length: 1``
    with the oracle length (DurACC 1 by construction)."""
    module.eval()
    model = module.model
    sums: dict[str, float] = {}
    frames = seqs = 0
    t_hats, trues = [], []
    for batch in loader:
        batch = {k: v.to(module.device) for k, v in batch.items()}
        n_frames, n = int(batch["lengths"].sum()), len(batch["lengths"])
        for k, v in module.losses(batch).items():
            sums[k] = sums.get(k, 0.0) + float(v) * (n_frames if k == "pose" else n)
        frames, seqs = frames + n_frames, seqs + n
        if model.length is not None:
            states = model.encode(batch["input_ids"], batch["attention_mask"])
            ratio = torch.sigmoid(model.length(states[:, 0]).float())
            t_hats.append(predict_frames(ratio, model.config.max_frames).cpu())
            trues.append(batch["lengths"].cpu())
    result = {k: v / (frames if k == "pose" else seqs) for k, v in sums.items()}
    c = model.config  # the loss of the averages (pose frame-weighted), as NSLPG.losses combines them
    extra = c.gloss_weight * result.get("gloss", 0.0) + c.length_weight * result.get("length", 0.0)
    result["total"] = result["pose"] + extra
    if t_hats:
        t_hat, true = torch.cat(t_hats).numpy(), torch.cat(trues).numpy()
        result["dur_acc"] = duration_accuracy(t_hat, true, fps)
        result["length_mae_frames"] = float(np.abs(t_hat - true).mean())
    else:
        result["oracle_length"] = 1
    result["sequences"] = seqs
    return result


def check_glosses(pairs: dict[str, Pairs]) -> None:
    """Every sequence needs a gloss for the GS variants (:class:`StoreError` naming the first without)."""
    for split, p in pairs.items():
        for i, gloss in enumerate(p.glosses):
            if not gloss:
                raise StoreError(
                    f"{LIFTED / split}/index.jsonl: sequence {p.names[i]!r} (row {i}) has no gloss, "
                    "which the GS variants need (drop gs and gs_ft from nslpg.variants)"
                )


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m pipeline.stages.train_nslpg``; returns the metrics of metrics/train_nslpg.json."""
    params = STAGE.start(__doc__, argv)
    sec = parse_section(params, "nslpg", NSLPGSection)
    stores = {s: SplitStore.load(LIFTED / s, mmap=True) for s in ("train", "dev")}
    max_frames = fit_max_frames(sec.max_frames, stores["train"])
    cut = max_frames if sec.model.length == "regulator" else None  # the oracle decodes any length
    pairs = {s: load_pairs(stores[s], LIFTED / s, cut, "truncate") for s in ("train", "dev")}
    if not len(pairs["train"]) or not len(pairs["dev"]):
        raise StoreError(f"{LIFTED}: train has {len(pairs['train'])} sequences, dev {len(pairs['dev'])}")
    if sec.gloss_supervised:
        check_glosses(pairs)
    vocab = Vocab.build(pairs["train"].texts, sec.min_count)
    glosses = GlossSeqVocab.build(pairs["train"].glosses)
    n_features = pairs["train"].frames[0].shape[1]
    vae_config = load_vae(VAE_DIR).config
    if vae_config.n_features != n_features:
        raise StoreError(
            f"{VAE_DIR}: VAE expects {vae_config.n_features} features, {LIFTED} has {n_features}"
        )
    config = dataclasses.replace(
        sec.model,
        vocab_size=len(vocab),
        max_frames=max_frames,
        latent=vae_config.latent,
        n_features=n_features,
    )
    fps = float(stores["train"].fps)
    seed = engine.section_seed(params, "nslpg")
    data = engine.data_digest(
        [("\n".join(p.texts), "\n".join(p.glosses), p.frames) for p in pairs.values()], VAE_DIR / "model.pt"
    )
    fingerprint = {"nslpg": dataclasses.asdict(sec), "seed": seed, "data": data}
    meta = {"n_joints": pairs["train"].n_joints, "joints": stores["train"].joints, "fps": fps}
    metrics: dict[str, Any] = {
        "train_sequences": len(pairs["train"]),
        "max_frames": max_frames,
        "vocab_size": len(vocab),
        "gloss_vocab_size": len(glosses),
        "truncated": {s: p.truncated for s, p in pairs.items()},
        "clipped": {s: p.clipped for s, p in pairs.items()},
    }

    with engine.training_run(STAGE, params, CKPT, fingerprint, seed, sec.fit) as job:
        total = 0.0
        for variant in sec.variants:
            cfg = variant_config(config, variant, sec.gloss_weight, len(glosses))
            part_fp = {"variant": variant, "model": dataclasses.asdict(cfg), "seed": seed, "data": data}
            part_fp |= {"fit": dataclasses.asdict(sec.fit), "weight_decay": sec.weight_decay}
            part = job.part(variant, CKPT / variant, part_fp, seed)
            module = NSLPGModule(NSLPG(cfg, load_vae(VAE_DIR)), sec.fit.lr, sec.weight_decay)
            loaders = [
                make_loader(pairs[s], vocab, glosses, sec.fit.batch_size, s == "train", job.workers)
                for s in ("train", "dev")
            ]
            fit = part.fit(module, *loaders)
            if not fit.is_global_zero:
                return {}
            module = module.cpu().float()
            total += fit.seconds
            metrics[variant] = {
                "gloss_weight": cfg.gloss_weight,
                "finetune_vae": int(cfg.finetune_vae),
                **fit.summary(len(pairs["train"])),
                "dev": dev_metrics(module, loaders[1], fps),
            }
            saved_glosses = glosses if cfg.gloss_weight > 0 else None
            save_nslpg(
                STAGE.out(OUT / variant), module.model, vocab, {"variant": variant, **meta}, saved_glosses
            )
            log.debug("%s: dev %s", variant, metrics[variant]["dev"])
        metrics["train_seconds"] = round(total, 2)
        job.finish(metrics, METRICS, OUT)
        STAGE.summary("; ".join(f"{v}: dev total {metrics[v]['dev']['total']:.4g}" for v in sec.variants))
        return metrics


if __name__ == "__main__":
    main()
