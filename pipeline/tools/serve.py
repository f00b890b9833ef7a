"""The trained student as an MLflow pyfunc model, registered as ``nar-slp-kd``.

    python -m pipeline.tools.serve register [--model models/student] [--name nar-slp-kd]
    MLFLOW_TRACKING_URI=sqlite:///mlflow.db \\
        mlflow models serve -m models:/nar-slp-kd/latest --env-manager local -h 127.0.0.1 -p 5001
    curl -s http://127.0.0.1:5001/invocations -H 'Content-Type: application/json' \\
        -d '{"dataframe_split": {"columns": ["text"], "data": [["am dienstag regnet es im norden"]]}}'

:func:`log_student` logs a student directory as :class:`StudentModel` (the directory as the
artifact ``student``, the ``pipeline`` package as code (the served model imports it from its own
copy, whatever the working directory), a signature, an input example and pip requirements with the
pretrained encoder's package pinned) into the active MLflow run, tagged ``nar.model_digest``
(:func:`pipeline.inference.model_digest`): the ``train_student`` stage calls it in its run.

:func:`register` registers the model of the training run as a new version of ``nar-slp-kd`` in
the project's store (:func:`pipeline.training.tracking.tracking_uri`: ``$MLFLOW_TRACKING_URI`` or
``sqlite:///<repo>/mlflow.db``): it finds the newest FINISHED ``train_student`` run of the
project's experiment (``tracking.experiment``) whose logged model has the directory's digest, so
the version's run is that training run (its params and metrics), and tags the version with the
run's git commit, DVC experiment name, profile and variant (the params that differ from the
committed params.yaml, e.g. ``loss.distil=0``). A directory no run logged is refused (retrain, or
``--unlinked``: logged in a run named ``register``, without lineage). Offline: no environment is
built (serve it with ``--env-manager local``).

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
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import mlflow

from pipeline.training.student_model import (  # noqa: F401  (re-exported: the CLI's API)
    DIGEST_TAG,
    EXAMPLE,
    LOGGED_MODEL,
    PIP_REQUIREMENTS,
    StudentModel,
    log_student,
    pip_requirements,
    signature,
)

log = logging.getLogger(__name__)

MODEL_NAME = "nar-slp-kd"
TRAINING_STAGE = "train_student"
MAX_TAG = 4000  # characters of a version tag value (MLflow's limit is 5000)


class LineageError(ValueError):
    """No training run of the model directory in the store (register refuses unlinked models)."""


def find_training_run(client: Any, experiment_id: str, digest: str) -> tuple[Any, str] | None:
    """``(run, logged model id)`` of the newest FINISHED ``train_student`` run of the experiment that
    logged a model with ``digest``, or None."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`dvc.stage` = '{TRAINING_STAGE}' and tags.`{DIGEST_TAG}` = '{digest}' "
            "and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
    )
    for run in runs:
        models = client.search_logged_models(
            [experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
        )
        for model in models:
            if model.tags.get(DIGEST_TAG) == digest:
                return run, model.model_id
    return None


def _git_show(root: Path, rev: str, path: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=root, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def params_variant(params: dict[str, str], commit: str, root: str | Path = ".") -> tuple[str, str]:
    """``(variant, base)``: the run's params (as logged: flattened, resolved profile) that differ
    from the params.yaml committed at ``commit`` (else at HEAD) of the repository ``root``, resolved
    with the run's profile (a changed profile is listed as ``profile=...``), as ``key=value``
    joined by ``, `` (``baseline`` when none differ); ``base`` is the revision compared with."""
    import yaml

    from pipeline.config import ParamsError, flatten, load_params
    from pipeline.training.tracking import _param_value

    root = Path(root)
    for rev in dict.fromkeys([commit, "HEAD"]):
        text = _git_show(root, rev, "params.yaml") if rev and rev != "unknown" else None
        if text is not None:
            break
    else:
        return "unknown (no committed params.yaml)", "none"
    raw = yaml.safe_load(text) or {}
    committed = str(raw.get("profile", "default"))
    profile = params.get("profile", committed)
    resolved = None
    with tempfile.TemporaryDirectory() as tmp:
        for name in dict.fromkeys([profile, committed]):
            path = Path(tmp) / "params.yaml"
            path.write_text(yaml.safe_dump({**raw, "profile": name}, sort_keys=False))
            try:
                resolved = load_params(path)
                break
            except ParamsError:
                continue
    if resolved is None:
        return "unknown (invalid committed params.yaml)", rev
    base = {k: _param_value(v) for k, v in flatten(resolved).items() if k != "profile"}
    diffs = [f"profile={profile}"] if profile != committed else []
    diffs += [f"{k}={v}" for k, v in sorted(params.items()) if k != "profile" and base.get(k) != v]
    diffs += [f"{k}=(unset)" for k in sorted(set(base) - set(params))]
    return ", ".join(diffs) or "baseline", rev


def lineage_tags(run: Any, digest: str, root: str | Path = ".") -> dict[str, str]:
    """Tags of a model version registered from the training ``run``: ``git_commit``,
    ``dvc.exp_name``, ``profile``, ``variant`` (:func:`params_variant`), ``variant_base``,
    ``training_run``, ``model_digest``."""
    tags = run.data.tags
    commit = tags.get("mlflow.source.git.commit", "unknown")
    variant, base = params_variant(dict(run.data.params), commit, root)
    if len(variant) > MAX_TAG:
        variant = variant[: MAX_TAG - 1] + "…"
    return {
        "git_commit": commit,
        "dvc.exp_name": tags.get("dvc.exp_name", "unknown"),
        "profile": run.data.params.get("profile", tags.get("nar.profile", "unknown")),
        "variant": variant,
        "variant_base": base,
        "training_run": run.info.run_id,
        "model_digest": digest,
    }


def register(
    model_dir: str | Path = "models/student",
    name: str = MODEL_NAME,
    experiment: str | None = None,
    tracking_uri: str | None = None,
    unlinked: bool = False,
) -> Any:
    """Register the model that the ``train_student`` run of ``model_dir`` logged as a new version of
    ``name``, tagged with its lineage (:func:`lineage_tags`); returns the version.

    :class:`LineageError` when no FINISHED ``train_student`` run of the experiment logged this
    directory (its digest); with ``unlinked`` it is logged in a new run named ``register`` instead
    (tag ``training_run`` = ``none``).
    """
    from mlflow.tracking import MlflowClient

    from pipeline.inference import find_lift_transform, load_student, model_digest
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
    client = MlflowClient(uri)
    experiment_id = tracking.experiment_id_of(client, experiment, default_store)
    digest = model_digest(d)
    found = find_training_run(client, experiment_id, digest)
    if found is not None:
        run, model_id = found
        tags = lineage_tags(run, digest, tracking.repo_root())
        version = mlflow.register_model(f"models:/{model_id}", name, tags=tags)
        client.update_model_version(
            name,
            version.version,
            description=(
                f"{TRAINING_STAGE} run {run.info.run_id} of DVC experiment {tags['dvc.exp_name']} at "
                f"commit {tags['git_commit'][:12]} (profile {tags['profile']}): {tags['variant']}"
            ),
        )
        log.info(
            "registered %s version %s from %s run %s (%s) in %s",
            name,
            version.version,
            TRAINING_STAGE,
            run.info.run_id,
            tags["variant"],
            uri,
        )
        return str(version.version)
    if not unlinked:
        raise LineageError(
            f"{d}: no FINISHED {TRAINING_STAGE} run of experiment {experiment!r} in {uri} logged this "
            f"model (digest {digest[:12]}): retrain it (dvc repro train_student logs it with its "
            "lineage), or pass --unlinked to register it without a link to its training run"
        )
    commit = tracking.git_commit()
    with mlflow.start_run(experiment_id=experiment_id, run_name="register") as run:
        mlflow.set_tags({"mlflow.source.git.commit": commit, "nar.model_dir": str(d)})
        info = log_student(d, run)
    tags = {"git_commit": commit, "training_run": "none", "model_digest": digest}
    version = mlflow.register_model(f"models:/{info.model_id}", name, tags=tags)
    log.warning(
        "registered %s version %s WITHOUT lineage (run %s) in %s", name, version.version, run.info.run_id, uri
    )
    return str(version.version)


def main(argv: list[str] | None = None) -> int:
    """CLI: ``register``."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.tools.serve", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("register", help="register the model train_student logged for models/student")
    reg.add_argument("--model", default="models/student", help="student directory (default %(default)s)")
    reg.add_argument("--name", default=MODEL_NAME, help="registered model name (default %(default)s)")
    reg.add_argument("--experiment", help="MLflow experiment (default: tracking.experiment of params.yaml)")
    reg.add_argument(
        "--unlinked",
        action="store_true",
        help="register a directory no train_student run logged (no lineage: a new run named 'register')",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        version = register(args.model, args.name, args.experiment, unlinked=args.unlinked)
    except (FileNotFoundError, ValueError) as exc:
        print(f"serve: error: {exc}", file=sys.stderr)
        return 1
    print(f"registered model {args.name!r} version {version}: models:/{args.name}/{version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
