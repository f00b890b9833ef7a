"""The ablation grid's statistics: paired t-intervals of variant - full and the claim verdicts."""

from __future__ import annotations

import pytest

from pipeline.tools.report.grid import (
    by_variant_and_seed,
    claims_table,
    difference,
    grid_table,
    t_interval,
    verdict,
)
from pipeline.tools.report.runs import ExpRun


def _run(variant: str, seed: str, start: int, **metrics: float) -> ExpRun:
    values = {f"evaluate.{split}.student.{k}": v for k, v in metrics.items() for split in ("dev", "test")}
    return ExpRun(
        run_id=f"{variant}-{seed}-{start}",
        name=f"{variant}-{seed}",
        start_time=start,
        status="FINISHED",
        params={},
        metrics=values,
        variant=variant,
        profile="default",
        base_variant=variant,
        seed=seed,
    )


def test_t_interval_matches_the_closed_form() -> None:
    mean, sd, lo, hi = t_interval([1.0, 2.0, 3.0])
    half = 4.302652729911275 / 3**0.5  # t_{0.975, 2} * sd / sqrt(n), sd = 1
    assert (mean, sd) == (2.0, 1.0)
    assert lo == pytest.approx(2 - half) and hi == pytest.approx(2 + half)
    with pytest.raises(ValueError, match="at least 2 values, got 1"):
        t_interval([1.0])


@pytest.mark.parametrize(
    ("lo", "hi", "sign", "expected"),
    [
        (0.1, 0.5, -1, "reproduced"),  # variant's FGD higher than full's: the paper's side
        (-0.5, -0.1, -1, "not reproduced"),
        (-0.1, 0.5, -1, "inconclusive"),
        (-0.5, -0.1, +1, "reproduced"),  # variant's DurACC lower than full's
        (0.1, 0.5, +1, "not reproduced"),
        (None, None, +1, "inconclusive"),
    ],
)
def test_verdict(lo: float | None, hi: float | None, sign: int, expected: str) -> None:
    assert verdict(lo, hi, sign) == expected


def test_grid_pairs_seeds_and_gives_verdicts() -> None:
    runs = [
        _run("full", "1", 1, fgd_paired_x10=1.0, duracc=0.5),
        _run("full", "2", 2, fgd_paired_x10=1.2, duracc=0.5),
        _run("full", "3", 3, fgd_paired_x10=1.1, duracc=0.5),
        _run("full", "3", 0, fgd_paired_x10=9.0, duracc=0.0),  # an older run of seed 3: not used
        _run("w/o KD", "1", 4, fgd_paired_x10=2.0, duracc=0.5),
        _run("w/o KD", "2", 5, fgd_paired_x10=2.1, duracc=0.5),
        _run("w/o KD", "3", 6, fgd_paired_x10=2.3, duracc=0.5),
        _run("w/o KD", "4", 7, fgd_paired_x10=0.0, duracc=0.0),  # no full run with seed 4: unpaired
        _run("w/o BERT", "1", 8, fgd_paired_x10=0.5, duracc=0.9),  # one seed only
    ]
    groups = by_variant_and_seed(runs, "default")
    d = difference(groups, "w/o KD", "dev", "fgd_paired_x10")
    assert d is not None and d["n"] == 3
    assert d["diff"] == pytest.approx(1.0333333) and d["lo"] > 0
    assert d["rel"] == pytest.approx(1.0333333 / 1.1)
    flat = difference(groups, "w/o KD", "test", "duracc")
    assert flat is not None and flat["diff"] == 0 and flat["lo"] == flat["hi"] == 0
    table = grid_table(runs, "default")
    assert {(r[0], r[1], r[2]) for r in table.rows} >= {
        ("w/o KD", "dev", "FGD† paired"),
        ("w/o BERT", "test", "DurACC"),
    }
    claims = {row[0]: row for row in claims_table(runs, "default").rows}
    assert claims["KD lowers FGD (paired reading)"][-1] == "reproduced"
    assert claims["KD raises DurACC"][-1] == "inconclusive"  # zero difference
    assert claims["BERT lowers FGD (paired reading)"][-1] == "inconclusive"  # one seed: no interval
    assert claims["BERT lowers FGD (paired reading)"][2] == 1
    assert claims["BCE keeps the face better than MSE"][3] == "–"  # no MSE-VAE runs
