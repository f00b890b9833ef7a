"""Stage ``evaluate``: score GT, Mean, both Randoms, the student and the baselines (PT, NSLP-G)
on dev and test (paper §5, Tables 1-3).

Reads ``data/lifted/{train,dev,test}`` (and ``data/lifted/transform.json``: realism statistics in
body-centred units), ``models/student`` (:func:`pipeline.inference.load_student`),
``models/pt/<variant>`` and ``models/nslpg/<variant>`` for the systems ``pt_<variant>`` /
``nslpg_<variant>`` of ``evaluate.systems`` (:func:`pipeline.baselines.pt.load_pt`,
:func:`pipeline.baselines.nslpg.load_nslpg`; NSLP-G with the oracle length is given the reference
lengths and labelled ``oracle_length: 1``), and the fixed evaluators ``models/fgd_encoder`` and
``models/backtranslator`` (trained once per corpus and committed, see dvc.yaml); the systems and
metrics are those of :mod:`pipeline.evaluation.scoring`. Writes ``metrics/eval.json`` (flat keys
``<split>.<system>.<metric>``, e.g. ``test.student.fgd_paired_x10``,
``dev.mean.realism.left_hand.bone_ratio``, ``test.nslpg_gs.oracle_length``; every metric, a
plain out), ``metrics/headline/<split>_<system>.json`` (FGD† pooled/paired, BLEU-4, ROUGE,
DTW-MJE, DurACC: the DVC metrics, what ``dvc metrics show`` and ``dvc exp show`` list),
``metrics/fgd_intervals.csv`` (test split, one row per interval with its upper bound ``frames`` as
x; per system the pooled FGD† by reference length and, ``<system>_seg``, by time segment; the DVC
plot), ``metrics/eval_table.md`` (Table 1/2-style tables, :mod:`pipeline.evaluation.tables`) and the
figures (:mod:`pipeline.evaluation.figures`): ``plots/figure3_dev_samples.png``
(``evaluate.figures`` dev sentences, rows GT | the evaluated systems of ``evaluate.figure_systems``
| ``evaluate.compare_student`` when set, e.g. a w/o-KD student directory),
``plots/figure3_dev_sample.gif`` (the first of them animated side by side) and
``plots/figure4_fgd_length.png`` (FGD† by reference length and over the first N frames);
skeletons are drawn in body-centred units (``data/lifted/transform.json`` inverse). Every metric
and these files are logged to the stage's MLflow run.
"""

from __future__ import annotations

import csv
import functools
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.baselines.nslpg import load_nslpg
from pipeline.baselines.pt import load_pt
from pipeline.config import ParamsError, Stage, check_seed, flatten, parse_section
from pipeline.data.store import SplitStore
from pipeline.data.transform import UnitRange
from pipeline.evaluation import figures
from pipeline.evaluation.scoring import (
    EvaluateConfig,
    GeneratedSystem,
    Generator,
    Scorer,
    baseline_of,
    evaluate,
)
from pipeline.evaluation.tables import (
    eval_table,
    fgd_interval_rows,
    headline_metrics,
    headline_table,
    span_keys,
    system_label,
)
from pipeline.inference import load_student
from pipeline.models.backtranslator import load_backtranslator
from pipeline.models.fgd_encoder import load_fgd_encoder
from pipeline.training import tracking
from pipeline.training.engine import set_cpu_threads

LIFTED, STUDENT_DIR = Path("data/lifted"), Path("models/student")
PT_DIR, NSLPG_DIR = Path("models/pt"), Path("models/nslpg")
FGD_DIR, BT_DIR = Path("models/fgd_encoder"), Path("models/backtranslator")
METRICS, PLOT, TABLE, HEADLINE_DIR = (
    Path("metrics/eval.json"),
    Path("metrics/fgd_intervals.csv"),
    Path("metrics/eval_table.md"),
    Path("metrics/headline"),
)
FIGURES = Path("plots")
FIG3, FIG3_GIF, FIG4 = (
    FIGURES / n for n in ("figure3_dev_samples.png", "figure3_dev_sample.gif", "figure4_fgd_length.png")
)
STAGE = Stage(
    "evaluate",
    ("seed", "evaluate"),
    (LIFTED, STUDENT_DIR, PT_DIR, NSLPG_DIR, FGD_DIR, BT_DIR),
    (HEADLINE_DIR, METRICS, PLOT, TABLE, FIG3, FIG3_GIF, FIG4),
)
log = logging.getLogger(__name__)


def render_figures(
    result: dict[str, Any], kept: dict[str, Any], cfg: EvaluateConfig, transform: Path | None
) -> list[Path]:
    """Figure 3 (dev samples side by side, PNG + GIF) and Figure 4 (FGD vs length, PNG).

    Rows: GT, the systems of ``figure_systems`` that were evaluated and ``compare_student`` (loaded
    here, generating only the sampled sentences; labelled ``compare_label``). Poses are drawn in
    body-centred units when the lift ``transform`` exists, else in the lifted [0, 1] space.
    """
    FIG4.parent.mkdir(parents=True, exist_ok=True)
    spans = (cfg.intervals, cfg.prefixes)
    written = [figures.figure4(result, cfg.length_split, cfg.systems, *spans, STAGE.out(FIG4))]
    split = "dev" if "dev" in kept else next(iter(kept))
    refs, texts, systems = kept[split]
    idx = figures.pick_samples([len(r) for r in refs], cfg.figures)
    if not idx:
        return written
    rows: dict[str, list[np.ndarray]] = {"GT": [refs[i] for i in idx]}
    for name in cfg.figure_systems:
        if name in systems:
            rows[system_label(name)] = [systems[name][i] for i in idx]
    if cfg.compare_student:
        other = load_student(cfg.compare_student, "cpu")
        rows[cfg.compare_label or "compare"] = other.generate([texts[i] for i in idx], cfg.batch_size)
    unit = UnitRange.load(transform) if transform is not None and transform.is_file() else None

    def body(x: np.ndarray) -> np.ndarray:
        return unit.inverse(np.asarray(x, np.float64)) if unit is not None else np.asarray(x, np.float64)

    samples = [(texts[i], {label: body(seqs[k]) for label, seqs in rows.items()}) for k, i in enumerate(idx)]
    return written + figures.figure3(samples, STAGE.out(FIG3), STAGE.out(FIG3_GIF), cfg.figure_frames, 25.0)


def load_generators(cfg: EvaluateConfig, skip: Sequence[str] = ()) -> dict[str, GeneratedSystem]:
    """The generated systems of ``evaluate.systems`` (but ``skip``): the student and the baselines'
    variants from their model directories; a baseline variant that was not trained raises
    :class:`ParamsError` naming ``evaluate.systems``."""
    out: dict[str, GeneratedSystem] = {}
    for i, name in enumerate(cfg.systems):
        if name in skip:
            continue
        if name == "student":
            student = load_student(STUDENT_DIR, "cpu")
            generate = functools.partial(student.generate, batch_size=cfg.batch_size)
            out[name] = GeneratedSystem(generate, max_frames=student.max_frames)
        elif (baseline := baseline_of(name)) is not None:
            family, variant = baseline
            root = PT_DIR if family == "pt" else NSLPG_DIR
            if not (root / variant).is_dir():
                trained = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
                section = "progressive" if family == "pt" else "nslpg"
                raise ParamsError(
                    f"params.yaml: evaluate.systems[{i}]={name!r}: no model {root / variant} (train_{family} "
                    f"trained {trained}: the variants of {section}.variants)"
                )
            gen = load_pt(root / variant) if family == "pt" else load_nslpg(root / variant)
            generate = functools.partial(gen.generate, batch_size=cfg.batch_size)
            longest = None if gen.oracle_length else int(gen.model.config.max_frames)
            out[name] = GeneratedSystem(generate, oracle_length=gen.oracle_length, max_frames=longest)
    return out


def main(
    argv: Sequence[str] | None = None, generators: Mapping[str, Generator | GeneratedSystem] | None = None
) -> dict[str, Any]:
    """``python -m pipeline.stages.evaluate``; returns the flat metrics written to metrics/eval.json.
    ``generators`` replace the saved models of the systems they name (tests)."""
    params = STAGE.start(__doc__, argv)
    cfg = parse_section(params, "evaluate", EvaluateConfig)
    seed = check_seed(params["seed"])
    given = dict(generators or {})
    loaded: dict[str, Generator | GeneratedSystem] = {**load_generators(cfg, skip=list(given)), **given}
    stores = {s: SplitStore.load(LIFTED / s, mmap=True) for s in ("train", *cfg.splits)}
    backtranslator, vocab, glosses = load_backtranslator(BT_DIR)
    transform = LIFTED / "transform.json"
    unit = UnitRange.load(transform) if transform.is_file() else None
    scorer = Scorer.from_config(load_fgd_encoder(FGD_DIR), backtranslator, vocab, cfg, glosses, unit)

    set_cpu_threads(cfg.cpu_threads)
    with tracking.stage_run(STAGE.name, params) as run:
        t0 = time.perf_counter()
        kept: dict[str, Any] = {}
        with torch.no_grad():
            result = evaluate(stores, scorer, cfg, seed, loaded, LIFTED, kept)
        result["seconds"] = round(time.perf_counter() - t0, 2)
        t1 = time.perf_counter()
        with torch.no_grad():
            figure_files = render_figures(result, kept, cfg, LIFTED / "transform.json")
        log.info("figures %s in %.1f s", [str(f) for f in figure_files], time.perf_counter() - t1)
        flat = flatten(result)
        STAGE.write_json(METRICS, flat)
        if HEADLINE_DIR.exists():
            shutil.rmtree(HEADLINE_DIR)
        headline = headline_metrics(result, cfg.splits, cfg.systems)
        for name, values in headline.items():
            STAGE.write_json(HEADLINE_DIR / f"{name}.json", values)
        rows = fgd_interval_rows(result, cfg.length_split, cfg.systems, cfg.intervals)
        with STAGE.out(PLOT).open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        spans = span_keys(cfg.intervals, cfg.prefixes)
        STAGE.out(TABLE).write_text(eval_table(result, cfg.splits, cfg.systems, spans, cfg.margin))
        tracking.log_final_metrics(run, flat)
        for path in (METRICS, PLOT, TABLE):
            tracking.log_artifacts(run, path, artifact_path="eval")
        for path in figure_files:
            tracking.log_artifacts(run, path, artifact_path="eval/plots")
        for split in cfg.splits:
            print(headline_table(headline, split, cfg.systems), flush=True)
        ours = {k: float("nan") for k in ("fgd_pooled_x10", "bleu4", "duracc")}
        ours |= headline.get(f"{cfg.length_split}_student", {})
        STAGE.summary(
            f"{len(cfg.systems)} systems on {'/'.join(cfg.splits)} in {result['seconds']:.0f} s; "
            f"{cfg.length_split} student FGD† pooled {ours['fgd_pooled_x10']:.2f}, "
            f"BLEU-4 {ours['bleu4']:.2f}, DurACC {ours['duracc']:.3f}"
        )
        return flat


if __name__ == "__main__":
    main()
