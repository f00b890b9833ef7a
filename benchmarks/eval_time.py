"""Wall time of the evaluate stage's scoring (dev + test, GT/Mean/Random/student) and its parts.

    python -m benchmarks.eval_time [--threads 2] [--lifted data/lifted] [--write-docs]

Uses ``data/lifted`` and the trained ``models/fgd_encoder``, ``models/backtranslator`` and
``models/student`` when they exist; otherwise a stand-in of the default corpus's size (600 train /
60 dev / 60 test sequences of 60-180 frames, 120 joints) and untrained models built from the
default params (same sizes, so the same cost), with a fake student that returns random-length
sequences. Times :func:`pipeline.evaluation.scoring.evaluate` end to end (best of ``--repeat``), then
its parts separately: student generation, the FGD part (TAE features of both readings, all Table-2
spans, Fréchet distances), beam-search back-translation, gloss recognition, DTW-MJE (vectorised,
per part) — and, for the ratio, the same DTW-MJE with the textbook per-pair Python DP it replaced.
Prints one JSON object; ``--write-docs`` replaces the body of "## Evaluation time" in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.docs import write_section  # noqa: E402
from pipeline.config import check_seed, load_params, parse_section  # noqa: E402
from pipeline.data.skeleton import part_slices  # noqa: E402
from pipeline.data.store import SplitStore  # noqa: E402
from pipeline.evaluation.backtranslation import recognise, translate  # noqa: E402
from pipeline.evaluation.metrics import dtw_mje_parts  # noqa: E402
from pipeline.evaluation.scoring import (  # noqa: E402
    MANUAL,
    EvaluateConfig,
    Scorer,
    WindowFeatures,
    baselines,
    evaluate,
    references,
)
from pipeline.models.backtranslator import BackTranslator, Vocab, load_backtranslator  # noqa: E402
from pipeline.models.fgd_encoder import FGDEncoder, load_fgd_encoder  # noqa: E402
from pipeline.training.sections import BackTranslatorSection, FGDEncoderSection  # noqa: E402

WORDS = "am montag regen sonne im norden süden kalt warm wind es wird morgen heute .".split()  # noqa: SIM905


def python_dtw_mje(a: np.ndarray, b: np.ndarray) -> float:
    """The per-pair DP the vectorised DTW replaced (plain-float inner loop), for the speed ratio."""
    from scipy.spatial.distance import cdist

    cost = np.mean([cdist(a[:, j], b[:, j]) for j in range(a.shape[1])], axis=0)
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    prev = acc[0].tolist()
    for i in range(1, n + 1):
        ci, row, left = cost[i - 1].tolist(), [np.inf], np.inf
        for j in range(1, m + 1):
            left = ci[j - 1] + min(prev[j - 1], prev[j], left)
            row.append(left)
        acc[i], prev = row, row
    i, j, steps = n, m, 1
    while i > 1 or j > 1:
        moves = ((acc[i - 1, j - 1], i - 1, j - 1), (acc[i - 1, j], i - 1, j), (acc[i, j - 1], i, j - 1))
        _, i, j = min(moves, key=lambda t: t[0])
        steps += 1
    return float(acc[n, m] / steps)


def fake_store(n: int, rng: np.random.Generator, joints: int = 120) -> SplitStore:
    seqs, index = [], []
    for i in range(n):
        t = np.arange(int(rng.integers(60, 181)))[:, None, None]
        freq, phase = rng.uniform(0.02, 0.2, (1, joints, 3)), rng.uniform(0, 6, (1, joints, 3))
        seqs.append((0.5 + 0.3 * np.sin(freq * t + phase)).astype(np.float32))
        index.append({"name": f"s{i}", "text": " ".join(rng.choice(WORDS, 10)), "gloss": "", "signer": "a"})
    return SplitStore.from_sequences(seqs, index, [f"j{k}" for k in range(joints)], ["x", "y", "z"])


def timed(fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lifted", default="data/lifted")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params()
    cfg = parse_section(params, "evaluate", EvaluateConfig)
    fsec = parse_section(params, "fgd_encoder", FGDEncoderSection)
    bsec = parse_section(params, "backtranslator", BackTranslatorSection)
    lifted = Path(args.lifted)
    real = all((lifted / s / "meta.json").exists() for s in ("train", "dev", "test"))
    rng = np.random.default_rng(0)
    if real:
        stores = {s: SplitStore.load(lifted / s) for s in ("train", "dev", "test")}
    else:
        stores = {s: fake_store(n, rng) for s, n in (("train", 600), ("dev", 60), ("test", 60))}
    n_feat = stores["train"].poses.shape[1] * 3
    trained = Path("models/fgd_encoder/model.pt").exists() and Path("models/backtranslator/model.pt").exists()
    if trained:
        fgd_encoder = load_fgd_encoder("models/fgd_encoder")
        backtranslator, vocab, glosses = load_backtranslator("models/backtranslator")
    else:
        fgd_encoder = FGDEncoder(dataclasses.replace(fsec.model, n_features=n_feat)).eval()
        vocab = Vocab.build([e["text"] for e in stores["train"].index])
        bt_config = dataclasses.replace(bsec.model, n_features=n_feat, vocab_size=len(vocab), max_tokens=12)
        backtranslator, glosses = BackTranslator(bt_config).eval(), None
    if Path("models/student/model.pt").exists():
        from pipeline.inference import load_student

        student = load_student("models/student", "cpu")
        generator, student_kind = (lambda t: student.generate(t, batch_size=cfg.batch_size)), "trained"
    else:
        gen_rng = np.random.default_rng(1)
        j = stores["train"].poses.shape[1]
        generator, student_kind = (
            (lambda t: [gen_rng.random((int(gen_rng.integers(60, 181)), j, 3)) for _ in t]),
            "fake",
        )
    scorer = Scorer.from_config(fgd_encoder, backtranslator, vocab, cfg, glosses)
    totals = []
    with torch.no_grad():
        for _ in range(args.repeat):
            _, sec = timed(evaluate, stores, scorer, cfg, check_seed(params["seed"]), generator, lifted)
            totals.append(sec)
        names = ("generate", "fgd", "backtranslate", "recognise", "dtw_mje", "dtw_manual", "dtw_python")
        parts = dict.fromkeys(names, 0.0)
        n_sent = n_frames = 0
        for k, split in enumerate(cfg.splits):
            refs, texts, ref_glosses = references(stores[split], split)
            gens, sec = timed(generator, texts)
            parts["generate"] += sec
            systems = {"gt": refs, **baselines(stores["train"], len(refs), np.random.default_rng(k))}
            systems["student"] = [np.asarray(g, np.float32) for g in gens]
            ref_len = np.array([len(r) for r in refs])
            parts_of = part_slices(refs[0].shape[1])
            ref_feats = WindowFeatures(fgd_encoder, refs)  # shared by the systems, as in Scorer.score_split
            for seqs in systems.values():
                n_sent += len(seqs)
                n_frames += sum(len(s) for s in seqs)
                gen_feats = WindowFeatures(fgd_encoder, seqs)
                parts["fgd"] += timed(scorer.fgd_readings, ref_feats, gen_feats, len(refs), ref_len)[1]
                parts["backtranslate"] += timed(translate, backtranslator, vocab, seqs, cfg.batch_size)[1]
                if glosses is not None:
                    parts["recognise"] += timed(recognise, backtranslator, glosses, seqs, cfg.batch_size)[1]
                align = MANUAL if refs[0].shape[1] > MANUAL.stop else None
                parts["dtw_mje"] += timed(dtw_mje_parts, seqs, refs, parts_of, align)[1]
                manual_g = [np.asarray(g)[:, align or slice(None)] for g in seqs]
                manual_r = [r[:, align or slice(None)] for r in refs]
                parts["dtw_manual"] += timed(dtw_mje_parts, manual_g, manual_r)[1]
                t0 = time.perf_counter()
                for g, r in zip(manual_g, manual_r, strict=True):
                    python_dtw_mje(g, r)
                parts["dtw_python"] += time.perf_counter() - t0
    result = {
        "data": str(lifted) if real else "stand-in (600/60/60 sequences, 60-180 frames, 120 joints)",
        "models": "trained" if trained else "untrained, default sizes",
        "student": student_kind,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sequences_scored": n_sent,
        "frames_scored": n_frames,
        "evaluate_seconds_best": round(min(totals), 2),
        "parts_seconds": {k: round(v, 2) for k, v in parts.items()},
    }
    print(json.dumps(result, indent=1))
    if args.write_docs:
        write_docs(result)


def write_docs(r: dict) -> None:
    parts = r["parts_seconds"]
    speedup = parts["dtw_python"] / max(parts["dtw_manual"], 1e-9)
    body = (
        "Script: `benchmarks/eval_time.py` (`python -m benchmarks.eval_time --threads 1 --write-docs`). "
        f"Data: {r['data']}; FGD encoder / back-translator: {r['models']}; student: {r['student']}. "
        "Timed: `pipeline.evaluation.scoring.evaluate` on dev + test for GT, Mean, both Randoms and the "
        "student (everything but loading the models and writing the files), then its parts separately.\n\n"
        "| what | seconds |\n|---|---:|\n"
        f"| whole evaluation ({r['sequences_scored']} sequences, {r['frames_scored']:,} frames) "
        f"| {r['evaluate_seconds_best']} |\n"
        f"| student generation | {parts['generate']} |\n"
        f"| FGD, both readings, all Table-2 spans (TAE features + Fréchet distances) | {parts['fgd']} |\n"
        f"| beam-search back-translation | {parts['backtranslate']} |\n"
        f"| CTC gloss recognition | {parts['recognise']} |\n"
        f"| DTW-MJE + per-part errors incl. the face (vectorised) | {parts['dtw_mje']} |\n"
        f"| DTW-MJE on the manual joints only, vectorised | {parts['dtw_manual']} |\n"
        f"| the same with the per-pair plain-Python DP it replaced | {parts['dtw_python']} |\n\n"
        f"DTW speed-up on the same work in this run: {speedup:.1f}x. "
        "The per-part errors cost the 120-joint distance matrices on top (the face's 70 joints).\n\n"
        f"Machine: {r['cpus']} CPU cores, {r['threads']} torch threads, Python {r['python']}, "
        f"torch {r['torch']}, shared with other jobs while measured (figures vary by tens of percent).\n"
    )
    write_section("Evaluation time", body)


if __name__ == "__main__":
    main()
