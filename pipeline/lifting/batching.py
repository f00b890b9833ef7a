"""Batches of sequences of similar length, for the batched liftings."""

from __future__ import annotations

import numpy as np
import torch


def length_batches(lengths: list[int], batch_frames: int) -> list[list[int]]:
    """Indices grouped into batches of similar length with at most ``batch_frames`` padded frames
    (a longer sequence gets a batch of its own)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, i = [], 0
    while i < len(order):
        j = i + 1
        while j < len(order) and (j - i + 1) * lengths[order[j]] <= batch_frames:
            j += 1
        batches.append(order[i:j])
        i = j
    return batches


def pad_batch(
    arrays: list[np.ndarray],
    T: int,
    dtype: torch.dtype,
    device: torch.device | None = None,
    fill: float = 0.0,
) -> torch.Tensor:
    """Sequences ``[T_i, ...]`` as one tensor ``[B, T, ...]``, padded with ``fill`` after their end."""
    out = np.full((len(arrays), T, *arrays[0].shape[1:]), fill, dtype=np.float64)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return torch.as_tensor(out, dtype=dtype, device=device)
