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

DST = Path("data/ingested")
METRICS = Path("metrics/ingest.json")
STAGE = Stage("ingest", ("data",), ("${data.path}",), (DST, METRICS))
log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m pipeline.stages.ingest``."""
    cfg = parse_section(STAGE.start(__doc__, argv), "data", DataConfig)
    stores, metrics = ingest(cfg)
    if DST.exists():
        shutil.rmtree(DST)
    for split, store in stores.items():
        store.save(DST / split)
        log.info("%s: %d sequences, %d frames", split, len(store), store.poses.shape[0])
    STAGE.write_json(METRICS, metrics)
    log.info(
        "%d frames in %.2f s (%.0f frames/s)", metrics["frames"], metrics["seconds"], metrics["frames_per_s"]
    )


if __name__ == "__main__":
    main()
