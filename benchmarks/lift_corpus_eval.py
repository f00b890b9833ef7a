"""Quick accuracy check of the lift model on the normalised corpus (``dvc repro normalise`` first).

    python -m benchmarks.lift_corpus_eval --split dev [--set iterations=40 --set w_smooth=1]

Lifts one split of ``data/normalised`` exactly as the stage does (:func:`pipeline.lifting.lift.lift_split`)
and prints its metrics (MPJPE-PA body/hands against the gt3d sidecar, bone-length CV, frames/s)
plus diagnostics that use the ground truth *only for evaluation*: the flat (z = 0) baseline, the
hand error after a separate Procrustes per hand (finger shape without the hand's orientation),
and the fraction of bones whose depth step has the wrong sign (|gt dz| > 0.1 bone length).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml

from pipeline.config import from_mapping, load_params
from pipeline.data.skeleton import MANUAL_JOINTS
from pipeline.data.store import SplitStore
from pipeline.data.transform import UnitRange
from pipeline.lifting import bones as K
from pipeline.lifting.config import LiftConfig
from pipeline.lifting.lift import fill_missing, lift_split
from pipeline.lifting.metrics import mpjpe_pa, procrustes_align, shoulder_width
from pipeline.stages.lift import SRC

LH, RH = slice(8, 29), slice(29, 50)


def _hand_pa(pred: np.ndarray, gt: np.ndarray) -> float:
    sw = shoulder_width(gt)
    errs = []
    for part in (LH, RH):
        a = procrustes_align(pred[:, part], gt[:, part])
        errs.append(np.linalg.norm(a - gt[:, part], axis=-1).mean() / sw)
    return float(np.mean(errs))


def _sign_errors(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per bone: fraction of frames where the depth step has the wrong sign (after aligning)."""
    a = procrustes_align(pred, gt)
    dp, dg = K.bone_vectors(a)[..., 2], K.bone_vectors(gt)[..., 2]
    big = np.abs(dg) > 0.1 * np.linalg.norm(K.bone_vectors(gt), axis=-1)
    wrong = (np.sign(dp) != np.sign(dg)) & big
    return wrong.sum(0) / np.maximum(big.sum(0), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="dev")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], help="lift param override key=value")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    p = dict(load_params().get("lift", {}))
    for kv in args.set:
        k, v = kv.split("=", 1)
        p[k] = yaml.safe_load(v)
    cfg = from_mapping(LiftConfig, {**p, "device": "cpu"}, "lift")
    torch.use_deterministic_algorithms(True)
    tf = UnitRange.load(SRC / "transform.json")
    store = SplitStore.load(SRC / args.split)
    out, m = lift_split(store, tf, args.split, cfg, torch.device("cpu"))
    raw = np.asarray(store.poses, dtype=np.float64)
    u = np.concatenate([tf.inverse(raw[..., :2]), raw[..., 2:]], -1)
    hand, flat_b, flat_h, signs = [], [], [], []
    for i in range(len(store)):
        a, b = store.offsets[i], store.offsets[i + 1]
        gt = store.sequence(i, "gt3d")[:, : K.N_MANUAL].astype(np.float64)
        pred = out[a:b, : K.N_MANUAL].astype(np.float64)
        hand.append(_hand_pa(pred, gt))
        signs.append(_sign_errors(pred, gt))
        uf = fill_missing(u[a:b, : K.N_MANUAL, :2], u[a:b, : K.N_MANUAL, 2] >= cfg.min_confidence)
        f = mpjpe_pa(np.concatenate([uf, np.zeros((b - a, K.N_MANUAL, 1))], -1), gt)
        flat_b.append(f["body"])
        flat_h.append(f["hands"])
    s = np.mean(signs, axis=0)
    m["hands_per_hand_pa"] = float(np.mean(hand))
    m["flat_body"], m["flat_hands"] = float(np.mean(flat_b)), float(np.mean(flat_h))
    m["wrong_sign_arm"] = float(s[~K.HAND_BONES].mean())
    m["wrong_sign_hand"] = float(s[K.HAND_BONES].mean())
    m["wrong_sign_bones"] = {
        MANUAL_JOINTS[K.BONE_CHILD[b]]: round(float(s[b]), 3)
        for b in range(K.N_BONES)
        if b < 7 or b in (8, 9, 10, 12)
    }
    text = json.dumps({"overrides": args.set, **m}, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
