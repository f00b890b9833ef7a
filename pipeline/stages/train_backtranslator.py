"""Stage ``train_backtranslator``: the pose -> German text model of the back-translation metrics (§5.1),
a Sign Language Transformer with joint CTC gloss recognition (Camgoz et al. 2020).

Reads ``data/lifted/{train,dev,test}`` (SplitStore, channels x, y, z in [0, 1], index entries with
``text`` and ``gloss``; checked by :func:`pipeline.data.sequences.load_pairs`). Builds the word
vocabulary from the train texts (:class:`pipeline.models.backtranslator.Vocab`) and, when
``backtranslator.gloss_weight`` > 0, the gloss vocabulary from the train glosses
(:class:`pipeline.models.backtranslator.GlossVocab`; every sequence of every split must then have a
gloss, else a :class:`pipeline.data.store.StoreError` names the file, the row and the param to set),
and trains :class:`pipeline.models.backtranslator.BackTranslator` on the ground-truth train poses
(input standardised with the train frames' per-feature mean/std; joint loss = ``gloss_weight`` x CTC
of the gloss head + teacher-forced cross entropy with label smoothing; AdamW; optional Gaussian
noise ``backtranslator.noise`` on the input frames) through the training engine. Every
``val_every`` epochs and at the end it decodes dev by beam search (``beam_size``,
``length_penalty``) and keeps the weights of the epoch with the best dev BLEU-4 (model selection on
dev). With those weights it decodes dev once per ``length_penalties`` entry and saves the alpha
with the best dev BLEU-4 (first of ties) as the model's ``length_penalty`` (skipped for beam 1 or an
empty grid). Writes

- ``models/backtranslator/``: ``config.json`` (incl. ``beam_size`` and the chosen
  ``length_penalty``), ``model.pt``, ``vocab.json``, ``gloss_vocab.json`` (with a gloss head)
  (:func:`pipeline.models.backtranslator.load_backtranslator`);
- ``metrics/backtranslator.json``: best epoch, and BLEU-1..4 / ROUGE-L of the selected model on the
  ground-truth dev and test poses (the "GT" row's BT scores) plus ``gloss_wer`` (WER of the CTC
  recognition, 0..100) per split, the beam size, chosen length penalty and the dev BLEU-4 of each
  grid value, vocabulary sizes / OOV rates and train time;
- ``models/backtranslator_ckpt/``: Lightning checkpoints (with the best weights so far) for
  resuming a killed run; deleted after a successful fit.

A fixed evaluator: its outputs are committed to git (dvc.yaml: ``cache: false``) and its declared
data dependency is the corpus (:func:`pipeline.data.store.corpus_files`: index + meta of each
split) and ``lift.method`` (recorded in metrics/backtranslator.json as ``lift_method``), not the
lifted poses, so a fresh clone on any CPU reuses it; ``dvc repro -f -s train_backtranslator``
retrains it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from pipeline.config import Stage, check_seed, parse_section
from pipeline.data.sequences import Pairs, load_pairs, pad_sequences
from pipeline.data.store import SplitStore, StoreError, corpus_files
from pipeline.evaluation.backtranslation import recognise, score, translate
from pipeline.evaluation.text_metrics import word_error_rate
from pipeline.models.backtranslator import (
    BackTranslator,
    BackTranslatorConfig,
    GlossVocab,
    Vocab,
    gloss_tokens,
    save_backtranslator,
    words,
)
from pipeline.training import engine
from pipeline.training.sections import BackTranslatorSection

LIFTED, OUT = Path("data/lifted"), Path("models/backtranslator")
CKPT, METRICS = Path("models/backtranslator_ckpt"), Path("metrics/backtranslator.json")
# data dependency: the corpus and its lifting method, not the lifted floats (a fixed evaluator, see dvc.yaml)
STAGE = Stage(
    "train_backtranslator",
    ("seed", "lift.method", "backtranslator", "train"),
    corpus_files(LIFTED, ("train", "dev", "test")),
    (OUT, CKPT, METRICS, engine.curves_dir("train_backtranslator")),
)
log = logging.getLogger(__name__)


class TextCollate:
    """``(text, frames [T, F])`` or ``(text, frames, gloss)`` items -> padded ``poses [B, T, F]``,
    ``lengths [B]``, ``tokens [B, L]`` and, with a gloss vocabulary, ``glosses [B, S]`` (0-padded
    CTC targets) and ``gloss_lengths [B]``."""

    def __init__(self, vocab: Vocab, max_tokens: int, glosses: GlossVocab | None = None) -> None:
        self.vocab, self.max_tokens, self.glosses = vocab, max_tokens, glosses

    def __call__(self, batch: list[tuple[Any, ...]]) -> dict[str, Any]:
        poses, lengths = pad_sequences([item[1] for item in batch])
        ids = [self.vocab.encode(item[0], self.max_tokens) for item in batch]
        out = {
            "poses": poses,
            "lengths": lengths,
            "tokens": _pad_ids(ids),
            "texts": [item[0] for item in batch],
        }
        if self.glosses is not None:
            gids = [self.glosses.encode(item[2]) for item in batch]
            out["glosses"] = _pad_ids(gids)
            out["gloss_lengths"] = torch.tensor([len(g) for g in gids], dtype=torch.long)
        return out


def _pad_ids(ids: list[list[int]]) -> torch.Tensor:
    out = torch.zeros(len(ids), max(1, max(map(len, ids))), dtype=torch.long)
    for i, row in enumerate(ids):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


class BackTranslatorModule(L.LightningModule):
    """Lightning wrapper; validation = beam dev decoding every ``val_every`` epochs, keeps best BLEU-4."""

    def __init__(self, config: dict[str, Any], vocab: Vocab, dev: Pairs, sec: BackTranslatorSection) -> None:
        super().__init__()
        self.model = BackTranslator(BackTranslatorConfig(**config))
        self.vocab, self.dev, self.sec = vocab, dev, sec
        self.best: dict[str, Any] = {"bleu4": -1.0, "epoch": -1, "state": None}

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        poses = batch["poses"]
        if self.sec.noise:
            poses = poses + self.sec.noise * torch.randn_like(poses)
        losses = self.model.losses(
            poses,
            batch["lengths"],
            batch["tokens"],
            batch.get("glosses"),
            batch.get("gloss_lengths"),
            self.sec.label_smoothing,
            self.sec.gloss_weight,
        )
        self.log_dict(
            {f"train/{k}": v for k, v in losses.items()},
            on_step=True,
            on_epoch=True,
            batch_size=len(poses),
            sync_dist=True,
        )
        return losses["total"]

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
        log.debug(
            "epoch %d dev %s (best BLEU-4 %.2f @ %d)", epoch, scores, self.best["bleu4"], self.best["epoch"]
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["best_backtranslator"] = self.best

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.best = checkpoint.get("best_backtranslator", self.best)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.sec.fit.lr, weight_decay=self.sec.weight_decay)


def oov_rate(
    texts: list[str], vocab: Vocab | GlossVocab, tokens: Callable[[str], list[str]] = words
) -> float:
    """Share of the tokens of ``texts`` (word tokens by default) not in ``vocab``."""
    toks = [w for t in texts for w in tokens(t)]
    return float(np.mean([w not in vocab.stoi for w in toks])) if toks else 0.0


def gloss_oov_rate(glosses: list[str], vocab: GlossVocab) -> float:
    """Share of gloss tokens of ``glosses`` not in ``vocab``."""
    return oov_rate(glosses, vocab, gloss_tokens)


def check_glosses(pairs: Pairs, where: str | Path) -> None:
    """Raise a :class:`StoreError` naming ``where``, the sequence and the param when a row has no gloss."""
    for i, (name, gloss) in enumerate(zip(pairs.names, pairs.glosses, strict=True)):
        if not gloss:
            raise StoreError(
                f"{where}: sequence {name!r} (row {i}) has no gloss (index field 'gloss'), which the CTC "
                "gloss head needs; set backtranslator.gloss_weight: 0 to train without gloss supervision"
            )


def choose_length_penalty(
    model: BackTranslator, vocab: Vocab, dev: Pairs, grid: Sequence[float]
) -> tuple[float, list[list[float]]]:
    """The alpha of ``grid`` with the best dev BLEU-4 (first of ties; the config's value for beam 1 or
    an empty grid) and ``[[alpha, dev BLEU-4], ...]``; sets it in ``model.config``."""
    if model.config.beam_size == 1 or not grid:
        return model.config.length_penalty, []
    tried = []
    for alpha in grid:
        hyps = translate(model, vocab, dev.frames, length_penalty=alpha)
        tried.append([float(alpha), score(hyps, dev.texts)["bleu4"]])
    best = max(tried, key=lambda r: r[1])[0]  # max keeps the first of equal scores
    model.config = dataclasses.replace(model.config, length_penalty=best)
    return best, tried


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
    use_glosses = sec.gloss_weight > 0
    if use_glosses:
        for s in splits:
            check_glosses(pairs[s], LIFTED / s / "index.jsonl")
    vocab = Vocab.build(pairs["train"].texts, sec.min_count)
    glosses = GlossVocab.build(pairs["train"].glosses) if use_glosses else None
    max_tokens = max(len(words(t)) for t in pairs["train"].texts) + 2
    n_features = pairs["train"].frames[0].shape[1]
    config = dataclasses.replace(
        sec.model,
        n_features=n_features,
        vocab_size=len(vocab),
        max_tokens=max_tokens,
        gloss_vocab_size=len(glosses) if glosses is not None else 0,
    )
    train = pairs["train"]
    items: list[tuple[Any, ...]] = (
        list(zip(train.texts, train.frames, train.glosses, strict=True))
        if use_glosses
        else list(zip(train.texts, train.frames, strict=True))
    )
    data = [items, list(zip(pairs["dev"].texts, pairs["dev"].frames, strict=True))]
    fingerprint = {"backtranslator": dataclasses.asdict(sec), "seed": seed, "data": engine.data_digest(data)}

    with engine.training_run(STAGE, params, CKPT, fingerprint, seed, sec.fit) as job:
        module = BackTranslatorModule(dataclasses.asdict(config), vocab, pairs["dev"], sec)
        module.model.set_normalisation(torch.from_numpy(np.concatenate(train.frames)))
        loader = DataLoader(
            items,
            sec.fit.batch_size,
            shuffle=True,
            collate_fn=TextCollate(vocab, max_tokens, glosses),
            num_workers=job.workers,
        )
        fit = job.fit(module, loader, None, limit_val_batches=0, num_sanity_val_steps=0)
        if not fit.is_global_zero:
            return {}
        model = module.model.cpu().float()
        if module.best["state"] is not None:
            model.load_state_dict(module.best["state"])
        model.eval()
        alpha, tried = choose_length_penalty(model, vocab, pairs["dev"], sec.length_penalties)
        save_backtranslator(model, vocab, OUT, glosses)
        metrics: dict[str, Any] = {
            "lift_method": params["lift"]["method"],
            "best_epoch": module.best["epoch"],
            "epochs": fit.epochs,
            "train_seconds": round(fit.seconds, 2),
            "vocab_size": len(vocab),
            "oov_rate": {s: oov_rate(pairs[s].texts, vocab) for s in ("dev", "test")},
            "beam_size": model.config.beam_size,
            "length_penalty": alpha,
            "length_penalty_dev_bleu4": tried,
        }
        if glosses is not None:
            metrics["gloss_vocab_size"] = len(glosses)
            metrics["gloss_oov_rate"] = {
                s: gloss_oov_rate(pairs[s].glosses, glosses) for s in ("dev", "test")
            }
        for s in ("dev", "test"):
            if len(pairs[s]):
                metrics[s] = score(translate(model, vocab, pairs[s].frames), pairs[s].texts)
                if glosses is not None:
                    hyps = recognise(model, glosses, pairs[s].frames)
                    metrics[s]["gloss_wer"] = word_error_rate(hyps, pairs[s].glosses)
        job.finish(metrics, METRICS, OUT)
        dev = metrics.get("dev") or {}
        STAGE.summary(
            f"best epoch {metrics['best_epoch']}, length penalty {alpha}; dev "
            + ", ".join(f"{k} {v:.4g}" for k, v in dev.items() if isinstance(v, int | float))
        )
        return metrics


if __name__ == "__main__":
    main()
