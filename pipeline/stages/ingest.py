"""Stage ``ingest``: read the source corpus (params ``data``) into one array store per split.

Reads ``${data.path}`` (OpenPose JSON with PHOENIX corpus files as a directory or archive, the
synthetic corpus, or Progressive-Transformers ``.skels``; see :mod:`pipeline.data.sources`);
writes ``data/ingested/<split>/`` (SplitStore: raw 137 joints x [x, y, c] pixels, or 50 joints x
[x, y, z] for ``pt_skels``) and ``metrics/ingest.json`` (counts, skipped files/rows per split and
reason with ``data.on_error: skip``, throughput).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from pipeline.config import Stage, parse_section
from pipeline.data.policy import DataConfig
from pipeline.data.sources import ingest
from pipeline.training import tracking

DST = Path("data/ingested")
METRICS = Path("metrics/ingest.json")
STAGE = Stage("ingest", ("data",), ("${data.path}",), (DST, METRICS))
log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m pipeline.stages.ingest``."""
    params = STAGE.start(__doc__, argv)
    cfg = parse_section(params, "data", DataConfig)
    stores, metrics = ingest(cfg)
    if DST.exists():
        shutil.rmtree(DST)
    for split, store in stores.items():
        store.save(DST / split)
        log.debug("%s: %d sequences, %d frames", split, len(store), store.poses.shape[0])
    STAGE.write_json(METRICS, metrics)
    with tracking.stage_run(STAGE.name, params) as run:  # the counts in MLflow (child and parent run)
        tracking.log_metrics_file(run, METRICS)
    splits = [s for s in stores]
    skipped = sum(m.get("skipped_total", 0) for m in metrics.values() if isinstance(m, dict))
    STAGE.summary(
        f"source {metrics['source']}: {'/'.join(str(len(stores[s])) for s in splits)} sequences "
        f"({'/'.join(splits)}), {metrics['frames']} frames, {skipped} skipped, "
        f"{metrics['frames_per_s']:.0f} frames/s"
    )


if __name__ == "__main__":
    main()
