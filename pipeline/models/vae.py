"""Single-frame pose VAE (paper §3.2, Eq. 1-2): encoder = LGM, decoder = PGM.

A frame ``y`` (``J`` joints x 3 channels in [0, 1], flattened to ``n_features = 3 J``) is encoded
by 3 linear layers with ReLU into ``(mu, logvar)`` of a diagonal Gaussian ``q(z|y)`` (the third
layer is the pair of ``mu``/``logvar`` heads); ``z`` is drawn by reparameterisation in training
mode (``z = mu`` in eval mode) and decoded by 3 linear layers with ReLU ending in a Sigmoid.

Loss (Eq. 2): ``total = recon + kl_weight * KL(q(z|y) || N(0, I))`` where

- ``recon`` is the element-wise BCE of Eq. 7 averaged over all frames and features
  (``loss="bce"``, computed from the decoder's logits for numerical stability and so that it
  is safe under bf16/fp16 autocast; targets outside [0, 1] raise ``ValueError`` since BCE is
  unbounded below there), or the element-wise MSE (``loss="mse"``);
- ``KL`` is the closed form ``-1/2 * sum_d (1 + logvar - mu^2 - exp(logvar))`` summed over the
  latent dimensions and averaged over the frames of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import ParamsError, check_fields, param
from pipeline.models.io import load_model

LOSSES = ("bce", "mse")


@dataclass
class VAEConfig:
    """Hyper-parameters of :class:`VAE`: the params section ``vae`` (``n_features`` = J * 3 comes
    from the data)."""

    n_features: int = param(150, gt=0, derived=True)  # J * 3 (50 manual joints x [x, y, z])
    hidden: list[int] = param([256, 128])  # encoder widths; decoder mirrors
    latent: int = param(32, gt=0)
    kl_weight: float = param(1e-4, ge=0)  # lambda of Eq. 2
    loss: Literal["bce", "mse"] = "bce"  # "bce" (Eq. 7) | "mse"

    def __post_init__(self) -> None:
        check_fields(self, "vae")
        if len(self.hidden) != 2 or min(self.hidden) <= 0:
            raise ParamsError(f"vae.hidden={self.hidden!r} is invalid; expected two positive widths")


class VAE(nn.Module):
    """Frame VAE: ``encode(y) -> (mu, logvar)``, ``decode(z) -> y`` in [0, 1]."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        h1, h2 = config.hidden
        self.encoder = nn.Sequential(
            nn.Linear(config.n_features, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU()
        )
        self.mu = nn.Linear(h2, config.latent)
        self.logvar = nn.Linear(h2, config.latent)
        self.decoder = nn.Sequential(
            nn.Linear(config.latent, h2),
            nn.ReLU(),
            nn.Linear(h2, h1),
            nn.ReLU(),
            nn.Linear(h1, config.n_features),
        )  # logits; decode() applies the Sigmoid
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def _flat(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Size]:
        """Accept ``[..., n_features]`` or ``[..., J, 3]``; return ``[N, n_features]`` and lead shape."""
        n = self.config.n_features
        if y.shape[-1] == n:
            lead = y.shape[:-1]
        elif y.ndim >= 2 and y.shape[-2] * y.shape[-1] == n:
            lead = y.shape[:-2]
        else:
            raise ValueError(f"VAE expects frames with {n} features, got shape {tuple(y.shape)}")
        return y.reshape(-1, n), lead

    def encode(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z|y)``: ``(mu, logvar)`` of shape ``[..., latent]`` for frames ``[..., n_features]``."""
        flat, lead = self._flat(y)
        h = self.encoder(flat)
        return self.mu(h).reshape(*lead, -1), self.logvar(h).reshape(*lead, -1)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Pre-Sigmoid decoder output ``[..., n_features]``."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``p(y|z)``: frames ``[..., n_features]`` in [0, 1] (the PGM)."""
        return torch.sigmoid(self.decoder(z))

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """``z = mu + eps * exp(logvar / 2)`` in training mode, ``mu`` in eval mode."""
        if not self.training:
            return mu
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)

    def forward(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruct ``y``: returns ``(y_hat, mu, logvar)``; ``y_hat`` has ``y``'s flat shape."""
        mu, logvar = self.encode(y)
        return self.decode(self.reparameterize(mu, logvar)), mu, logvar

    def loss(self, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. 2 on frames ``y`` in [0, 1]: ``{"total", "recon", "kl"}`` (``kl`` unweighted)."""
        flat, _ = self._flat(y)
        mu, logvar = self.encode(flat)
        logits = self.decode_logits(self.reparameterize(mu, logvar))
        return vae_loss(logits, flat, mu, logvar, self.config.loss, self.config.kl_weight)


def vae_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    loss: str = "bce",
    kl_weight: float = 1e-4,
) -> dict[str, torch.Tensor]:
    """Eq. 2 from decoder logits: recon (BCE of Eq. 7 or MSE, mean over elements) + weighted KL."""
    logits, target = logits.float(), target.float()
    if loss == "bce":
        lo, hi = float(target.min()), float(target.max())
        if lo < 0 or hi > 1:
            raise ValueError(f"BCE pose loss needs targets in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
        recon = F.binary_cross_entropy_with_logits(logits, target)
    elif loss == "mse":
        recon = F.mse_loss(torch.sigmoid(logits), target)
    else:
        raise ParamsError(f"vae.loss={loss!r} is invalid; expected one of {LOSSES}")
    mu, logvar = mu.float(), logvar.float()
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(dim=-1)).mean()
    return {"total": recon + kl_weight * kl, "recon": recon, "kl": kl}


def load_vae(directory: str | Path, map_location: str | torch.device = "cpu") -> VAE:
    """Load a VAE saved with :func:`pipeline.models.io.save_model`: eval mode, every parameter frozen."""
    return load_model(VAE, VAEConfig, directory, "VAE", map_location)
