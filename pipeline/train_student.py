"""Stage ``train_student``: train the Latent Learning Module against the frozen VAE (paper §3.3-3.4).

Reads ``data/lifted/{train,dev}`` (SplitStore, channels x, y, z in [0, 1], index entries with
``text``) and ``models/vae`` (:func:`pipeline.models.vae.load_vae`: encoder = LGM, decoder = PGM,
frozen). ``T_max`` is ``student.max_frames`` or, when null, the longest train sequence; longer
sequences raise (``student.on_long: raise``) or are truncated and counted (``truncate``).
Trains :class:`pipeline.models.student.Student` on Eq. 11 with :func:`pipeline.training.make_trainer`
(AdamW, ``student.lr``, constant or cosine-decayed per ``student.lr_schedule``), validating on
dev every epoch (loss terms and DurACC). With
``student.freeze_bert: true`` the pretrained encoder is a fixed function, so its states are
computed once per sentence before fitting (:func:`pipeline.models.student.encode_texts`) and the
steps train the length regulator, memory projection, NAR decoder and latent head on them (same
losses; ``student.cache_encoder: false`` re-encodes every step). Writes

- ``models/student/``: ``config.json`` (StudentConfig incl. the resolved ``T_max``, joints, fps),
  ``model.pt`` (student state dict), ``vae/`` (copy of the PGM/LGM VAE), ``encoder/`` (the
  transformers config of the text encoder), ``tokenizer/`` and ``lift_transform.json`` (copy of
  ``data/lifted/transform.json``): self-contained, read by :func:`pipeline.inference.load_student`
  (re-exported here) and :class:`pipeline.inference.Translator`;
- ``metrics/train_student.json``: final dev losses, DurACC, mean absolute length error, train
  time and samples/s, truncated/clipped counts;
- ``models/student_ckpt/`` (DVC ``persist: true``): Lightning checkpoints; a killed run resumes
  from its newest checkpoint when rerun with the same params, data and VAE (``fingerprint.json``).

MLflow: child run ``train_student`` of the experiment's parent (:mod:`pipeline.tracking`) with the
flattened params, ``train/*`` per step/epoch, ``val/*`` per epoch, the final metrics and the model.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from pipeline import training
from pipeline.config import ParamsError, check_choice, check_positive, load_params, section
from pipeline.inference import LIFT_TRANSFORM_FILE, StudentGenerator, load_student  # noqa: F401 (re-exported)
from pipeline.models.io import CONFIG_FILE, WEIGHTS_FILE
from pipeline.models.student import (
    Student,
    StudentConfig,
    duration_accuracy,
    encode_texts,
    predict_frames,
    student_losses,
)
from pipeline.models.text_encoder import load_encoder_config, load_tokenizer
from pipeline.models.vae import VAE, load_vae, save_vae
from pipeline.sequences import (
    ON_LONG,
    PairCollate,
    PairDataset,
    Pairs,
    StateCollate,
    fit_max_frames,
    load_pairs,
)
from pipeline.store import SplitStore, StoreError

log = logging.getLogger(__name__)

LIFTED = Path("data/lifted")
VAE_DIR = Path("models/vae")
OUT_DIR = Path("models/student")
CKPT_DIR = Path("models/student_ckpt")
METRICS = Path("metrics/train_student.json")
LOSS_KEYS = ("pose", "distil", "length")
LR_SCHEDULES = ("constant", "cosine")


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
    ) -> None:
        super().__init__()
        self.student = student
        self.vae = vae.eval().requires_grad_(False)
        self.weights = {k: float(weights.get(k, 1.0)) for k in LOSS_KEYS}
        self.lr, self.weight_decay, self.fps = lr, weight_decay, fps
        check_choice(lr_schedule, LR_SCHEDULES, "student.lr_schedule")
        self.lr_schedule, self.epochs = lr_schedule, int(epochs)

    def train(self, mode: bool = True) -> StudentModule:
        """Lightning switches modules to train mode every epoch; the VAE stays in eval mode."""
        super().train(mode)
        self.vae.eval()
        return self

    def _losses(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], Any]:
        """Eq. 11 terms; batches carry ``input_ids`` or cached encoder ``states`` (frozen encoder)."""
        if "states" in batch:
            out = self.student.decode_states(batch["states"], batch["attention_mask"])
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
        losses["dur_acc"] = duration_accuracy(t_hat, batch["lengths"], self.fps)
        n = len(batch["lengths"])
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, prog_bar=True, batch_size=n, sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, Any]:
        """AdamW; with ``lr_schedule: cosine`` its lr decays to 0 over ``epochs`` (stepped per epoch)."""
        params = [p for p in self.student.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.lr_schedule == "constant":
            return optimizer
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.epochs)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


class StartEpoch(L.Callback):
    """Remembers the epoch training started at (> 0 after resuming from a checkpoint)."""

    epoch = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch = int(trainer.current_epoch)


# -- saved model ------------------------------------------------------------------------------


def save_student(
    directory: str | Path,
    student: Student,
    vae: VAE,
    tokenizer: Any,
    encoder_config: Any,
    meta: dict[str, Any],
    lift_transform: str | Path | None = None,
) -> Path:
    """Write a self-contained student directory (config, weights, VAE copy, encoder config, tokenizer).

    ``lift_transform`` (``data/lifted/transform.json``) is copied to ``lift_transform.json`` when it
    exists, so inference can map the poses back to body-centred 3D units.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / CONFIG_FILE).write_text(json.dumps({"student": student.config.to_dict(), **meta}, indent=1))
    state = {k: v.detach().cpu().float().contiguous() for k, v in student.state_dict().items()}
    torch.save(state, d / WEIGHTS_FILE)
    save_vae(vae.cpu().float(), d / "vae")
    encoder_config.save_pretrained(d / "encoder")
    tokenizer.save_pretrained(d / "tokenizer")
    if lift_transform is not None and Path(lift_transform).is_file():
        shutil.copyfile(lift_transform, d / LIFT_TRANSFORM_FILE)
    return d


# -- stage ------------------------------------------------------------------------------------


def student_params(params: dict[str, Any]) -> dict[str, Any]:
    """The ``student`` section, validated (training keys; model keys are checked by StudentConfig)."""
    p = section(params, "student")
    for key in ("epochs", "batch_size", "lr"):
        if key not in p:
            raise ParamsError(f"params.yaml: missing student.{key}")
        check_positive(p[key], f"student.{key}")
    check_positive(p.get("weight_decay", 0.01), "student.weight_decay", allow_zero=True)
    check_positive(p.get("cpu_threads", 0), "student.cpu_threads", allow_zero=True)
    if not isinstance(p.get("cache_encoder", True), bool):
        raise ParamsError(f"student.cache_encoder={p['cache_encoder']!r} is invalid; expected true or false")
    check_choice(p.get("on_long", "raise"), ON_LONG, "student.on_long")
    check_choice(p.get("lr_schedule", "constant"), LR_SCHEDULES, "student.lr_schedule")
    return p


def loss_weights(params: dict[str, Any]) -> dict[str, float]:
    """The ``loss`` section (Eq. 11 weights, each >= 0)."""
    p = section(params, "loss")
    unknown = set(p) - set(LOSS_KEYS)
    if unknown:
        raise ParamsError(f"params.yaml: unknown key(s) in section 'loss': {sorted(unknown)}")
    return {k: float(check_positive(p.get(k, 1.0), f"loss.{k}", allow_zero=True)) for k in LOSS_KEYS}


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
    result["dur_acc"] = float(duration_accuracy(t_hat, true, module.fps))
    result["length_mae_frames"] = float((t_hat - true).abs().float().mean())
    result["sequences"] = seqs
    return result


def training_seed(params: dict[str, Any]) -> int:
    """``student.seed`` when set (seed studies of the student alone), else the global ``seed``."""
    value = params.get("student", {}).get("seed")
    value = params.get("seed", 0) if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ParamsError(f"params.yaml: student.seed must be null or an integer >= 0, got {value!r}")
    return value


def main(
    lifted: Path = LIFTED,
    vae_dir: Path = VAE_DIR,
    out_dir: Path = OUT_DIR,
    ckpt_dir: Path = CKPT_DIR,
    metrics_path: Path = METRICS,
) -> dict[str, Any]:
    """Run the stage; returns the metrics written to ``metrics_path``."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    params = load_params()
    sp = student_params(params)
    weights = loss_weights(params)
    train_params = params.get("train") or {}
    stores = {s: SplitStore.load(lifted / s, mmap=True) for s in ("train", "dev")}
    max_frames = fit_max_frames(sp.get("max_frames"), stores["train"])
    on_long = sp.get("on_long", "raise")
    pairs = {s: load_pairs(stores[s], lifted / s, max_frames, on_long) for s in ("train", "dev")}
    if not len(pairs["train"]) or not len(pairs["dev"]):
        raise StoreError(f"{lifted}: train has {len(pairs['train'])} sequences, dev {len(pairs['dev'])}")
    vae = load_vae(vae_dir)
    n_features = pairs["train"].frames[0].shape[1]
    if vae.config.n_features != n_features:
        raise StoreError(
            f"{vae_dir}: VAE expects {vae.config.n_features} features, {lifted} has {n_features}"
        )
    config = StudentConfig.from_params(sp, max_frames, vae.config.latent, n_features)
    fps = float(stores["train"].fps)
    seed = training_seed(params)
    fingerprint = {
        "student": sp,
        "loss": weights,
        "train": train_params,
        "seed": seed,
        "data": training.data_digest(
            [("\n".join(p.texts), p.frames) for p in pairs.values()], vae_dir / "model.pt"
        ),
    }

    training.set_cpu_threads(sp.get("cpu_threads", 0))
    from pipeline import tracking  # here, not at import: the model code needs no MLflow (GPU benchmarks)

    with tracking.stage_run("train_student", params) as run:
        training.seed(seed)
        tokenizer = load_tokenizer(config.pretrained)
        encoder_config = load_encoder_config(config.pretrained)
        student = Student(config, encoder_config, load_pretrained=True)
        module = StudentModule(
            student,
            vae,
            weights,
            float(sp["lr"]),
            float(sp.get("weight_decay", 0.01)),
            fps,
            sp.get("lr_schedule", "constant"),
            int(sp["epochs"]),
        )
        training.prepare_ckpt_dir(ckpt_dir, fingerprint)
        workers = int(training.resolve(train_params)["num_workers"])
        batch = int(sp["batch_size"])
        cache = None
        if student.encoder_is_fixed and sp.get("cache_encoder", True):  # frozen BERT: encode each text once
            t_enc = time.perf_counter()
            cache = encode_texts(student, tokenizer, pairs["train"].texts + pairs["dev"].texts)
            log.info(
                "cached frozen encoder states of %d texts in %.1f s", len(cache), time.perf_counter() - t_enc
            )
        train_loader = make_loader(pairs["train"], tokenizer, max_frames, batch, True, workers, cache)
        dev_loader = make_loader(pairs["dev"], tokenizer, max_frames, batch, False, workers, cache)
        start = StartEpoch()
        trainer, resume = training.make_trainer(
            train_params, ckpt_dir, int(sp["epochs"]), logger=tracking.mlflow_logger(run), callbacks=[start]
        )
        t0 = time.perf_counter()
        trainer.fit(module, train_loader, dev_loader, ckpt_path=resume)
        seconds = time.perf_counter() - t0
        if not trainer.is_global_zero:
            return {}
        dev = dev_metrics(module, dev_loader)  # on the training device, fp32
        module = module.cpu().float()
        epochs_run = int(trainer.current_epoch) - start.epoch
        metrics = {
            "train_sequences": len(pairs["train"]),
            "max_frames": max_frames,
            "epochs": int(trainer.current_epoch),
            "resumed_from_epoch": start.epoch,
            "train_seconds": round(seconds, 2),
            "train_samples_per_s": round(len(pairs["train"]) * epochs_run / seconds, 2) if seconds else 0.0,
            "truncated": {s: p.truncated for s, p in pairs.items()},
            "clipped": {s: p.clipped for s, p in pairs.items()},
            "dev": dev,
        }
        meta = {"n_joints": pairs["train"].n_joints, "joints": stores["train"].joints, "fps": fps}
        save_student(
            out_dir, module.student, module.vae, tokenizer, encoder_config, meta, lifted / "transform.json"
        )
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        metrics_path.write_text(json.dumps(metrics, indent=1))
        tracking.log_metrics_file(run, metrics_path)
        tracking.log_artifacts(run, out_dir, artifact_path="model")
        training.clear_checkpoints(ckpt_dir)
        log.info("dev %s", metrics["dev"])
        return metrics


if __name__ == "__main__":
    main()
