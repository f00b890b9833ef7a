"""CI metric guard: ``python -m pipeline.tools.check_metrics --baseline DIR --current DIR``.

Compares guarded metrics of a run (``--current``: a directory of metrics JSON files, e.g. the CI
smoke run's ``metrics/``) with a committed baseline (``--baseline``, default ``metrics/ci``)
using the thresholds of a versioned YAML file (``--thresholds``, default
``metrics/thresholds.yaml``)::

    guards:
      - file: eval.json                 # metrics JSON, relative to both directories
        metric: test.student.fgd_pooled # dotted key (nested JSON is flattened)
        direction: lower                # lower | higher = which way is better
        abs: 0.005                      # tolerance, absolute (optional, default 0)
        rel: 0.10                       # tolerance, relative to |baseline| (optional, default 0)

A guard fails when the current value is worse than the baseline by more than
``max(abs, rel * |baseline|)``, or when the value is missing or not finite on either side.
Improvements never fail (the baseline is updated by hand, see ``python -m pipeline.tools.smoke
--update-baseline``). Exit status: 0 all guards pass, 1 a guard failed, 2 bad thresholds file
or arguments. ``--md FILE`` also writes the results as a markdown table (for the CI summary).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import flatten, read_yaml

THRESHOLDS = Path("metrics/thresholds.yaml")
BASELINE = Path("metrics/ci")
DIRECTIONS = ("lower", "higher")
GUARD_KEYS = {"file", "metric", "direction", "abs", "rel"}


class ThresholdsError(ValueError):
    """The thresholds file is missing or invalid."""


@dataclass(frozen=True)
class Guard:
    """One guarded metric: which file/key, which direction is better, how much worse is allowed."""

    file: str
    metric: str
    direction: str
    abs: float = 0.0
    rel: float = 0.0

    @property
    def name(self) -> str:
        """``file:metric``."""
        return f"{self.file}:{self.metric}"

    def allowed(self, baseline: float) -> float:
        """The worst value that still passes."""
        tol = max(self.abs, self.rel * abs(baseline))
        return baseline + tol if self.direction == "lower" else baseline - tol


@dataclass(frozen=True)
class Result:
    """The outcome of one guard."""

    guard: Guard
    baseline: float | None
    current: float | None
    ok: bool
    message: str


def load_guards(path: str | Path) -> list[Guard]:
    """Parse and validate the thresholds file; raises :class:`ThresholdsError` naming the entry."""
    path = Path(path)
    raw = read_yaml(path, "thresholds file", ThresholdsError)
    entries = raw.get("guards") if isinstance(raw, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ThresholdsError(f"{path}: expected a non-empty list under 'guards'")
    guards = []
    for i, e in enumerate(entries):
        where = f"{path}: guards[{i}]"
        if not isinstance(e, dict):
            raise ThresholdsError(f"{where}: expected a mapping, got {e!r}")
        unknown = set(e) - GUARD_KEYS
        if unknown:
            raise ThresholdsError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(GUARD_KEYS)}")
        for key in ("file", "metric", "direction"):
            if not isinstance(e.get(key), str) or not e[key]:
                raise ThresholdsError(f"{where}: '{key}' must be a non-empty string")
        if e["direction"] not in DIRECTIONS:
            raise ThresholdsError(f"{where}: direction={e['direction']!r}; expected one of {DIRECTIONS}")
        tol = {}
        for key in ("abs", "rel"):
            v = e.get(key, 0.0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ThresholdsError(f"{where}: {key}={v!r}; expected a number >= 0")
            tol[key] = float(v)
        guards.append(Guard(e["file"], e["metric"], e["direction"], **tol))
    return guards


def _read(directory: Path, file: str, cache: dict[str, dict[str, Any] | None]) -> dict[str, Any] | None:
    if file not in cache:
        p = directory / file
        try:
            cache[file] = flatten(json.loads(p.read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            cache[file] = None
    return cache[file]


def _number(flat: dict[str, Any] | None, key: str) -> float | None:
    if flat is None:
        return None
    v = flat.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def check(guards: list[Guard], baseline_dir: str | Path, current_dir: str | Path) -> list[Result]:
    """Evaluate every guard against the metrics JSON files of the two directories."""
    base_cache: dict[str, dict[str, Any] | None] = {}
    cur_cache: dict[str, dict[str, Any] | None] = {}
    results = []
    for g in guards:
        base_flat = _read(Path(baseline_dir), g.file, base_cache)
        cur_flat = _read(Path(current_dir), g.file, cur_cache)
        b, c = _number(base_flat, g.metric), _number(cur_flat, g.metric)
        better = "lower" if g.direction == "lower" else "higher"
        if base_flat is None:
            results.append(
                Result(g, b, c, False, f"baseline file {Path(baseline_dir) / g.file} missing/invalid")
            )
        elif cur_flat is None:
            results.append(
                Result(g, b, c, False, f"current file {Path(current_dir) / g.file} missing/invalid")
            )
        elif b is None or not math.isfinite(b):
            results.append(
                Result(g, b, c, False, f"no numeric baseline value (got {base_flat.get(g.metric)!r})")
            )
        elif c is None or not math.isfinite(c):
            results.append(
                Result(g, b, c, False, f"no numeric current value (got {cur_flat.get(g.metric)!r})")
            )
        else:
            limit = g.allowed(b)
            ok = c <= limit if g.direction == "lower" else c >= limit
            verdict = "ok" if ok else "REGRESSION"
            results.append(
                Result(g, b, c, ok, f"{verdict}: {b:.6g} -> {c:.6g} (limit {limit:.6g}, {better} is better)")
            )
    return results


def markdown(results: list[Result]) -> str:
    """The results as a markdown table."""
    lines = ["| guard | baseline | current | result |", "|---|---:|---:|---|"]
    for r in results:
        b = "–" if r.baseline is None else f"{r.baseline:.6g}"
        c = "–" if r.current is None else f"{r.current:.6g}"
        lines.append(f"| `{r.guard.name}` | {b} | {c} | {'✅' if r.ok else '❌'} {r.message} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """CLI; returns the exit status."""
    ap = argparse.ArgumentParser(
        prog="python -m pipeline.tools.check_metrics", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--current", type=Path, required=True, help="directory with the run's metrics JSON files")
    ap.add_argument(
        "--baseline", type=Path, default=BASELINE, help=f"baseline directory (default {BASELINE})"
    )
    ap.add_argument("--thresholds", type=Path, default=THRESHOLDS, help=f"guards file (default {THRESHOLDS})")
    ap.add_argument("--md", type=Path, default=None, help="also write the results as markdown here")
    args = ap.parse_args(argv)
    try:
        guards = load_guards(args.thresholds)
    except ThresholdsError as exc:
        print(f"check_metrics: error: {exc}", file=sys.stderr)
        return 2
    results = check(guards, args.baseline, args.current)
    for r in results:
        print(f"{'ok  ' if r.ok else 'FAIL'} {r.guard.name}: {r.message}")
    if args.md:
        args.md.write_text(markdown(results))
    failed = sum(not r.ok for r in results)
    if failed:
        print(f"check_metrics: {failed} of {len(results)} guarded metric(s) failed", file=sys.stderr)
    else:
        print(f"check_metrics: all {len(results)} guarded metrics within thresholds")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
