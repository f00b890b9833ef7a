"""The MLflow pyfunc model: logged in a training run, registered with its lineage into a temporary
store, served on loopback, POSTed sentences."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT, make_tiny_student

from pipeline.config import flatten, load_params
from pipeline.inference import Translator, model_digest
from pipeline.tools import serve
from pipeline.training import tracking

SENTENCES = ["am dienstag regnet es im norden", "morgen sonne"]
START_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, payload: dict, timeout: float = 60) -> tuple[int, dict]:
    req = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server's whole process group (mlflow starts uvicorn workers as children)."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _git(root: Path, *args: str) -> str:
    cmd = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args]
    return subprocess.run(cmd, cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class Repo:
    root: Path
    uri: str  # the MLflow store (one per module: creating one costs seconds)
    experiment: str  # this test's MLflow experiment and registered model name
    model: str


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str, request: pytest.FixtureRequest) -> Repo:
    """``tmp_path`` as the working directory: a git repository whose committed params.yaml is the
    project's with an MLflow experiment of this test's own in the module's store."""
    name = re.sub(r"\W", "-", request.node.name)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["tracking"] = {**(params.get("tracking") or {}), "experiment": name}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "params.yaml")
    _git(tmp_path, "commit", "-qm", "baseline")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # restored after the test (MLflow sets it)
    for var in ("DVC_ROOT", "DVC_EXP_NAME", "DVC_STAGE"):
        monkeypatch.delenv(var, raising=False)
    torch.set_num_threads(1)
    return Repo(tmp_path, store, name, f"nar-slp-kd-{name}")


def _train_run(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, exp: str, fail: bool = False, **changes: object
) -> str:
    """A ``train_student`` run as the stage makes one for ``model_dir`` (its run, params and pyfunc
    model: ``serve.log_student``) in DVC experiment ``exp``, params.yaml changed by ``changes``
    (dotted keys) in the workspace; ``fail`` ends it FAILED. Returns the run id."""
    committed = _git(Path.cwd(), "show", "HEAD:params.yaml")
    params = yaml.safe_load(committed)
    for key, value in changes.items():
        *parents, last = key.split(".")
        node = params
        for part in parents:
            node = node[part]
        node[last] = value
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.setenv("DVC_EXP_NAME", exp)
    run_id = ""
    try:
        with tracking.stage_run("train_student", load_params()) as run:
            run_id = run.info.run_id
            serve.log_student(model_dir, run)
            if fail:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    Path("params.yaml").write_text(committed)
    return run_id


def _register(repo: Repo, model_dir: Path, **kwargs: object) -> str:
    return serve.register(model_dir, repo.model, repo.experiment, repo.uri, **kwargs)


@pytest.fixture()
def registered(tiny_student: Path, repo: Repo, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """Version 1 of the repo's registered model: the tiny student, from its training run."""
    _train_run(tiny_student, monkeypatch, "full-exp")
    assert _register(repo, tiny_student) == "1"
    return repo


def test_register_signature_and_local_predict(registered: Repo, tiny_student: Path) -> None:
    import mlflow

    info = mlflow.models.get_model_info(f"models:/{registered.model}/1")
    assert info.signature.inputs.input_names() == ["text"]
    assert info.signature.outputs.input_names() == ["frames", "poses"]
    model = mlflow.pyfunc.load_model(f"models:/{registered.model}/latest")
    out = model.predict(pd.DataFrame({"text": SENTENCES}))
    expected = Translator.load(tiny_student, "cpu").translate(SENTENCES)
    assert out["frames"].tolist() == [len(e) for e in expected]
    for poses, ref in zip(out["poses"], expected, strict=True):
        np.testing.assert_allclose(np.asarray(poses), ref, atol=1e-5)


def test_training_run_logs_a_pyfunc_model(tiny_student: Path, repo: Repo, monkeypatch) -> None:
    import mlflow

    run_id = _train_run(tiny_student, monkeypatch, "full-exp")
    client = mlflow.MlflowClient(repo.uri)
    run = client.get_run(run_id)
    digest = model_digest(tiny_student)
    assert run.data.tags[serve.DIGEST_TAG] == digest and run.data.tags["dvc.stage"] == "train_student"
    (model_id,) = [m.model_id for m in run.outputs.model_outputs]
    logged = client.get_logged_model(model_id)
    assert logged.name == "model" and logged.tags[serve.DIGEST_TAG] == digest
    info = mlflow.models.get_model_info(f"models:/{model_id}")
    assert info.signature.inputs.input_names() == ["text"] and info.saved_input_example_info
    model = mlflow.pyfunc.load_model(f"models:/{model_id}")
    out = model.predict(pd.DataFrame({"text": serve.EXAMPLE}))  # sentences -> frames, poses
    expected = Translator.load(tiny_student, "cpu").translate(serve.EXAMPLE)
    assert out["frames"].tolist() == [len(e) for e in expected]
    local = Path(mlflow.artifacts.download_artifacts(f"models:/{model_id}"))
    assert model_digest(local / "artifacts" / "student") == digest  # the directory as trained


def test_register_links_the_training_run_and_its_variant(
    tiny_student: Path, repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registered w/o-KD student is told from the full one: its version's run is its own training
    run, tagged with that run's DVC experiment, commit and the params that differ from params.yaml."""
    import mlflow

    wokd = make_tiny_student(repo.root / "wokd", seed=1)
    full_run = _train_run(tiny_student, monkeypatch, "full-exp")
    wokd_run = _train_run(wokd, monkeypatch, "wokd-exp", **{"loss.distil": 0})
    _train_run(wokd, monkeypatch, "wokd-later", fail=True, **{"loss.distil": 0})  # FAILED: not used
    assert _register(repo, wokd) == "1"
    assert _register(repo, tiny_student) == "2"
    client = mlflow.MlflowClient(repo.uri)
    head = _git(repo.root, "rev-parse", "HEAD")
    v1, v2 = client.get_model_version(repo.model, "1"), client.get_model_version(repo.model, "2")
    assert (v1.run_id, v2.run_id) == (wokd_run, full_run)
    assert v1.tags["variant"] == "loss.distil=0" and v2.tags["variant"] == "baseline"
    assert (v1.tags["dvc.exp_name"], v2.tags["dvc.exp_name"]) == ("wokd-exp", "full-exp")
    assert v1.tags["git_commit"] == head and v1.tags["variant_base"] == head
    assert v1.tags["training_run"] == wokd_run and v1.tags["model_digest"] == model_digest(wokd)
    assert v1.tags["profile"] == "default" and "wokd-exp" in v1.description
    assert client.get_run(v1.run_id).data.params["loss.distil"] == "0"  # the version's run: its params
    assert v1.source.startswith("models:/")
    loaded = mlflow.pyfunc.load_model(f"models:/{repo.model}/1").predict(pd.DataFrame({"text": SENTENCES}))
    expected = Translator.load(wokd, "cpu").translate(SENTENCES)
    for poses, ref in zip(loaded["poses"], expected, strict=True):
        np.testing.assert_allclose(np.asarray(poses), ref, atol=1e-5)


def _params_of(root: Path, profile: str) -> dict[str, str]:
    """The params a stage logs (flattened, as strings) for params.yaml of ``root`` with ``profile``."""
    path = root / "other" / "params.yaml"
    path.parent.mkdir(exist_ok=True)
    params = yaml.safe_load((root / "params.yaml").read_text()) | {"profile": profile}
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return {k: tracking._param_value(v) for k, v in flatten(load_params(path)).items()}


def test_params_variant_against_the_committed_params(repo: Repo) -> None:
    params = _params_of(repo.root, "default")
    head = _git(repo.root, "rev-parse", "HEAD")
    assert serve.params_variant(params, head, repo.root) == ("baseline", head)
    changed = {**params, "loss.distil": "0", "student.seed": "7"}
    assert serve.params_variant(changed, "unknown", repo.root) == ("loss.distil=0, student.seed=7", "HEAD")
    assert serve.params_variant(_params_of(repo.root, "tiny"), head, repo.root)[0] == "profile=tiny"
    assert serve.params_variant(params, head, repo.root / "other")[0] == "baseline"  # inside the repo
    assert serve.params_variant(params, head, repo.root.parent)[0].startswith("unknown")


def test_register_refuses_a_directory_no_run_logged(
    tiny_student: Path, repo: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import mlflow

    _train_run(tiny_student, monkeypatch, "failed", fail=True)  # a FAILED run does not count
    with pytest.raises(serve.LineageError, match="no FINISHED train_student run .* --unlinked"):
        _register(repo, tiny_student)
    argv = ["register", "--model", str(tiny_student), "--experiment", repo.experiment, "--name", repo.model]
    assert serve.main(argv) == 1
    assert "serve: error:" in capsys.readouterr().err
    version = _register(repo, tiny_student, unlinked=True)
    client = mlflow.MlflowClient(repo.uri)
    mv = client.get_model_version(repo.model, version)
    assert mv.tags["training_run"] == "none" and client.get_run(mv.run_id).info.run_name == "register"


@pytest.mark.slow
def test_served_model_answers_on_loopback(registered: Repo, tiny_student: Path, tmp_path: Path) -> None:
    port = _free_port()
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": registered.uri, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{registered.model}/latest"]
    cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                text = log_path.read_text(errors="replace")
                if "address already in use" in text.lower():
                    pytest.skip(f"port {port} was taken before the server bound it: {text[-300:]}")
                pytest.fail(f"mlflow models serve exited with {proc.returncode}:\n{text[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/ping", timeout=5) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"server did not answer /ping in {START_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(1)
        payload = {"dataframe_split": {"columns": ["text"], "data": [[s] for s in SENTENCES]}}
        status, body = _post(f"{base}/invocations", payload)
        assert status == 200, body
        preds = body["predictions"]
        expected = Translator.load(tiny_student, "cpu").translate(SENTENCES)
        assert len(preds) == 2
        for pred, ref in zip(preds, expected, strict=True):
            poses = np.asarray(pred["poses"], np.float64)
            assert pred["frames"] == len(ref) and poses.shape == (len(ref), 50, 3)
            np.testing.assert_allclose(poses, ref, atol=1e-5)
        status, body = _post(
            f"{base}/invocations", {"dataframe_split": {"columns": ["text"], "data": [[" "]]}}
        )
        assert status == 400 and "empty sentence" in json.dumps(body)
    finally:
        _stop(proc)
    assert proc.poll() is not None
