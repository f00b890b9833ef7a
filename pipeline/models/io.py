"""Saving and loading a model as ``<dir>/config.json`` (its config dataclass) + ``<dir>/model.pt``.

Every saved model of the pipeline (VAE, FGD encoder, back-translator) uses this layout; a loaded
model is in eval mode with every parameter frozen, and a broken directory gives an error naming
the file and what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.pt"

M = TypeVar("M", bound=nn.Module)


def save_model(model: nn.Module, directory: str | Path) -> Path:
    """Write ``model.config`` (a dataclass) as JSON and the float32 CPU state dict."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / CONFIG_FILE).write_text(json.dumps(asdict(model.config), indent=1))
    save_weights(model, d)
    return d


def save_weights(model: nn.Module, directory: Path) -> None:
    """``<directory>/model.pt``: the model's state dict as float32 CPU tensors."""
    state = {k: v.detach().cpu().float().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, directory / WEIGHTS_FILE)


def load_model(
    model_cls: type[M],
    config_cls: type,
    directory: str | Path,
    what: str,
    map_location: str | torch.device = "cpu",
) -> M:
    """Rebuild ``model_cls(config_cls(**config.json))`` with the saved weights; eval mode, frozen.

    ``what`` names the model in error messages (e.g. "VAE").
    """
    d = Path(directory)
    try:
        config: Any = config_cls(**json.loads((d / CONFIG_FILE).read_text()))
        state = torch.load(d / WEIGHTS_FILE, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{d}: not a saved {what}, missing {Path(exc.filename).name}") from exc
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{d / CONFIG_FILE}: invalid {what} config: {exc}") from exc
    model = model_cls(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"{d / WEIGHTS_FILE}: weights do not match {d / CONFIG_FILE}: {exc}") from exc
    model.to(map_location).eval()
    model.requires_grad_(False)
    return model
