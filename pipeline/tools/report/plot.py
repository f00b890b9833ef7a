"""``report.png``: the student's FGD†, DurACC and BLEU-4 per variant beside the paper's, and Table 2."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from pipeline.evaluation.tables import x10
from pipeline.tools.report.experiment_tables import SPLITS, paper_span, profiles_of, span_keys_of, value_of
from pipeline.tools.report.paper import (
    PAPER_T2_COLS,
    PAPER_TABLE1,
    PAPER_TABLE2,
    PAPER_TABLE3A,
    PAPER_TABLE3B,
)
from pipeline.tools.report.runs import ExpRun


def plot(runs: list[ExpRun], path: Path, split: str = "test") -> None:
    """``report.png``: FGD†, DurACC, BLEU-4/ROUGE bars per variant (paper hatched) and Table 2 lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paper_t3 = {
        "full": PAPER_TABLE3A["L_pose + L_length + L_distil (w/ KD)"],
        "w/o KD": PAPER_TABLE3A["L_pose + L_length (w/o KD)"],
        "w/o BERT": PAPER_TABLE3B["w/o BERT"],
    }
    paper_t1 = {"full": PAPER_TABLE1["Ours (w/ KD)"][split], "w/o KD": PAPER_TABLE1["Ours (w/o KD)"][split]}
    si = SPLITS.index(split)
    labels = [f"{r.variant}\n[{r.profile}]" if len(profiles_of(runs)) > 1 else r.variant for r in runs]
    x = list(range(len(runs)))
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))

    def bars(ax: Any, ours: list[float | None], paper: list[float | None], title: str) -> None:
        w = 0.38
        ax.bar([i - w / 2 for i in x], [math.nan if v is None else v for v in ours], w, label="ours")
        ax.bar(
            [i + w / 2 for i in x],
            [math.nan if v is None else v for v in paper],
            w,
            label="paper (PHOENIX-2014T)",
            hatch="//",
            fill=False,
        )
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7)

    bars(
        axes[0, 0],
        [value_of(r, split, "student", "fgd_pooled_x10") for r in runs],
        [paper_t3[r.variant][2 * si] if r.variant in paper_t3 else None for r in runs],
        f"FGD† pooled ({split}; lower is better; paper: Tables 3a/3b)",
    )
    bars(
        axes[0, 1],
        [r.get(split, "student", "duracc") for r in runs],
        [paper_t3[r.variant][2 * si + 1] if r.variant in paper_t3 else None for r in runs],
        f"DurACC ({split}; higher is better; paper: Tables 3a/3b)",
    )
    bars(
        axes[1, 0],
        [r.get(split, "student", "bleu4") for r in runs],
        [paper_t1[r.variant][4] if r.variant in paper_t1 else None for r in runs],
        f"BLEU-4 ({split}; higher is better; paper: Table 1)",
    )
    ax = axes[1, 1]
    keys = [k for k in span_keys_of(runs, split) if k.startswith("fgd_pooled_len")]
    xs = [int(re.findall(r"\d+", k)[1]) for k in keys]
    for r, label in zip(runs, labels, strict=True):
        ax.plot(
            xs,
            [x10(value_of(r, split, "student", k)) or math.nan for k in keys],
            marker="o",
            label=f"ours: {label.replace(chr(10), ' ')}",
        )
    for name, vals in PAPER_TABLE2.items():
        by_key = dict(zip(PAPER_T2_COLS, vals, strict=True))
        ys = [by_key.get(paper_span(k), math.nan) for k in keys]
        ax.plot(xs, ys, linestyle="--", marker="x", label=f"paper: {name}")
    ax.set_xlabel("reference length (frames, interval upper bound)")
    ax.set_title(f"FGD† pooled by length interval ({split}; paper: Table 2)", fontsize=10)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
