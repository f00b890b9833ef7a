"""The trained student as an MLflow pyfunc model: the wrapper, its signature and :func:`log_student`.

:func:`log_student` logs a student directory as :class:`StudentModel` (the directory as the
artifact ``student``, the ``pipeline`` package as code (the served model imports it from its own
copy, whatever the working directory), a signature, an input example and pip requirements with the
pretrained encoder's package pinned) into the active MLflow run, tagged ``nar.model_digest``
(:func:`pipeline.inference.model_digest`). The ``train_student`` stage calls it in its run;
``python -m pipeline.tools.serve register`` registers what it logged. A library module (not the
tool) because a stage may import libraries only.

Model input: a DataFrame with a string column ``text`` (one sentence per row). Output: a DataFrame
with ``frames`` (int, T) and ``poses`` (nested lists ``[T][J][3]``, float, body-centred 3D units).
``NAR_SLP_DEVICE`` (default ``auto``: CUDA when available) chooses the device.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, DataType, Schema

EXAMPLE = ["am dienstag regnet es im norden", "morgen scheint im sueden die sonne"]
PIP_REQUIREMENTS = ["torch", "transformers", "numpy", "pandas", "mlflow"]  # + the encoder's package
LOGGED_MODEL = "model"  # name of the pyfunc model in the training run
DIGEST_TAG = "nar.model_digest"  # run and logged-model tag: pipeline.inference.model_digest of the dir


class StudentModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper of :class:`pipeline.inference.Translator` (artifact ``student``: the model dir)."""

    def load_context(self, context: Any) -> None:
        from pipeline.inference import Translator

        device = os.environ.get("NAR_SLP_DEVICE", "auto")
        self.translator = Translator.load(context.artifacts["student"], device=device)

    # model_input: a DataFrame hint is one MLflow derives no schema from (the signature is explicit)
    # and keeps it quiet (no hint: a warning at import); a list of str is accepted as well
    def predict(self, context, model_input: pd.DataFrame, params=None):
        """DataFrame with column ``text`` (or a list of str) -> DataFrame ``frames``, ``poses``."""
        from pipeline.inference import InputError

        if isinstance(model_input, pd.DataFrame):
            if "text" not in model_input.columns:
                raise mlflow.exceptions.MlflowException.invalid_parameter_value(
                    f"input needs a column 'text', got {list(model_input.columns)}"
                )
            texts = [str(t) for t in model_input["text"].tolist()]
        else:
            texts = [str(t) for t in list(model_input)]
        try:
            poses = self.translator.translate(texts)
        except InputError as exc:
            raise mlflow.exceptions.MlflowException.invalid_parameter_value(str(exc)) from exc
        return pd.DataFrame(
            {
                "frames": np.array([len(p) for p in poses], np.int64),
                "poses": [np.asarray(p, np.float64).tolist() for p in poses],
            }
        )


def signature() -> ModelSignature:
    """Input: column ``text`` (string). Output: ``frames`` (long), ``poses`` (array [T][J][3] of double)."""
    return ModelSignature(
        inputs=Schema([ColSpec(DataType.string, "text")]),
        outputs=Schema(
            [
                ColSpec(DataType.long, "frames"),
                ColSpec(Array(Array(Array(DataType.double))), "poses"),
            ]
        ),
    )


def pip_requirements(model_dir: str | Path) -> list[str]:
    """:data:`PIP_REQUIREMENTS` plus the pinned package of the student's pretrained encoder, if any."""
    from pipeline.inference import REFERENCE_KEY

    try:
        ref = json.loads((Path(model_dir) / "config.json").read_text()).get(REFERENCE_KEY) or {}
    except (OSError, ValueError):
        ref = {}
    extra = [f"{ref['package']}=={ref['version']}"] if ref.get("package") and ref.get("version") else []
    return [*PIP_REQUIREMENTS, *extra]


@contextlib.contextmanager
def _quiet_logging() -> Iterator[None]:
    """While logging the model (a step of train_student): MLflow's known, harmless note on it (a
    cloudpickled Python object) and the progress bar of its input-example check are off."""
    pyfunc_log, bar = logging.getLogger("mlflow.pyfunc"), "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    level, old = pyfunc_log.level, os.environ.get(bar)
    pyfunc_log.setLevel(logging.ERROR)
    os.environ[bar] = "false"
    try:
        yield
    finally:
        pyfunc_log.setLevel(level)
        if old is None:
            os.environ.pop(bar, None)
        else:
            os.environ[bar] = old


def log_student(model_dir: str | Path, run: Any = None) -> Any:
    """Log ``model_dir`` as the pyfunc model ``model`` of the active MLflow run (``run``, when given,
    must be it; ``None`` outside rank 0 is accepted and does nothing), tag the run and the model
    with its digest; returns MLflow's ``ModelInfo``."""
    from pipeline.inference import model_digest

    active = mlflow.active_run()
    if run is None and active is None:
        return None
    if active is None or (run is not None and active.info.run_id != run.info.run_id):
        raise RuntimeError("log_student: the run to log into is not MLflow's active run")
    d = Path(model_dir)
    digest = model_digest(d)
    code = Path(__file__).resolve().parents[1]  # the pipeline package
    with _quiet_logging():
        info = mlflow.pyfunc.log_model(
            name=LOGGED_MODEL,
            python_model=StudentModel(),
            artifacts={"student": str(d)},
            code_paths=[str(code)],
            signature=signature(),
            input_example=pd.DataFrame({"text": EXAMPLE}),
            pip_requirements=pip_requirements(d),
            tags={DIGEST_TAG: digest},
        )
    mlflow.set_tag(DIGEST_TAG, digest)
    return info
