"""benchmarks/translate_latency.py: runs on a tiny model without MLflow/DVC/Lightning/pose-format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT as REPO

FORBIDDEN = ("mlflow", "dvc", "lightning", "orjson", "pose_format")


@pytest.mark.slow
def test_benchmark_json_and_imports(tiny_student: Path, tmp_path: Path) -> None:
    out = tmp_path / "lat.json"
    code = (
        "import sys\n"
        "from benchmarks import translate_latency as b\n"
        f"rc = b.main(['--model', {str(tiny_student)!r}, '--device', 'cpu', '--threads', '1',"
        " '--sentences', '4', '--repeats', '2', '--warmup', '1', '--batch-sizes', '1', '4',"
        f" '--json', {str(out)!r}])\n"
        f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
        "print('FORBIDDEN', bad, file=sys.stderr)\n"
        "sys.exit(rc or (3 if bad else 0))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "FORBIDDEN []" in proc.stderr
    result = json.loads(out.read_text())
    assert json.loads(proc.stdout) == result
    cpu = result["cpu"]
    assert cpu["threads"] == 1 and result["sentences"] == 4 and cpu["machine"]["cores"] >= 1
    for b in ("batch_1", "batch_4"):
        assert 0 < cpu[b]["min_ms"] <= cpu[b]["ms_per_sentence"] <= cpu[b]["max_ms"]


@pytest.mark.slow
def test_benchmark_missing_model(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "benchmarks.translate_latency", "--model", str(tmp_path / "none")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "is not a trained student directory" in proc.stderr


def test_sentences_are_deterministic() -> None:
    sys.path.insert(0, str(REPO))
    from benchmarks.translate_latency import sentences

    s = sentences(40)
    assert s == sentences(40) and len(set(s)) > 30 and all(5 <= len(x.split()) <= 16 for x in s)
