"""Stage ``train_backtranslator``: the pose -> German text model of the back-translation metrics (§5.1).

Reads ``data/lifted/{train,dev,test}`` (SplitStore, channels x, y, z in [0, 1], index entries with
``text``; checked by :func:`pipeline.sequences.load_pairs`). Builds the word vocabulary from the
train texts (:class:`pipeline.models.slt.Vocab`), trains :class:`pipeline.models.slt.SLT` on the
ground-truth train poses (input standardised with the train frames' per-feature mean/std;
teacher-forced cross entropy with label smoothing, AdamW, optional Gaussian noise
``backtranslator.noise`` on the input frames) through
:func:`pipeline.training.make_trainer`, decodes dev greedily every ``val_every`` epochs and keeps
the weights of the epoch with the best dev BLEU-4 (model selection on dev, as the issue asks).
Writes

- ``models/backtranslator/``: ``config.json``, ``model.pt``, ``vocab.json``
  (:func:`pipeline.models.slt.load_slt`);
- ``metrics/backtranslator.json``: best epoch, and BLEU-1..4 / ROUGE-L of the selected model on the
  ground-truth dev and test poses (the "GT" row's BT scores), plus vocabulary size / OOV rates and
  train time;
- ``models/backtranslator_ckpt/`` (DVC ``persist: true``): Lightning checkpoints (with the best
  weights so far) for resuming a killed run; deleted after a successful fit.

MLflow: child run ``train_backtranslator`` (:mod:`pipeline.tracking`).
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
from torch.utils.data import DataLoader

from pipeline import tracking, training
from pipeline.config import check_positive, load_params, section
from pipeline.metrics import bleu_scores, rouge_l
from pipeline.models.slt import SLT, SLTConfig, Vocab, save_slt, words
from pipeline.sequences import PairDataset, Pairs, load_pairs, pad_sequences
from pipeline.store import SplitStore, StoreError

log = logging.getLogger(__name__)

LIFTED = Path("data/lifted")
OUT_DIR = Path("models/backtranslator")
CKPT_DIR = Path("models/backtranslator_ckpt")
METRICS = Path("metrics/backtranslator.json")
REQUIRED = ("epochs", "batch_size", "lr", "val_every", "min_count")


def bt_params(params: dict[str, Any]) -> dict[str, Any]:
    """The ``backtranslator`` section, validated."""
    p = section(params, "backtranslator")
    for key in REQUIRED:
        if key not in p:
            raise StoreError(f"params.yaml: missing backtranslator.{key}")
        check_positive(p[key], f"backtranslator.{key}")
    for key in ("noise", "label_smoothing", "weight_decay", "cpu_threads"):
        check_positive(p.get(key, 0.0), f"backtranslator.{key}", allow_zero=True)
    return p


class TextCollate:
    """``(text, frames [T, F])`` items -> padded ``poses [B, T, F]``, ``lengths [B]``, ``tokens [B, L]``."""

    def __init__(self, vocab: Vocab, max_tokens: int) -> None:
        self.vocab, self.max_tokens = vocab, max_tokens

    def __call__(self, batch: list[tuple[str, np.ndarray]]) -> dict[str, Any]:
        poses, lengths = pad_sequences([f for _, f in batch])
        ids = [self.vocab.encode(t, self.max_tokens) for t, _ in batch]
        tokens = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long)
        for i, row in enumerate(ids):
            tokens[i, : len(row)] = torch.tensor(row)
        return {"poses": poses, "lengths": lengths, "tokens": tokens, "texts": [t for t, _ in batch]}


@torch.no_grad()
def translate(
    model: SLT, vocab: Vocab, frames: list[np.ndarray], batch_size: int = 64, device: str = "cpu"
) -> list[str]:
    """Greedy back-translation of ``frames`` (each ``[T, J*3]`` or ``[T, J, 3]`` in [0, 1])."""
    model.eval()
    order = np.argsort([len(f) for f in frames])  # similar lengths per batch: less padding
    texts: dict[int, str] = {}
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        batch = [np.clip(np.asarray(frames[i], np.float32).reshape(len(frames[i]), -1), 0, 1) for i in idx]
        poses, lengths = pad_sequences(batch)
        for i, ids in zip(idx, model.greedy(poses.to(device), lengths.to(device)), strict=True):
            texts[int(i)] = vocab.decode(ids)
    return [texts[i] for i in range(len(frames))]


def score(hyps: list[str], refs: list[str]) -> dict[str, float]:
    """BLEU-1..4 and ROUGE-L (0..100) of ``hyps`` against ``refs`` (references lower-cased like the vocab)."""
    refs = [" ".join(words(r)) for r in refs]
    return {**bleu_scores(hyps, refs), "rouge": rouge_l(hyps, refs)}


class SLTModule(L.LightningModule):
    """Lightning wrapper; validation = greedy dev decoding every ``val_every`` epochs, keeps best BLEU-4."""

    def __init__(
        self, config: dict[str, Any], vocab: Vocab, dev: Pairs, p: dict[str, Any], max_tokens: int
    ) -> None:
        super().__init__()
        self.slt = SLT(SLTConfig(**config))
        self.vocab, self.dev, self.p = vocab, dev, p
        self.noise = float(p.get("noise", 0.0))
        self.best: dict[str, Any] = {"bleu4": -1.0, "epoch": -1, "state": None}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        poses = batch["poses"]
        if self.noise:
            poses = poses + self.noise * torch.randn_like(poses)
        loss = self.slt.loss(
            poses, batch["lengths"], batch["tokens"], float(self.p.get("label_smoothing", 0.1))
        )
        self.log("train/ce", loss, on_step=True, on_epoch=True, batch_size=len(poses), sync_dist=True)
        return loss

    def on_train_epoch_end(self) -> None:
        epoch = self.current_epoch + 1
        if epoch % int(self.p["val_every"]) and epoch != self.trainer.max_epochs:
            return
        hyps = translate(self.slt, self.vocab, self.dev.frames, device=str(self.device))
        self.slt.train()
        scores = score(hyps, self.dev.texts)
        self.log_dict({f"val/{k}": v for k, v in scores.items()})
        if scores["bleu4"] > self.best["bleu4"]:
            state = {k: v.detach().cpu().clone() for k, v in self.slt.state_dict().items()}
            self.best = {"bleu4": scores["bleu4"], "epoch": epoch, "state": state}
        log.info(
            "epoch %d dev %s (best BLEU-4 %.2f @ %d)", epoch, scores, self.best["bleu4"], self.best["epoch"]
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["best_bt"] = self.best

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.best = checkpoint.get("best_bt", self.best)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            self.parameters(), lr=float(self.p["lr"]), weight_decay=float(self.p.get("weight_decay", 0.01))
        )


def oov_rate(texts: list[str], vocab: Vocab) -> float:
    """Share of word tokens of ``texts`` not in ``vocab``."""
    toks = [w for t in texts for w in words(t)]
    return float(np.mean([w not in vocab.stoi for w in toks])) if toks else 0.0


def main(
    lifted: Path = LIFTED, out_dir: Path = OUT_DIR, ckpt_dir: Path = CKPT_DIR, metrics_path: Path = METRICS
) -> dict[str, Any]:
    """Run the stage; returns the metrics written to ``metrics_path``."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    params = load_params()
    bp = bt_params(params)
    train_params = params.get("train") or {}
    pairs = {
        s: load_pairs(SplitStore.load(lifted / s, mmap=True), lifted / s) for s in ("train", "dev", "test")
    }
    if len(pairs["train"]) == 0 or len(pairs["dev"]) == 0:
        raise StoreError(f"{lifted}: train has {len(pairs['train'])} sequences, dev {len(pairs['dev'])}")
    vocab = Vocab.build(pairs["train"].texts, int(bp["min_count"]))
    max_tokens = max(len(words(t)) for t in pairs["train"].texts) + 2
    config = SLTConfig.from_params(
        {**bp, "max_tokens": max_tokens}, pairs["train"].frames[0].shape[1], len(vocab)
    )
    data = [list(zip(pairs[s].texts, pairs[s].frames, strict=True)) for s in ("train", "dev")]
    fingerprint = {
        "backtranslator": bp,
        "train": train_params,
        "seed": params.get("seed"),
        "data": training.data_digest(data),
    }

    training.set_cpu_threads(bp.get("cpu_threads", 0))
    with tracking.stage_run("train_backtranslator", params) as run:
        training.seed(params.get("seed", 0))
        module = SLTModule(vars(config), vocab, pairs["dev"], bp, max_tokens)
        module.slt.set_normalisation(torch.from_numpy(np.concatenate(pairs["train"].frames)))
        training.prepare_ckpt_dir(ckpt_dir, fingerprint)
        workers = int(training.resolve(train_params)["num_workers"])
        trainer, resume = training.make_trainer(
            train_params,
            ckpt_dir,
            int(bp["epochs"]),
            logger=tracking.mlflow_logger(run),
            limit_val_batches=0,
            num_sanity_val_steps=0,
        )
        loader = DataLoader(
            PairDataset(pairs["train"]),
            int(bp["batch_size"]),
            shuffle=True,
            collate_fn=TextCollate(vocab, max_tokens),
            num_workers=workers,
        )
        t0 = time.perf_counter()
        trainer.fit(module, loader, ckpt_path=resume)
        seconds = time.perf_counter() - t0
        if not trainer.is_global_zero:
            return {}
        slt = module.slt.cpu().float()
        if module.best["state"] is not None:
            slt.load_state_dict(module.best["state"])
        slt.eval()
        save_slt(slt, vocab, out_dir)
        metrics: dict[str, Any] = {
            "best_epoch": module.best["epoch"],
            "epochs": int(trainer.current_epoch),
            "train_seconds": round(seconds, 2),
            "vocab_size": len(vocab),
            "oov_rate": {s: oov_rate(pairs[s].texts, vocab) for s in ("dev", "test")},
        }
        for s in ("dev", "test"):
            if len(pairs[s]):
                metrics[s] = score(translate(slt, vocab, pairs[s].frames), pairs[s].texts)
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        metrics_path.write_text(json.dumps(metrics, indent=1))
        tracking.log_metrics_file(run, metrics_path)
        tracking.log_artifacts(run, out_dir, artifact_path="model")
        training.clear_checkpoints(ckpt_dir)
        log.info("back-translator: best epoch %s, dev %s", metrics["best_epoch"], metrics.get("dev"))
        return metrics


if __name__ == "__main__":
    main()
