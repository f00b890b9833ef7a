"""How sensitive is the lift's accuracy to its bone lengths? (``dvc repro normalise`` first).

    python -m benchmarks.lift_length_sensitivity --split dev
    python -m benchmarks.lift_length_sensitivity --split train --scale shoulder=0.96 --scale nose=1.1

Lifts one split of ``data/normalised`` as the stage does, but with the initial bone lengths of
:func:`pipeline.lifting.lift.init_lengths` replaced: ``--scale CLASS=FACTOR`` multiplies the estimated
length of a body bone class (``nose``, ``shoulder``, ``elbow`` = upper arm, ``wrist`` = forearm,
``hand`` = every hand bone); each ``--scale`` set is one row, ``a=1,b=2`` scales two classes in
one row. Row ``oracle`` uses the true lengths of the gt3d sidecar instead, brought into the 2D's
units by a least-squares scale of the ground truth's x, y onto the observed 2D (ground truth used
only for this diagnostic). Prints MPJPE-PA body / hands per row and the estimated / true length
ratio per class.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch

from pipeline.config import from_mapping, load_params
from pipeline.data.skeleton import MANUAL_JOINTS
from pipeline.data.store import SplitStore
from pipeline.data.transform import UnitRange
from pipeline.lifting import bones as K
from pipeline.lifting import lift
from pipeline.lifting.config import LiftConfig
from pipeline.lifting.metrics import mpjpe_pa
from pipeline.stages.lift import SRC

BODY_CLASSES = {"nose": "body_nose", "shoulder": "body_r_shoulder", "elbow": "body_r_elbow"}
BODY_CLASSES |= {"wrist": "body_r_wrist"}


def _class_of(joint: str) -> int:
    return int(K.BONE_CLASS[int(np.flatnonzero(MANUAL_JOINTS.index(joint) == K.BONE_CHILD)[0])])


def class_scale(spec: str) -> np.ndarray:
    """``"shoulder=0.96,nose=1.1"`` -> a factor per bone class (1 elsewhere)."""
    scale = np.ones(K.N_CLASSES)
    hand = np.zeros(K.N_CLASSES, bool)
    hand[K.BONE_CLASS[K.HAND_BONES]] = True
    for item in filter(None, spec.split(",")):
        name, value = item.split("=")
        if name == "hand":
            scale[hand] = float(value)
        elif name in BODY_CLASSES:
            scale[_class_of(BODY_CLASSES[name])] = float(value)
        else:
            raise SystemExit(f"--scale {item}: unknown class {name!r} (known: {[*BODY_CLASSES, 'hand']})")
    return scale


def true_lengths(points: np.ndarray, conf: np.ndarray, gt: np.ndarray, min_confidence: float) -> np.ndarray:
    """True length per class in the 2D units: gt lengths x the least-squares scale of gt x, y onto the 2D."""
    rel_p = points - points[:, K.ROOT : K.ROOT + 1]
    rel_g = gt[..., :2] - gt[:, K.ROOT : K.ROOT + 1, :2]
    ok = conf >= min_confidence
    k = (rel_p[ok] * rel_g[ok]).sum() / (rel_g[ok] ** 2).sum()
    per_bone = K.bone_lengths(gt).mean(0) * k
    return np.array([per_bone[c == K.BONE_CLASS].mean() for c in range(K.N_CLASSES)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="dev")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scale", action="append", default=[], help="CLASS=FACTOR[,CLASS=FACTOR]; one row each")
    ap.add_argument("--no-oracle", action="store_true", help="skip the true-length row")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    cfg = from_mapping(LiftConfig, {**load_params().get("lift", {}), "device": "cpu"}, "lift")
    tf = UnitRange.load(SRC / "transform.json")
    store = SplitStore.load(SRC / args.split)
    if "gt3d" not in store.arrays:
        raise SystemExit(f"{SRC / args.split}: no gt3d sidecar (a synthetic corpus is needed)")
    raw = np.asarray(store.poses, np.float64)
    u, c = tf.inverse(raw[..., :2]), raw[..., 2]
    seqs = [slice(store.offsets[i], store.offsets[i + 1]) for i in range(len(store))]
    pts = [u[s, : K.N_MANUAL] for s in seqs]
    cs = [c[s, : K.N_MANUAL] for s in seqs]
    gts = [store.sequence(i, "gt3d")[:, : K.N_MANUAL].astype(np.float64) for i in range(len(store))]
    names = [f"{args.split}/{i}" for i in range(len(store))]
    estimate = lift.init_lengths

    def run(lengths: Callable[[int, np.ndarray, np.ndarray], np.ndarray]) -> tuple[float, float]:
        calls = iter(range(len(pts)))
        order = sorted(range(len(pts)), key=lambda i: len(pts[i]))  # lift_sequences' batching order
        lift.init_lengths = lambda p, ok, cfg: lengths(order[next(calls)], p, ok)
        try:
            outs = lift.lift_sequences(pts, cs, names, cfg, torch.device("cpu"))
        finally:
            lift.init_lengths = estimate
        errs = [mpjpe_pa(o, g) for o, g in zip(outs, gts, strict=True)]
        return float(np.mean([e["body"] for e in errs])), float(np.mean([e["hands"] for e in errs]))

    print(f"split {args.split}: {len(pts)} sequences, {len(u)} frames")
    print(f"{'lengths':<32} body   hands")
    rows = [("estimated (stage)", "")] + [(s, s) for s in args.scale]
    for label, spec in rows:
        scale = class_scale(spec)
        body, hands = run(lambda i, p, ok, scale=scale: estimate(p, ok, cfg) * scale)
        print(f"{label:<32} {body:.3f}  {hands:.3f}")
    if not args.no_oracle:
        truth = [true_lengths(p, ci, g, cfg.min_confidence) for p, ci, g in zip(pts, cs, gts, strict=True)]
        body, hands = run(lambda i, p, ok: truth[i])
        print(f"{'oracle (true lengths)':<32} {body:.3f}  {hands:.3f}")
        ratio = np.array(
            [
                estimate(lift.fill_missing(p, ci >= cfg.min_confidence), ci >= cfg.min_confidence, cfg) / t
                for p, ci, t in zip(pts, cs, truth, strict=True)
            ]
        )
        print("estimated / true length, median [IQR]:")
        for name, joint in BODY_CLASSES.items():
            q = np.nanquantile(ratio[:, _class_of(joint)], [0.25, 0.5, 0.75])
            print(f"  {name:<9} {q[1]:.3f} [{q[0]:.3f}, {q[2]:.3f}]")
        hand = np.unique(K.BONE_CLASS[K.HAND_BONES])
        finite = ratio[:, hand][np.isfinite(ratio[:, hand])]
        q = np.quantile(finite, [0.25, 0.5, 0.75])
        print(f"  {'hand':<9} {q[1]:.3f} [{q[0]:.3f}, {q[2]:.3f}] (all hand bones)")


if __name__ == "__main__":
    main()
