"""Building blocks shared by the models."""

from __future__ import annotations

import math

import torch


def sinusoidal_encoding(length: int, dim: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``[length, dim]`` sine/cosine positional encodings (Vaswani et al. 2017)."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : dim // 2]
    return pe
