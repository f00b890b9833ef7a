"""MLflow lineage (issue 16): a parent run carries the metrics of the stages DVC reused, the data
stages log their counts, and a copied repository keeps its artifacts in its own folder."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

from pipeline.training import tracking

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {
    "profile": "default",
    "seed": 1,
    "data": {"path": "data/src"},
    "tracking": {"experiment": "lineage"},
}

# src -> toy (via ${data.path}) -> sub -> down; side is unrelated
DVC_YAML = {
    "stages": {
        "src": {"cmd": "x", "outs": ["data/src"]},
        "toy": {
            "cmd": "x",
            "deps": ["pipeline/x.py", "${data.path}"],
            "outs": ["data/toy", {"metrics/toy.json": {"cache": False}}],
        },
        "sub": {
            "cmd": "x",
            "deps": ["data/toy/part"],  # inside toy's out
            "outs": [{"metrics/sub.json": {"cache": False}}, "metrics/table.csv"],
            "metrics": [{"metrics/headline": {"cache": False}}],
        },
        "down": {"cmd": "x", "deps": ["metrics/sub.json"], "outs": ["metrics/down.json"]},
        "side": {"cmd": "x", "outs": ["metrics/side.json"]},
    }
}


@pytest.fixture(scope="module")
def db_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One sqlite store for the module's workspace tests (creating one costs seconds)."""
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture()
def repo(
    db_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Path:
    """A workspace with dvc.yaml, params.yaml (an experiment of the test's own) and every stage's
    metrics file (as after a run)."""
    for var in ("DVC_EXP_NAME", "DVC_STAGE", "DVC_ROOT", "RANK", "LOCAL_RANK", "SLURM_PROCID", "NODE_RANK"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", db_uri)
    monkeypatch.setitem(PARAMS, "tracking", {"experiment": f"lineage-{request.node.name}"})
    root = tmp_path / "repo"
    (root / "metrics" / "headline").mkdir(parents=True)
    (root / "data" / "src").mkdir(parents=True)
    (root / "data" / "src" / "stats.json").write_text(json.dumps({"frames": 7, "config": {"n": 3}}))
    (root / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML, sort_keys=False))
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    toy = {"dev": {"total": 0.5, "n": 4}, "device": "cpu", "ok": True, "bad key(1)": 2.0}
    toy |= {f"k{i}": float(i) for i in range(1000)}  # over MLflow's 1000 metrics per log_batch
    (root / "metrics" / "toy.json").write_text(json.dumps(toy))
    (root / "metrics" / "sub.json").write_text(json.dumps({"loss": 1.5}))
    (root / "metrics" / "headline" / "test_student.json").write_text(json.dumps({"bleu4": 3.25}))
    (root / "metrics" / "down.json").write_text(json.dumps({"stale": 9.0}))
    (root / "metrics" / "side.json").write_text(json.dumps({"other": 9.0}))
    monkeypatch.chdir(root)
    yield root
    while mlflow.active_run():
        mlflow.end_run()


def _parents(client: MlflowClient) -> dict[str, object]:
    exp = client.get_experiment_by_name(PARAMS["tracking"]["experiment"])
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`{tracking.PARENT_KEY_TAG}` != ''")
    return {r.info.run_name: r for r in runs}


def test_upstream_follows_dvc_yaml(repo: Path) -> None:
    stages = tracking.dvc_stages()
    assert tracking.upstream(stages, "sub") == ["src", "toy", "sub"]  # ${data.path} resolved
    assert tracking.upstream(stages, "down") == ["src", "toy", "sub", "down"]
    assert tracking.upstream(stages, "side") == ["side"] and tracking.upstream(stages, "nope") == []
    flat = tracking.lineage_metrics("sub")
    assert flat["toy.dev.total"] == 0.5 and flat["sub.headline.test_student.bleu4"] == 3.25
    assert flat["src.frames"] == 7.0 and "src.config.n" not in flat  # stats.json in a dir out, no config
    assert not [k for k in flat if k.startswith(("down.", "side."))]  # downstream / unrelated files
    assert "toy.device" not in flat and "toy.ok" not in flat  # non-numeric values


def test_metric_key() -> None:
    assert tracking.metric_key("toy.bad key(1)") == "toy.bad key_1_"
    assert tracking.metric_key("a/b:c-d.e_f") == "a/b:c-d.e_f"
    assert tracking.metric_key("a//b") == "a__b" and tracking.metric_key("x" * 251) is None


def test_parent_gets_the_metrics_of_reused_stages(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two experiments; the second reruns only ``sub`` (DVC reused ``toy``): both parents show both."""
    client = MlflowClient(tracking.tracking_uri())
    monkeypatch.setenv("DVC_EXP_NAME", "exp-a")
    for stage in ("toy", "sub"):
        with tracking.stage_run(stage, PARAMS) as run:
            tracking.log_metrics_file(run, f"metrics/{stage}.json")
    monkeypatch.setenv("DVC_EXP_NAME", "exp-b")
    (repo / "metrics" / "sub.json").write_text(json.dumps({"loss": 0.75}))
    with tracking.stage_run("sub", PARAMS) as run:
        tracking.log_metrics_file(run, "metrics/sub.json")
    parents = _parents(client)
    a, b = parents["exp-a"].data.metrics, parents["exp-b"].data.metrics
    assert a["sub.loss"] == 1.5 and b["sub.loss"] == 0.75
    for m in (a, b):
        assert m["toy.dev.total"] == 0.5 and m["toy.dev.n"] == 4.0 and m["toy.k999"] == 999.0
        assert m["toy.bad key_1_"] == 2.0 and m["sub.headline.test_student.bleu4"] == 3.25
        assert m["src.frames"] == 7.0
        assert not [k for k in m if k.startswith(("down.", "side."))]
    assert len(b) == len(a) == 1 + 1 + 1 + 2 + 1 + 1000  # sub.loss, headline, src, toy.dev, bad key, k*
    # logged once: a value the parent already had is not logged again
    history = client.get_metric_history(parents["exp-a"].info.run_id, "toy.dev.total")
    assert len(history) == 1


def test_failed_stage_logs_no_lineage(repo: Path) -> None:
    with pytest.raises(RuntimeError), tracking.stage_run("sub", PARAMS):
        raise RuntimeError("boom")
    parent = _parents(MlflowClient(tracking.tracking_uri()))["workspace"]
    assert parent.info.status == "FAILED" and parent.data.metrics == {}


def test_data_stages_log_their_counts(
    workspace: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """synthesize, ingest and normalise on the tiny profile: each has a run with its counts; a second
    experiment that reruns only normalise still shows the counts of the reused stages in its parent."""
    from pipeline.stages import ingest, normalise, synthesize

    ws = workspace(tracking={"experiment": "data-stages"})
    shutil.copy(ROOT / "dvc.yaml", ws / "dvc.yaml")
    monkeypatch.setenv("DVC_EXP_NAME", "first")
    for stage in (synthesize, ingest, normalise):
        stage.main([])
    monkeypatch.setenv("DVC_EXP_NAME", "second")
    normalise.main([])
    client = MlflowClient(tracking.tracking_uri())
    exp = client.get_experiment_by_name("data-stages")
    runs: dict[str, list] = {}
    for r in client.search_runs([exp.experiment_id]):
        runs.setdefault(r.info.run_name, []).append(r)
    counts = json.loads((ws / "metrics/ingest.json").read_text())
    assert runs["ingest"][0].data.metrics["train.sequences"] == counts["train"]["sequences"] == 24
    assert runs["normalise"][0].data.metrics["train.sequences"] == 24
    assert runs["synthesize"][0].data.metrics["splits.train.sequences"] == 24
    artifacts = [a.path for a in client.list_artifacts(runs["ingest"][0].info.run_id, "metrics")]
    assert artifacts == ["metrics/ingest.json"]
    for name in ("first", "second"):
        (parent,) = runs[name]
        m = parent.data.metrics
        assert m["synthesize.splits.dev.sequences"] == m["ingest.dev.sequences"] == 6, name
        assert m["normalise.test.sequences"] == 6 and parent.info.status == "FINISHED", name
    assert len(runs["normalise"]) == 2 and len(runs["ingest"]) == 1


def test_copied_repository_keeps_its_artifacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of a repository (mlflow.db and mlartifacts/ included) logs artifacts under the copy."""
    for var in ("DVC_EXP_NAME", "DVC_STAGE", "DVC_ROOT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "unset")  # restored after the test (stage_run exports it)
    orig, copy = tmp_path / "orig", tmp_path / "copy"
    orig.mkdir()
    (orig / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    (orig / "a.txt").write_text("a")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(orig)
    with tracking.stage_run("s", PARAMS) as run:
        tracking.log_artifacts(run, "a.txt")
    first = run.info.run_id
    assert list((orig / "mlartifacts").rglob("a.txt"))

    shutil.copytree(orig, copy)
    (copy / "b.txt").write_text("b")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(copy)
    with tracking.stage_run("s", PARAMS) as run:
        tracking.log_artifacts(run, "b.txt")
    assert list((copy / "mlartifacts").rglob("b.txt")) and not list((orig / "mlartifacts").rglob("b.txt"))
    client = MlflowClient(f"sqlite:///{copy / 'mlflow.db'}")
    assert client.get_experiment_by_name("lineage").artifact_location == (copy / "mlartifacts").as_uri()
    # the earlier run's artifacts resolve to the copy's folder too
    assert client.get_run(first).info.artifact_uri.startswith((copy / "mlartifacts").as_uri() + "/")
    assert [a.path for a in client.list_artifacts(first)] == ["a.txt"]
    # the original is untouched
    original = MlflowClient(f"sqlite:///{orig / 'mlflow.db'}").get_experiment_by_name("lineage")
    assert original.artifact_location == (orig / "mlartifacts").as_uri()


def test_sqlite_store_keeps_artifacts_beside_it(repo: Path, db_uri: str) -> None:
    """An explicit ``$MLFLOW_TRACKING_URI`` sqlite store too (not ``./mlruns`` of the working directory)."""
    (repo / "d.txt").write_text("d")
    with tracking.stage_run("s", PARAMS) as run:
        tracking.log_artifacts(run, "d.txt")
    beside = tracking.sqlite_path(db_uri).parent / "mlartifacts"
    assert list(beside.rglob("d.txt")) and not (repo / "mlruns").exists()
