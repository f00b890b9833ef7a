"""Tables of evaluation results: which metrics, their labels and formats, and markdown/CSV output.

Shared by the ``evaluate`` stage (``metrics/eval_table.md``, the FGD-by-length plot data) and the
experiment report (:mod:`pipeline.tools.report`), so both show the same metrics the same way.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# (metric key as in metrics/eval.json, column header, decimals)
Metric = tuple[str, str, int]
FGD_POOLED: Metric = ("fgd_pooled_x10", "FGD† pooled", 3)  # NSLP-G's reading: one Gaussian per split
FGD_PAIRED: Metric = ("fgd_paired_x10", "FGD† paired", 3)  # each sequence vs its own reference
FGD_X10 = (FGD_POOLED, FGD_PAIRED)
TEXT_METRICS: tuple[Metric, ...] = (
    ("bleu1", "BLEU-1", 2),
    ("bleu2", "BLEU-2", 2),
    ("bleu3", "BLEU-3", 2),
    ("bleu4", "BLEU-4", 2),
    ("rouge", "ROUGE", 2),
)
GLOSS_WER: Metric = ("gloss_wer", "gloss WER", 2)
DTW_MJE: Metric = ("dtw_mje", "DTW-MJE", 4)
DURACC: Metric = ("duracc", "DurACC", 3)
TABLE1_METRICS = (*FGD_X10, *TEXT_METRICS)  # the paper's Table 1 (FGD in both readings)
EVAL_METRICS = (*TABLE1_METRICS, GLOSS_WER, DTW_MJE, DURACC)  # the evaluate stage's table
TABLE3_METRICS = (*FGD_X10, DURACC)  # the paper's Table 3
ABLATION_METRICS = (*FGD_X10, TEXT_METRICS[3], TEXT_METRICS[4], DURACC)
REALISM_PARTS = ("body", "left_hand", "right_hand", "face")

SYSTEM_LABELS = {
    "gt": "GT",
    "mean": "Mean",
    "random_per_sentence": "Random (per sentence)",
    "random_single": "Random (one sequence)",
    "student": "Ours (student)",
    "pt_base": "PT base",
    "pt_fp": "PT FP",
    "pt_gn": "PT GN",
    "pt_fpgn": "PT FP&GN",
    "nslpg_base": "NSLP-G base",
    "nslpg_gs": "NSLP-G GS",
    "nslpg_base_ft": "NSLP-G base (+ft)",
    "nslpg_gs_ft": "NSLP-G GS (+ft)",
}
FAMILY_LABELS = {"pt": "PT", "nslpg": "NSLP-G"}
ORACLE_MARK = " [oracle T]"  # a system given the reference lengths (NSLP-G): DurACC 1 by construction
# Older runs logged the pooled reading as ``fgd``/``fgd_x10`` and the per-sentence Random as ``random``.
LEGACY_KEYS = {"fgd_pooled_x10": "fgd_x10", "fgd_pooled": "fgd"}
LEGACY_SYSTEMS = {"random_per_sentence": "random"}


def system_label(system: str) -> str:
    """The table label of a system: :data:`SYSTEM_LABELS`, else ``PT <variant>`` / ``NSLP-G <variant>``
    (``_ft`` -> `` (+ft)``) for other baseline variants, else the name itself."""
    if system in SYSTEM_LABELS:
        return SYSTEM_LABELS[system]
    family, _, variant = system.partition("_")
    if family in FAMILY_LABELS and variant:
        ft = " (+ft)" if variant.endswith("_ft") else ""
        return f"{FAMILY_LABELS[family]} {variant.removesuffix('_ft')}{ft}"
    return system


def x10(v: float | None) -> float | None:
    """FGD -> FGD† (x 10, the paper's scale)."""
    return None if v is None else 10.0 * v


SPAN_RE = re.compile(r"^fgd_(pooled|paired)_(len|seg|first)_(\d+)(?:_(\d+))?$")


def span_keys(intervals: list[list[int]], prefixes: list[int]) -> list[str]:
    """Metric keys of Table 2: by reference length and by time segment (pooled, then paired), then
    pooled over the first N frames."""
    keys = []
    for form in ("len", "seg"):
        for reading in ("pooled", "paired"):
            keys += [f"fgd_{reading}_{form}_{lo}_{hi}" for lo, hi in intervals]
    return keys + [f"fgd_pooled_first_{n}" for n in prefixes]


def span_header(key: str) -> str:
    """``fgd_pooled_len_0_50`` -> ``len 0–50 pooled``; ``fgd_paired_seg_0_50`` -> ``seg 0–50 paired``;
    ``fgd_pooled_first_20`` -> ``first 20``."""
    m = SPAN_RE.match(key)
    if m is None:
        raise ValueError(f"not a Table-2 key: {key!r}")
    reading, form, lo, hi = m.groups()
    return f"first {lo}" if form == "first" else f"{form} {lo}–{hi} {reading}"


@dataclass
class Table:
    """A rendered table: title, notes, header and rows (cells: str or float/None)."""

    name: str
    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)
    digits: dict[str, int] = field(default_factory=dict)

    def markdown(self) -> str:
        """The table as a GitHub markdown section."""
        lines = [f"## {self.title}", ""]
        for note in self.notes:
            lines += [note, ""]
        if not self.rows:
            return "\n".join([*lines, "_(no runs for this table)_", ""])
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join("---:" if c in self.digits else "---" for c in self.columns) + "|")
        for row in self.rows:
            cells = [
                fmt(v, self.digits.get(c, 3)) if c in self.digits else str(v)
                for c, v in zip(self.columns, row, strict=True)
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join([*lines, ""])

    def write(self, out: Path) -> None:
        """``<out>/<name>.md`` and ``<out>/<name>.csv`` (empty cell = no value)."""
        (out / f"{self.name}.md").write_text(self.markdown())
        with (out / f"{self.name}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(self.columns)
            for row in self.rows:
                w.writerow(
                    ["" if v is None else (repr(float(v)) if isinstance(v, float) else v) for v in row]
                )


def fmt(v: Any, digits: int) -> str:
    """``v`` with ``digits`` decimals; ``–`` for no value (None, NaN, inf)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{float(v):.{digits}f}"


HEADLINE = ("fgd_pooled_x10", "fgd_paired_x10", "bleu4", "rouge", "dtw_mje", "duracc")


def headline_metrics(
    result: dict[str, Any], splits: list[str], systems: list[str]
) -> dict[str, dict[str, float]]:
    """``{"<split>_<system>": {key: value}}`` for the keys of :data:`HEADLINE` (FGD† in both readings,
    BLEU-4, ROUGE, DTW-MJE, DurACC), rounded to 4 decimals: the files of ``metrics/headline/``,
    the only DVC metrics (one small file per split and system keeps ``dvc metrics show`` to six
    columns, one row per file). A key a system lacks is left out."""
    out: dict[str, dict[str, float]] = {}
    for split in splits:
        for system in systems:
            scores = result.get(split, {}).get(system, {})
            out[f"{split}_{system}"] = {k: round(float(scores[k]), 4) for k in HEADLINE if k in scores}
    return out


def headline_table(headline: dict[str, dict[str, float]], split: str, systems: list[str]) -> str:
    """The headline metrics of one split as a plain-text table (what ``evaluate`` prints)."""
    cols = [("FGD† pool", "fgd_pooled_x10", "{:.2f}"), ("FGD† pair", "fgd_paired_x10", "{:.2f}")]
    cols += [("BLEU-4", "bleu4", "{:.2f}"), ("ROUGE", "rouge", "{:.2f}"), ("DTW-MJE", "dtw_mje", "{:.4f}")]
    cols += [("DurACC", "duracc", "{:.3f}")]
    labels = {s: system_label(s) for s in systems}
    width = max(len(v) for v in labels.values())
    lines = [f"{split.upper():<{width}}  " + "  ".join(f"{c[0]:>9}" for c in cols)]
    for s in systems:
        m = headline.get(f"{split}_{s}", {})
        cells = ("–" if c[1] not in m else c[2].format(m[c[1]]) for c in cols)
        lines.append(f"{labels[s]:<{width}}  " + "  ".join(f"{v:>9}" for v in cells))
    return "\n".join(lines)


def eval_table(
    result: dict[str, Any], splits: list[str], systems: list[str], spans: list[str], margin: float
) -> str:
    """Markdown of the ``evaluate`` stage: per split Table 1's metrics + gloss WER, DTW-MJE and
    DurACC; Table 2 (FGD† by reference length, by time segment, over the first N frames); the
    realism statistics (bone-length and motion ratios, DTW-MJE per part). Oracle-length systems
    (``oracle_length`` in their metrics) are labelled :data:`ORACLE_MARK`."""
    head = [
        "# Evaluation (generated by `python -m pipeline.stages.evaluate`, stage `evaluate`)",
        "",
        "FGD† = FGD x 10 (as the paper's tables), in two readings: *pooled* (NSLP-G's: one Gaussian "
        "over all windows of the split) and *paired* (each sequence against its own reference, "
        "averaged over sentences); see docs/ARCHITECTURE.md#evaluate. BLEU-n = cumulative corpus "
        "BLEU of order n (sacrebleu), ROUGE = mean sentence ROUGE-L F1, gloss WER of the "
        "back-translator's CTC head, all x 100. DTW-MJE in lifted [0, 1] units (manual joints). "
        f"DurACC = share of sentences with |T_hat - T| < {margin:g} frames.",
        "",
    ]
    oracle = {s for split in splits for s in systems if result[split][s].get("oracle_length")}
    if oracle:
        head[2] += (
            f" {ORACLE_MARK.strip()}: the system is given the reference length (NSLP-G's protocol), so "
            "its DurACC (1) and length error (0) hold by construction."
        )

    def label(s: str) -> str:
        return system_label(s) + (ORACLE_MARK if s in oracle else "")

    tables = []
    for split in splits:
        r = result[split]
        rows = [[label(s), *(r[s].get(k) for k, _, _ in EVAL_METRICS)] for s in systems]
        columns = ["System", *(h for _, h, _ in EVAL_METRICS)]
        digits = {h: d for _, h, d in EVAL_METRICS}
        tables.append(Table(split, f"{split.upper()} ({r['n']} sentences)", columns, rows, digits=digits))
    groups = {
        "len": "by reference length (sentences grouped)",
        "seg": "by time segment (frames lo–hi of every sequence)",
        "first": "over the first N frames (pooled)",
    }
    for split in splits:
        r = result[split]
        for form, title in groups.items():
            keys = [k for k in spans if (m := SPAN_RE.match(k)) is not None and m.group(2) == form]
            if not keys:
                continue
            rows = [[label(s), *(x10(r[s].get(k)) for k in keys)] for s in systems]
            columns = ["System", *(span_header(k) for k in keys)]
            tables.append(
                Table(
                    f"{split}_{form}",
                    f"Table 2: FGD† {title} ({split})",
                    columns,
                    rows,
                    digits=dict.fromkeys(columns[1:], 3),
                )
            )
    for split in splits:
        r = result[split]
        parts = [p for p in REALISM_PARTS if any(p in r[s].get("realism", {}) for s in systems)]
        columns = ["System"]
        columns += [f"{p} {k}" for p in parts for k in ("bones", "motion", "DTW")]
        rows = []
        for s in systems:
            real = r[s].get("realism", {})
            row: list[Any] = [label(s)]
            for p in parts:
                ratios = real.get(p, {})
                row += [ratios.get("bone_ratio"), ratios.get("motion_ratio"), r[s].get(f"dtw_mje_{p}")]
            rows.append(row)
        notes = [
            "bones = mean bone length / the references'; motion = SD of the frame-to-frame "
            "displacement / the references' (1 = as real signing, < 1 = shrunk or damped; "
            "body-centred units); DTW = mean joint error of the part along the manual-joint DTW path "
            "(lifted [0, 1] units)."
        ]
        digits = dict.fromkeys(columns[1:], 3)
        tables.append(
            Table(f"{split}_realism", f"Realism per body part ({split})", columns, rows, notes, digits)
        )
    return "\n".join(head) + "\n" + "\n".join(t.markdown() for t in tables)


def fgd_interval_rows(
    result: dict[str, Any], split: str, systems: list[str], intervals: list[list[int]]
) -> list[dict[str, Any]]:
    """Rows of the FGD-by-length plot (``metrics/fgd_intervals.csv``): one per interval of ``split``
    (x = ``frames``, the interval's upper bound), one column ``<system>`` per system with the pooled
    FGD† of the sentences of that reference length and ``<system>_seg`` with the pooled FGD† of
    that time segment; an interval without FGD has an empty cell."""
    rows = []
    for lo, hi in intervals:
        row: dict[str, Any] = {"frames": hi, "interval": f"{lo}-{hi}", "split": split}
        for s in systems:
            for col, key in ((s, f"fgd_pooled_len_{lo}_{hi}"), (f"{s}_seg", f"fgd_pooled_seg_{lo}_{hi}")):
                v = result[split][s].get(key)
                row[col] = "" if v is None else round(10 * v, 6)
        rows.append(row)
    return rows
