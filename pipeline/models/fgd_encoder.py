"""The FGD encoder: NSLP-G's Transformer autoencoder (TAE), the feature extractor of FGD (§5.1, Eq. 12).

FGD is computed on windows of ``window`` (34) frames cut with ``stride``
(:func:`windows`); each frame is ``J`` joints x 3 channels in [0, 1]
flattened to ``n_features``. As in NSLP-G (Hwang et al., BMVC 2021), the autoencoder squeezes a
whole window through ONE vector:

- encoder: the input standardised per feature (train mean and std, saved with the weights), a
  linear projection plus sinusoidal positional encodings, a pre-norm Transformer encoder ->
  per-frame outputs ``h [B, window, d_model]`` (:meth:`FGDEncoder.encode_frames`);
- bottleneck: the temporal mean of ``h``, projected to ``z [B, latent]`` (:meth:`FGDEncoder.pool`,
  :meth:`FGDEncoder.encode`); ``z`` is the FGD feature of the window (:meth:`FGDEncoder.embed`);
- decoder: sees only ``z``. Its queries are the sinusoidal encodings of the ``window`` positions
  plus a per-position linear projection of ``z``; its memory is ``z`` projected to one token; a
  pre-norm Transformer decoder (self-attention over the positions, cross-attention to that token)
  and a linear layer give frame logits ``[B, window, n_features]`` (:meth:`FGDEncoder.decode_logits`).

Training minimises the element-wise BCE between the Sigmoid of the logits and the input (the
paper trains its FGD encoder with BCE, §4). Departures from NSLP-G's TAE, each measured on dev
reconstruction: the encoder input gets positional encodings (NSLP-G's has none, so its pooled
feature is blind to the order of the frames in a window, and its reconstructions are ~3x worse);
the input is standardised (the [0, 1] coordinates vary by ~0.01-0.1, which the positional
encodings drown otherwise); the decoder queries also get ``z`` per position (NSLP-G's are the
positional encodings alone); single linear input/output layers instead of MLPs; pre-norm layers;
``z`` has its own width ``latent`` (NSLP-G: ``d_model``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import ParamsError, check_fields, param
from pipeline.models.io import load_model
from pipeline.models.layers import sinusoidal_encoding

MIN_STD = 0.01  # floor of the input standardisation's std (joints fixed by the normalisation)


def windows(seq: np.ndarray, size: int = 34, stride: int | None = None) -> np.ndarray:
    """Fixed-length windows ``[W, size, ...]`` of ``seq`` [T, ...] for the FGD encoder.

    - ``T >= size``: windows start at 0, stride, 2*stride, ... (``stride`` defaults to ``size``:
      non-overlapping); when the last start leaves frames uncovered, one more window ending at the
      last frame is added, so every frame is in some window.
    - ``0 < T < size``: one window, the sequence padded to ``size`` by repeating its last frame
      (a pose held still; the encoder saw the same padding in training).
    - ``T == 0``: ``ValueError``.
    """
    seq = np.asarray(seq)
    n = len(seq)
    if size <= 0 or (stride is not None and stride <= 0):
        raise ValueError(f"windows: size={size}, stride={stride} must be > 0")
    if n == 0:
        raise ValueError("windows: empty sequence (0 frames)")
    if n < size:
        pad = np.repeat(seq[-1:], size - n, axis=0)
        return np.concatenate([seq, pad])[None]
    step = stride or size
    starts = list(range(0, n - size + 1, step))
    if starts[-1] + size < n:
        starts.append(n - size)
    return np.stack([seq[s : s + size] for s in starts])


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
    latent: int = param(32, gt=0)  # width of the pooled vector z = the FGD feature
    dropout: float = param(0.0, ge=0, lt=1)

    def __post_init__(self) -> None:
        check_fields(self, "fgd_encoder")
        if self.d_model % self.heads:
            raise ParamsError(
                f"fgd_encoder.d_model={self.d_model} is not divisible by fgd_encoder.heads={self.heads}"
            )


class FGDEncoder(nn.Module):
    """``encode(x) -> z [B, latent]``, ``decode_logits(z) -> [B, W, F]``; ``forward`` chains them."""

    def __init__(self, config: FGDEncoderConfig) -> None:
        super().__init__()
        self.config = c = config
        self.inp = nn.Linear(c.n_features, c.d_model)
        enc = nn.TransformerEncoderLayer(
            c.d_model, c.heads, c.ff, c.dropout, batch_first=True, norm_first=True, activation="gelu"
        )
        self.encoder = nn.TransformerEncoder(
            enc, c.layers, norm=nn.LayerNorm(c.d_model), enable_nested_tensor=False
        )
        self.to_latent = nn.Linear(c.d_model, c.latent)
        self.from_latent = nn.Linear(c.latent, c.d_model)  # the decoder's one memory token
        self.to_queries = nn.Linear(c.latent, c.window * c.d_model)  # z per decoder position
        dec = nn.TransformerDecoderLayer(
            c.d_model, c.heads, c.ff, c.dropout, batch_first=True, norm_first=True, activation="gelu"
        )
        self.decoder = nn.TransformerDecoder(dec, c.layers, norm=nn.LayerNorm(c.d_model))
        self.out = nn.Linear(c.d_model, c.n_features)
        self.register_buffer("pos", sinusoidal_encoding(c.window, c.d_model), persistent=False)
        self.register_buffer("x_mean", torch.zeros(c.n_features))  # input standardisation (saved)
        self.register_buffer("x_std", torch.ones(c.n_features))

    @torch.no_grad()
    def fit_input_stats(self, frames: torch.Tensor, min_std: float = MIN_STD) -> None:
        """Standardise the input with the per-feature mean and std (>= ``min_std``) of ``frames [N, F]``
        in [0, 1] and start the output bias at the logit of the mean (call before training)."""
        frames = frames.reshape(-1, self.config.n_features)
        total, squares = torch.zeros(frames.shape[1], dtype=torch.float64), 0.0
        for s in range(0, len(frames), 1 << 16):  # float64 sums, chunk by chunk (large train sets)
            chunk = frames[s : s + (1 << 16)].double()
            total, squares = total + chunk.sum(dim=0), squares + (chunk**2).sum(dim=0)
        n = len(frames)
        mean = total / n
        var = (squares - n * mean**2).clamp_min(0) / max(1, n - 1)
        self.x_mean.copy_(mean)
        self.x_std.copy_(var.sqrt().clamp_min(min_std))
        self.out.bias.copy_(torch.logit(self.x_mean.clamp(1e-3, 1 - 1e-3)))

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.ndim == 4 and x.shape[2] * x.shape[3] == c.n_features:
            x = x.reshape(*x.shape[:2], -1)
        if x.ndim != 3 or x.shape[1:] != (c.window, c.n_features):
            raise ValueError(
                f"FGD encoder expects windows [B, {c.window}, {c.n_features}], got {tuple(x.shape)}"
            )
        return x

    def encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame encoder outputs ``[B, W, d_model]`` of windows ``[B, W, F]`` or ``[B, W, J, 3]``."""
        x = self._check(x)
        return self.encoder(self.inp((x - self.x_mean) / self.x_std) + self.pos)

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        """The bottleneck: temporal mean of ``h [B, W, d_model]`` projected to ``z [B, latent]``."""
        return self.to_latent(h.mean(dim=1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The window summary ``z [B, latent]`` (the FGD feature) of windows ``x``."""
        return self.pool(self.encode_frames(x))

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Frame logits ``[B, window, n_features]`` from ``z [B, latent]`` alone."""
        if z.ndim != 2 or z.shape[1] != self.config.latent:
            raise ValueError(f"FGD decoder expects z [B, {self.config.latent}], got {tuple(z.shape)}")
        c = self.config
        queries = self.pos + self.to_queries(z).view(len(z), c.window, c.d_model)
        memory = self.from_latent(z)[:, None]
        return self.out(self.decoder(queries, memory))

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
        """FGD features ``z [B, latent]`` of windows ``x``, in batches, without gradients."""
        outs = [self.encode(x[s : s + batch_size]) for s in range(0, len(x), batch_size)]
        return torch.cat(outs) if outs else torch.zeros(0, self.config.latent)


def load_fgd_encoder(directory: str | Path, map_location: str | torch.device = "cpu") -> FGDEncoder:
    """Load an FGD encoder saved with :func:`pipeline.models.io.save_model`: eval mode, frozen."""
    return load_model(FGDEncoder, FGDEncoderConfig, directory, "FGD encoder", map_location)
