"""Stage ``train_student``: train the Latent Learning Module against the frozen VAE (paper §3.3-3.4).

Reads ``data/lifted/{train,dev}`` (SplitStore, channels x, y, z in [0, 1], index entries with
``text``) and ``models/vae`` (:func:`pipeline.models.vae.load_vae`: encoder = LGM, decoder = PGM,
frozen). ``T_max`` is ``student.max_frames`` or, when null, the longest train sequence; longer
sequences raise (``student.on_long: raise``) or are truncated and counted (``truncate``).
Trains :class:`pipeline.models.student.Student` on Eq. 11 with the training engine (AdamW,
``student.lr``, constant or cosine-decayed per ``student.lr_schedule``), validating on dev every
epoch (loss terms and DurACC). The pretrained encoder's fixed part (all of it with
``student.freeze_bert: true``; the embeddings and the layers below the top ``student.train_layers``
otherwise) is a fixed function, so its output is computed once per sentence before fitting
(:func:`pipeline.models.student.encode_texts`) and the steps train the top layers, length
regulator, memory projection, NAR decoder and latent head on it (same losses;
``student.cache_encoder: false`` re-encodes every step). Writes

- ``models/student/``: the student directory of :func:`pipeline.inference.save_student` (config
  with the pretrained encoder's reference, the student's weights and the fine-tuned encoder layers,
  VAE copy, encoder config, tokenizer, ``lift_transform.json``), read by
  :func:`pipeline.inference.load_student`;
- ``metrics/train_student.json``: final dev losses, DurACC, mean absolute length error, train
  time and samples/s, truncated/clipped counts;
- ``models/student_ckpt/``: Lightning checkpoints; a killed run resumes from its newest
  checkpoint when rerun with the same params, data and VAE (``fingerprint.json``).

MLflow: the stage's run gets ``train/*`` per step/epoch, ``val/*`` per epoch, the final metrics
and the student as the pyfunc model ``model`` (:func:`pipeline.training.student_model.log_student`: signature,
input example, the directory as its artifact ``student``, tag ``nar.model_digest``), which
``python -m pipeline.tools.serve register`` registers.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from pipeline.config import Stage, check_choice, parse_section
from pipeline.data.sequences import PairCollate, PairDataset, Pairs, StateCollate, fit_max_frames, load_pairs
from pipeline.data.store import SplitStore, StoreError
from pipeline.evaluation.metrics import duration_accuracy
from pipeline.inference import save_student
from pipeline.models.student import Student, encode_texts, predict_frames, student_losses
from pipeline.models.text_encoder import load_encoder_config, load_tokenizer
from pipeline.models.vae import VAE, load_vae
from pipeline.training import engine
from pipeline.training.sections import LossWeights, StudentSection

LIFTED, VAE_DIR = Path("data/lifted"), Path("models/vae")
OUT, CKPT, METRICS = Path("models/student"), Path("models/student_ckpt"), Path("metrics/train_student.json")
STAGE = Stage(
    "train_student",
    ("seed", "student", "loss", "train"),
    (LIFTED, VAE_DIR),
    (OUT, CKPT, METRICS, engine.curves_dir("train_student")),
)
LOSS_KEYS = ("pose", "distil", "length", "motion")
log = logging.getLogger(__name__)


class StudentModule(L.LightningModule):
    """Lightning wrapper: Eq. 11 with AdamW on the student only; the VAE is frozen and kept in eval mode."""

    def __init__(
        self,
        student: Student,
        vae: VAE,
        weights: dict[str, float],
        lr: float,
        weight_decay: float = 0.01,
        fps: float = 25.0,
        lr_schedule: str = "constant",
        epochs: int = 1,
        bert_lr: float | None = None,
    ) -> None:
        super().__init__()
        self.student = student
        self.vae = vae.eval().requires_grad_(False)
        defaults = dataclasses.asdict(LossWeights())  # a missing key: its params default (motion 0)
        self.weights = {k: float(weights.get(k, defaults[k])) for k in LOSS_KEYS}
        self.lr, self.weight_decay, self.fps = lr, weight_decay, fps
        check_choice(lr_schedule, ("constant", "cosine"), "student.lr_schedule")
        self.lr_schedule, self.epochs = lr_schedule, int(epochs)
        self.bert_lr = bert_lr

    def train(self, mode: bool = True) -> StudentModule:
        """Lightning switches modules to train mode every epoch; the VAE stays in eval mode."""
        super().train(mode)
        self.vae.eval()
        return self

    def _losses(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], Any]:
        """Eq. 11 terms; batches carry ``input_ids`` or cached encoder ``states`` (frozen encoder)."""
        if "states" in batch:
            out = self.student.decode_cached(batch["states"], batch["attention_mask"])
        else:
            out = self.student(batch["input_ids"], batch["attention_mask"])
        return student_losses(out, batch["poses"], batch["lengths"], self.vae, self.weights), out

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses, _ = self._losses(batch)
        n = len(batch["lengths"])
        self.log_dict(
            {f"train/{k}": v for k, v in losses.items()},
            on_step=True,
            on_epoch=True,
            batch_size=n,
            sync_dist=True,
        )
        return losses["total"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        losses, out = self._losses(batch)
        t_hat = predict_frames(out.ratio, self.student.config.max_frames)
        lengths = batch["lengths"]
        losses["dur_acc"] = duration_accuracy(t_hat.cpu().numpy(), lengths.cpu().numpy(), self.fps)
        self.log_dict(
            {f"val/{k}": v for k, v in losses.items()}, prog_bar=True, batch_size=len(lengths), sync_dist=True
        )

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, Any]:
        """AdamW (the fine-tuned pretrained encoder at ``bert_lr`` when set); with ``lr_schedule: cosine``
        the lrs decay to 0 over ``epochs`` (stepped per epoch)."""
        pretrained = getattr(self.student.encoder, "is_pretrained", False) and self.bert_lr is not None
        groups: dict[float, list[torch.nn.Parameter]] = {}
        for name, p in self.student.named_parameters():
            if p.requires_grad:
                lr = self.bert_lr if pretrained and name.startswith("encoder.") else self.lr
                groups.setdefault(float(lr), []).append(p)
        optimizer = torch.optim.AdamW(
            [{"params": ps, "lr": lr} for lr, ps in groups.items()],
            lr=self.lr,
            weight_decay=self.weight_decay,
        )
        if self.lr_schedule == "constant":
            return optimizer
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


def make_loader(
    pairs: Pairs,
    tokenizer: Any,
    max_frames: int,
    batch_size: int,
    shuffle: bool,
    workers: int,
    cache: dict[str, torch.Tensor] | None = None,
) -> DataLoader:
    """Batches of tokenised texts (or cached encoder states when ``cache``) and poses padded to ``T_max``."""
    collate = PairCollate(tokenizer, max_frames) if cache is None else StateCollate(cache, max_frames)
    return DataLoader(
        PairDataset(pairs), batch_size=batch_size, shuffle=shuffle, collate_fn=collate, num_workers=workers
    )


@torch.no_grad()
def dev_metrics(module: StudentModule, loader: DataLoader) -> dict[str, float]:
    """Dev losses (frame-weighted for pose/distil, sequence-weighted for length), DurACC and |T_hat - T|."""
    module.eval()
    sums: dict[str, float] = {}
    frames = seqs = 0
    t_hats, trues = [], []
    for batch in loader:
        batch = {k: v.to(module.device) for k, v in batch.items()}
        losses, out = module._losses(batch)
        n_frames, n = int(batch["lengths"].sum()), len(batch["lengths"])
        for k, v in losses.items():
            w = n if k in ("length", "total") else n_frames
            sums[k] = sums.get(k, 0.0) + float(v) * w
        frames, seqs = frames + n_frames, seqs + n
        t_hats.append(predict_frames(out.ratio, module.student.config.max_frames).cpu())
        trues.append(batch["lengths"].cpu())
    t_hat, true = torch.cat(t_hats), torch.cat(trues)
    result = {k: v / (seqs if k in ("length", "total") else frames) for k, v in sums.items()}
    w = module.weights
    result["total"] = sum(w[k] * result[k] for k in LOSS_KEYS if k in result)  # Eq. 11 of the averages
    result["dur_acc"] = duration_accuracy(t_hat.numpy(), true.numpy(), module.fps)
    result["length_mae_frames"] = float((t_hat - true).abs().float().mean())
    result["sequences"] = seqs
    return result


def training_seed(params: dict[str, Any]) -> int:
    """``student.seed`` when set (seed studies of the student alone), else the global ``seed``."""
    return engine.section_seed(params, "student")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """``python -m pipeline.stages.train_student``; returns the metrics of metrics/train_student.json."""
    params = STAGE.start(__doc__, argv)
    sec = parse_section(params, "student", StudentSection)
    weights = dataclasses.asdict(parse_section(params, "loss", LossWeights))
    stores = {s: SplitStore.load(LIFTED / s, mmap=True) for s in ("train", "dev")}
    max_frames = fit_max_frames(sec.max_frames, stores["train"])
    pairs = {s: load_pairs(stores[s], LIFTED / s, max_frames, sec.on_long) for s in ("train", "dev")}
    if not len(pairs["train"]) or not len(pairs["dev"]):
        raise StoreError(f"{LIFTED}: train has {len(pairs['train'])} sequences, dev {len(pairs['dev'])}")
    vae = load_vae(VAE_DIR)
    n_features = pairs["train"].frames[0].shape[1]
    if vae.config.n_features != n_features:
        raise StoreError(
            f"{VAE_DIR}: VAE expects {vae.config.n_features} features, {LIFTED} has {n_features}"
        )
    config = dataclasses.replace(
        sec.model, max_frames=max_frames, latent=vae.config.latent, n_features=n_features
    )
    fps = float(stores["train"].fps)
    seed = training_seed(params)
    texts_and_frames = [("\n".join(p.texts), p.frames) for p in pairs.values()]
    fingerprint = {
        "student": dataclasses.asdict(sec),
        "loss": weights,
        "seed": seed,
        "data": engine.data_digest(texts_and_frames, VAE_DIR / "model.pt"),
    }

    with engine.training_run(STAGE, params, CKPT, fingerprint, seed, sec.fit) as job:
        tokenizer = load_tokenizer(config.pretrained)
        encoder_config = load_encoder_config(config.pretrained)
        student = Student(config, encoder_config, load_pretrained=True)
        module = StudentModule(
            student,
            vae,
            weights,
            sec.fit.lr,
            sec.weight_decay,
            fps,
            sec.lr_schedule,
            sec.fit.epochs,
            sec.bert_lr,
        )
        cache = None
        if student.encoder_has_fixed_part and sec.cache_encoder:  # its fixed part: once per text
            t_enc = time.perf_counter()
            cache = encode_texts(student, tokenizer, pairs["train"].texts + pairs["dev"].texts)
            log.info(
                "cached the fixed encoder part's states of %d texts in %.1f s",
                len(cache),
                time.perf_counter() - t_enc,
            )
        train_loader = make_loader(
            pairs["train"], tokenizer, max_frames, sec.fit.batch_size, True, job.workers, cache
        )
        dev_loader = make_loader(
            pairs["dev"], tokenizer, max_frames, sec.fit.batch_size, False, job.workers, cache
        )
        fit = job.fit(module, train_loader, dev_loader)
        if not fit.is_global_zero:
            return {}
        dev = dev_metrics(module, dev_loader)  # on the training device, fp32
        module = module.cpu().float()
        metrics = {
            "train_sequences": len(pairs["train"]),
            "max_frames": max_frames,
            **fit.summary(len(pairs["train"])),
            "truncated": {s: p.truncated for s, p in pairs.items()},
            "clipped": {s: p.clipped for s, p in pairs.items()},
            "dev": dev,
        }
        meta = {"n_joints": pairs["train"].n_joints, "joints": stores["train"].joints, "fps": fps}
        save_student(
            OUT, module.student, module.vae, tokenizer, encoder_config, meta, LIFTED / "transform.json"
        )
        from pipeline.training.student_model import log_student  # here: importing the stage needs no MLflow

        log_student(OUT, job.run)  # the run's pyfunc model (it holds models/student: not logged again)
        job.finish(metrics, METRICS)
        d = metrics["dev"]
        terms = ", ".join(f"{k} {d[k]:.4g}" for k in LOSS_KEYS if k in d)  # a term weighted 0 is absent
        STAGE.summary(
            f"{fit.epochs} epochs ({fit.start_epoch} resumed); dev total {d['total']:.4g} ({terms}), "
            f"DurACC {d['dur_acc']:.3f}"
        )
        return metrics


if __name__ == "__main__":
    main()
