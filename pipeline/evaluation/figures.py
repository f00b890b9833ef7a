"""The evaluate stage's figures: Figure 3 (poses side by side) and Figure 4 (FGD vs frame length).

- :func:`figure3`: for a few dev sentences, one row per system (ground truth, student, optionally
  a second student such as the w/o-KD ablation) of ``n_frames`` skeletons sampled evenly over each
  sequence (:func:`pipeline.evaluation.render.strip`), stacked into one PNG; plus a GIF of the
  first sentence with the systems side by side (:func:`pipeline.evaluation.render.side_by_side`).
- :func:`figure4`: FGD† (x10) of every system by reference-length interval (the data of
  ``metrics/fgd_intervals.csv``; intervals without sentences are left out) and over the first N
  frames (Table 2), as a PNG (matplotlib Agg; symmetric-log y axis, linear below 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.evaluation import render
from pipeline.evaluation.tables import SYSTEM_LABELS


def pick_samples(lengths: list[int], n: int) -> list[int]:
    """``n`` indices spread over the split's length range (shortest, ..., longest; deterministic)."""
    if n <= 0 or not lengths:
        return []
    order = np.argsort(np.asarray(lengths), kind="stable")
    pos = np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int)
    return [int(order[p]) for p in dict.fromkeys(pos.tolist())]


def figure3(
    samples: list[tuple[str, dict[str, np.ndarray]]],
    png: str | Path,
    gif: str | Path | None = None,
    n_frames: int = 6,
    fps: float = 25.0,
) -> list[Path]:
    """Write the strip PNG (and the GIF of the 1st sample); ``samples`` = ``[(text, {label: [T, J, 3]})]``."""
    if not samples:
        raise ValueError("figure3: no samples")
    blocks = [render.strip(systems, n_frames, size=160, title=text) for text, systems in samples]
    width = max(b.shape[1] for b in blocks)
    gap = np.full((6, width, 3), 200, np.uint8)
    parts = []
    for b in blocks:
        pad = np.full((b.shape[0], width - b.shape[1], 3), 255, np.uint8)
        parts += [np.concatenate([b, pad], axis=1), gap]
    written = [render.write_png(png, np.concatenate(parts[:-1], axis=0))]
    if gif is not None:
        frames = render.side_by_side(samples[0][1], width=160, height=160)
        written.append(render.write_gif(gif, frames, fps))
    return written


def figure4(
    result: dict[str, Any],
    split: str,
    systems: list[str],
    intervals: list[list[int]],
    prefixes: list[int],
    png: str | Path,
) -> Path:
    """FGD† per system of ``split`` by reference-length interval and over the first N frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.4), dpi=100)
    markers = {"gt": "o", "mean": "s", "random": "^", "student": "D"}
    for s in systems:
        m, label = result[split][s], SYSTEM_LABELS.get(s, s)
        keys = [(k, f"fgd_len_{lo}_{hi}") for k, (lo, hi) in enumerate(intervals)]
        xs, ys = [k for k, key in keys if key in m], [10 * m[key] for _, key in keys if key in m]
        axes[0].plot(xs, ys, marker=markers.get(s, "o"), label=label)
        xs = [n for n in prefixes if f"fgd_first_{n}" in m]
        axes[1].plot(xs, [10 * m[f"fgd_first_{n}"] for n in xs], marker=markers.get(s, "o"), label=label)
    axes[0].set_xticks(range(len(intervals)))
    axes[0].set_xticklabels([f"{lo}-{hi}" for lo, hi in intervals])
    axes[0].set_xlabel("reference length (frames)")
    axes[1].set_xlabel("first N frames")
    for ax, title in zip(axes, ("FGD† by reference length", "FGD† over the first N frames"), strict=True):
        ax.set_ylabel("FGD† (x10, symlog)")
        ax.set_yscale("symlog", linthresh=1.0)  # Mean's large FGD would flatten the other systems
        ax.set_ylim(bottom=0)
        ax.set_title(f"{title} ({split})", fontsize=10)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
    return Path(png)
