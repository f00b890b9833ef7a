"""The report's tables: the paper's Tables 1, 2, 3a, 3b with ours beside them, ablations, seeds, runs."""

from __future__ import annotations

import math
from typing import Any

from pipeline.evaluation.scoring import baseline_of
from pipeline.evaluation.tables import (
    ABLATION_METRICS,
    LEGACY_KEYS,
    LEGACY_SYSTEMS,
    SPAN_RE,
    SYSTEM_LABELS,
    TABLE1_METRICS,
    TABLE3_METRICS,
    Table,
    span_header,
    system_label,
    x10,
)
from pipeline.tools.report.paper import (
    PAPER,
    PAPER_T1_COLS,
    PAPER_T2_COLS,
    PAPER_T3_COLS,
    PAPER_TABLE1,
    PAPER_TABLE2,
    PAPER_TABLE3A,
    PAPER_TABLE3B,
)
from pipeline.tools.report.runs import ExpRun, profile_key, variant_key

SPLITS = ("dev", "test")
BASELINES = tuple((s, SYSTEM_LABELS[s]) for s in ("gt", "mean", "random_per_sentence", "random_single"))
OURS = "ours"


def value_of(run: ExpRun, split: str, system: str, metric: str) -> float | None:
    """A metric of the run; runs from before the two FGD readings logged the pooled one as
    ``fgd``/``fgd_x10`` and the per-sentence Random as ``random``: those are read as such."""
    v = run.get(split, system, metric)
    old_metric = LEGACY_KEYS.get(metric, metric.replace("fgd_pooled_len_", "fgd_len_"))
    old_metric = old_metric.replace("fgd_pooled_first_", "fgd_first_")
    if v is None and (old_metric != metric or system in LEGACY_SYSTEMS):
        old_system = LEGACY_SYSTEMS.get(system, system)
        v = run.get(split, old_system, old_metric)
        if v is None and old_metric == "fgd_x10":
            v = x10(run.get(split, old_system, "fgd"))
    return v


def trained_baselines(run: ExpRun) -> list[str]:
    """The paper's baselines the run scored (``pt_<variant>``, ``nslpg_<variant>``), PT first."""
    found = {k.split(".")[2] for k in run.metrics if k.startswith("evaluate.") and k.count(".") >= 3}
    order = ("base", "fp", "gn", "fpgn", "gs", "base_ft", "gs_ft")  # the paper's row order

    def key(system: str) -> tuple[bool, int, str]:
        family, variant = baseline_of(system) or ("", system)
        return family != "pt", order.index(variant) if variant in order else len(order), variant

    return sorted((s for s in found if baseline_of(s) is not None), key=key)


def paper_value(values: dict[str, float], key: str) -> float | None:
    """The paper's value for one of our metric keys: its single FGD† stands under both readings
    (the paper does not say which it computed), ``dev.fgd_paired_x10`` -> ``dev.fgd_x10``."""
    for reading in ("fgd_pooled_x10", "fgd_paired_x10"):
        key = key.replace(reading, "fgd_x10")
    return values.get(key)


def _reference(runs: list[ExpRun], profile: str) -> ExpRun:
    """The run whose GT/Mean/Random rows represent a profile: its ``full`` run, else the first."""
    same = [r for r in runs if r.profile == profile]
    return next((r for r in same if r.variant == "full"), same[0])


def profiles_of(runs: list[ExpRun]) -> list[str]:
    return sorted({r.profile for r in runs}, key=profile_key)


def _label(run: ExpRun) -> str:
    return f"Ours ({run.variant})"


def _newest_note(runs: list[ExpRun]) -> list[str]:
    notes = []
    for r in runs:
        if r.older:
            notes.append(
                f"- {r.variant} [{r.profile}]: newest run `{r.name}` of {len(r.older) + 1} "
                f"(older: {', '.join(f'`{o}`' for o in r.older)})"
            )
    return notes


def table1(runs: list[ExpRun]) -> Table:
    """Table 1: FGD†, BLEU-1..4, ROUGE of GT/Mean/Random and every variant, dev and test."""
    cols = ["source", "system", "profile", "run"] + [f"{s} {h}" for s in SPLITS for _, h, _ in TABLE1_METRICS]
    digits = {f"{s} {h}": d for s in SPLITS for _, h, d in TABLE1_METRICS}
    rows: list[list[Any]] = []
    for profile in profiles_of(runs):
        ref = _reference(runs, profile)
        for system, label in [*BASELINES, *((b, system_label(b)) for b in trained_baselines(ref))]:
            rows.append(
                [OURS, label, profile, ref.name]
                + [value_of(ref, s, system, k) for s in SPLITS for k, _, _ in TABLE1_METRICS]
            )
        for r in (r for r in runs if r.profile == profile):
            rows.append(
                [OURS, _label(r), profile, r.name]
                + [value_of(r, s, "student", k) for s in SPLITS for k, _, _ in TABLE1_METRICS]
            )
    src = PAPER.format(n=1)
    for label, vals in PAPER_TABLE1.items():
        rows.append(
            [src, label, "", ""]
            + [
                paper_value(dict(zip(PAPER_T1_COLS, vals[s], strict=True)), k)
                for s in SPLITS
                for k, _, _ in TABLE1_METRICS
            ]
        )
    notes = [
        "FGD† = FGD x 10 in two readings (pooled over the split, NSLP-G's; paired: each sequence against "
        "its own reference); the paper's one FGD† value stands under both. "
        "BLEU-n (cumulative) and ROUGE-L F1 x 100 of the back-translations. "
        "Rows `ours` come from the MLflow runs (corpus of the run: synthetic by default), rows `paper` are "
        "the paper's PHOENIX-2014T numbers (Table 1) — different data, different back-translator: "
        "compare the ordering of systems, not the values.",
        "GT/Mean/Random rows and the baselines' rows (PT, NSLP-G; `[oracle T]` = given the reference "
        "length): the `full` run of the profile (else its first run).",
        *_newest_note(runs),
    ]
    return Table("table1", "Table 1: FGD†, BLEU, ROUGE (dev and test)", cols, rows, notes, digits)


def span_keys_of(runs: list[ExpRun], split: str) -> list[str]:
    """Table-2 keys logged by any run for ``split``: by length, by time segment, first N frames."""
    prefix = f"evaluate.{split}."
    keys: set[str] = set()
    for r in runs:
        for k in r.metrics:
            if k.startswith(prefix) and SPAN_RE.match(k.rsplit(".", 1)[-1]):
                keys.add(k.rsplit(".", 1)[-1])

    def order(k: str) -> tuple[int, str, int]:
        m = SPAN_RE.match(k)
        assert m is not None
        reading, form, lo, _ = m.groups()
        return (("len", "seg", "first").index(form), reading, int(lo))

    return sorted(keys, key=order)


def paper_span(key: str) -> str:
    """The paper's Table 2 column (:data:`PAPER_T2_COLS`) of one of our span keys: its interval cells
    stand under both forms (length groups, time segments) and both readings, as its text does not
    settle which it computed; ``fgd_paired_seg_0_50`` -> ``fgd_len_0_50``."""
    m = SPAN_RE.match(key)
    if m is None:
        raise ValueError(f"not a Table-2 key: {key!r}")
    _, form, lo, hi = m.groups()
    return f"fgd_first_{lo}" if form == "first" else f"fgd_len_{lo}_{hi}"


def table2(runs: list[ExpRun], split: str = "test") -> Table:
    """Table 2: FGD† by reference-length interval and over the first N frames."""
    keys = span_keys_of(runs, split)
    heads = [span_header(k) for k in keys]
    cols = ["source", "system", "profile", "run", *heads]
    digits = dict.fromkeys(heads, 3)
    rows: list[list[Any]] = []
    for profile in profiles_of(runs):
        ref = _reference(runs, profile)
        for system, label in [*BASELINES, *((b, system_label(b)) for b in trained_baselines(ref))]:
            rows.append(
                [OURS, label, profile, ref.name] + [x10(value_of(ref, split, system, k)) for k in keys]
            )
        for r in (r for r in runs if r.profile == profile):
            values = [x10(value_of(r, split, "student", k)) for k in keys]
            rows.append([OURS, _label(r), profile, r.name, *values])
    src = PAPER.format(n=2)
    for label, vals in PAPER_TABLE2.items():
        by_key = dict(zip(PAPER_T2_COLS, vals, strict=True))
        rows.append([src, label, "", ""] + [by_key.get(paper_span(k)) for k in keys])
    notes = [
        f"FGD† (x 10) on the {split} split: `len lo–hi` over the sentences whose reference length "
        "(frames) lies in [lo, hi); `seg lo–hi` over frames [lo, hi) of every sequence (time segments); "
        "`first N` over the first N frames of every sequence (false decoding initiation); `pooled` / "
        "`paired` = the two FGD readings. Paper rows: its Table 2 (PHOENIX-2014T; on Table 1's FGD† "
        "scale), each interval cell shown under both forms and readings.",
        "FGD of small subsets has a large small-sample bias: compare systems within a column. "
        "`–` = no value (fewer than 2 windows in the subset, or not reported).",
        *_newest_note(runs),
    ]
    return Table("table2", f"Table 2: FGD† by frame-length interval ({split})", cols, rows, notes, digits)


def _table3(
    runs: list[ExpRun],
    name: str,
    title: str,
    pair: tuple[str, str],
    labels: tuple[str, str],
    paper: dict[str, tuple[float, ...]],
    n: str,
) -> Table:
    heads = [f"{s} {h}" for s in SPLITS for _, h, _ in TABLE3_METRICS]
    cols = ["source", "system", "profile", "run", *heads]
    digits = dict.fromkeys(heads, 3)
    rows: list[list[Any]] = []
    missing = []
    for profile in profiles_of(runs):
        by_variant = {r.variant: r for r in runs if r.profile == profile}
        present = [v for v in pair if v in by_variant]
        if not present:
            continue
        missing += [f"{v} [{profile}]" for v in pair if v not in by_variant]
        ref = by_variant.get("full") or by_variant[present[0]]
        rows.append(
            [OURS, "GT", profile, ref.name]
            + [value_of(ref, s, "gt", k) for s in SPLITS for k, _, _ in TABLE3_METRICS]
        )
        for v, label in zip(pair, labels, strict=True):
            if v in by_variant:
                r = by_variant[v]
                rows.append(
                    [OURS, label, profile, r.name]
                    + [value_of(r, s, "student", k) for s in SPLITS for k, _, _ in TABLE3_METRICS]
                )
    src = PAPER.format(n=n)
    for label, vals in paper.items():
        by_key = dict(zip(PAPER_T3_COLS, vals, strict=True))
        rows.append(
            [src, label, "", ""]
            + [paper_value(by_key, f"{s}.{k}") for s in SPLITS for k, _, _ in TABLE3_METRICS]
        )
    margins = sorted({r.params.get("evaluate.margin", "?") for r in runs})
    notes = [
        f"FGD† = FGD x 10; DurACC = share of sentences with |T_hat - T| < {'/'.join(margins)} frames "
        "(the paper: < 1 s at 25 fps = 25 frames).",
        *_newest_note([r for r in runs if r.variant in pair]),
    ]
    if missing:
        notes.append(f"Missing variant(s): {', '.join(missing)}.")
    return Table(name, title, cols, rows, notes, digits)


def table3a(runs: list[ExpRun]) -> Table:
    """Table 3a: KD vs no KD (``full`` vs ``w/o KD``)."""
    labels = ("L_pose + L_length (w/o KD)", "L_pose + L_length + L_distil (w/ KD)")
    title = "Table 3a: effect of KD (FGD†, DurACC)"
    return _table3(runs, "table3a", title, ("w/o KD", "full"), labels, PAPER_TABLE3A, "3a")


def table3b(runs: list[ExpRun]) -> Table:
    """Table 3b: BERT vs the from-scratch Transformer encoder (``full`` vs ``w/o BERT``)."""
    return _table3(
        runs,
        "table3b",
        "Table 3b: effect of the pretrained language model (FGD†, DurACC)",
        ("w/o BERT", "full"),
        ("w/o BERT", "w/ BERT"),
        PAPER_TABLE3B,
        "3b",
    )


VAE_METRICS = (
    ("pretrain_vae.dev.mpjpe_unit.left_hand", "VAE dev MPJPE left hand"),
    ("pretrain_vae.dev.mpjpe_unit.right_hand", "VAE dev MPJPE right hand"),
)


def ablations(runs: list[ExpRun]) -> Table:
    """Every variant side by side: FGD†, BLEU-4, ROUGE, DurACC (dev, test) and the VAE's hand error."""
    heads = [f"{s} {h}" for s in SPLITS for _, h, _ in ABLATION_METRICS] + [h for _, h in VAE_METRICS]
    digits = {f"{s} {h}": d for s in SPLITS for _, h, d in ABLATION_METRICS} | {h: 4 for _, h in VAE_METRICS}
    cols = ["variant", "profile", "run", *heads]
    rows = [
        [r.variant, r.profile, r.name]
        + [value_of(r, s, "student", k) for s in SPLITS for k, _, _ in ABLATION_METRICS]
        + [r.metrics.get(k) for k, _ in VAE_METRICS]
        for r in runs
    ]
    notes = [
        "The student of each variant (full = KD + BERT + BCE-VAE). VAE MPJPE: mean per-joint error of the "
        "VAE's dev reconstructions in lifted [0, 1] units, only present when the experiment ran "
        "`pretrain_vae` (a run that reused the VAE has `–`).",
        *_newest_note(runs),
    ]
    return Table("ablations", "Ablations: student metrics per variant", cols, rows, notes, digits)


def _mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def seeds_table(all_runs: list[ExpRun], profile: str | None = None) -> Table:
    """Per (profile, variant without seed): mean and sample SD over student seeds of the student's
    FGD†, BLEU-4, ROUGE, DurACC (dev, test); the newest evaluated run of each seed counts."""
    groups: dict[tuple[str, str], dict[str, ExpRun]] = {}
    for r in sorted(all_runs, key=lambda r: r.start_time, reverse=True):
        if r.has_eval and (profile is None or r.profile == profile):
            groups.setdefault((r.profile, r.base_variant), {}).setdefault(r.seed, r)
    metrics = [(s, k, h, d) for s in SPLITS for k, h, d in ABLATION_METRICS]
    cols = ["variant", "profile", "seeds", "n"]
    digits: dict[str, int] = {}
    for s, _, h, d in metrics:
        cols += [f"{s} {h}", f"{s} {h} sd"]
        digits |= {f"{s} {h}": d, f"{s} {h} sd": d}
    rows = []
    order = sorted(groups, key=lambda g: (profile_key(g[0]), variant_key(g[1])))
    for prof, variant in order:
        by_seed = groups[(prof, variant)]
        seeds = sorted(by_seed, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))
        row: list[Any] = [variant, prof, ", ".join(seeds), len(seeds)]
        for s, k, _, _ in metrics:
            vals = [v for v in (value_of(by_seed[x], s, "student", k) for x in seeds) if v is not None]
            row += list(_mean_sd(vals))
        rows.append(row)
    notes = [
        "Seed study: per variant the newest evaluated run of each student seed (`student.seed`, else the "
        "global `seed`; `dvc exp run -S student.seed=N` retrains only the student, on the same corpus, VAE "
        "and evaluation models); mean and sample standard deviation (sd, `–` for one seed) over those seeds."
    ]
    return Table(
        "seeds", "Seeds: student metrics per variant, mean and SD over seeds", cols, rows, notes, digits
    )


def runs_table(all_runs: list[ExpRun], used: list[ExpRun]) -> Table:
    """Every parent run found, and whether the report uses it."""
    used_ids = {r.run_id for r in used}
    rows = []
    for r in all_runs:
        if r.run_id in used_ids:
            why = "used"
        elif not r.has_eval:
            why = "no evaluation metrics"
        else:
            why = "older run of the same variant"
        rows.append([r.name, r.run_id, r.started, r.status, r.profile, r.variant, r.seed, why])
    cols = ["run", "run_id", "started (UTC)", "status", "profile", "variant", "student seed", "in report"]
    notes = [
        "One parent run per DVC experiment (`dvc exp run`) or plain `dvc repro` (`workspace`). "
        "Per profile and variant the newest run with evaluation metrics is used."
    ]
    return Table("runs", "Runs", cols, rows, notes)
