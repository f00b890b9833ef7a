"""The Lightning training engine of every training stage: one skeleton (setup, seed, fit, resume,
save, log), the ``train`` params section, checkpoints and their fingerprints.

A training stage reads its data, then::

    with engine.training_run(STAGE, params, ckpt_dir, fingerprint, seed, section.fit) as job:
        module = MyLightningModule(...)                       # built after seeding
        fit = job.fit(module, train_loader, val_loader)
        if not fit.is_global_zero:                            # DDP: only rank 0 writes
            return
        ...save the model into its out dir, compute metrics...
        job.finish(metrics, metrics_path, model_dir)

:func:`training_run` sets the stage's torch CPU threads, opens the stage's MLflow run
(:mod:`pipeline.training.tracking`), seeds python/numpy/torch, and prepares the checkpoint
directory for the ``fingerprint`` (params and the :func:`data_digest` of the data: a rerun with
other params or data starts fresh instead of resuming a stale run). ``section.fit`` is the
section's :class:`FitConfig` (epochs, batch size, learning rate, CPU threads); a model trained on
its own ``loss()`` needs no LightningModule of its own (:class:`LossModule`). :meth:`TrainingRun.fit`
builds the Trainer (:func:`make_trainer`) and fits, resuming from the newest checkpoint of a
killed run; :meth:`TrainingRun.finish` writes the metrics JSON, logs metrics and the model
directory to MLflow and deletes the checkpoints. A stage that trains several models in its one
run (the baselines' variants) fits each through ``job.part(name, ckpt_dir, fingerprint, seed)``
(:meth:`TrainingRun.part`): own checkpoints and fingerprint, reseeded, Lightning metrics logged as
``<name>/<metric>``.

``train`` params (:class:`TrainConfig`; :meth:`TrainConfig.resolved` fills in ``auto``):

- ``accelerator: auto`` -> ``gpu`` when CUDA is available, else ``cpu``; ``devices``,
  ``num_nodes`` and ``strategy`` (``auto`` | ``ddp`` | any Lightning strategy name) pass through;
- ``precision: auto`` -> ``bf16-mixed`` on a GPU with bf16 support (``16-mixed`` otherwise),
  ``32-true`` on CPU; any Lightning precision string is accepted;
- ``grad_clip`` -> ``gradient_clip_val`` (0 = off); ``log_every_n_steps``; ``progress_bar``;
  ``deterministic: auto`` -> ``True`` on CPU, ``"warn"`` on GPU;
- checkpoints in ``ckpt_dir``: ``ModelCheckpoint(every_n_epochs=checkpoint_every_n_epochs,
  save_last=True)`` writes ``last.ckpt``; ``OnExceptionCheckpoint`` writes ``on_exception.ckpt``
  when fit dies of an exception, Ctrl+C or SIGTERM (a SIGKILL leaves the last periodic one).
  The resume path is the newer of the two, or ``None`` for a fresh start. (With
  ``OnExceptionCheckpoint`` present Lightning turns ``fit(ckpt_path=None)`` into ``"last"``
  itself and warns "called without a model" / "no last checkpoint available" on a fresh
  start: expected, since a fresh start has no ``last.ckpt``.)
- bit-exact resume (:class:`ResumeRNG`): a checkpoint written at an epoch's end carries the global
  RNG states (python ``random``, numpy, torch CPU and CUDA) of that moment; the rerun restores them
  where the uninterrupted run would draw next (the next epoch's train iterator), so a run killed
  after any epoch and rerun gives the same weights and metrics as one never killed (CPU;
  ``num_workers: 0`` or non-persistent workers). A fresh run only reads the states: its results
  are unchanged. A mid-epoch ``on_exception.ckpt`` resumes as before, not bit-identically.

Multi-GPU / multi-node (DDP): set ``train.strategy=ddp`` and ``train.devices`` (and
``train.num_nodes``). On one node DVC can launch it directly
(``dvc exp run -S train.strategy=ddp -S train.devices=4``: Lightning re-launches the stage
script once per GPU); with ``torchrun --nproc_per_node=4 -m pipeline.stages.pretrain_vae`` or
under SLURM (``srun --ntasks-per-node=4 python -m pipeline.stages.pretrain_vae`` with
``-S train.num_nodes=2``) the launcher starts the ranks and Lightning joins them. Only global
rank 0 writes outputs and MLflow runs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import random
import shutil
import sys
import time
import typing
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, OnExceptionCheckpoint
from torch import nn

from pipeline.config import ParamsError, Stage, check_seed, param, parse_section

log = logging.getLogger(__name__)

LAST = "last.ckpt"
ON_EXCEPTION = "on_exception"
FINGERPRINT = "fingerprint.json"


@dataclass(frozen=True)
class TrainConfig:
    """The ``train`` params section: the Lightning Trainer of every training stage."""

    accelerator: str = "auto"  # auto = gpu when CUDA is available, else cpu
    devices: str | int | list[int] = "auto"
    num_nodes: int = param(1, gt=0)
    strategy: str = "auto"  # auto | ddp | any Lightning strategy
    precision: str | int = "auto"  # auto = bf16-mixed on GPU (16-mixed without bf16), 32-true on CPU
    deterministic: bool | Literal["auto", "warn"] = "auto"  # auto = true on CPU, warn on GPU
    grad_clip: float = param(1.0, ge=0)  # gradient_clip_val, 0 = off
    checkpoint_every_n_epochs: int = param(1, gt=0)
    num_workers: int = param(0, ge=0)  # DataLoader workers
    log_every_n_steps: int = param(50, gt=0)
    progress_bar: bool = True

    def resolved(self) -> TrainConfig:
        """A copy with ``auto`` accelerator, precision and determinism resolved for this machine."""
        gpu = torch.cuda.is_available()
        accelerator = ("gpu" if gpu else "cpu") if self.accelerator == "auto" else self.accelerator
        on_gpu = accelerator in ("gpu", "cuda")
        precision = self.precision
        if precision == "auto":
            bf16 = on_gpu and torch.cuda.is_bf16_supported()
            precision = ("bf16-mixed" if bf16 else "16-mixed") if on_gpu else "32-true"
        deterministic = ("warn" if on_gpu else True) if self.deterministic == "auto" else self.deterministic
        return dataclasses.replace(
            self, accelerator=accelerator, precision=precision, deterministic=deterministic
        )


def check_trainer(train: TrainConfig) -> TrainConfig:
    """``train`` resolved for this machine, with the values Lightning checks only when a Trainer is
    built (accelerator, strategy, precision) checked first; a :class:`ParamsError` names the key and
    the allowed values."""
    from lightning.fabric.connector import _PRECISION_INPUT
    from lightning.pytorch.accelerators import AcceleratorRegistry
    from lightning.pytorch.strategies import StrategyRegistry

    def allowed(key: str, value: object, choices: list) -> None:
        if value not in choices:
            raise ParamsError(f"params.yaml: train.{key}={value!r} is invalid; expected one of {choices}")

    accelerators = ["auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())]
    allowed("accelerator", train.accelerator, accelerators)
    allowed("strategy", train.strategy, ["auto", *StrategyRegistry.available_strategies()])
    precisions = [a for group in typing.get_args(_PRECISION_INPUT) for a in typing.get_args(group)]
    allowed("precision", train.precision, ["auto", *precisions])
    resolved = train.resolved()
    if resolved.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ParamsError(
            f"params.yaml: train.accelerator={train.accelerator!r}: no CUDA GPU on this machine "
            "(use auto or cpu)"
        )
    return resolved


@dataclass(frozen=True)
class FitConfig:
    """The keys every training section has (``vae``, ``student``, ``fgd_encoder``,
    ``backtranslator``): how long, in what batches and how fast it trains, on how many CPU threads."""

    epochs: int = param(gt=0)
    batch_size: int = param(gt=0)
    lr: float = param(gt=0)  # AdamW
    cpu_threads: int = param(0, ge=0)  # torch CPU threads of the stage (0 = torch default)


class LossModule(L.LightningModule):
    """Lightning wrapper of a model trained on its own ``loss(x)`` of the batch ``(x,)`` with AdamW.

    ``loss`` returns a tensor (logged as ``name``) or a dict of terms with the optimised ``total``;
    every term is logged as ``train/<term>`` per step and epoch and ``val/<term>`` per epoch. With
    ``warmup`` (a share of the steps) the learning rate rises linearly over those steps, then decays
    to 0 at the last step along a cosine; without it, it is constant.
    """

    def __init__(self, model: nn.Module, lr: float, name: str = "loss", warmup: float | None = None) -> None:
        super().__init__()
        self.model, self.lr, self.name, self.warmup = model, lr, name, warmup

    def terms(self, batch: tuple[torch.Tensor]) -> dict[str, torch.Tensor]:
        out = self.model.loss(batch[0])
        return out if isinstance(out, dict) else {self.name: out}

    def training_step(self, batch: tuple[torch.Tensor], batch_idx: int) -> torch.Tensor:
        terms = self.terms(batch)
        logged = {f"train/{k}": v for k, v in terms.items()}
        self.log_dict(logged, on_step=True, on_epoch=True, sync_dist=True)
        return terms["total"] if "total" in terms else terms[self.name]

    def validation_step(self, batch: tuple[torch.Tensor], batch_idx: int) -> None:
        self.log_dict({f"val/{k}": v for k, v in self.terms(batch).items()}, prog_bar=True, sync_dist=True)

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr)
        if self.warmup is None:
            return opt
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warm = max(1, round(self.warmup * total))

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def seed(value: int) -> int:
    """Seed python, numpy and torch (and dataloader workers) via ``lightning.seed_everything``."""
    return L.seed_everything(int(value), workers=True, verbose=False)


def section_seed(params: Mapping[str, Any], section: str) -> int:
    """``<section>.seed`` when set (a seed study of that stage alone, same data and upstream models),
    else the global ``seed``; checked, errors name the key."""
    value = params[section].get("seed")
    return check_seed(params["seed"]) if value is None else check_seed(value, f"{section}.seed")


def set_cpu_threads(threads: int | None) -> None:
    """Use ``threads`` torch CPU threads when > 0 (a stage's ``cpu_threads`` param); 0/None = torch default.

    The stages' small matmuls gain little from a second thread and lose a lot when the cores are
    shared with other processes, hence the per-stage param.
    """
    if threads and int(threads) > 0:
        torch.set_num_threads(int(threads))


def configure_gpu_kernels() -> None:
    """Switch off PyTorch's cuDNN attention backend (no-op without CUDA).

    Under bf16 autocast ``scaled_dot_product_attention`` picks cuDNN, which builds an execution
    plan for every new sequence length; the student's cross-attention sees a new text length
    in almost every batch, so each step paid ~35 ms of planning per layer (measured on an H100:
    bf16 steps ran 10x slower than fp32, docs/benchmarks.md). The memory-efficient and flash
    kernels that remain take any length without planning.
    """
    if torch.cuda.is_available():
        torch.backends.cuda.enable_cudnn_sdp(False)


def resume_path(ckpt_dir: str | Path) -> str | None:
    """Newest of ``last.ckpt`` / ``on_exception.ckpt`` in ``ckpt_dir``, or ``None``."""
    d = Path(ckpt_dir)
    found = [p for p in (d / LAST, d / f"{ON_EXCEPTION}.ckpt") if p.is_file()]
    return str(max(found, key=lambda p: p.stat().st_mtime_ns)) if found else None


class StartEpoch(L.Callback):
    """Remembers the epoch training started at (> 0 after resuming from a checkpoint; ``None`` when
    no epoch was left to train: resumed from a checkpoint of the last epoch)."""

    epoch: int | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch = int(trainer.current_epoch)


def rng_states() -> dict[str, Any]:
    """The global RNG states of python ``random``, numpy, torch (CPU and, once CUDA is initialised,
    every device), as tensors and plain values (loadable with ``torch.load(weights_only=True)``)."""
    version, keys, gauss = random.getstate()
    kind, mt, pos, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {
        "python": [version, torch.tensor(keys, dtype=torch.int64), gauss],
        "numpy": [kind, torch.from_numpy(mt.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: Mapping[str, Any]) -> None:
    """Restore the states of :func:`rng_states` (CUDA's when saved, on the devices present)."""
    version, keys, gauss = states["python"]
    random.setstate((version, tuple(int(k) for k in keys.tolist()), gauss))
    kind, mt, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, mt.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        for device, state in enumerate(states["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, device)


NOT_EXACT = "the result will not be bit-identical to an uninterrupted run"


class ResumeRNG(L.Callback):
    """Bit-exact resume: the RNG states of an epoch-end checkpoint, restored where the rerun's next
    epoch starts drawing.

    Saving: a checkpoint written between an epoch's ``on_train_epoch_end`` and the next training
    batch (``last.ckpt`` after every epoch; ``on_exception.ckpt`` of a stop between epochs) stores
    :func:`rng_states` as they were at the first such write, i.e. after the epoch's validation and
    epoch-end hooks. In the uninterrupted run nothing draws from then until the next epoch's train
    DataLoader iterator is created (its base seed; the sampler's seed at the first batch).
    A checkpoint written inside an epoch stores no states (resuming it is not bit-exact).

    Resuming: everything the rerun does before its first epoch differs from the uninterrupted run
    (building and seeding the module, the sanity check, and Lightning creating the train iterator
    before ``on_train_start``), so the states are restored in the first ``on_train_epoch_start`` and
    the train iterator is created again, as the uninterrupted run creates it right after that hook
    (a LightningModule whose own ``on_train_epoch_start`` draws random numbers would break this;
    none does). When no epoch is left, they are restored in ``on_fit_end``: the stage's code after
    ``fit`` sees the uninterrupted run's RNG. A fresh run only reads RNG states: its results do not
    change. Under DDP every rank restores rank 0's states.
    """

    def __init__(self) -> None:
        self._at_epoch_end = False  # no training batch since the last on_train_epoch_end
        self._saved: dict[str, Any] | None = None  # states of this epoch end's first checkpoint
        self._pending: dict[str, Any] | None = None  # loaded from the checkpoint, not restored yet

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._at_epoch_end, self._saved = True, None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self._pending is not None:  # Lightning resumed inside the epoch, without its start hook
            log.warning("resumed inside an epoch: %s", NOT_EXACT)
            self._pending = None
        self._at_epoch_end, self._saved = False, None

    def state_dict(self) -> dict[str, Any]:
        """Called while a checkpoint is written: the epoch end's states (``None`` mid-epoch)."""
        if not self._at_epoch_end:
            return {"rng": None}
        if self._saved is None:
            self._saved = rng_states()
        return {"rng": self._saved}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict.get("rng")
        if self._pending is None:
            log.warning("resuming from a checkpoint written inside an epoch: %s", NOT_EXACT)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is None:
            return
        set_rng_states(self._pending)
        self._pending = None
        fetcher = getattr(trainer.fit_loop, "_data_fetcher", None)  # Lightning 2.x internals
        if fetcher is None:
            log.warning("no train iterator to recreate (Lightning internals changed?): %s", NOT_EXACT)
            return
        iter(fetcher)  # the epoch's train iterator, created from the restored states

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is not None:  # resumed with no epoch left to train
            set_rng_states(self._pending)
            self._pending = None


# Known, harmless Lightning messages (regex on the message): resume bookkeeping of a fresh run, the
# checkpoint directory a rerun reuses on purpose, tiny epochs shorter than the logging interval, the
# frozen VAE/BERT kept in eval mode, and a deprecation inside Lightning itself.
LIGHTNING_NOISE = (
    r".*\.fit\(ckpt_path=None\)` was called without a model",
    r".*there is no last checkpoint available",
    r"Checkpoint directory .* exists and is not empty",
    r".*isinstance\(treespec, LeafSpec\)",
    r"The number of training batches .* is smaller than the logging interval",
    r"Found \d+ module\(s\) in eval mode at the start of training",
)


def quiet_lightning() -> None:
    """Silence Lightning's known-harmless output at its source: the info lines of every Trainer
    (GPU/TPU availability, the litlogger tip, "`Trainer.fit` stopped", ...: the rank-zero loggers at
    WARNING) and the warnings of :data:`LIGHTNING_NOISE`. Real warnings still show."""
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in LIGHTNING_NOISE:
        warnings.filterwarnings("ignore", message=pattern)


OBJECTIVE = ("total", "loss", "bce", "recon")  # the logged term that is the training objective
CURVE_LOG = ("train_loss", "val_loss", "val_dur_acc", "val_bleu4")  # shown in the per-epoch log line


class EpochCurve(L.Callback):
    """The training curve: one row per epoch (``epoch`` + every epoch-level metric logged, e.g.
    ``train_loss``, ``val_loss``), and one log line per epoch, so a stage's progress shows in a log
    without a progress bar. Its rows travel in the checkpoints: a resumed run's curve is whole."""

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.rows: list[dict[str, float]] = []
        self._t0 = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row: dict[str, float] = {"epoch": int(trainer.current_epoch)}
        for key, value in sorted(trainer.callback_metrics.items()):
            if key.endswith("_step") or not isinstance(value, torch.Tensor) or value.numel() != 1:
                continue
            row[key.removesuffix("_epoch").replace("/", "_")] = float(value)
        for prefix in ("train", "val"):  # the objective: total (Eq. 11 & co.), else loss / bce / recon
            name = next((f"{prefix}_{k}" for k in OBJECTIVE if f"{prefix}_{k}" in row), None)
            if name is not None:
                row[f"{prefix}_loss"] = row[name]
        self.rows.append(row)
        shown = ", ".join(f"{k} {row[k]:.4g}" for k in CURVE_LOG if k in row)
        log.info(
            "%sepoch %d/%d: %s (%.1f s)",
            f"{self.label} " if self.label else "",
            row["epoch"] + 1,
            trainer.max_epochs,
            shown or "-",
            time.perf_counter() - self._t0,
        )

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict.get("rows", []))


def make_trainer(
    cfg: TrainConfig,
    ckpt_dir: str | Path,
    max_epochs: int,
    logger: Any = None,
    callbacks: list[L.Callback] | None = None,
    **overrides: Any,
) -> tuple[L.Trainer, str | None]:
    """Build the Trainer for ``cfg`` and return it with the checkpoint to resume from.

    ``logger=None`` disables logging (pass :func:`pipeline.training.tracking.mlflow_logger`'s
    result); ``callbacks`` are added to the checkpoint callbacks; ``overrides`` go to
    ``L.Trainer``. Pass the returned path to ``trainer.fit(model, ..., ckpt_path=path)``.
    """
    p = cfg.resolved()
    quiet_lightning()
    if p.accelerator in ("gpu", "cuda"):
        configure_gpu_kernels()
    d = Path(ckpt_dir)
    d.mkdir(parents=True, exist_ok=True)
    checkpoint = ModelCheckpoint(
        dirpath=d,
        filename="epoch{epoch:04d}",
        auto_insert_metric_name=False,
        every_n_epochs=p.checkpoint_every_n_epochs,
        save_top_k=1,
        save_last=True,
    )
    kwargs: dict[str, Any] = {
        "accelerator": p.accelerator,
        "devices": p.devices,
        "num_nodes": p.num_nodes,
        "strategy": p.strategy,
        "precision": p.precision,
        "max_epochs": int(max_epochs),
        "gradient_clip_val": float(p.grad_clip) or None,
        "log_every_n_steps": p.log_every_n_steps,
        "enable_progress_bar": p.progress_bar and sys.stderr.isatty(),  # no bar (ANSI) in logs
        "deterministic": p.deterministic,
        "default_root_dir": str(d),
        "logger": logger if logger is not None else False,
        # ResumeRNG last of the plain callbacks (Lightning runs the checkpoint ones after them)
        "callbacks": [checkpoint, OnExceptionCheckpoint(d, ON_EXCEPTION), *(callbacks or []), ResumeRNG()],
        "enable_model_summary": False,
    }
    kwargs.update(overrides)
    trainer = L.Trainer(**kwargs)
    path = resume_path(d)
    if path:
        log.info("resuming from %s", path)
    return trainer, path


def data_digest(*parts: Any) -> str:
    """SHA-1 of the training data for a checkpoint fingerprint, fed in order: arrays (their
    C-order bytes), ``str`` (UTF-8), ``bytes``, ``Path`` (the file's contents), and lists or
    tuples of these (their items in order)."""
    h = hashlib.sha1()

    def feed(part: Any) -> None:
        if isinstance(part, np.ndarray):
            h.update(np.ascontiguousarray(part).tobytes())
        elif isinstance(part, str):
            h.update(part.encode())
        elif isinstance(part, bytes):
            h.update(part)
        elif isinstance(part, Path):
            h.update(part.read_bytes())
        elif isinstance(part, list | tuple):
            for item in part:
                feed(item)
        else:
            raise TypeError(f"data_digest: cannot hash a {type(part).__name__}")

    for part in parts:
        feed(part)
    return h.hexdigest()


def prepare_ckpt_dir(ckpt_dir: str | Path, fingerprint: dict[str, Any]) -> Path:
    """Create ``ckpt_dir``; delete its checkpoints when they were made for another ``fingerprint``.

    The fingerprint (params, data hash, ...) is stored as ``fingerprint.json``; resuming is only
    allowed from checkpoints written under an identical one.
    """
    d = Path(ckpt_dir)
    d.mkdir(parents=True, exist_ok=True)
    f = d / FINGERPRINT
    text = json.dumps(fingerprint, sort_keys=True, indent=1, default=str)
    old = f.read_text() if f.exists() else None
    if old != text:
        if any(d.glob("*.ckpt")):
            log.warning("%s: checkpoints belong to other params/data; starting fresh", d)
        clear_checkpoints(d)
        f.write_text(text)
    return d


def clear_checkpoints(ckpt_dir: str | Path) -> None:
    """Remove the ``*.ckpt`` files (and Lightning's log folders) of ``ckpt_dir``; keep the dir."""
    d = Path(ckpt_dir)
    for p in d.glob("*.ckpt"):
        p.unlink()
    shutil.rmtree(d / "lightning_logs", ignore_errors=True)


# -- the skeleton of a training stage ----------------------------------------------------------
@dataclass
class Fit:
    """What :meth:`TrainingRun.fit` did: the Trainer, wall time and epochs (resumed from ``start_epoch``)."""

    trainer: L.Trainer
    seconds: float
    start_epoch: int

    @property
    def is_global_zero(self) -> bool:
        return bool(self.trainer.is_global_zero)

    @property
    def epochs(self) -> int:
        """Epochs completed in all (including those of a resumed run)."""
        return int(self.trainer.current_epoch)

    @property
    def epochs_run(self) -> int:
        """Epochs this process trained."""
        return self.epochs - self.start_epoch

    def summary(self, n_train: int) -> dict[str, Any]:
        """The training-metrics keys every training stage reports: epochs, the epoch it resumed
        from, wall seconds and train samples/s of this process (``n_train`` samples per epoch)."""
        per_s = n_train * self.epochs_run / self.seconds if self.seconds else 0.0
        return {
            "epochs": self.epochs,
            "resumed_from_epoch": self.start_epoch,
            "train_seconds": round(self.seconds, 2),
            "train_samples_per_s": round(per_s, 2),
        }


@dataclass
class TrainingRun:
    """One training stage's run, inside :func:`training_run`: fit once, then :meth:`finish`.

    A stage that trains several models (a baseline's variants) fits each as a :meth:`part` of its
    one run instead.
    """

    stage: Stage
    run: Any  # the stage's MLflow run (None on non-zero DDP ranks)
    train: TrainConfig
    config: FitConfig
    ckpt_dir: Path
    name: str = ""  # a part's name: its Lightning metrics are logged as <name>/<metric>
    parts: list[TrainingRun] = dataclasses.field(default_factory=list)
    curve: EpochCurve | None = None  # of the last fit

    @property
    def workers(self) -> int:
        """DataLoader workers (``train.num_workers``)."""
        return self.train.num_workers

    def fit(
        self, module: L.LightningModule, train_loader: Any, val_loader: Any = None, **trainer_overrides: Any
    ) -> Fit:
        """Fit ``module`` for ``fit.epochs`` (resuming a killed run's newest checkpoint)."""
        from pipeline.training import tracking

        start, curve = StartEpoch(), EpochCurve(self.name)
        trainer, resume = make_trainer(
            self.train,
            self.ckpt_dir,
            self.config.epochs,
            logger=tracking.mlflow_logger(self.run, prefix=self.name),
            callbacks=[start, curve],
            **trainer_overrides,
        )
        self.curve = curve
        t0 = time.perf_counter()
        trainer.fit(module, train_loader, val_loader, ckpt_path=resume)
        first = int(trainer.current_epoch) if start.epoch is None else start.epoch
        return Fit(trainer, time.perf_counter() - t0, first)

    def part(
        self,
        name: str,
        ckpt_dir: str | Path,
        fingerprint: dict[str, Any],
        seed_value: int,
        config: FitConfig | None = None,
    ) -> TrainingRun:
        """One of several models the stage trains in its run (e.g. a baseline's variants), seeded
        with ``seed_value``: its own checkpoint directory and ``fingerprint`` (each part resumes on
        its own), its ``config`` (default the stage's), its Lightning metrics logged to the stage's
        MLflow run as ``<name>/<metric>``. Fit it once; its checkpoints stay until the stage's
        :meth:`finish`, so a rerun after a kill skips the parts already trained (they resume
        from their last epoch)."""
        seed(seed_value)
        fingerprint = {**fingerprint, "train": dataclasses.asdict(self.train)}
        ckpt = prepare_ckpt_dir(ckpt_dir, fingerprint)
        part = TrainingRun(self.stage, self.run, self.train, config or self.config, ckpt, name)
        self.parts.append(part)
        return part

    def finish(
        self, metrics: dict[str, Any], metrics_path: str | Path, model_dir: str | Path | None = None
    ) -> None:
        """Write ``metrics`` to the stage's out ``metrics_path``, log them (and ``model_dir`` as the
        MLflow artifact ``model``), then delete the checkpoints (the parts' too): the run is complete."""
        from pipeline.training import tracking

        path = self.stage.write_json(metrics_path, metrics)
        tracking.log_metrics_file(self.run, path)
        self.write_curves()
        if model_dir is not None:
            tracking.log_artifacts(self.run, model_dir, artifact_path="model")
        for part in self.parts:
            clear_checkpoints(part.ckpt_dir)
        clear_checkpoints(self.ckpt_dir)

    def write_curves(self) -> list[Path]:
        """The training curves of this run's fits (``plots/curves/<stage>/<part or model>.csv``: a
        column ``epoch`` and one per epoch-level metric, ``train_loss`` and ``val_loss`` always,
        empty where not logged), the stage's declared out; DVC plots them (dvc.yaml ``plots``)."""
        written = []
        for run in [self, *self.parts]:
            if run.curve is None or not run.curve.rows:
                continue
            rows = run.curve.rows
            keys = ["epoch", "train_loss", "val_loss"]
            keys += sorted({k for r in rows for k in r} - set(keys))
            path = self.stage.out(curves_dir(self.stage.name) / f"{run.name or 'model'}.csv")
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = [",".join(keys)] + [",".join(_cell(r.get(k)) for k in keys) for r in rows]
            path.write_text("\n".join(lines) + "\n")
            written.append(path)
        return written


def curves_dir(stage: str) -> Path:
    """Where a training stage writes its training curves (a declared out of the stage)."""
    return Path("plots/curves") / stage


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


@contextmanager
def training_run(
    stage: Stage,
    params: Mapping[str, Any],
    ckpt_dir: str | Path,
    fingerprint: dict[str, Any],
    seed_value: int,
    config: FitConfig,
) -> Iterator[TrainingRun]:
    """Set up a training stage (threads, MLflow run, seed, checkpoint dir); see the module docstring.

    ``params`` are the stage's params (with the ``train`` section); ``fingerprint`` gets the
    ``train`` section added.
    """
    from pipeline.training import tracking  # here: model code and benchmarks need no MLflow

    train = parse_section(params, "train", TrainConfig)
    check_trainer(train)  # Lightning's own checks come only when the Trainer is built: after MLflow opened
    set_cpu_threads(config.cpu_threads)
    with tracking.stage_run(stage.name, params) as run:
        seed(seed_value)
        fingerprint = {**fingerprint, "train": dataclasses.asdict(train)}
        yield TrainingRun(stage, run, train, config, prepare_ckpt_dir(ckpt_dir, fingerprint))
