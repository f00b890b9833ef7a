"""Stage ``normalise``: clean, select joints, centre/scale per sequence, map into [0, 1].

Reads ``data/ingested/<split>/``; writes ``data/normalised/<split>/`` (SplitStore: 50 manual
joints, or 120 with ``normalise.face``; channels [x, y, c] for 2D OpenPose sources, [x, y, z] for
3D sources), ``data/normalised/transform.json`` (the [0, 1] map fitted on train) and
``metrics/normalise.json`` (counts per split). The rules are in
:mod:`pipeline.preprocess.normalise`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from pipeline.config import Stage, parse_section
from pipeline.data.store import SPLITS, SplitStore, StoreError
from pipeline.preprocess.normalise import NormaliseConfig, normalise
from pipeline.training import tracking

SRC = Path("data/ingested")
DST = Path("data/normalised")
METRICS = Path("metrics/normalise.json")
STAGE = Stage("normalise", ("normalise",), (SRC,), (DST, METRICS))
log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m pipeline.stages.normalise``."""
    params = STAGE.start(__doc__, argv)
    cfg = parse_section(params, "normalise", NormaliseConfig)
    dirs = {s: SRC / s for s in SPLITS if (SRC / s).is_dir()}
    if not dirs:
        raise StoreError(f"{SRC}: no split directory; run the ingest stage first")
    stores = {s: SplitStore.load(d, mmap=True) for s, d in dirs.items()}
    out, transform, metrics = normalise(stores, cfg)
    if DST.exists():
        shutil.rmtree(DST)
    for split, store in out.items():
        store.save(DST / split)
        log.debug("%s: %d sequences, %d frames", split, len(store), store.poses.shape[0])
    is3d = out["train"].channels == ["x", "y", "z"]
    meta = {
        "low": transform.low,
        "high": transform.high,
        "channels": ["x", "y", "z"] if is3d else ["x", "y"],
        "fitted_on": "train",
        "margin": cfg.margin,
        "units": "body-centred: (p - centre) / scale, centre = mean neck, scale = median shoulder width",
    }
    STAGE.write_json(DST / "transform.json", meta)
    STAGE.write_json(METRICS, metrics)
    with tracking.stage_run(STAGE.name, params) as run:  # the counts in MLflow (child and parent run)
        tracking.log_metrics_file(run, METRICS)
    splits = list(out)
    total = {k: sum(metrics[s].get(k, 0) for s in splits) for k in ("sequences_dropped", "frames_dropped")}
    STAGE.summary(
        f"{'/'.join(str(len(out[s])) for s in splits)} sequences ({'/'.join(splits)}), "
        f"{total['sequences_dropped']} sequences and {total['frames_dropped']} frames dropped, "
        f"{sum(metrics[s].get('frames_other_person', 0) for s in splits)} frames with another person"
    )


if __name__ == "__main__":
    main()
