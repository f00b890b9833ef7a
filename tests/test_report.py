"""pipeline.tools.report on a hand-built MLflow store with known metrics."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT
from mlflow.tracking import MlflowClient

from pipeline.tools.report.__main__ import main
from pipeline.tools.report.experiment_tables import seeds_table, table3a
from pipeline.tools.report.runs import ReportError, corpus_of, load_runs, open_store, select, variant_of
from pipeline.training import tracking

EXP = "report-test"


def _metrics(fgd: float, duracc: float, bleu4: float, span: float) -> dict[str, float]:
    """Flat parent-run metrics as the evaluate stage logs them (``evaluate.<split>.<system>.<metric>``)."""
    out: dict[str, float] = {}
    for k, split in enumerate(("dev", "test")):
        systems = (("gt", 0.0), ("mean", 2.0), ("random_per_sentence", 0.05), ("random_single", 0.4))
        for system, f in (*systems, ("student", fgd + k)):
            base = f"evaluate.{split}.{system}."
            out |= {base + "fgd_pooled": f, base + "fgd_pooled_x10": 10 * f, base + "fgd_paired_x10": 20 * f}
            out |= {base + "bleu1": 40.0 + bleu4, base + "bleu2": 30.0}
            out |= {base + "bleu3": 20.0, base + "bleu4": bleu4, base + "rouge": 35.0 + k}
            out |= {base + "duracc": 1.0 if system == "gt" else duracc}
            out |= {base + "fgd_pooled_len_50_100": span + f, base + "fgd_paired_seg_0_50": span}
            out |= {base + "fgd_pooled_first_20": 2 * span}
    return out


def _parent(
    client: MlflowClient, exp_id: str, name: str, params: dict[str, str], metrics: dict[str, float]
) -> str:
    run = client.create_run(exp_id, run_name=name, tags={tracking.PARENT_KEY_TAG: f"{name}|c|h"})
    for k, v in params.items():
        client.log_param(run.info.run_id, k, v)
    for k, v in metrics.items():
        client.log_metric(run.info.run_id, k, v)
    client.set_terminated(run.info.run_id, "FINISHED")
    time.sleep(0.01)  # distinct start times
    return run.info.run_id


BASE = {"profile": "tiny", "loss.distil": "1.0", "student.text_encoder": "bert", "vae.loss": "bce"}
BASE |= {"evaluate.margin": "25"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store with: an old and a new ``full`` run, ``w/o KD``, ``w/o BERT``, a run without eval, a child."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment(EXP)
    _parent(client, exp_id, "old-full", BASE, _metrics(0.5, 0.5, 1.0, 0.1))
    new = _parent(client, exp_id, "new-full", BASE, _metrics(0.1, 0.75, 5.0, 0.2))
    _parent(client, exp_id, "no-kd", BASE | {"loss.distil": "0"}, _metrics(0.3, 0.25, 2.0, 0.3))
    _parent(
        client,
        exp_id,
        "no-bert",
        BASE | {"student.text_encoder": "transformer"},
        _metrics(0.2, 0.5, 3.0, 0.4),
    )
    _parent(client, exp_id, "unfinished", BASE | {"vae.loss": "mse"}, {"pretrain_vae.dev.kl": 1.0})
    child = client.create_run(exp_id, run_name="evaluate", tags={tracking.PARENT_TAG: new})
    client.log_metric(child.info.run_id, "test.student.fgd", 99.0)
    client.create_experiment("empty-exp")
    return uri


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    ("params", "variant"),
    [
        ({}, "full"),
        ({"loss.distil": "1.0", "student.text_encoder": "bert", "vae.loss": "bce"}, "full"),
        ({"loss.distil": "0"}, "w/o KD"),
        ({"loss.distil": "0.0"}, "w/o KD"),
        ({"loss.distil": "0.5"}, "KD x0.5"),
        ({"student.text_encoder": "transformer"}, "w/o BERT"),
        ({"vae.loss": "mse"}, "MSE-VAE"),
        ({"loss.distil": "0", "vae.loss": "mse"}, "w/o KD + MSE-VAE"),
        ({"student.seed": "None"}, "full"),
        ({"student.seed": "7"}, "full (seed 7)"),
        ({"loss.distil": "0", "student.seed": "7"}, "w/o KD (seed 7)"),
    ],
)
def test_variant_of(params: dict[str, str], variant: str) -> None:
    assert variant_of(params) == variant


@pytest.mark.parametrize(
    ("params", "corpus"),
    [
        ({}, "default"),
        ({"profile": "tiny"}, "tiny"),
        ({"profile": "tiny", "lift.method": "knn"}, "tiny"),
        ({"lift.method": "zelinka_kanis"}, "default, lift zelinka_kanis"),
        ({"lift.method": "viterbi", "lift.iterations": "20"}, "default, lift viterbi"),
        ({"lift.iterations": "20"}, "default, lift viterbi"),  # logged before lift.method existed
    ],
)
def test_corpus_of_separates_liftings(params: dict[str, str], corpus: str) -> None:
    assert corpus_of(params) == corpus


def test_runs_of_another_lifting_are_not_pooled(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment(EXP)
    knn = BASE | {"lift.method": "knn", "lift.iterations": "10"}
    _parent(client, exp_id, "old-grid-full", BASE | {"lift.iterations": "10"}, _metrics(0.5, 0.5, 1.0, 0.1))
    _parent(client, exp_id, "knn-full", knn, _metrics(0.1, 0.75, 5.0, 0.2))
    _parent(
        client,
        exp_id,
        "old-grid-no-kd",
        BASE | {"lift.iterations": "10", "loss.distil": "0"},
        _metrics(0.3, 0.25, 2.0, 0.3),
    )
    runs = load_runs(open_store(uri), EXP)
    chosen = select(runs)  # the older full run is not hidden behind the newer one: another corpus
    assert {(r.name, r.profile) for r in chosen} == {
        ("knn-full", "tiny"),
        ("old-grid-full", "tiny, lift viterbi"),
        ("old-grid-no-kd", "tiny, lift viterbi"),
    }
    assert [r.name for r in select(runs, "tiny")] == ["knn-full"]
    assert all(not r.older for r in chosen)


def test_select_newest_per_variant(store: str) -> None:
    runs = load_runs(open_store(store), EXP)
    assert [r.name for r in runs] == [
        "unfinished",
        "no-bert",
        "no-kd",
        "new-full",
        "old-full",
    ]  # parents only
    chosen = select(runs)
    assert [(r.variant, r.name) for r in chosen] == [
        ("full", "new-full"),
        ("w/o KD", "no-kd"),
        ("w/o BERT", "no-bert"),
    ]
    assert chosen[0].older == ["old-full"]
    with pytest.raises(ReportError, match="profile 'default'"):
        select(runs, profile="default")


def test_tables_values(store: str, tmp_path: Path) -> None:
    runs = load_runs(open_store(store), EXP)
    assert main(["--tracking-uri", store, "--experiment", EXP, "--out", str(tmp_path)]) == 0
    for name in ("table1", "table2", "table3a", "table3b", "ablations", "seeds", "runs"):
        assert (tmp_path / f"{name}.md").is_file() and (tmp_path / f"{name}.csv").is_file()
    assert (tmp_path / "report.png").stat().st_size > 10_000

    t1 = _csv(tmp_path / "table1.csv")
    ours = {r["system"]: r for r in t1 if r["source"] == "ours"}
    assert list(ours) == [
        "GT",
        "Mean",
        "Random (per sentence)",
        "Random (one sequence)",
        "Ours (full)",
        "Ours (w/o KD)",
        "Ours (w/o BERT)",
    ]
    assert ours["Ours (full)"]["run"] == "new-full"
    assert float(ours["Ours (full)"]["dev FGD† pooled"]) == pytest.approx(1.0)
    assert float(ours["Ours (full)"]["dev FGD† paired"]) == pytest.approx(2.0)
    assert float(ours["Ours (full)"]["test FGD† pooled"]) == pytest.approx(11.0)
    assert float(ours["Ours (w/o KD)"]["dev BLEU-4"]) == pytest.approx(2.0)
    assert float(ours["Mean"]["test FGD† pooled"]) == pytest.approx(20.0)
    assert float(ours["Random (one sequence)"]["test FGD† paired"]) == pytest.approx(8.0)
    paper = {r["system"]: r for r in t1 if r["source"] == "paper (PHOENIX-2014T, Table 1)"}
    assert float(paper["Ours (w/ KD)"]["dev FGD† pooled"]) == 0.15
    assert float(paper["Ours (w/ KD)"]["dev FGD† paired"]) == 0.15  # the paper's one value under both
    assert float(paper["Ours (w/ KD)"]["test BLEU-4"]) == 13.92
    assert float(paper["GT"]["dev BLEU-4"]) == 10.96

    t3a = _csv(tmp_path / "table3a.csv")
    got = {r["system"]: r for r in t3a if r["source"] == "ours"}
    assert float(got["L_pose + L_length (w/o KD)"]["dev DurACC"]) == 0.25
    assert float(got["L_pose + L_length + L_distil (w/ KD)"]["test DurACC"]) == 0.75
    assert float(got["GT"]["test DurACC"]) == 1.0 and got["GT"]["run"] == "new-full"
    paper3a = [r for r in t3a if r["source"] == "paper (PHOENIX-2014T, Table 3a)"]
    assert [float(r["dev DurACC"]) for r in paper3a] == [1.0, 0.26, 0.76]
    t3b = {r["system"]: r for r in _csv(tmp_path / "table3b.csv") if r["source"] == "ours"}
    assert float(t3b["w/o BERT"]["dev FGD† pooled"]) == pytest.approx(2.0)
    assert t3b["w/ BERT"]["run"] == "new-full"

    t2 = _csv(tmp_path / "table2.csv")
    assert list(t2[0])[4:] == ["len 50–100 pooled", "seg 0–50 paired", "first 20"]  # the logged spans
    row = next(r for r in t2 if r["system"] == "Ours (w/o KD)")
    assert float(row["len 50–100 pooled"]) == pytest.approx(10 * (0.3 + 1.3))  # test split: fgd + 1
    assert float(row["seg 0–50 paired"]) == pytest.approx(3.0)
    assert float(row["first 20"]) == pytest.approx(6.0)
    paper2 = next(
        r for r in t2 if r["source"] == "paper (PHOENIX-2014T, Table 2)" and r["system"] == "Ours (w/ KD)"
    )
    assert float(paper2["first 20"]) == 0.09 and float(paper2["len 50–100 pooled"]) == 0.18
    assert float(paper2["seg 0–50 paired"]) == 0.21  # the paper's interval cell under both forms

    runs_csv = {r["run"]: r["in report"] for r in _csv(tmp_path / "runs.csv")}
    assert runs_csv == {
        "unfinished": "no evaluation metrics",
        "no-bert": "used",
        "no-kd": "used",
        "new-full": "used",
        "old-full": "older run of the same variant",
    }
    md = (tmp_path / "report.md").read_text()
    assert "newest run `new-full` of 2 (older: `old-full`)" in md
    assert "| ours | Ours (full) | tiny | new-full | 1.000 | 2.000 | 45.00 |" in md
    assert len(runs) == 5


def test_errors(store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nothing.db"
    assert main(["--tracking-uri", f"sqlite:///{missing}", "--out", str(tmp_path / "a")]) == 2
    assert "no MLflow store at" in capsys.readouterr().err and not missing.exists()
    assert main(["--tracking-uri", store, "--experiment", "nope", "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "experiment 'nope' not found" in err and "report-test" in err
    assert main(["--tracking-uri", store, "--experiment", "empty-exp", "--out", str(tmp_path / "c")]) == 2
    assert "has no experiment runs" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_missing_variants_noted(store: str) -> None:
    runs = [r for r in select(load_runs(open_store(store), EXP)) if r.variant == "full"]
    t = table3a(runs)
    assert "Missing variant(s): w/o KD [tiny]." in t.markdown()
    assert [row[1] for row in t.rows if row[0] == "ours"] == ["GT", "L_pose + L_length + L_distil (w/ KD)"]


def test_seeds_table_pools_student_seeds(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment(EXP)
    base = BASE | {"seed": "1234"}
    _parent(client, exp_id, "seed2-old", base | {"student.seed": "2"}, _metrics(0.9, 0.1, 9.0, 0.1))
    _parent(client, exp_id, "global", base | {"student.seed": "None"}, _metrics(0.1, 0.5, 4.0, 0.1))
    _parent(client, exp_id, "seed2", base | {"student.seed": "2"}, _metrics(0.3, 0.7, 6.0, 0.1))
    _parent(
        client,
        exp_id,
        "nokd3",
        base | {"loss.distil": "0", "student.seed": "3"},
        _metrics(0.5, 0.2, 1.0, 0.1),
    )
    runs = load_runs(open_store(uri), EXP)
    assert {r.name: (r.base_variant, r.seed) for r in runs} == {
        "seed2-old": ("full", "2"),
        "global": ("full", "1234"),
        "seed2": ("full", "2"),
        "nokd3": ("w/o KD", "3"),
    }
    t = seeds_table(runs)
    rows = {row[0]: dict(zip(t.columns, row, strict=True)) for row in t.rows}
    assert list(rows) == ["full", "w/o KD"]
    full = rows["full"]
    assert full["seeds"] == "2, 1234" and full["n"] == 2  # the newest seed-2 run only
    assert full["test FGD† pooled"] == pytest.approx(12.0)  # 10 x mean(0.1 + 1, 0.3 + 1)
    assert full["test FGD† pooled sd"] == pytest.approx(10 * 0.2 / 2**0.5)
    assert full["dev DurACC"] == pytest.approx(0.6) and full["dev BLEU-4"] == pytest.approx(5.0)
    assert rows["w/o KD"]["n"] == 1 and rows["w/o KD"]["test FGD† pooled sd"] is None
    assert "| w/o KD | tiny | 3 | 1 | 5.000 | – |" in t.markdown()
    assert main(["--tracking-uri", uri, "--experiment", EXP, "--out", str(tmp_path / "r")]) == 0
    assert "## Seeds" in (tmp_path / "r" / "report.md").read_text()
    assert (tmp_path / "r" / "seeds.csv").is_file()


@pytest.mark.slow
def test_module_cli_help() -> None:
    """``python -m pipeline.tools.report --help`` runs the package's ``__main__``."""
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.tools.report", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout and "--tracking-uri" in proc.stdout


def test_tables_have_the_trained_baselines_rows(tmp_path: Path) -> None:
    """Table 1 and 2 list the PT / NSLP-G systems the reference run scored, PT first, in the paper's
    row order, with their own values; the paper's PT rows read dev and test as its table does."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    exp_id = client.create_experiment(EXP)
    metrics = _metrics(0.1, 0.75, 5.0, 0.2)
    for split in ("dev", "test"):
        for k, system in enumerate(("nslpg_gs_ft", "pt_fpgn", "nslpg_base", "pt_base")):
            base = f"evaluate.{split}.{system}."
            metrics |= {base + "fgd_pooled_x10": 3.0 + k, base + "bleu4": 1.5 * k}
            metrics |= {base + "fgd_pooled_len_50_100": 0.7 + k}
    _parent(client, exp_id, "full", BASE, metrics)
    out = tmp_path / "out"
    assert main(["--tracking-uri", uri, "--experiment", EXP, "--out", str(out)]) == 0
    t1 = [r for r in _csv(out / "table1.csv") if r["source"] == "ours"]
    labels = [r["system"] for r in t1]
    assert labels[4:8] == ["PT base", "PT FP&GN", "NSLP-G base", "NSLP-G GS (+ft)"]
    got = {r["system"]: r for r in t1}
    assert float(got["PT FP&GN"]["dev FGD† pooled"]) == pytest.approx(4.0)
    assert float(got["NSLP-G GS (+ft)"]["test BLEU-4"]) == pytest.approx(0.0)
    assert float(got["PT base"]["test BLEU-4"]) == pytest.approx(4.5)
    t2 = {r["system"]: r for r in _csv(out / "table2.csv") if r["source"] == "ours"}
    assert float(t2["PT base"]["len 50–100 pooled"]) == pytest.approx(37.0)  # x 10
    paper = {r["system"]: r for r in _csv(out / "table1.csv") if r["source"].startswith("paper")}
    assert float(paper["PT (Base)"]["dev FGD† pooled"]) == 1.01
    assert float(paper["PT (FP&GN)"]["test BLEU-4"]) == 0.58
