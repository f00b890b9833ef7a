"""Stage ``evaluate``: score GT, Mean, Random and the student on dev and test (paper §5, Tables 1-3).

Reads ``data/lifted/{train,dev,test}``, ``models/student`` (:func:`pipeline.train_student.load_student`),
``models/fgd_encoder`` (:func:`pipeline.models.tae.load_tae`) and ``models/backtranslator``
(:func:`pipeline.models.slt.load_slt`). Systems, each producing one pose sequence per sentence:

- ``gt``: the reference sequence itself;
- ``mean``: the mean train frame repeated for the mean train length (rounded);
- ``random``: a train sequence drawn uniformly per sentence (``numpy`` generator seeded with
  ``seed`` and the split), i.e. a real signing of (almost always) another sentence;
- ``student``: ``load_student(...).generate(texts)``.

Metrics per split and system (flat keys ``<split>.<system>.<metric>`` in ``metrics/eval.json``):

- ``fgd`` (and ``fgd_x10``, the paper's FGD†): Eq. 12 between the TAE features of all reference
  windows and all windows of the system's sequences (:func:`pipeline.metrics.windows`: windows of
  ``fgd.window`` = 34 frames with stride ``fgd.stride``; a sequence or span shorter than 34 frames
  gives one window padded by repeating its last frame);
- ``bleu1..bleu4``, ``rouge``: back-translation of the system's sequences vs the reference sentences
  (:mod:`pipeline.metrics`: cumulative corpus BLEU-n, sentence-averaged ROUGE-L F1, 0..100);
- ``dtw_mje``: mean over sentences of :func:`pipeline.metrics.dtw_mje` against the reference, in the
  lifted **[0, 1]** units (the store's coordinates; ``pipeline.lift.denormalise`` maps them to
  lifted 3D units per channel);
- ``duracc``: share of sentences with ``|T_hat - T| < evaluate.margin`` frames; ``len_mae``: mean
  absolute length error in frames;
- ``fgd_len_<lo>_<hi>``: FGD over the sentences whose *reference* length lies in ``[lo, hi)``
  (real = their reference windows, generated = their system windows); ``fgd_first_<n>``: FGD over
  the first ``n`` frames of every reference and every system sequence (a system sequence shorter
  than ``n`` contributes what it has). A subset with fewer than 2 windows on either side has no FGD:
  the key is left out and ``<split>.<system>.skipped`` counts it.

Also writes ``metrics/fgd_intervals.csv`` (test split, one row per length interval with its upper
bound ``frames`` as x, one column per system; the DVC plot), ``metrics/eval_table.md``
(Table 1/2-style tables) and the figures (:mod:`pipeline.figures`): ``plots/figure3_dev_samples.png``
(``evaluate.figures`` dev sentences, rows GT | student | ``evaluate.compare_student`` when set,
e.g. a w/o-KD student directory), ``plots/figure3_dev_sample.gif`` (the first of them animated side
by side) and ``plots/figure4_fgd_length.png`` (FGD† by reference length and over the first N
frames); skeletons are drawn in body-centred units (``data/lifted/transform.json`` inverse). Every
metric and these files are logged to the stage's MLflow run (:func:`pipeline.tracking.stage_run`).
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline import tracking, training
from pipeline.config import ParamsError, check_positive, load_params, section
from pipeline.metrics import MetricError, dtw_mje, duration_accuracy, fgd, windows
from pipeline.models.slt import SLT, Vocab, load_slt
from pipeline.models.tae import TAE, load_tae
from pipeline.store import SplitStore, StoreError
from pipeline.train_backtranslator import score, translate

log = logging.getLogger(__name__)

LIFTED = Path("data/lifted")
STUDENT_DIR = Path("models/student")
FGD_DIR = Path("models/fgd_encoder")
BT_DIR = Path("models/backtranslator")
METRICS = Path("metrics/eval.json")
PLOT = Path("metrics/fgd_intervals.csv")
TABLE = Path("metrics/eval_table.md")
PLOTS = Path("plots")
FIG3 = "figure3_dev_samples.png"
FIG3_GIF = "figure3_dev_sample.gif"
FIG4 = "figure4_fgd_length.png"
SYSTEMS = ("gt", "mean", "random", "student")
LABELS = {"gt": "GT", "mean": "Mean", "random": "Random", "student": "Ours (student)"}
Generator = Callable[[list[str]], list[np.ndarray]]


def eval_params(params: dict[str, Any]) -> dict[str, Any]:
    """The ``evaluate`` section, validated."""
    p = section(params, "evaluate")
    for key in ("splits", "systems", "margin", "intervals", "prefixes", "batch_size"):
        if key not in p:
            raise ParamsError(f"params.yaml: missing evaluate.{key}")
    bad = [s for s in p["systems"] if s not in SYSTEMS]
    if bad or not p["systems"]:
        raise ParamsError(f"params.yaml: evaluate.systems={p['systems']!r}; expected a subset of {SYSTEMS}")
    bad = [s for s in p["splits"] if s not in ("dev", "test")]
    if bad or not p["splits"]:
        raise ParamsError(f"params.yaml: evaluate.splits={p['splits']!r}; expected a subset of [dev, test]")
    check_positive(p["margin"], "evaluate.margin")
    check_positive(p["batch_size"], "evaluate.batch_size")
    check_positive(p.get("cpu_threads", 0), "evaluate.cpu_threads", allow_zero=True)
    for iv in p["intervals"]:
        if not (isinstance(iv, list) and len(iv) == 2 and 0 <= iv[0] < iv[1]):
            raise ParamsError(
                f"params.yaml: evaluate.intervals entry {iv!r}; expected [lo, hi] with 0 <= lo < hi"
            )
    for n in p["prefixes"]:
        check_positive(n, "evaluate.prefixes entry")
    check_positive(p.get("figures", 0), "evaluate.figures", allow_zero=True)
    check_positive(p.get("figure_frames", 6), "evaluate.figure_frames")
    compare = p.get("compare_student")
    if compare is not None and not isinstance(compare, str):
        raise ParamsError(f"params.yaml: evaluate.compare_student={compare!r}; expected null or a directory")
    return p


@dataclass
class Scorer:
    """Frozen evaluation models plus settings; :meth:`score_split` scores systems on one split."""

    tae: TAE
    slt: SLT
    vocab: Vocab
    stride: int | None = None  # FGD window stride (default: the window, non-overlapping)
    margin: float = 25.0
    intervals: list[list[int]] = field(default_factory=lambda: [[0, 50], [50, 100], [100, 150], [150, 200]])
    prefixes: list[int] = field(default_factory=lambda: [20, 40, 60, 80])
    batch_size: int = 32

    def features(self, seqs: list[np.ndarray]) -> np.ndarray:
        """TAE features ``[W, latent]`` of all windows of ``seqs`` (``[T, J, 3]`` each, clipped to [0, 1])."""
        size = self.tae.config.window
        wins = []
        for s in seqs:
            flat = np.clip(np.asarray(s, np.float32), 0.0, 1.0).reshape(len(s), -1)
            wins.append(windows(flat, size, self.stride))
        x = (
            torch.from_numpy(np.concatenate(wins))
            if wins
            else torch.zeros(0, size, self.tae.config.n_features)
        )
        return self.tae.embed(x).double().numpy()

    def _fgd(self, refs: list[np.ndarray], gens: list[np.ndarray]) -> float | None:
        real, gen = self.features(refs), self.features(gens)
        if len(real) < 2 or len(gen) < 2:
            return None
        return fgd(real, gen)

    def score_split(
        self, refs: list[np.ndarray], texts: list[str], systems: dict[str, list[np.ndarray]], where: str = ""
    ) -> dict[str, dict[str, float]]:
        """Metrics ``{system: {metric: value}}`` of each system's sequences against ``refs``/``texts``."""
        ref_len = np.array([len(r) for r in refs])
        out: dict[str, dict[str, float]] = {}
        for name, gens in systems.items():
            if len(gens) != len(refs):
                raise MetricError(
                    f"{where}: system {name!r} has {len(gens)} sequences for {len(refs)} sentences"
                )
            for i, g in enumerate(gens):
                if g.ndim != 3 or g.shape[1:] != refs[i].shape[1:] or len(g) == 0:
                    raise MetricError(
                        f"{where}: system {name!r} sentence {i}: sequence of shape {g.shape}, "
                        f"expected [T>0, {refs[i].shape[1]}, {refs[i].shape[2]}]"
                    )
                if not np.isfinite(g).all():
                    raise MetricError(f"{where}: system {name!r} sentence {i} has non-finite values")
            gen_len = np.array([len(g) for g in gens])
            m: dict[str, float] = {}
            value = self._fgd(refs, gens)
            if value is None:
                raise MetricError(f"{where}: fewer than 2 windows for FGD of {name!r}")
            m["fgd"], m["fgd_x10"] = value, 10.0 * value
            hyps = translate(self.slt, self.vocab, gens, self.batch_size)
            m.update(score(hyps, texts))
            m["dtw_mje"] = float(np.mean([dtw_mje(g, r) for g, r in zip(gens, refs, strict=True)]))
            m["duracc"] = duration_accuracy(gen_len, ref_len, self.margin)
            m["len_mae"] = float(np.abs(gen_len - ref_len).mean())
            skipped = 0
            for lo, hi in self.intervals:
                idx = np.flatnonzero((ref_len >= lo) & (ref_len < hi))
                v = self._fgd([refs[i] for i in idx], [gens[i] for i in idx]) if len(idx) else None
                if v is None:
                    skipped += 1
                else:
                    m[f"fgd_len_{lo}_{hi}"] = v
            for n in self.prefixes:
                v = self._fgd([r[:n] for r in refs], [g[:n] for g in gens])
                if v is None:
                    skipped += 1
                else:
                    m[f"fgd_first_{n}"] = v
            m["skipped"] = skipped
            out[name] = m
            log.info("%s %s: fgd %.4f bleu4 %.2f dtw %.4f", where, name, m["fgd"], m["bleu4"], m["dtw_mje"])
        return out


def baselines(train: SplitStore, n: int, rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    """``mean``: mean train frame x mean train length (n copies); ``random``: n random train sequences."""
    if len(train) == 0:
        raise StoreError("train split is empty: no Mean/Random baselines")
    poses = np.asarray(train.poses, np.float32)
    mean_len = max(1, int(round(float(train.lengths.mean()))))
    mean_seq = np.repeat(poses.mean(axis=0, keepdims=True), mean_len, axis=0)
    pick = rng.integers(0, len(train), size=n)
    return {
        "mean": [mean_seq] * n,
        "random": [np.asarray(train.sequence(int(i)), np.float32) for i in pick],
    }


def references(store: SplitStore, where: str | Path) -> tuple[list[np.ndarray], list[str]]:
    """Reference sequences ``[T, J, 3]`` and texts of a split, checked."""
    if store.channels != ["x", "y", "z"]:
        raise StoreError(f"{where}: channels {store.channels}, expected ['x', 'y', 'z']")
    refs, texts = [], []
    for i, entry in enumerate(store.index):
        name, text = entry.get("name", f"#{i}"), entry.get("text")
        if not isinstance(text, str) or not text.strip():
            raise StoreError(f"{where}: sequence {name!r} (row {i}) has no text: {text!r}")
        seq = np.asarray(store.sequence(i), np.float32)
        if len(seq) == 0 or not np.isfinite(seq).all():
            raise StoreError(f"{where}: sequence {name!r} (row {i}) is empty or has non-finite values")
        refs.append(seq)
        texts.append(text.strip())
    if not refs:
        raise StoreError(f"{where}: no sequences")
    return refs, texts


def evaluate(
    stores: dict[str, SplitStore],
    scorer: Scorer,
    p: dict[str, Any],
    seed: int,
    generator: Generator | None = None,
    where: Path = LIFTED,
    keep: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Nested metrics ``{split: {system: {metric: value}, "n": N}}`` for the splits/systems of ``p``.

    With ``keep`` (a dict), ``keep[split] = (refs, texts, systems)`` holds the scored sequences.
    """
    result: dict[str, Any] = {}
    for k, split in enumerate(p["splits"]):
        refs, texts = references(stores[split], where / split)
        systems: dict[str, list[np.ndarray]] = {}
        base = baselines(stores["train"], len(refs), np.random.default_rng([int(seed), k]))
        t0 = time.perf_counter()
        for name in p["systems"]:
            if name == "gt":
                systems[name] = refs
            elif name in base:
                systems[name] = base[name]
            else:
                if generator is None:
                    raise ValueError("evaluate.systems includes 'student' but no student generator was given")
                systems[name] = [np.asarray(g, np.float32) for g in generator(texts)]
        gen_seconds = time.perf_counter() - t0
        if keep is not None:
            keep[split] = (refs, texts, systems)
        result[split] = {"n": len(refs), **scorer.score_split(refs, texts, systems, where=str(where / split))}
        result[split]["generate_seconds"] = round(gen_seconds, 2)
    return result


def _fmt(v: Any, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def table(result: dict[str, Any], p: dict[str, Any]) -> str:
    """Markdown tables: Table 1 (FGD†, BLEU, ROUGE) + DTW-MJE / DurACC, and Table 2 (FGD by span)."""
    lines = [
        "# Evaluation (generated by `python -m pipeline.evaluate`, stage `evaluate`)",
        "",
        "FGD† = FGD x 10 (as the paper's tables). BLEU-n = cumulative corpus BLEU of order n (sacrebleu), "
        "ROUGE = mean sentence ROUGE-L F1, both x 100, of the back-translations. DTW-MJE in lifted [0, 1] "
        f"units. DurACC = share of sentences with |T_hat - T| < {p['margin']} frames.",
        "",
    ]
    metrics = [
        ("fgd_x10", "FGD†", 3),
        ("bleu1", "BLEU-1", 2),
        ("bleu2", "BLEU-2", 2),
        ("bleu3", "BLEU-3", 2),
        ("bleu4", "BLEU-4", 2),
        ("rouge", "ROUGE", 2),
        ("dtw_mje", "DTW-MJE", 4),
        ("duracc", "DurACC", 3),
    ]
    for split in p["splits"]:
        r = result[split]
        lines += [f"## {split.upper()} ({r['n']} sentences)", ""]
        lines.append("| System | " + " | ".join(h for _, h, _ in metrics) + " |")
        lines.append("|---|" + "---:|" * len(metrics))
        for s in p["systems"]:
            lines.append(f"| {LABELS[s]} | " + " | ".join(_fmt(r[s].get(k), d) for k, h, d in metrics) + " |")
        lines.append("")
    spans = [(f"fgd_len_{lo}_{hi}", f"{lo}–{hi}") for lo, hi in p["intervals"]]
    spans += [(f"fgd_first_{n}", f"first {n}") for n in p["prefixes"]]
    for split in p["splits"]:
        r = result[split]
        lines += [
            f"## FGD† by reference length and over the first N frames ({split})",
            "",
            "| System | " + " | ".join(h for _, h in spans) + " |",
            "|---|" + "---:|" * len(spans),
        ]
        for s in p["systems"]:
            lines.append(
                f"| {LABELS[s]} | " + " | ".join(_fmt(_x10(r[s].get(k)), 3) for k, _ in spans) + " |"
            )
        lines.append("")
    return "\n".join(lines)


def _x10(v: float | None) -> float | None:
    return None if v is None else 10.0 * v


def plot_rows(result: dict[str, Any], p: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of the FGD plot (test split, else the last one): one per length interval, one column per system.

    ``frames`` (the x axis) is the interval's upper bound; an interval without FGD has an empty cell.
    """
    split = "test" if "test" in p["splits"] else p["splits"][-1]
    rows = []
    for lo, hi in p["intervals"]:
        row: dict[str, Any] = {"frames": hi, "interval": f"{lo}-{hi}", "split": split}
        for s in p["systems"]:
            v = result[split][s].get(f"fgd_len_{lo}_{hi}")
            row[s] = "" if v is None else round(v, 6)
        rows.append(row)
    return rows


def render_figures(
    result: dict[str, Any],
    kept: dict[str, Any],
    p: dict[str, Any],
    plots_dir: Path,
    transform: Path | None,
    batch_size: int = 32,
) -> list[Path]:
    """Figure 3 (dev samples side by side, PNG + GIF) and Figure 4 (FGD vs length, PNG) into ``plots_dir``.

    Rows: GT, the student (when evaluated) and ``compare_student`` (loaded here, generating only the
    sampled sentences; labelled ``compare_label``). Poses are drawn in body-centred units when the
    lift ``transform`` exists, else in the lifted [0, 1] space.
    """
    from pipeline import figures
    from pipeline.transform import UnitRange

    plots_dir.mkdir(parents=True, exist_ok=True)
    written = [figures.figure4(result, p, plots_dir / FIG4, LABELS)]
    n = int(p.get("figures", 0))
    split = "dev" if "dev" in kept else next(iter(kept))
    refs, texts, systems = kept[split]
    idx = figures.pick_samples([len(r) for r in refs], n)
    if not idx:
        return written
    rows: dict[str, list[np.ndarray]] = {"GT": [refs[i] for i in idx]}
    if "student" in systems:
        rows["Student"] = [systems["student"][i] for i in idx]
    if p.get("compare_student"):
        from pipeline.inference import load_student

        other = load_student(p["compare_student"], "cpu")
        rows[str(p.get("compare_label") or "compare")] = other.generate([texts[i] for i in idx], batch_size)
    unit = UnitRange.load(transform) if transform is not None and transform.is_file() else None

    def body(x: np.ndarray) -> np.ndarray:
        return unit.inverse(np.asarray(x, np.float64)) if unit is not None else np.asarray(x, np.float64)

    samples = [(texts[i], {label: body(seqs[k]) for label, seqs in rows.items()}) for k, i in enumerate(idx)]
    written += figures.figure3(
        samples, plots_dir / FIG3, plots_dir / FIG3_GIF, int(p.get("figure_frames", 6)), 25.0
    )
    return written


def flat_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """``{"test.student.fgd": ...}`` from the nested result."""
    return tracking.flatten(result)


def main(
    lifted: Path = LIFTED,
    student_dir: Path = STUDENT_DIR,
    fgd_dir: Path = FGD_DIR,
    bt_dir: Path = BT_DIR,
    metrics_path: Path = METRICS,
    plot_path: Path = PLOT,
    table_path: Path = TABLE,
    generator: Generator | None = None,
    plots_dir: Path = PLOTS,
) -> dict[str, Any]:
    """Run the stage; returns the flat metrics written to ``metrics_path``."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    params = load_params()
    p = eval_params(params)
    fp = section(params, "fgd")
    stores = {s: SplitStore.load(lifted / s, mmap=True) for s in ("train", *p["splits"])}
    tae = load_tae(fgd_dir)
    slt, vocab = load_slt(bt_dir)
    scorer = Scorer(
        tae,
        slt,
        vocab,
        stride=int(fp.get("stride", tae.config.window)),
        margin=float(p["margin"]),
        intervals=[list(iv) for iv in p["intervals"]],
        prefixes=[int(n) for n in p["prefixes"]],
        batch_size=int(p["batch_size"]),
    )
    if generator is None and "student" in p["systems"]:
        from pipeline.inference import load_student

        student = load_student(student_dir, "cpu")
        generator = lambda texts: student.generate(texts, batch_size=int(p["batch_size"]))  # noqa: E731

    training.set_cpu_threads(p.get("cpu_threads", 0))
    with tracking.stage_run("evaluate", params) as run:
        t0 = time.perf_counter()
        kept: dict[str, Any] = {}
        with torch.no_grad():
            result = evaluate(stores, scorer, p, int(params.get("seed", 0)), generator, lifted, kept)
        result["seconds"] = round(time.perf_counter() - t0, 2)
        t1 = time.perf_counter()
        with torch.no_grad():
            figure_files = render_figures(
                result, kept, p, plots_dir, lifted / "transform.json", int(p["batch_size"])
            )
        log.info("figures %s in %.1f s", [str(f) for f in figure_files], time.perf_counter() - t1)
        flat = flat_metrics(result)
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        metrics_path.write_text(json.dumps(flat, indent=1))
        rows = plot_rows(result, p)
        with plot_path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        table_path.write_text(table(result, p))
        tracking.log_final_metrics(run, flat)
        for path in (metrics_path, plot_path, table_path):
            tracking.log_artifacts(run, path, artifact_path="eval")
        for path in figure_files:
            tracking.log_artifacts(run, path, artifact_path="eval/plots")
        log.info("evaluation took %.1f s; table in %s", result["seconds"], table_path)
        return flat


if __name__ == "__main__":
    main()
