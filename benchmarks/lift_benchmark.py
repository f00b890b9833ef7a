"""Accuracy and throughput of the lift stage's 2D -> 3D model (pipeline/lifting/lift.py).

    python -m benchmarks.lift_benchmark --threads 2 --sequences 200 --frames 100

1. Synthetic signer (pipeline.lifting.toy.synthetic_signer): known 3D, projected with a
   perspective camera 6 shoulder widths away, 2D noise, random confidences and 5 % dropped
   joints (c = 0, coordinates garbage), normalised like the normalise stage (neck origin, 2D
   shoulder width 1). MPJPE after per-sequence Procrustes, body and hands, as a fraction of the
   shoulder width; the flat (z = 0) solution as a baseline. Throughput in frames/s (warm).
2. Real frames (../shared/data/openpose-czech-demo, when present): 2D reprojection error,
   mean bone-length CV across frames, Procrustes distance to lifted_3d_reference.npz (as a
   fraction of the reference's shoulder width), with the reference's own CV for comparison.
Prints one JSON object (also written to --out when given).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.config import from_mapping, load_params
from pipeline.lifting import bones as K
from pipeline.lifting.config import LiftConfig
from pipeline.lifting.lift import fill_missing, lift_sequences
from pipeline.lifting.metrics import bone_length_cv, procrustes_align, reprojection_error, shoulder_width
from pipeline.lifting.toy import project, synthetic_signer

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "openpose-czech-demo"


def _to_body(p: np.ndarray) -> np.ndarray:
    sw = np.linalg.norm(p[:, 2] - p[:, 5], axis=-1)
    return (p - p[:, K.ROOT : K.ROOT + 1]) / np.median(sw[sw > 0])


def synthetic(n: int, frames: int, cfg: LiftConfig, device: torch.device, seed: int) -> dict[str, float]:
    """Accuracy and warm throughput on ``n`` synthetic sequences of ~``frames`` frames."""
    rng = np.random.default_rng(seed)
    gts = [synthetic_signer(int(rng.integers(frames // 2, frames * 3 // 2)), rng) for _ in range(n)]
    pts, cs = [], []
    for g in gts:
        p = project(g, 6.0)
        p = p + rng.normal(0, 0.01, p.shape) * (1 + np.arange(50)[None, :, None] >= 8)
        c = rng.uniform(0.3, 1.0, p.shape[:2])
        drop = rng.random(c.shape) < 0.05
        drop[:, K.ROOT] = False
        c[drop] = 0.0
        p[drop] = rng.uniform(-3, 3, (drop.sum(), 2))
        pts.append(_to_body(p))
        cs.append(c)
    lift_sequences(pts[:2], cs[:2], ["warm0", "warm1"], cfg, device)  # imports, allocator
    t0, c0 = time.perf_counter(), time.process_time()
    out = lift_sequences(pts, cs, [f"syn{i}" for i in range(n)], cfg, device)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    frames_total = sum(len(p) for p in pts)

    def pa(preds: list[np.ndarray], part: slice) -> float:
        errs = []
        for o, g in zip(preds, gts, strict=True):
            a = procrustes_align(o, g)
            errs.append(np.linalg.norm(a - g, axis=-1)[:, part].mean() / shoulder_width(g))
        return float(np.mean(errs))

    # baseline: the 2D pose itself at depth 0 (dropped joints interpolated as the lift does)
    filled = [fill_missing(p, c >= cfg.min_confidence) for p, c in zip(pts, cs, strict=True)]
    flat = [np.concatenate([p, np.zeros((*p.shape[:2], 1))], -1) for p in filled]
    return {
        "sequences": n,
        "frames": frames_total,
        "seconds": round(seconds, 2),
        "frames_per_s": round(frames_total / seconds, 1),
        "cpu_seconds": round(cpu, 2),  # process CPU time: less sensitive to other load
        "frames_per_cpu_s": round(frames_total / cpu, 1),
        "mpjpe_pa_body": pa(out, slice(0, 8)),
        "mpjpe_pa_hands": pa(out, slice(8, 50)),
        "flat_mpjpe_pa_body": pa(flat, slice(0, 8)),
        "flat_mpjpe_pa_hands": pa(flat, slice(8, 50)),
        "bone_length_cv": float(np.mean([bone_length_cv(o) for o in out])),
        "reprojection_error": float(
            np.mean(
                [
                    reprojection_error(o, p, c, cfg.min_confidence)
                    for o, p, c in zip(out, pts, cs, strict=True)
                ]
            )
        ),
    }


def czech(cfg: LiftConfig, device: torch.device) -> dict[str, dict[str, float]]:
    """Reprojection error, bone-length CV and Procrustes distance to the published lifting."""
    data = np.load(SHARED / "selected_2d.npz")
    ref = np.load(SHARED / "lifted_3d_reference.npz")
    res = {}
    for name in data.files:
        a = data[name].reshape(-1, 50, 3)
        r = ref[name].reshape(-1, 50, 3).astype(np.float64)
        u, c = _to_body(a[..., :2]), a[..., 2]
        out = lift_sequences([u], [c], [name], cfg, device)[0].astype(np.float64)
        # the reference's depth axis points towards the camera (its wrists have the largest z):
        # flip it into our right-handed frame (z away from the camera); as-is reported as well
        rf = r * [1.0, 1.0, -1.0]
        aligned = procrustes_align(out, rf)
        as_is = procrustes_align(out, r)
        uf = fill_missing(u, c >= cfg.min_confidence)
        flat = procrustes_align(np.concatenate([uf, np.zeros((*u.shape[:2], 1))], -1), rf)
        sw = shoulder_width(r)
        res[name] = {
            "frames": len(a),
            "reprojection_error": reprojection_error(out, u, c, cfg.min_confidence),
            "bone_length_cv": bone_length_cv(out),
            "reference_bone_length_cv": bone_length_cv(r),
            "procrustes_to_reference": float(np.linalg.norm(aligned - rf, axis=-1).mean() / sw),
            "procrustes_to_reference_body": float(np.linalg.norm(aligned - rf, axis=-1)[:, :8].mean() / sw),
            "procrustes_to_reference_unflipped": float(np.linalg.norm(as_is - r, axis=-1).mean() / sw),
            "flat_procrustes_to_reference": float(np.linalg.norm(flat - rf, axis=-1).mean() / sw),
        }
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sequences", type=int, default=200)
    ap.add_argument("--frames", type=int, default=100, help="mean frames per sequence")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lift_params = load_params().get("lift", {})
    cfg = from_mapping(LiftConfig, {**lift_params, "device": args.device}, "lift")
    device = torch.device(args.device)
    result = {
        "threads": args.threads,
        "device": args.device,
        "params": vars(cfg),
        "synthetic": synthetic(args.sequences, args.frames, cfg, device, args.seed),
    }
    if SHARED.is_dir():
        result["czech"] = czech(cfg, device)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
