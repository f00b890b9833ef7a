"""The MLflow pyfunc model: register into a temporary store, serve it on loopback, POST sentences."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from pipeline.inference import Translator
from pipeline.tools import serve

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


@pytest.fixture()
def registered(tiny_student: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A temporary sqlite store holding ``nar-slp-kd`` version 1 (the tiny student); returns its URI."""
    torch.set_num_threads(1)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(tmp_path)  # the experiment's artifacts go to ./mlruns here
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # restored after the test (register sets it)
    version = serve.register(tiny_student, experiment="test-serve", tracking_uri=uri)
    assert str(version) == "1"
    return uri


def test_register_signature_and_local_predict(registered: str, tiny_student: Path) -> None:
    import mlflow

    info = mlflow.models.get_model_info("models:/nar-slp-kd/1")
    assert info.signature.inputs.input_names() == ["text"]
    assert info.signature.outputs.input_names() == ["frames", "poses"]
    model = mlflow.pyfunc.load_model("models:/nar-slp-kd/latest")
    out = model.predict(pd.DataFrame({"text": SENTENCES}))
    expected = Translator.load(tiny_student, "cpu").translate(SENTENCES)
    assert out["frames"].tolist() == [len(e) for e in expected]
    for poses, ref in zip(out["poses"], expected, strict=True):
        np.testing.assert_allclose(np.asarray(poses), ref, atol=1e-5)


@pytest.mark.slow
def test_served_model_answers_on_loopback(registered: str, tiny_student: Path, tmp_path: Path) -> None:
    port = _free_port()
    log_path = tmp_path / "serve.log"
    env = {**os.environ, "MLFLOW_TRACKING_URI": registered, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/nar-slp-kd/latest"]
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
