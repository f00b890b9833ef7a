"""Stage ``train_backtranslator``: the pose -> German text model of the back-translation metrics (§5.1).

Reads ``data/lifted/{train,dev,test}`` (SplitStore, channels x, y, z in [0, 1], index entries with
``text``; checked by :func:`pipeline.data.sequences.load_pairs`). Builds the word vocabulary from
the train texts (:class:`pipeline.models.backtranslator.Vocab`), trains
:class:`pipeline.models.backtranslator.BackTranslator` on the ground-truth train poses (input
standardised with the train frames' per-feature mean/std; teacher-forced cross entropy with label
smoothing, AdamW, optional Gaussian noise ``backtranslator.noise`` on the input frames) through
the training engine, decodes dev greedily every ``val_every`` epochs and keeps the weights of the
epoch with the best dev BLEU-4 (model selection on dev). Writes

- ``models/backtranslator/``: ``config.json``, ``model.pt``, ``vocab.json``
  (:func:`pipeline.models.backtranslator.load_backtranslator`);
- ``metrics/backtranslator.json``: best epoch, and BLEU-1..4 / ROUGE-L of the selected model on the
  ground-truth dev and test poses (the "GT" row's BT scores), plus vocabulary size / OOV rates and
  train time;
- ``models/backtranslator_ckpt/``: Lightning checkpoints (with the best weights so far) for
  resuming a killed run; deleted after a successful fit.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from pipeline.config import Stage, check_seed, param, parse_section
from pipeline.data.sequences import PairDataset, Pairs, load_pairs, pad_sequences
from pipeline.data.store import SplitStore, StoreError
from pipeline.evaluation.backtranslation import score, translate
from pipeline.models.backtranslator import (
    BackTranslator,
    BackTranslatorConfig,
    Vocab,
    save_backtranslator,
    words,
)
from pipeline.training import engine

LIFTED, OUT = Path("data/lifted"), Path("models/backtranslator")
CKPT, METRICS = Path("models/backtranslator_ckpt"), Path("metrics/backtranslator.json")
STAGE = Stage("train_backtranslator", ("seed", "backtranslator", "train"), (LIFTED,), (OUT, CKPT, METRICS))
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackTranslatorSection:
    """The ``backtranslator`` params section: the model (:class:`BackTranslatorConfig`) and how it
    is trained."""

    fit: engine.FitConfig = param(flatten=True)
    val_every: int = param(gt=0)  # greedy dev decoding (BLEU-4 model selection) every N epochs and at the end
    min_count: int = param(gt=0)  # words seen fewer times in train map to <unk>
    model: BackTranslatorConfig = param(factory=BackTranslatorConfig, flatten=True)
    noise: float = param(0.0, ge=0)  # std of Gaussian noise added to training frames
    label_smoothing: float = param(0.1, ge=0, lt=1)
    weight_decay: float = param(0.01, ge=0)


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


class BackTranslatorModule(L.LightningModule):
    """Lightning wrapper; validation = greedy dev decoding every ``val_every`` epochs, keeps best BLEU-4."""

    def __init__(self, config: dict[str, Any], vocab: Vocab, dev: Pairs, sec: BackTranslatorSection) -> None:
        super().__init__()
        self.model = BackTranslator(BackTranslatorConfig(**config))
        self.vocab, self.dev, self.sec = vocab, dev, sec
        self.best: dict[str, Any] = {"bleu4": -1.0, "epoch": -1, "state": None}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        poses = batch["poses"]
        if self.sec.noise:
            poses = poses + self.sec.noise * torch.randn_like(poses)
        loss = self.model.loss(poses, batch["lengths"], batch["tokens"], self.sec.label_smoothing)
        self.log("train/ce", loss, on_step=True, on_epoch=True, batch_size=len(poses), sync_dist=True)
        return loss

    def on_train_epoch_end(self) -> None:
        epoch = self.current_epoch + 1
        if epoch % self.sec.val_every and epoch != self.trainer.max_epochs:
            return
        hyps = translate(self.model, self.vocab, self.dev.frames, device=str(self.device))
        self.model.train()
        scores = score(hyps, self.dev.texts)
        self.log_dict({f"val/{k}": v for k, v in scores.items()})
        if scores["bleu4"] > self.best["bleu4"]:
            state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            self.best = {"bleu4": scores["bleu4"], "epoch": epoch, "state": state}
        log.info(
            "epoch %d dev %s (best BLEU-4 %.2f @ %d)", epoch, scores, self.best["bleu4"], self.best["epoch"]
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["best_backtranslator"] = self.best

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.best = checkpoint.get("best_backtranslator", self.best)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.sec.fit.lr, weight_decay=self.sec.weight_decay)


def oov_rate(texts: list[str], vocab: Vocab) -> float:
    """Share of word tokens of ``texts`` not in ``vocab``."""
    toks = [w for t in texts for w in words(t)]
    return float(np.mean([w not in vocab.stoi for w in toks])) if toks else 0.0


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m pipeline.stages.train_backtranslator``; returns the metrics written to
    metrics/backtranslator.json."""
    params = STAGE.start(__doc__, argv)
    sec = parse_section(params, "backtranslator", BackTranslatorSection)
    seed = check_seed(params["seed"])
    splits = ("train", "dev", "test")
    pairs = {s: load_pairs(SplitStore.load(LIFTED / s, mmap=True), LIFTED / s) for s in splits}
    if len(pairs["train"]) == 0 or len(pairs["dev"]) == 0:
        raise StoreError(f"{LIFTED}: train has {len(pairs['train'])} sequences, dev {len(pairs['dev'])}")
    vocab = Vocab.build(pairs["train"].texts, sec.min_count)
    max_tokens = max(len(words(t)) for t in pairs["train"].texts) + 2
    n_features = pairs["train"].frames[0].shape[1]
    config = dataclasses.replace(
        sec.model, n_features=n_features, vocab_size=len(vocab), max_tokens=max_tokens
    )
    data = [list(zip(pairs[s].texts, pairs[s].frames, strict=True)) for s in ("train", "dev")]
    fingerprint = {"backtranslator": dataclasses.asdict(sec), "seed": seed, "data": engine.data_digest(data)}

    with engine.training_run(STAGE, params, CKPT, fingerprint, seed, sec.fit) as job:
        module = BackTranslatorModule(dataclasses.asdict(config), vocab, pairs["dev"], sec)
        module.model.set_normalisation(torch.from_numpy(np.concatenate(pairs["train"].frames)))
        loader = DataLoader(
            PairDataset(pairs["train"]),
            sec.fit.batch_size,
            shuffle=True,
            collate_fn=TextCollate(vocab, max_tokens),
            num_workers=job.workers,
        )
        fit = job.fit(module, loader, None, limit_val_batches=0, num_sanity_val_steps=0)
        if not fit.is_global_zero:
            return {}
        model = module.model.cpu().float()
        if module.best["state"] is not None:
            model.load_state_dict(module.best["state"])
        model.eval()
        save_backtranslator(model, vocab, OUT)
        metrics: dict[str, Any] = {
            "best_epoch": module.best["epoch"],
            "epochs": fit.epochs,
            "train_seconds": round(fit.seconds, 2),
            "vocab_size": len(vocab),
            "oov_rate": {s: oov_rate(pairs[s].texts, vocab) for s in ("dev", "test")},
        }
        for s in ("dev", "test"):
            if len(pairs[s]):
                metrics[s] = score(translate(model, vocab, pairs[s].frames), pairs[s].texts)
        job.finish(metrics, METRICS, OUT)
        log.info("back-translator: best epoch %s, dev %s", metrics["best_epoch"], metrics.get("dev"))
        return metrics


if __name__ == "__main__":
    main()
