"""Lightning training engine shared by the training stages: trainer factory, seeding, resume.

``make_trainer(params["train"], ckpt_dir, max_epochs, logger)`` builds a ``lightning.Trainer``
from the ``train`` params section and returns it with the checkpoint to resume from:

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

Stages call :func:`seed` before building their model, :func:`prepare_ckpt_dir` with a
fingerprint of everything the checkpoint depends on (params and the :func:`data_digest` of the
data; so a rerun with other params starts fresh instead of resuming a stale run), and
:func:`clear_checkpoints` after a successful fit.

Multi-GPU / multi-node (DDP): set ``train.strategy=ddp`` and ``train.devices`` (and
``train.num_nodes``). On one node DVC can launch it directly
(``dvc exp run -S train.strategy=ddp -S train.devices=4``: Lightning re-launches the stage
script once per GPU); with ``torchrun --nproc_per_node=4 -m pipeline.pretrain_vae`` or under
SLURM (``srun --ntasks-per-node=4 python -m pipeline.pretrain_vae`` with
``-S train.num_nodes=2``) the launcher starts the ranks and Lightning joins them. Only global
rank 0 writes outputs and MLflow runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, OnExceptionCheckpoint

from pipeline.config import ParamsError, check_positive

log = logging.getLogger(__name__)

LAST = "last.ckpt"
ON_EXCEPTION = "on_exception"
FINGERPRINT = "fingerprint.json"

TRAIN_DEFAULTS: dict[str, Any] = {
    "accelerator": "auto",
    "devices": "auto",
    "num_nodes": 1,
    "strategy": "auto",
    "precision": "auto",
    "grad_clip": 1.0,
    "checkpoint_every_n_epochs": 1,
    "num_workers": 0,
    "log_every_n_steps": 50,
    "progress_bar": True,
    "deterministic": "auto",
}


def seed(value: int) -> int:
    """Seed python, numpy and torch (and dataloader workers) via ``lightning.seed_everything``."""
    return L.seed_everything(int(value), workers=True, verbose=False)


def set_cpu_threads(threads: int | None) -> None:
    """Use ``threads`` torch CPU threads when > 0 (a stage's ``cpu_threads`` param); 0/None = torch default.

    The stages' small matmuls gain little from a second thread and lose a lot when the cores are
    shared with other processes, hence the per-stage param.
    """
    if threads and int(threads) > 0:
        torch.set_num_threads(int(threads))


def resolve(train_params: dict[str, Any]) -> dict[str, Any]:
    """``train`` params with defaults filled and ``auto`` accelerator/precision/determinism resolved."""
    unknown = set(train_params) - set(TRAIN_DEFAULTS)
    if unknown:
        raise ParamsError(f"params.yaml: unknown key(s) in section 'train': {sorted(unknown)}")
    p = {**TRAIN_DEFAULTS, **train_params}
    gpu = torch.cuda.is_available()
    if p["accelerator"] == "auto":
        p["accelerator"] = "gpu" if gpu else "cpu"
    on_gpu = p["accelerator"] in ("gpu", "cuda")
    if p["precision"] == "auto":
        if on_gpu:
            p["precision"] = "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
        else:
            p["precision"] = "32-true"
    if p["deterministic"] == "auto":
        p["deterministic"] = "warn" if on_gpu else True
    check_positive(p["grad_clip"], "train.grad_clip", allow_zero=True)
    check_positive(p["checkpoint_every_n_epochs"], "train.checkpoint_every_n_epochs")
    check_positive(p["log_every_n_steps"], "train.log_every_n_steps")
    check_positive(p["num_nodes"], "train.num_nodes")
    check_positive(p["num_workers"], "train.num_workers", allow_zero=True)
    return p


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


def make_trainer(
    train_params: dict[str, Any],
    ckpt_dir: str | Path,
    max_epochs: int,
    logger: Any = None,
    callbacks: list[L.Callback] | None = None,
    **overrides: Any,
) -> tuple[L.Trainer, str | None]:
    """Build the Trainer for ``train_params`` and return it with the checkpoint to resume from.

    ``logger=None`` disables logging (pass :func:`pipeline.tracking.mlflow_logger`'s result);
    ``callbacks`` are added to the checkpoint callbacks; ``overrides`` go to ``L.Trainer``.
    Pass the returned path to ``trainer.fit(model, ..., ckpt_path=path)``.
    """
    p = resolve(train_params)
    check_positive(max_epochs, "max_epochs")
    if p["accelerator"] in ("gpu", "cuda"):
        configure_gpu_kernels()
    d = Path(ckpt_dir)
    d.mkdir(parents=True, exist_ok=True)
    checkpoint = ModelCheckpoint(
        dirpath=d,
        filename="epoch{epoch:04d}",
        auto_insert_metric_name=False,
        every_n_epochs=int(p["checkpoint_every_n_epochs"]),
        save_top_k=1,
        save_last=True,
    )
    kwargs: dict[str, Any] = {
        "accelerator": p["accelerator"],
        "devices": p["devices"],
        "num_nodes": int(p["num_nodes"]),
        "strategy": p["strategy"],
        "precision": p["precision"],
        "max_epochs": int(max_epochs),
        "gradient_clip_val": float(p["grad_clip"]) or None,
        "log_every_n_steps": int(p["log_every_n_steps"]),
        "enable_progress_bar": bool(p["progress_bar"]),
        "deterministic": p["deterministic"],
        "default_root_dir": str(d),
        "logger": logger if logger is not None else False,
        "callbacks": [checkpoint, OnExceptionCheckpoint(d, ON_EXCEPTION), *(callbacks or [])],
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
