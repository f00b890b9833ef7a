"""pipeline.tools.check_metrics: thresholds parsing, pass/fail per direction and tolerance, messages, CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from pipeline.tools import check_metrics as cm

ROOT = Path(__file__).resolve().parents[1]


def _write(directory: Path, name: str, data: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(data))


@pytest.fixture()
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Baseline and current metrics dirs plus a thresholds file with one guard per direction."""
    base, cur = tmp_path / "base", tmp_path / "cur"
    _write(base, "eval.json", {"test.student.fgd": 0.10, "test.student.duracc": 0.80})
    _write(base, "vae.json", {"dev": {"mpjpe_unit": {"all": 0.20}}})
    guards = {
        "guards": [
            {
                "file": "eval.json",
                "metric": "test.student.fgd",
                "direction": "lower",
                "abs": 0.001,
                "rel": 0.2,
            },
            {"file": "eval.json", "metric": "test.student.duracc", "direction": "higher", "abs": 0.1},
            {"file": "vae.json", "metric": "dev.mpjpe_unit.all", "direction": "lower", "rel": 0.1},
        ]
    }
    th = tmp_path / "thresholds.yaml"
    th.write_text(yaml.safe_dump(guards))
    return base, cur, th


def test_allowed_limits() -> None:
    assert cm.Guard("f", "m", "lower", abs=0.001, rel=0.2).allowed(0.1) == pytest.approx(0.12)
    assert cm.Guard("f", "m", "lower", abs=0.05, rel=0.2).allowed(0.1) == pytest.approx(0.15)  # abs wins
    assert cm.Guard("f", "m", "higher", abs=0.1).allowed(0.8) == pytest.approx(0.7)
    assert cm.Guard("f", "m", "higher", rel=0.5).allowed(-2.0) == pytest.approx(-3.0)  # |baseline|
    assert cm.Guard("f", "m", "lower").allowed(3.0) == 3.0


def test_pass_within_tolerance_and_improvement(dirs: tuple[Path, Path, Path]) -> None:
    base, cur, th = dirs
    _write(cur, "eval.json", {"test.student.fgd": 0.119, "test.student.duracc": 0.95})  # worse ok, better
    _write(cur, "vae.json", {"dev": {"mpjpe_unit": {"all": 0.15}}})
    results = cm.check(cm.load_guards(th), base, cur)
    assert [r.ok for r in results] == [True, True, True]
    assert results[0].message == "ok: 0.1 -> 0.119 (limit 0.12, lower is better)"
    assert results[1].message == "ok: 0.8 -> 0.95 (limit 0.7, higher is better)"


def test_regressions_fail_with_messages(dirs: tuple[Path, Path, Path]) -> None:
    base, cur, th = dirs
    _write(cur, "eval.json", {"test.student.fgd": 0.13, "test.student.duracc": 0.65})
    _write(cur, "vae.json", {"dev": {"mpjpe_unit": {"all": 0.221}}})
    results = cm.check(cm.load_guards(th), base, cur)
    assert [r.ok for r in results] == [False, False, False]
    assert results[0].message == "REGRESSION: 0.1 -> 0.13 (limit 0.12, lower is better)"
    assert results[1].message == "REGRESSION: 0.8 -> 0.65 (limit 0.7, higher is better)"
    assert results[2].guard.name == "vae.json:dev.mpjpe_unit.all"
    assert "| `eval.json:test.student.fgd` | 0.1 | 0.13 | ❌ REGRESSION" in cm.markdown(results)


def test_missing_and_non_numeric_values_fail(dirs: tuple[Path, Path, Path]) -> None:
    base, cur, th = dirs
    _write(cur, "eval.json", {"test.student.fgd": float("nan"), "test.student.duracc": "n/a"})
    results = cm.check(cm.load_guards(th), base, cur)  # vae.json missing in current
    assert not any(r.ok for r in results)
    assert results[0].message == "no numeric current value (got nan)"
    assert results[1].message == "no numeric current value (got 'n/a')"
    assert results[2].message.startswith("current file ") and "vae.json missing/invalid" in results[2].message
    _write(cur, "vae.json", {"dev": {}})
    (base / "eval.json").write_text("{broken")
    results = cm.check(cm.load_guards(th), base, cur)
    assert results[0].message.startswith("baseline file ") and "missing/invalid" in results[0].message
    assert results[2].message == "no numeric current value (got None)"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("guards: []", "non-empty list under 'guards'"),
        ("[1, 2]", "non-empty list under 'guards'"),
        ("guards: [{file: a.json, metric: m, direction: down}]", "direction='down'"),
        ("guards: [{file: a.json, metric: m, direction: lower, abs: -1}]", "abs=-1; expected a number >= 0"),
        ("guards: [{file: a.json, metric: m, direction: lower, rel: yes}]", "rel=True"),
        ("guards: [{file: a.json, direction: lower}]", "'metric' must be a non-empty string"),
        ("guards: [{file: a.json, metric: m, direction: lower, tol: 1}]", "unknown key(s) ['tol']"),
        ("guards: [3]", "guards[0]: expected a mapping"),
        ("guards: [{", "invalid YAML"),
    ],
)
def test_bad_thresholds(tmp_path: Path, text: str, error: str) -> None:
    p = tmp_path / "t.yaml"
    p.write_text(text)
    with pytest.raises(cm.ThresholdsError, match=re.escape(error)):
        cm.load_guards(p)


def test_cli_exit_codes(
    dirs: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, cur, th = dirs
    _write(cur, "eval.json", {"test.student.fgd": 0.1, "test.student.duracc": 0.8})
    _write(cur, "vae.json", {"dev": {"mpjpe_unit": {"all": 0.2}}})
    md = tmp_path / "check.md"
    args = ["--baseline", str(base), "--current", str(cur), "--thresholds", str(th), "--md", str(md)]
    assert cm.main(args) == 0
    assert "all 3 guarded metrics within thresholds" in capsys.readouterr().out
    assert md.read_text().count("✅") == 3
    _write(cur, "vae.json", {"dev": {"mpjpe_unit": {"all": 0.3}}})
    assert cm.main(args) == 1
    captured = capsys.readouterr()
    assert "FAIL vae.json:dev.mpjpe_unit.all: REGRESSION: 0.2 -> 0.3" in captured.out
    assert "1 of 3 guarded metric(s) failed" in captured.err
    assert cm.main(["--current", str(cur), "--thresholds", str(tmp_path / "none.yaml")]) == 2
    assert "thresholds file not found" in capsys.readouterr().err


def test_committed_thresholds_and_baseline_agree() -> None:
    """Every committed guard is valid and present in the committed tiny baseline (which passes itself)."""
    guards = cm.load_guards(ROOT / cm.THRESHOLDS)
    results = cm.check(guards, ROOT / cm.BASELINE, ROOT / cm.BASELINE)
    assert all(r.ok for r in results), [r.message for r in results if not r.ok]
