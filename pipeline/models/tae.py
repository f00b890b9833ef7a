"""Transformer autoencoder (TAE) of NSLP-G, the feature extractor of FGD (paper §5.1, Eq. 12).

A window of ``window`` (34) frames, each ``J`` joints x 3 channels in [0, 1] flattened to
``n_features``, is embedded by a linear layer plus a learned positional embedding and encoded by a
Transformer encoder into per-frame codes ``[B, window, latent]``; a second Transformer stack
decodes the codes back to frame logits. Training minimises the element-wise BCE between the
Sigmoid of the logits and the input (the paper trains its FGD encoder with BCE, §4). The FGD
feature of a window is the temporal mean of the encoder output: :meth:`TAE.embed` ``-> [B, latent]``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import ParamsError
from pipeline.models.io import load_model, save_model


@dataclass
class TAEConfig:
    """Hyper-parameters of :class:`TAE`."""

    n_features: int = 150  # J * 3
    window: int = 34  # frames per window (paper: 34)
    d_model: int = 64
    heads: int = 4
    layers: int = 2  # encoder layers (the decoder has as many)
    ff: int = 128
    latent: int = 32
    dropout: float = 0.1

    def __post_init__(self) -> None:
        for key in ("n_features", "window", "d_model", "heads", "layers", "ff", "latent"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ParamsError(f"fgd.{key}={value!r} is invalid; expected an int > 0")
        if self.d_model % self.heads:
            raise ParamsError(f"fgd.d_model={self.d_model} is not divisible by fgd.heads={self.heads}")
        if not 0 <= self.dropout < 1:
            raise ParamsError(f"fgd.dropout={self.dropout!r} is invalid; expected 0 <= dropout < 1")

    @classmethod
    def from_params(cls, fgd_params: dict[str, Any], n_features: int) -> TAEConfig:
        """Build from the ``fgd`` params section (training keys such as ``lr`` are ignored)."""
        names = {f.name for f in fields(cls)} - {"n_features"}
        return cls(n_features=n_features, **{k: v for k, v in fgd_params.items() if k in names})


def _stack(c: TAEConfig) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        c.d_model, c.heads, c.ff, c.dropout, batch_first=True, norm_first=True, activation="gelu"
    )
    return nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)


class TAE(nn.Module):
    """``encode -> [B, W, latent]`` codes, ``forward -> [B, W, F]`` logits, ``embed -> [B, latent]``."""

    def __init__(self, config: TAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.inp = nn.Linear(c.n_features, c.d_model)
        self.pos_enc = nn.Parameter(torch.randn(c.window, c.d_model) * 0.02)
        self.encoder = _stack(c)
        self.to_latent = nn.Sequential(nn.LayerNorm(c.d_model), nn.Linear(c.d_model, c.latent))
        self.from_latent = nn.Linear(c.latent, c.d_model)
        self.pos_dec = nn.Parameter(torch.randn(c.window, c.d_model) * 0.02)
        self.decoder = _stack(c)
        self.out = nn.Sequential(nn.LayerNorm(c.d_model), nn.Linear(c.d_model, c.n_features))

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.ndim == 4 and x.shape[2] * x.shape[3] == c.n_features:
            x = x.reshape(*x.shape[:2], -1)
        if x.ndim != 3 or x.shape[1:] != (c.window, c.n_features):
            raise ValueError(f"TAE expects windows [B, {c.window}, {c.n_features}], got {tuple(x.shape)}")
        return x

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame codes ``[B, W, latent]`` of windows ``[B, W, n_features]`` or ``[B, W, J, 3]``."""
        x = self._check(x)
        return self.to_latent(self.encoder(self.inp(x) + self.pos_enc))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Frame logits ``[B, window, n_features]`` from codes ``[B, window, latent]``."""
        return self.out(self.decoder(self.from_latent(z) + self.pos_dec))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode_logits(self.encode(x))

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """BCE reconstruction loss (mean over elements); targets must lie in [0, 1]."""
        x = self._check(x)
        if x.min() < 0 or x.max() > 1:
            raise ValueError(f"TAE BCE targets must lie in [0, 1], got [{float(x.min())}, {float(x.max())}]")
        return F.binary_cross_entropy_with_logits(self(x).float(), x.float())

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """FGD features: temporal mean of the encoder output, ``[B, latent]``."""
        outs = [self.encode(x[s : s + batch_size]).mean(dim=1) for s in range(0, len(x), batch_size)]
        return torch.cat(outs) if outs else torch.zeros(0, self.config.latent)


def save_tae(model: TAE, directory: str | Path) -> Path:
    """Write ``<directory>/config.json`` and ``<directory>/model.pt``."""
    return save_model(model, directory)


def load_tae(directory: str | Path, map_location: str | torch.device = "cpu") -> TAE:
    """Load a TAE written by :func:`save_tae`: eval mode, frozen."""
    return load_model(TAE, TAEConfig, directory, "FGD encoder", map_location)
