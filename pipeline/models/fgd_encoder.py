"""The FGD encoder: NSLP-G's Transformer autoencoder (TAE), the feature extractor of FGD (§5.1, Eq. 12).

FGD is computed on windows of ``window`` (34) frames cut with ``stride``
(:func:`pipeline.evaluation.metrics.windows`). A window of frames, each ``J`` joints x 3 channels
in [0, 1] flattened to ``n_features``, is embedded by a linear layer plus a learned positional
embedding and encoded by a Transformer encoder into per-frame codes ``[B, window, latent]``; a
second Transformer stack decodes the codes back to frame logits. Training minimises the
element-wise BCE between the Sigmoid of the logits and the input (the paper trains its FGD
encoder with BCE, §4). The FGD feature of a window is the temporal mean of the encoder output:
:meth:`FGDEncoder.embed` ``-> [B, latent]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import ParamsError, check_fields, param
from pipeline.models.io import load_model


@dataclass
class FGDEncoderConfig:
    """Hyper-parameters of :class:`FGDEncoder` and of the FGD it defines: the params section
    ``fgd_encoder`` (``n_features`` = J * 3 comes from the data)."""

    n_features: int = param(150, gt=0, derived=True)  # J * 3
    window: int = param(34, gt=0)  # frames per window (paper: 34)
    stride: int = param(34, gt=0)  # window stride at evaluation (34 = non-overlapping): the FGD's windows
    d_model: int = param(64, gt=0)
    heads: int = param(4, gt=0)
    layers: int = param(2, gt=0)  # encoder layers (the decoder has as many)
    ff: int = param(128, gt=0)
    latent: int = param(32, gt=0)
    dropout: float = param(0.1, ge=0, lt=1)

    def __post_init__(self) -> None:
        check_fields(self, "fgd_encoder")
        if self.d_model % self.heads:
            raise ParamsError(
                f"fgd_encoder.d_model={self.d_model} is not divisible by fgd_encoder.heads={self.heads}"
            )


def _stack(c: FGDEncoderConfig) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        c.d_model, c.heads, c.ff, c.dropout, batch_first=True, norm_first=True, activation="gelu"
    )
    return nn.TransformerEncoder(layer, c.layers, enable_nested_tensor=False)


class FGDEncoder(nn.Module):
    """``encode -> [B, W, latent]`` codes, ``forward -> [B, W, F]`` logits, ``embed -> [B, latent]``."""

    def __init__(self, config: FGDEncoderConfig) -> None:
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
            raise ValueError(
                f"FGD encoder expects windows [B, {c.window}, {c.n_features}], got {tuple(x.shape)}"
            )
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
            raise ValueError(
                f"FGD encoder BCE targets must lie in [0, 1], got [{float(x.min())}, {float(x.max())}]"
            )
        return F.binary_cross_entropy_with_logits(self(x).float(), x.float())

    @torch.no_grad()
    def embed(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """FGD features: temporal mean of the encoder output, ``[B, latent]``."""
        outs = [self.encode(x[s : s + batch_size]).mean(dim=1) for s in range(0, len(x), batch_size)]
        return torch.cat(outs) if outs else torch.zeros(0, self.config.latent)


def load_fgd_encoder(directory: str | Path, map_location: str | torch.device = "cpu") -> FGDEncoder:
    """Load an FGD encoder saved with :func:`pipeline.models.io.save_model`: eval mode, frozen."""
    return load_model(FGDEncoder, FGDEncoderConfig, directory, "FGD encoder", map_location)
