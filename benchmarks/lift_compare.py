"""Side by side: our lifting vs the Zelinka & Kanis port vs the flat 2D pose (issue 17).

    dvc repro normalise      # the default synthetic corpus (or point --normalised elsewhere)
    python -m benchmarks.lift_compare [--splits train dev test] [--threads 2] [--write]

For each split of ``data/normalised`` (which carries the generator's 3D as ``gt3d``) it lifts with
``lift.method: viterbi`` (ours, params.yaml's settings) and ``lift.method: zelinka_kanis`` exactly
as the stage does (:func:`pipeline.lifting.lift.lift_split`), and takes the flat pose (the filled
2D at depth 0). Reported: MPJPE-PA (one similarity Procrustes per sequence, no reflection, / the
truth's shoulder width) for the body and each hand, the mean bone-length CV, the reprojection
error and frames/s. On the real Czech frames (``../shared/data/openpose-czech-demo``) there is no
3D truth: the port is checked against Zelinka & Kanis' published output (Procrustes disparity as
``scipy.spatial.procrustes`` computes it, max |difference| per axis) and every method is compared
with that output. ``--write`` puts the tables into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import procrustes

from benchmarks.docs import write_section
from pipeline.config import from_mapping, load_params
from pipeline.data.skeleton import PARTS
from pipeline.data.store import SplitStore
from pipeline.data.transform import UnitRange
from pipeline.lifting import bones as K
from pipeline.lifting import zelinka_kanis as Z
from pipeline.lifting.config import LiftConfig
from pipeline.lifting.knn_prior import DepthBank
from pipeline.lifting.lift import bank_from_split, fill_missing, knn_initial_depth, lift_sequences, lift_split
from pipeline.lifting.metrics import bone_length_cv, procrustes_align, reprojection_error, shoulder_width

CZECH = Path("../shared/data/openpose-czech-demo")
CPU = torch.device("cpu")
PART_SLICES = {"body": PARTS["body"], "left hand": PARTS["left_hand"], "right hand": PARTS["right_hand"]}
METHODS = ("knn", "viterbi", "zelinka_kanis", "flat")
Rows = dict[str, dict[str, float]]
ZK_FLIPPED = "zelinka_kanis, z not flipped"  # the other reading of their depth axis


def part_errors(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """MPJPE after one similarity Procrustes of the whole sequence, per part, / shoulder width."""
    aligned = procrustes_align(pred, gt)
    err = np.linalg.norm(aligned - gt, axis=-1) / shoulder_width(gt)
    return {name: float(err[:, part].mean()) for name, part in PART_SLICES.items()}


def flat(store: SplitStore, tf: UnitRange, cfg: LiftConfig) -> np.ndarray:
    """The filled 2D pose at depth 0, body-centred units [F, 50, 3]."""
    raw = np.asarray(store.poses, dtype=np.float64)[:, : K.N_MANUAL]
    u = tf.inverse(raw[..., :2])
    out = np.zeros((len(u), K.N_MANUAL, 3))
    for i in range(len(store)):
        a, b = store.offsets[i], store.offsets[i + 1]
        out[a:b, :, :2] = fill_missing(u[a:b], raw[a:b, :, 2] >= cfg.min_confidence)
    return out


def evaluate_split(
    normalised: Path, split: str, cfg: LiftConfig, bank: DepthBank, bank_is_split: bool
) -> tuple[Rows, dict[str, np.ndarray]]:
    """Every method on one split: per-part MPJPE-PA, bone CV, reprojection error, frames/s
    (``knn`` with ``bank``; its build time is not counted here), and each method's per-sequence
    errors [n, 3 parts] for the paired intervals."""
    tf = UnitRange.load(normalised / "transform.json")
    store = SplitStore.load(normalised / split)
    raw = np.asarray(store.poses, dtype=np.float64)[:, : K.N_MANUAL]
    u, conf = tf.inverse(raw[..., :2]), raw[..., 2]
    bounds = list(zip(store.offsets[:-1], store.offsets[1:], strict=True))
    gts = [store.sequence(i, "gt3d")[:, : K.N_MANUAL].astype(np.float64) for i in range(len(store))]

    def errors(out: np.ndarray) -> np.ndarray:
        return np.array(
            [list(part_errors(out[a:b], g).values()) for (a, b), g in zip(bounds, gts, strict=True)]
        )

    rows, per_seq = {}, {}
    for method in METHODS:
        t0 = time.perf_counter()
        if method == "flat":
            out = flat(store, tf, cfg)
        else:
            method_cfg = dataclasses.replace(cfg, method=method)
            out, _ = lift_split(store, tf, split, method_cfg, CPU, bank=bank, bank_is_split=bank_is_split)
        seconds = time.perf_counter() - t0
        out = np.asarray(out, dtype=np.float64)[:, : K.N_MANUAL]
        per_seq[method] = errors(out)
        row = dict(zip(PART_SLICES, per_seq[method].mean(axis=0).tolist(), strict=True))
        row["bone_cv"] = float(np.mean([bone_length_cv(out[a:b]) for a, b in bounds if b - a > 1]))
        row["reprojection"] = reprojection_error(out, u, conf, cfg.min_confidence)
        row["frames_per_s"] = len(out) / seconds
        rows[method] = row
        if method == "zelinka_kanis":  # their depth axis read the other way round
            per_seq[ZK_FLIPPED] = errors(out * np.array([1.0, 1.0, -1.0]))
            rows[ZK_FLIPPED] = {
                **row,
                **dict(zip(PART_SLICES, per_seq[ZK_FLIPPED].mean(axis=0).tolist(), strict=True)),
            }
    rows["frames"] = {"n": float(len(raw))}
    return rows, per_seq


def paired_interval(
    a: np.ndarray, b: np.ndarray, reps: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of the per-sequence differences ``a - b`` and its 95 % bootstrap interval (sequences
    resampled with replacement)."""
    d = a - b
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (reps, len(d)))].mean(axis=1)
    return float(d.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def czech(cfg: LiftConfig, bank: DepthBank) -> dict[str, dict[str, float]]:
    """The Czech frames: the port against the published output, and every method against it."""
    two_d, ref = np.load(CZECH / "selected_2d.npz"), np.load(CZECH / "lifted_3d_reference.npz")
    names = sorted(two_d.files)  # rec01 then rec02: the order their RandomState was drawn in
    port = Z.lift_raw([two_d[k].reshape(-1, 50, 3) for k in names], iterations=100)
    out = {}
    for k, (x, _, _) in zip(names, port, strict=True):
        r = ref[k].reshape(-1, 50, 3).astype(np.float64)
        a = two_d[k].reshape(-1, 50, 3).astype(np.float64)
        sw_ref = shoulder_width(r)
        row = {
            "port_disparity": float(procrustes(r.reshape(-1, 3), x.reshape(-1, 3))[2]),
            "port_max_dxy": float(np.abs(x[..., :2] - r[..., :2]).max()),
            "port_max_dz": float(np.abs(x[..., 2] - r[..., 2]).max()),
            "port_mean_dz": float(np.abs(x[..., 2] - r[..., 2]).mean()),
        }
        # our lifting on the same frames, in body-centred units (neck origin, 2D shoulder width 1)
        p, c = a[..., :2], a[..., 2]
        sw = np.linalg.norm(p[:, 2] - p[:, 5], axis=-1)[c[:, [2, 5]].min(1) > 0].mean()
        u = (p - p[:, K.ROOT : K.ROOT + 1]) / sw
        t0 = time.perf_counter()
        ours = lift_sequences([u], [c], [k], dataclasses.replace(cfg, method="viterbi"), CPU)[0]
        row["viterbi_frames_per_s"] = len(u) / (time.perf_counter() - t0)
        knn_cfg = dataclasses.replace(cfg, method="knn")
        knn = lift_sequences([u], [c], [k], knn_cfg, CPU, knn_initial_depth([u], [c], bank, knn_cfg))[0]
        flat_pose = np.concatenate([fill_missing(u, c >= cfg.min_confidence), np.zeros((len(u), 50, 1))], -1)
        for name, pred in (("port", x), ("knn", knn), ("viterbi", ours), ("flat", flat_pose)):
            for flip in (1.0, -1.0):
                q = pred.astype(np.float64) * np.array([1.0, 1.0, flip])
                d = np.linalg.norm(procrustes_align(q, r) - r, axis=-1).mean() / sw_ref
                row[f"{name}_to_reference{'' if flip > 0 else '_zflip'}"] = float(d)
        row["viterbi_reprojection"] = reprojection_error(ours, u, c, cfg.min_confidence)
        out[k] = row
    return out


COMPARISONS = (("viterbi", "knn"), ("zelinka_kanis", "viterbi"), ("flat", "zelinka_kanis"))


def render(splits: dict[str, Rows], per_seq: dict[str, dict[str, np.ndarray]], cz: Rows, threads: int) -> str:
    """The markdown tables for docs/benchmarks.md."""
    machine = f"{os.cpu_count()} CPU cores ({platform.machine()}), torch {torch.__version__}"
    machine += f", {threads} thread(s)"
    lines = [
        f"Machine: {machine}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Script: "
        "`python -m benchmarks.lift_compare --threads "
        f"{threads} --write` (after `dvc repro normalise`). Ours = `lift.method: knn` / `viterbi` "
        "with params.yaml's settings (`knn`: depth from the train split's 3D, train frames never "
        "using their own sequence's fold; `viterbi`: anatomical sign costs), theirs = "
        "`lift.method: zelinka_kanis` (100 gradient-descent steps as in their data pipeline), "
        "flat = the filled 2D at depth 0. MPJPE-PA: one similarity Procrustes per sequence "
        "(no reflection) against the generator's 3D, / its shoulder width.",
        "",
        "| split | method | body | left hand | right hand | bone CV | reprojection | frames/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for split, rows in splits.items():
        for m in (*METHODS, ZK_FLIPPED):
            r = rows[m]
            n = int(rows["frames"]["n"])
            lines.append(
                f"| {split} ({n:,} frames) | {m} | {r['body']:.3f} | {r['left hand']:.3f} | "
                f"{r['right hand']:.3f} | {r['bone_cv']:.1e} | {r['reprojection']:.4f} | "
                f"{r['frames_per_s']:,.0f} |"
            )
    lines += [
        "",
        "Paired differences per sequence (first minus second; body, and the two hands averaged), "
        "mean and 95 % bootstrap interval over sequences (2,000 resamples). The lifting is "
        "deterministic (no seed): the spread is over sequences.",
        "",
        "| split | difference | Δ body [95 % CI] | Δ hands [95 % CI] |",
        "|---|---|---|---|",
    ]
    for split, seqs in per_seq.items():
        for first, second in COMPARISONS:
            body = paired_interval(seqs[first][:, 0], seqs[second][:, 0])
            hands = paired_interval(seqs[first][:, 1:].mean(1), seqs[second][:, 1:].mean(1))
            cells = [f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]" for m, lo, hi in (body, hands)]
            lines.append(f"| {split} | {first} − {second} | {cells[0]} | {cells[1]} |")
    lines += [
        "",
        "**Port check** on the real Czech frames (`selected_2d.npz` → their `lifted_3d_reference.npz`, "
        "their units): Procrustes disparity (`scipy.spatial.procrustes`) and the largest differences.",
        "",
        "| recording | disparity | max abs Δx, Δy | max abs Δz | mean abs Δz |",
        "|---|---|---|---|---|",
    ]
    for k, r in cz.items():
        lines.append(
            f"| {k} | {r['port_disparity']:.1e} | {r['port_max_dxy']:.1e} | {r['port_max_dz']:.1e} | "
            f"{r['port_mean_dz']:.1e} |"
        )
    lines += [
        "",
        "Every method against the published output (Procrustes distance, / the reference's shoulder "
        "width; in brackets with our depth axis flipped first, since their depth sign is a convention "
        "of their initialisation):",
        "",
        "| recording | port | ours (knn, bank: synthetic train) | ours (viterbi) | flat |",
        "|---|---|---|---|---|",
    ]
    for k, r in cz.items():
        cells = [
            f"{r[f'{m}_to_reference']:.3f} ({r[f'{m}_to_reference_zflip']:.3f})"
            for m in ("port", "knn", "viterbi", "flat")
        ]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--normalised", type=Path, default=Path("data/normalised"))
    ap.add_argument("--splits", nargs="+", default=["train", "dev", "test"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--other",
        type=Path,
        help="the normalised folder of a corpus generated with another seed: its test split is "
        "lifted with the bank of --normalised's train split (the prior where it was not fitted)",
    )
    ap.add_argument("--write", action="store_true", help="write the tables into docs/benchmarks.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    cfg = from_mapping(LiftConfig, {**load_params().get("lift", {}), "device": "cpu"}, "lift")
    tf = UnitRange.load(args.normalised / "transform.json")
    bank = bank_from_split(SplitStore.load(args.normalised / "train"), tf, cfg)
    if bank is None:
        raise SystemExit(f"{args.normalised}/train has no gt3d: the comparison needs the synthetic corpus")
    splits, per_seq = {}, {}
    for s in args.splits:
        splits[s], per_seq[s] = evaluate_split(args.normalised, s, cfg, bank, bank_is_split=s == "train")
    if args.other:
        label = f"other corpus ({args.other}) test"
        splits[label], per_seq[label] = evaluate_split(args.other, "test", cfg, bank, bank_is_split=False)
    cz = czech(cfg, bank) if CZECH.is_dir() else {}
    text = render(splits, per_seq, cz, args.threads)
    print(text)
    if args.write:
        write_section("Lifting side by side: ours vs Zelinka & Kanis vs flat (issue 17)", text)


if __name__ == "__main__":
    main()
