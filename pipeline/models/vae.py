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

Feature space (``features``): with ``"absolute"`` (the paper) the network reads and reconstructs
the absolute [0, 1] pose itself. With ``"local"`` (our documented improvement, issue 13) an
invertible :class:`FeatureMap` fitted on the train frames sits inside the VAE: every hand joint is
expressed relative to its hand's wrist (the hand wrist relative to the body wrist), every face
point relative to the body nose, the 8 body joints stay absolute, and each of these coordinates
is min-max scaled to [0, 1] over the train frames (range widened by :data:`FEATURE_MARGIN` per
side; values outside are clipped). The encoder reads those features, the decoder's Sigmoid
outputs them and the BCE of Eq. 7 is computed on them, so the small hands of the global frame get
the full [0, 1] resolution; ``encode``/``decode`` still take and return absolute poses, so every
caller (student losses, inference, evaluation) is unchanged. The fitted ranges are buffers of the
model, saved and loaded with its weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import ParamsError, check_fields, param
from pipeline.data.skeleton import MANUAL, part_slices
from pipeline.models.io import load_model

LOSSES = ("bce", "mse")
FEATURES = ("absolute", "local")
FEATURE_MARGIN = 0.05  # local features: the train range of each coordinate widened by 5 % per side


@dataclass
class VAEConfig:
    """Hyper-parameters of :class:`VAE`: the params section ``vae`` (``n_features`` = J * 3 comes
    from the data)."""

    n_features: int = param(150, gt=0, derived=True)  # J * 3 (50 manual joints x [x, y, z])
    hidden: list[int] = param([256, 128])  # encoder widths; decoder mirrors
    latent: int = param(32, gt=0)
    kl_weight: float = param(1e-4, ge=0)  # lambda of Eq. 2
    loss: Literal["bce", "mse"] = "bce"  # "bce" (Eq. 7) | "mse"
    # "absolute" = the paper (and every model saved before the option); "local" = FeatureMap
    features: Literal["absolute", "local"] = "absolute"

    def __post_init__(self) -> None:
        check_fields(self, "vae")
        if len(self.hidden) != 2 or min(self.hidden) <= 0:
            raise ParamsError(f"vae.hidden={self.hidden!r} is invalid; expected two positive widths")
        if self.features == "local":
            local_anchors(self.n_features // 3 if self.n_features % 3 == 0 else -1)


def local_anchors(n_joints: int) -> list[int]:
    """Anchor joint of every joint of the manual(+face) layout for ``features: local`` (-1 = absolute):
    body joints absolute, each hand's wrist relative to the body wrist of its side, finger joints
    relative to their hand's wrist, face points relative to the body nose."""
    parts = part_slices(n_joints) if n_joints > 0 else {}
    if n_joints not in (50, 120) or sum(s.stop - s.start for s in parts.values()) != n_joints:
        raise ParamsError(
            f"vae.features='local' needs the 50- or 120-joint manual layout, got {n_joints} joints"
        )
    anchors = [-1] * n_joints
    for side, hand in (("l", "left_hand"), ("r", "right_hand")):
        wrist = parts[hand].start
        anchors[wrist] = MANUAL[f"body_{side}_wrist"]
        for j in range(wrist + 1, parts[hand].stop):
            anchors[j] = wrist
    if "face" in parts:
        for j in range(parts["face"].start, parts["face"].stop):
            anchors[j] = MANUAL["body_nose"]
    return anchors


class FeatureMap(nn.Module):
    """Invertible map absolute pose ``[N, 3J]`` <-> local features ``[N, 3J]`` (``features: local``).

    ``forward``: ``((R y) - offset) / scale`` where ``R`` subtracts each joint's anchor
    (:func:`local_anchors`, per channel); ``inverse``: ``A (f * scale + offset)`` with
    ``A = R^-1`` (each joint plus the sum of its anchor chain). ``offset``/``scale`` are fitted on
    train frames by :meth:`fit` and are persistent buffers (saved with the VAE's weights); ``R``
    and ``A`` follow from the layout. Computed in float32 outside autocast (bf16 would cost the
    fingers their precision).
    """

    def __init__(self, n_features: int) -> None:
        super().__init__()
        n_joints = n_features // 3
        anchors = local_anchors(n_joints)
        rel = torch.eye(n_joints)
        for j, a in enumerate(anchors):
            if a >= 0:
                rel[j, a] = -1.0
        acc = torch.zeros(n_joints, n_joints)  # A: joint j = sum of the local values on its chain
        for j in range(n_joints):
            k = j
            while k >= 0:
                acc[j, k] = 1.0
                k = anchors[k]
        self.register_buffer("rel", rel, persistent=False)
        self.register_buffer("acc", acc, persistent=False)
        self.register_buffer("offset", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    def local(self, y: torch.Tensor) -> torch.Tensor:
        """Anchor-relative coordinates ``[N, 3J]`` (not scaled) of absolute frames ``[N, 3J]``."""
        y3 = y.float().reshape(len(y), -1, 3)
        return torch.einsum("kj,njc->nkc", self.rel, y3).reshape(len(y), -1)

    @torch.no_grad()
    def fit(self, frames: torch.Tensor, margin: float = FEATURE_MARGIN) -> None:
        """Min-max range of every local coordinate over ``frames`` (train), widened by ``margin``."""
        loc = self.local(frames.to(self.rel.device))
        lo, hi = loc.min(0).values, loc.max(0).values
        width = (hi - lo).clamp_min(1e-4)
        self.offset.copy_(lo - margin * width)
        self.scale.copy_(width * (1 + 2 * margin))

    def forward(self, y: torch.Tensor, clip: bool = True) -> torch.Tensor:
        """Features of absolute frames ``[N, 3J]``; clipped to [0, 1] unless ``clip`` is False."""
        with torch.autocast(y.device.type, enabled=False):
            f = (self.local(y) - self.offset) / self.scale
            return f.clamp(0.0, 1.0) if clip else f

    def inverse(self, f: torch.Tensor) -> torch.Tensor:
        """Absolute frames ``[N, 3J]`` of features ``[N, 3J]``."""
        with torch.autocast(f.device.type, enabled=False):
            loc = (f.float() * self.scale + self.offset).reshape(len(f), -1, 3)
            return torch.einsum("kj,njc->nkc", self.acc, loc).reshape(len(f), -1)


class VAE(nn.Module):
    """Frame VAE: ``encode(y) -> (mu, logvar)``, ``decode(z) -> y`` (absolute poses in [0, 1]; with
    ``features: local`` the decoded pose may leave [0, 1] by up to the feature margin)."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        # features: local -> the fitted map (call fit_features before training); absolute -> None
        self.feature_map = FeatureMap(config.n_features) if config.features == "local" else None
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

    def fit_features(self, frames: torch.Tensor) -> None:
        """Fit the feature map's ranges on train frames ``[N, n_features]`` (no-op for ``absolute``)."""
        if self.feature_map is not None:
            self.feature_map.fit(self._flat(frames)[0])

    def features(self, y: torch.Tensor) -> torch.Tensor:
        """The network's input/target space ``[N, n_features]`` for frames: the frames themselves
        (``absolute``) or the clipped local features (``local``)."""
        flat, _ = self._flat(y)
        return flat if self.feature_map is None else self.feature_map(flat)

    def encode(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z|y)``: ``(mu, logvar)`` of shape ``[..., latent]`` for frames ``[..., n_features]``."""
        _, lead = self._flat(y)
        h = self.encoder(self.features(y))
        return self.mu(h).reshape(*lead, -1), self.logvar(h).reshape(*lead, -1)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Pre-Sigmoid decoder output ``[..., n_features]`` (in feature space)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """``p(y|z)``: absolute frames ``[..., n_features]`` (the PGM)."""
        out = torch.sigmoid(self.decoder(z))
        if self.feature_map is None:
            return out
        return self.feature_map.inverse(out.reshape(-1, out.shape[-1])).reshape(out.shape)

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
        """Eq. 2 on frames ``y`` in [0, 1]: ``{"total", "recon", "kl"}`` (``kl`` unweighted); the
        reconstruction term is computed in the feature space (:meth:`features`)."""
        target = self.features(y)
        h = self.encoder(target)
        mu, logvar = self.mu(h), self.logvar(h)
        logits = self.decode_logits(self.reparameterize(mu, logvar))
        return vae_loss(logits, target, mu, logvar, self.config.loss, self.config.kl_weight)


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
