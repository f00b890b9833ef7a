"""Wall time of `dvc repro` on a fresh clone, per stage: the README's "how long does the main job take".

Clones the repository (``--repo``, default this one) into a temporary directory, runs ``dvc repro``
there with the current Python environment (install the requirements first; the clone gets no venv
of its own) and time-stamps every output line; a stage's time runs from its ``Running stage`` line
to the next stage's line (or the end). Stages DVC skips are listed as skipped. Prints one JSON
object; the figures in docs/benchmarks.md § "`dvc repro` on a fresh clone" were taken this way
(2026-12-01, before this script existed, with the same clone + timestamped ``dvc repro``).

    python -m benchmarks.repro_time                  # prints {"total_s": ..., "stages": {...}}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNNING = re.compile(r"Running stage '([^']+)'")
SKIPPED = re.compile(r"Stage '([^']+)' didn't change, skipping")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[1]))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", args.repo, str(clone)], check=True)
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{clone / 'mlflow.db'}"}
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "dvc", "repro"],
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        starts: list[tuple[str, float]] = []
        skipped: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            now = time.perf_counter() - t0
            if m := RUNNING.search(line):
                starts.append((m.group(1), now))
            elif m := SKIPPED.search(line):
                skipped.append(m.group(1))
                starts.append(("(skipped)", now))
        rc = proc.wait()
        total = time.perf_counter() - t0
    ends = [t for _, t in starts[1:]] + [total]
    timed = zip(starts, ends, strict=True)
    stages = {name: round(end - t, 1) for (name, t), end in timed if name != "(skipped)"}
    print(
        json.dumps(
            {
                "returncode": rc,
                "total_s": round(total, 1),
                "stages": stages,
                "skipped": skipped,
                "cpus": os.cpu_count(),
                "machine": platform.processor() or platform.machine(),
                "python": platform.python_version(),
            },
            indent=1,
        )
    )
    if rc:
        sys.exit(rc)


if __name__ == "__main__":
    main()
