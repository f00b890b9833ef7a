"""End to end: two tiny DVC experiments (KD on/off) -> two MLflow parent runs -> the report.

Slow (~2-5 min): the first ``dvc exp run`` runs the whole tiny pipeline, the second only
``train_student`` and ``evaluate``. When ``NAR_SMOKE_OUT`` is set (``.ci/run`` sets it), the first
experiment doubles as the CI smoke run: its metrics and ``dvc metrics diff --md`` against the
committed tiny baseline are exported there (:func:`pipeline.tools.smoke.export`), and so is the report.
"""

from __future__ import annotations

import csv
import math
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline.tools import smoke
from pipeline.tools.report.__main__ import main as report_main
from pipeline.training import tracking

ROOT = Path(__file__).resolve().parents[1]


def exp_run(repo: Path, *sets: str) -> tuple[str, str]:
    """``dvc exp run -S ...`` in ``repo``; returns (experiment name, output)."""
    cmd = ["dvc", "exp", "run"] + [a for s in sets for a in ("-S", s)]
    proc = subprocess.run(cmd, cwd=repo, env=smoke.clean_env(), capture_output=True, text=True, timeout=1500)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    m = re.search(r"Reproducing experiment '([^']+)'", out)
    assert m, out[-2000:]
    return m.group(1), out


@pytest.mark.slow
@pytest.mark.e2e
def test_two_experiments_to_mlflow_and_report(tmp_path: Path) -> None:
    if shutil.which("dvc") is None or shutil.which("git") is None:
        pytest.skip("dvc/git not installed")
    repo = smoke.make_tiny_repo(tmp_path / "repo")
    smoke_out = os.environ.get("NAR_SMOKE_OUT")

    kd_name, out1 = exp_run(repo, "loss.distil=1")
    for stage in ("synthesize", "lift", "pretrain_vae", "train_student", "evaluate"):
        assert f"Running stage '{stage}'" in out1
    if smoke_out:  # this experiment is the CI smoke run of the tiny pipeline
        smoke.export(repo, Path(smoke_out))
    nokd_name, out2 = exp_run(repo, "loss.distil=0")
    ran = set(re.findall(r"Running stage '([^']+)'", out2))
    assert ran == {"validate", "train_student", "evaluate"}, (
        ran
    )  # params checked first, then the changed stages
    listed = subprocess.run(["dvc", "exp", "ls"], cwd=repo, capture_output=True, text=True, check=True).stdout
    assert kd_name in listed and nokd_name in listed
    # a quiet, informative log (issue 16): no Lightning / transformers noise, no ANSI codes, one
    # summary line per stage that ran, the evaluation table
    for noise in ("GPU available", "litlogger", "LOAD REPORT", "Loading weights", "\x1b[", "UserWarning"):
        assert noise not in out1 + out2, noise
    for stage in re.findall(r"Running stage '([^']+)'", out1):
        assert re.search(rf"INFO pipeline\.stages\.{stage}: {stage}: .* \| wrote .* \| [\d.]+ s", out1), stage
    assert re.search(r"^TEST +FGD† pool +FGD† pair +BLEU-4", out1, re.M) and "Ours (student)" in out1
    # DVC views: the training curves and README's `dvc exp show` command within 200 columns
    curves = {p.parent.name for p in (repo / "plots" / "curves").glob("*/*.csv")}
    assert curves == {
        "pretrain_vae",
        "train_student",
        "train_pt",
        "train_nslpg",
        "train_fgd_encoder",
        "train_backtranslator",
    }
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"^(dvc exp show --drop .*?)(?:\s+#.*)?$", readme, re.M).group(1)
    shown = subprocess.run(
        ["bash", "-c", command + " --no-pager"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={**smoke.clean_env(), "COLUMNS": "200"},
    ).stdout
    assert kd_name in shown and "loss.distil" in shown and "test_student.json:duracc" in shown, shown
    assert max(len(line) for line in shown.splitlines()) <= 200
    metrics_show = subprocess.run(
        ["dvc", "metrics", "show"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert max(len(line) for line in metrics_show.stdout.splitlines()) <= 200

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    exp = client.get_experiment_by_name("nar-slp-kd")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    parents = {r.info.run_name: r for r in runs if tracking.PARENT_KEY_TAG in r.data.tags}
    assert set(parents) == {kd_name, nokd_name}
    for name, distil in ((kd_name, 1.0), (nokd_name, 0.0)):
        run = parents[name]
        assert run.info.status == "FINISHED"
        assert float(run.data.params["loss.distil"]) == distil
        assert run.data.params["profile"] == "tiny" and run.data.params["student.text_encoder"] == "bert"
        assert run.data.tags["dvc.exp_name"] == name
        for split in ("dev", "test"):
            metrics = ("fgd_pooled", "fgd_paired_x10", "bleu4", "rouge", "gloss_wer", "duracc", "dtw_mje")
            for metric in metrics:
                value = run.data.metrics[f"evaluate.{split}.student.{metric}"]
                assert math.isfinite(value)
            assert run.data.metrics[f"evaluate.{split}.gt.duracc"] == 1.0
        children = {r.info.run_name for r in runs if r.data.tags.get(tracking.PARENT_TAG) == run.info.run_id}
        assert {"train_student", "evaluate"} <= children
    kd_id = parents[kd_name].info.run_id
    kd_children = {r.info.run_name for r in runs if r.data.tags.get(tracking.PARENT_TAG) == kd_id}
    assert {"pretrain_vae", "train_fgd_encoder", "train_backtranslator"} <= kd_children

    out = Path(smoke_out) / "report" if smoke_out else tmp_path / "report"
    status = report_main(["--tracking-uri", f"sqlite:///{repo / 'mlflow.db'}", "--out", str(out)])
    assert status == 0
    with (out / "table3a.csv").open() as fh:
        rows = {r["system"]: r for r in csv.DictReader(fh) if r["source"] == "ours"}
    kd, nokd = rows["L_pose + L_length + L_distil (w/ KD)"], rows["L_pose + L_length (w/o KD)"]
    assert kd["run"] == kd_name and nokd["run"] == nokd_name
    for row in (kd, nokd):
        for col in ("dev FGD† pooled", "dev FGD† paired", "dev DurACC", "test FGD† pooled", "test DurACC"):
            assert math.isfinite(float(row[col]))
    want = float(parents[kd_name].data.metrics["evaluate.test.student.fgd_pooled"]) * 10
    assert float(kd["test FGD† pooled"]) == pytest.approx(want)
    with (out / "table1.csv").open() as fh:
        systems = [r["system"] for r in csv.DictReader(fh) if r["source"] == "ours"]
    assert systems == [
        "GT",
        "Mean",
        "Random (per sentence)",
        "Random (one sequence)",
        "PT base",
        "PT FP&GN",
        "NSLP-G base",
        "NSLP-G GS",
        "NSLP-G base (+ft)",
        "NSLP-G GS (+ft)",
        "Ours (full)",
        "Ours (w/o KD)",
    ]
    md = (out / "report.md").read_text()
    assert kd_name in md and nokd_name in md and "paper (PHOENIX-2014T, Table 3a)" in md
    assert (out / "report.png").stat().st_size > 10_000
