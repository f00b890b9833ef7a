"""Per-channel affine map of coordinates into [0, 1], fitted on the train split, exactly invertible.

``v = (u - low) / (high - low)`` per channel (x, y[, z]); ``low``/``high`` are the train split's
extremes widened by a relative margin so dev/test rarely leave [0, 1]. ``inverse`` undoes
``forward`` exactly (up to float rounding). Stages that need strict [0, 1] values (the VAE's
BCE) clip after ``forward`` and count the clipped values in their metrics.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass
class UnitRange:
    """Affine per-channel map ``u -> (u - low) / (high - low)``."""

    low: list[float]
    high: list[float]

    def __post_init__(self) -> None:
        if len(self.low) != len(self.high):
            raise ValueError(f"low has {len(self.low)} channels, high {len(self.high)}")
        bad = [i for i, (lo, hi) in enumerate(zip(self.low, self.high, strict=True)) if not hi > lo]
        if bad:
            raise ValueError(f"UnitRange: channel(s) {bad} have high <= low ({self.low}, {self.high})")

    @classmethod
    def fit(cls, u: np.ndarray, margin: float = 0.05, mask: np.ndarray | None = None) -> UnitRange:
        """Fit on ``u`` [..., C] (optionally only where ``mask`` [...] is true); widen by ``margin``."""
        flat = u.reshape(-1, u.shape[-1])
        if mask is not None:
            flat = flat[mask.reshape(-1)]
        flat = flat[np.isfinite(flat).all(axis=1)]
        if len(flat) == 0:
            raise ValueError("UnitRange.fit: no finite values to fit on")
        lo, hi = flat.min(axis=0).astype(np.float64), flat.max(axis=0).astype(np.float64)
        pad = np.maximum((hi - lo) * margin, 1e-6)
        return cls((lo - pad).tolist(), (hi + pad).tolist())

    def forward(self, u: np.ndarray) -> np.ndarray:
        """Map ``u`` [..., C] into the unit range."""
        lo, hi = np.asarray(self.low), np.asarray(self.high)
        return ((u - lo) / (hi - lo)).astype(u.dtype, copy=False)

    def inverse(self, v: np.ndarray) -> np.ndarray:
        """Exact inverse of :meth:`forward`."""
        lo, hi = np.asarray(self.low), np.asarray(self.high)
        return (v * (hi - lo) + lo).astype(v.dtype, copy=False)

    def save(self, path: str | Path) -> None:
        """Write as JSON."""
        Path(path).write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> UnitRange:
        """Read a JSON written by :meth:`save`."""
        data = json.loads(Path(path).read_text())
        return cls(data["low"], data["high"])
