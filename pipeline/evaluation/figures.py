"""The evaluate stage's figures: Figure 3 (poses side by side) and Figure 4 (FGD vs frame length).

- :func:`figure3`: for a few dev sentences, one row per system (ground truth, the systems of
  ``evaluate.figure_systems`` - by default PT FP&GN, NSLP-G base (+ft) and the student, the rows
  of the paper's Figure 3 - optionally a second student such as the w/o-KD ablation) of
  ``n_frames`` skeletons of 320 x 320 px
  (:data:`pipeline.evaluation.render.CELL`) sampled evenly over each sequence
  (:func:`pipeline.evaluation.render.strip`), stacked into one PNG under a colour legend; plus a
  GIF of the first sentence with the systems side by side
  (:func:`pipeline.evaluation.render.side_by_side`).
- :func:`figure4`: FGD† (x10) of every system by reference-length interval (the data of
  ``metrics/fgd_intervals.csv``; intervals without sentences are left out) and over the first N
  frames (Table 2), as a PNG (matplotlib Agg; symmetric-log y axis, linear below 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.evaluation import render
from pipeline.evaluation.tables import system_label


def pick_samples(lengths: list[int], n: int) -> list[int]:
    """``n`` indices spread over the split's length range (shortest, ..., longest; deterministic)."""
    if n <= 0 or not lengths:
        return []
    order = np.argsort(np.asarray(lengths), kind="stable")
    pos = np.linspace(0, len(order) - 1, min(n, len(order))).round().astype(int)
    return [int(order[p]) for p in dict.fromkeys(pos.tolist())]


GAP = 6  # px of the grey rule between two samples of Figure 3
LEGEND = (
    "body: blue-grey  |  signer's left hand: green  |  right hand: red  |  face: grey  |  "
    "shaded: torso guide (drawn from the shoulders, not predicted)"
)


def figure3(
    samples: list[tuple[str, dict[str, np.ndarray]]],
    png: str | Path,
    gif: str | Path | None = None,
    n_frames: int = 6,
    fps: float = 25.0,
) -> list[Path]:
    """Write the strip PNG (and the GIF of the 1st sample); ``samples`` = ``[(text, {label: [T, J, 3]})]``.

    PNG: a legend band, then per sample a title band (the text) and one row per system of
    ``n_frames`` cells of :data:`render.CELL` px, samples separated by :data:`GAP` px grey rules;
    height ``TITLE_HEIGHT * (1 + n_samples) + CELL * total rows + GAP * (n_samples - 1)``, width
    ``CELL * n_frames``. GIF: the 1st sample's systems side by side, one ``CELL`` px panel each,
    ``max(len)`` frames (shorter sequences hold their last pose).
    """
    if not samples:
        raise ValueError("figure3: no samples")
    cell = render.CELL
    blocks = [render.strip(systems, n_frames, size=cell, title=text) for text, systems in samples]
    width = max(b.shape[1] for b in blocks)
    gap = np.full((GAP, width, 3), 200, np.uint8)
    parts = [render.title_band(LEGEND, width)]
    for b in blocks:
        pad = np.full((b.shape[0], width - b.shape[1], 3), 255, np.uint8)
        parts += [np.concatenate([b, pad], axis=1), gap]
    written = [render.write_png(png, np.concatenate(parts[:-1], axis=0))]
    if gif is not None:
        frames = render.side_by_side(samples[0][1], width=cell, height=cell)
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
    """FGD† per system of ``split``: by reference-length interval, by time segment (pooled reading
    solid, paired dashed) and over the first N frames (pooled)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6), dpi=100)
    markers = {"gt": "o", "mean": "s", "random_per_sentence": "^", "random_single": "v", "student": "D"}
    others = "PXh*<>pd+x"  # the baselines and any other system, in order
    for k, s in enumerate(systems):
        m, label, colour = result[split][s], system_label(s), f"C{k % 10}"
        style = {"marker": markers.get(s, others[k % len(others)]), "color": colour}
        for ax, form in zip(axes[:2], ("len", "seg"), strict=True):
            for reading, ls in (("pooled", "-"), ("paired", "--")):
                keys = [(i, f"fgd_{reading}_{form}_{lo}_{hi}") for i, (lo, hi) in enumerate(intervals)]
                xs = [i for i, key in keys if key in m]
                ys = [10 * m[key] for _, key in keys if key in m]
                ax.plot(xs, ys, ls=ls, label=f"{label} ({reading})" if form == "len" else None, **style)
        xs = [n for n in prefixes if f"fgd_pooled_first_{n}" in m]
        axes[2].plot(xs, [10 * m[f"fgd_pooled_first_{n}"] for n in xs], **style)
    for ax in axes[:2]:
        ax.set_xticks(range(len(intervals)))
        ax.set_xticklabels([f"{lo}-{hi}" for lo, hi in intervals])
    axes[0].set_xlabel("reference length (frames)")
    axes[1].set_xlabel("frames of every sequence")
    axes[2].set_xlabel("first N frames")
    titles = ("by reference length", "by time segment", "over the first N frames")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_ylabel("FGD† (x10, symlog)")
        ax.set_yscale("symlog", linthresh=1.0)  # Mean's large FGD would flatten the other systems
        ax.set_ylim(bottom=0)
        ax.set_title(f"FGD† {title} ({split})", fontsize=10)
        ax.grid(alpha=0.3)
    fig.legend(fontsize=7, loc="center left", bbox_to_anchor=(0.86, 0.5))
    fig.tight_layout(rect=(0, 0, 0.86, 1))
    fig.savefig(png)
    plt.close(fig)
    return Path(png)
