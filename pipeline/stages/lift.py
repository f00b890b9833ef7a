"""Stage ``lift``: 2D -> 3D skeletal-model lifting of the 50 manual joints.

Reads ``data/normalised/<split>/`` (channels x, y, c in [0, 1]; 3D sources pass through) and its
``transform.json``; writes ``data/lifted/<split>/`` (channels x, y, z in [0, 1]),
``data/lifted/transform.json`` (the [0, 1] map fitted on the train split, exactly invertible to
body-centred 3D units) and ``metrics/lift.json`` (throughput, bone rigidity, reprojection error,
MPJPE-PA against the synthetic corpus's 3D). The methods (``lift.method``) are in
:mod:`pipeline.lifting.lift`; ``knn`` learns its depth prior from the train split's 3D and falls
back to ``viterbi`` (logged, and named in ``metrics/lift.json``'s ``method``) where there is none.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from pipeline.config import Stage, parse_section, resolve_device
from pipeline.data.store import SPLITS, SplitStore, StoreError
from pipeline.data.transform import UnitRange
from pipeline.lifting.config import LiftConfig
from pipeline.lifting.lift import bank_from_split, lift_split
from pipeline.training import tracking

SRC = Path("data/normalised")
DST = Path("data/lifted")
METRICS = Path("metrics/lift.json")
STAGE = Stage("lift", ("seed", "lift"), (SRC,), (DST, METRICS))
log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m pipeline.stages.lift``."""
    params = STAGE.start(__doc__, argv)
    cfg = parse_section(params, "lift", LiftConfig)
    torch.manual_seed(int(params["seed"]))
    device = resolve_device(cfg.device, "lift.device")
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    tf = UnitRange.load(SRC / "transform.json")
    missing = [s for s in SPLITS if not (SRC / s).is_dir()]
    if missing:
        raise StoreError(
            f"{SRC}: no {'/'.join(missing)} split — the corpus must have train, dev and test "
            f"(*.<split>.corpus.csv for OpenPose sources); lift and the later stages need all three"
        )
    stores = {s: SplitStore.load(SRC / s) for s in SPLITS}
    bank, t0 = None, time.perf_counter()
    if cfg.method == "knn":  # the learned prior: the train split's 3D (the synthetic corpus has it)
        bank = bank_from_split(stores["train"], tf, cfg, str(SRC / "train"))
        if bank is None:
            log.warning(
                "lift.method knn: %s has no 3D (gt3d) to learn from; lifting with viterbi", SRC / "train"
            )
            cfg = dataclasses.replace(cfg, method="viterbi")
    bank_seconds = time.perf_counter() - t0
    lifted, metrics = {}, {"device": device.type, "method": cfg.method}
    if bank is not None:
        metrics["knn_bank_frames"] = len(bank)
        metrics["knn_bank_seconds"] = round(bank_seconds, 3)
    for split, store in stores.items():
        lifted[split], metrics[split] = lift_split(
            store, tf, split, cfg, device, str(SRC / split), bank, bank_is_split=split == "train"
        )
        log.debug("lift %s: %s", split, metrics[split])
    out_tf = UnitRange.fit(lifted["train"], margin=cfg.margin)
    DST.mkdir(parents=True, exist_ok=True)
    out_tf.save(STAGE.out(DST / "transform.json"))
    for split, store in stores.items():
        v = out_tf.forward(lifted[split])
        outside = int(((v < 0) | (v > 1)).sum())
        metrics[split]["clipped_values"] = outside
        metrics[split]["clipped_fraction"] = outside / max(v.size, 1)
        if outside:
            log.warning("lift %s: %d values outside [0, 1] clipped", split, outside)
        extra = {**store.extra, "lift": {"source_channels": store.channels, "units": "body-centred"}}
        SplitStore(
            np.clip(v, 0.0, 1.0).astype(np.float32),
            store.offsets,
            store.index,
            store.joints,
            ["x", "y", "z"],
            store.fps,
            {k: np.asarray(a) for k, a in store.arrays.items()},
            extra,
        ).save(DST / split)
    total = sum(metrics[s]["frames"] for s in SPLITS)
    secs = sum(metrics[s]["seconds"] for s in SPLITS) + bank_seconds
    metrics["frames_per_s"] = round(total / max(secs, 1e-9), 1)
    STAGE.write_json(METRICS, metrics)
    with tracking.stage_run(STAGE.name, params) as run:  # the counts in MLflow (child and parent run)
        tracking.log_metrics_file(run, METRICS)
    test = metrics["test"]
    keys = ("reprojection_error", "bone_length_cv", "mpjpe_pa_body", "mpjpe_pa_hands")  # 2D sources; gt3d
    shown = ", ".join(f"{k} {test[k]:.4g}" for k in keys if k in test) or "3D source passed through"
    STAGE.summary(f"{cfg.method}: {total} frames at {metrics['frames_per_s']:.0f} frames/s; test {shown}")


if __name__ == "__main__":
    main()
