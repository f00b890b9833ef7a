"""What the baselines share (:mod:`pipeline.baselines.pt`, :mod:`pipeline.baselines.nslpg`; kept
apart so that each stage depends on its own model only): the check of a ``variants`` param, and the
files every saved baseline directory has — ``config.json`` (``{<section>: config, "variant",
"n_joints", "joints", "fps"}``), ``vocab.json`` (the word :class:`Vocab`) and ``model.pt``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from pipeline.config import ParamsError
from pipeline.models.backtranslator import VOCAB_FILE, Vocab
from pipeline.models.io import CONFIG_FILE, WEIGHTS_FILE


def check_variants(variants: Sequence[str], key: str, known: Sequence[str]) -> None:
    """Raise :class:`ParamsError` naming ``key`` unless ``variants`` is a non-empty list of distinct
    names out of ``known``."""
    if not variants:
        raise ParamsError(f"params.yaml: {key} is empty")
    for i, name in enumerate(variants):
        if name not in known:
            raise ParamsError(
                f"params.yaml: {key}[{i}]={name!r} is invalid; expected one of {', '.join(known)}"
            )
    if len(set(variants)) != len(variants):
        raise ParamsError(f"params.yaml: {key}={list(variants)!r} lists a variant twice")


def write_saved(directory: str | Path, section: str, config: Any, vocab: Vocab, meta: dict[str, Any]) -> Path:
    """Create ``directory`` with ``config.json`` (``{section: config, **meta}``) and ``vocab.json``
    (the weights are the caller's: what a baseline saves of its model differs)."""
    if len(vocab) != config.vocab_size:
        raise ValueError(f"{directory}: {len(vocab)} words but vocab_size={config.vocab_size}")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / CONFIG_FILE).write_text(json.dumps({section: asdict(config), **meta}, indent=1))
    (d / VOCAB_FILE).write_text(json.dumps(vocab.itos, ensure_ascii=False))
    return d


def read_saved(
    directory: str | Path, what: str, stage: str, section: str, config_cls: type
) -> tuple[dict[str, Any], Any, Vocab, dict[str, torch.Tensor]]:
    """``(meta, config, vocab, state)`` of a directory written with :func:`write_saved` (+ its
    ``model.pt``); errors name the directory or file and the problem (``what``: "PT", "NSLP-G";
    ``stage``: the DVC stage that writes it)."""
    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: no such model directory (run `dvc repro {stage}` first)")
    try:
        meta = json.loads((d / CONFIG_FILE).read_text())
        itos = json.loads((d / VOCAB_FILE).read_text(encoding="utf-8"))
        state = torch.load(d / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{d}: not a saved {what}, missing {Path(exc.filename).name}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{d}: invalid JSON: {exc}") from exc
    try:
        config = config_cls(**meta[section])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{d / CONFIG_FILE}: invalid {what} config: {exc}") from exc
    vocab = Vocab(itos)
    if len(vocab) != config.vocab_size:
        raise ValueError(
            f"{d / VOCAB_FILE}: {len(vocab)} words but config says vocab_size={config.vocab_size}"
        )
    return meta, config, vocab, state


def generator_fields(meta: dict[str, Any]) -> dict[str, Any]:
    """The generator fields a saved ``config.json`` carries: n_joints, variant, fps, joints."""
    return {
        "n_joints": int(meta["n_joints"]),
        "variant": str(meta.get("variant", "")),
        "fps": float(meta.get("fps", 25.0)),
        "joints": list(meta.get("joints") or []),
    }
