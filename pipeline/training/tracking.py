"""MLflow tracking of the stages: one parent run per DVC experiment, one child run per stage.

Store: ``$MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<root>/mlflow.db`` with ``<root>`` =
``$DVC_ROOT`` when set (queued experiments run in a temporary copy that DVC deletes afterwards,
while ``DVC_ROOT`` still names the original repository), else the current directory. When the
stage creates the experiment in the default store, its artifacts go to ``<root>/mlartifacts``
(absolute), for the same reason.

Parent rule. DVC runs every stage as a separate process, so a stage cannot hand a run id to the
next one. Each stage finds its parent run by the tag ``nar.parent_key`` =
``<exp name>|<git commit>|<sha1 of params.yaml, 12 hex>`` in the experiment named by
``tracking.experiment``, and creates it when absent. ``<exp name>`` is ``$DVC_EXP_NAME`` (set by
``dvc exp run``, unique per experiment) or ``workspace`` for a plain ``dvc repro``; the commit
and the params hash separate plain ``dvc repro`` runs of different code/params. (Two plain
``dvc repro`` runs of the same commit and params.yaml share one parent; so do reruns of a
stage that was killed — which is what resume wants.) The parent is named after the experiment;
it is RUNNING while a child runs and ends FINISHED (or FAILED when the child fails).

Children are named after the stage (``$DVC_STAGE`` or the module name), carry
``mlflow.parentRunId``, the flattened params of the resolved profile (dotted keys), and the
tags ``mlflow.source.git.commit``, ``dvc.exp_name``, ``dvc.stage``, ``nar.profile``.
:func:`log_final_metrics` / :func:`log_metrics_file` log a stage's final metrics to the child
*and* to the parent prefixed by the stage (``pretrain_vae.dev.mpjpe_unit.body``), so the
parent shows every stage's results of the experiment in one row.

Orphans. A stage killed by SIGKILL (or a lost machine) cannot end its child run: it stays
RUNNING. Every child records its process as the tags ``nar.host`` (hostname) and ``nar.pid``;
when a stage starts its run, :func:`end_orphaned_runs` marks KILLED the RUNNING runs of the same
stage in the experiment whose process is gone on this host, and logs how many. Runs of live
processes (parallel ``dvc exp run`` queue workers), of other hosts and without these tags (made
before them) are left alone.

Under DDP only global rank 0 creates runs; other ranks get ``None`` from :func:`stage_run` and
every helper here accepts ``None`` and does nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Param
from mlflow.tracking import MlflowClient

from pipeline.config import flatten

PARENT_KEY_TAG = "nar.parent_key"
PARENT_TAG = "mlflow.parentRunId"
PID_TAG, HOST_TAG = "nar.pid", "nar.host"  # the process of a child run (orphan detection)
DEFAULT_EXPERIMENT = "nar-slp-kd"

log = logging.getLogger(__name__)


def repo_root() -> Path:
    """``$DVC_ROOT`` when set (DVC runs), else the current directory."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` or ``sqlite:///<repo_root()>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def is_rank_zero() -> bool:
    """True unless a DDP/SLURM launcher marks this process as a non-zero rank."""
    for var in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "NODE_RANK"):
        if os.environ.get(var, "0") not in ("", "0"):
            return False
    return True


def exp_name() -> str:
    """The DVC experiment's name, or ``workspace`` outside ``dvc exp run``."""
    return os.environ.get("DVC_EXP_NAME") or "workspace"


def git_commit(cwd: str | Path | None = None) -> str:
    """``git rev-parse HEAD`` of ``cwd``, or ``unknown`` outside a repository."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def params_hash(path: str | Path = "params.yaml") -> str:
    """First 12 hex digits of the SHA-1 of the params file (``none`` when missing)."""
    p = Path(path)
    return hashlib.sha1(p.read_bytes()).hexdigest()[:12] if p.exists() else "none"


def experiment_id_of(client: MlflowClient, name: str, default_store: bool) -> str:
    """Id of the MLflow experiment ``name`` (restored when deleted; created when absent, with its
    artifacts in ``<repo_root()>/mlartifacts`` for the default store)."""
    exp = client.get_experiment_by_name(name)
    if exp is not None and exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    if exp is not None:
        return exp.experiment_id
    artifacts = (repo_root() / "mlartifacts").as_uri() if default_store else None
    try:
        return client.create_experiment(name, artifact_location=artifacts)
    except mlflow.exceptions.MlflowException:  # created concurrently by another process
        return client.get_experiment_by_name(name).experiment_id


def find_or_create_parent(
    client: MlflowClient, experiment_id: str, key: str, name: str, params: dict[str, Any] | None = None
) -> str:
    """Run id of the parent run tagged ``nar.parent_key = key``; created when absent.

    A new parent gets the flattened ``params`` too: the key contains the hash of params.yaml, so
    every stage of the experiment shares these values and the experiment's run shows them.
    """
    quoted = key.replace("'", "\\'")
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`{PARENT_KEY_TAG}` = '{quoted}'", max_results=1
    )
    if found:
        return found[0].info.run_id
    run = client.create_run(experiment_id, run_name=name, tags={PARENT_KEY_TAG: key, "dvc.exp_name": name})
    if params:
        flat = [Param(k, _param_value(v)) for k, v in flatten(params).items()]
        for start in range(0, len(flat), 100):  # MLflow's limit of params per batch
            client.log_batch(run.info.run_id, params=flat[start : start + 100])
    return run.info.run_id


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (another user's counts; a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: an exited process its parent has not reaped yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def end_orphaned_runs(client: MlflowClient, experiment_id: str, stage: str) -> list[str]:
    """Mark KILLED the RUNNING runs of ``stage`` (tag ``dvc.stage``) in the experiment whose
    process (tags ``nar.host``, ``nar.pid``) no longer runs on this host; returns their ids.

    Runs of another host, of a live process or without the tags are left alone: they may be
    running (e.g. parallel queue workers) and this process cannot tell.
    """
    quoted = stage.replace("'", "\\'")
    found = client.search_runs(
        [experiment_id], filter_string=f"tags.`dvc.stage` = '{quoted}' and attributes.status = 'RUNNING'"
    )
    host, ended, unknown = socket.gethostname(), [], 0
    for run in found:
        tags = run.data.tags
        pid = tags.get(PID_TAG, "")
        if tags.get(HOST_TAG) != host or not pid.isdigit():
            unknown += 1
        elif int(pid) != os.getpid() and not process_alive(int(pid)):
            try:
                client.set_terminated(run.info.run_id, "KILLED")
            except mlflow.exceptions.MlflowException as e:  # e.g. deleted meanwhile: not worth failing for
                log.warning("%s: could not end orphaned run %s: %s", stage, run.info.run_id, e)
                continue
            ended.append(run.info.run_id)
    if ended:
        log.warning(
            "%s: marked %d orphaned MLflow run(s) KILLED (process gone): %s", stage, len(ended), ended
        )
    if unknown:
        log.info("%s: %d other RUNNING run(s) of another host or without a pid left alone", stage, unknown)
    return ended


@contextmanager
def stage_run(stage: str | None, params: dict[str, Any]) -> Iterator[mlflow.ActiveRun | None]:
    """Child MLflow run of the experiment's parent run for one stage; yields the active run.

    Before it starts, the stage's runs orphaned by a killed process are ended KILLED
    (:func:`end_orphaned_runs`); the new run records this process as ``nar.host`` / ``nar.pid``.

    ``params`` is the stage's :class:`pipeline.config.Params` (or any resolved params dict): the
    flattened values of every resolved section (``params.resolved``, the experiment's record) are
    logged as params. The run ends FINISHED, or FAILED (re-raising) on an exception. Yields
    ``None`` on non-zero DDP ranks.
    """
    if not is_rank_zero():
        yield None
        return
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # e.g. "Creating initial MLflow database tables"
    params = getattr(params, "resolved", params)
    stage = os.environ.get("DVC_STAGE") or stage or Path(sys.argv[0]).stem
    default_store = not os.environ.get("MLFLOW_TRACKING_URI")
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)  # note: also exports MLFLOW_TRACKING_URI
    client = MlflowClient(uri)
    experiment = (params.get("tracking") or {}).get("experiment") or DEFAULT_EXPERIMENT
    experiment_id = experiment_id_of(client, experiment, default_store)
    commit, name = git_commit(), exp_name()
    key = f"{name}|{commit}|{params_hash()}"
    parent_id = find_or_create_parent(client, experiment_id, key, name, params)
    client.update_run(parent_id, status="RUNNING")
    tags = {
        PARENT_TAG: parent_id,
        "mlflow.source.git.commit": commit,
        "dvc.exp_name": name,
        "dvc.stage": stage,
        "nar.profile": str(params.get("profile", "default")),
        PID_TAG: str(os.getpid()),
        HOST_TAG: socket.gethostname(),
    }
    client.set_tag(parent_id, "mlflow.source.git.commit", commit)
    end_orphaned_runs(client, experiment_id, stage)
    run = mlflow.start_run(experiment_id=experiment_id, run_name=stage, tags=tags)
    status = "FAILED"
    try:
        flat = {k: _param_value(v) for k, v in flatten(params).items()}
        mlflow.log_params(flat)
        yield run
        status = "FINISHED"
    finally:
        mlflow.end_run(status)
        client.set_terminated(parent_id, status)


def _param_value(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict, bool)) or value is None else str(value)
    return text[:6000]


def mlflow_logger(run: mlflow.ActiveRun | None, prefix: str = "", **kwargs: Any) -> Any:
    """Lightning ``MLFlowLogger`` bound to ``run`` (``False`` = no logger when ``run`` is None);
    with ``prefix`` every metric is logged as ``<prefix>/<metric>`` (one model of several trained
    in the run, e.g. ``fpgn/train/total_step``).

    Lightning ends the run (FINISHED/FAILED) when ``fit`` finishes; :func:`stage_run` sets the
    final status again when the stage ends, so later metrics/artifacts still land in the run.
    """
    if run is None:
        return False
    from lightning.pytorch.loggers import MLFlowLogger

    logger = MLFlowLogger(
        experiment_name=MlflowClient(tracking_uri()).get_experiment(run.info.experiment_id).name,
        tracking_uri=tracking_uri(),
        run_id=run.info.run_id,
        prefix=prefix,
        **kwargs,
    )
    logger.LOGGER_JOIN_CHAR = "/"  # Lightning's default joins the prefix with "-"
    return logger


def _numeric(flat: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in flat.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def log_final_metrics(run: mlflow.ActiveRun | None, metrics: dict[str, Any]) -> dict[str, float]:
    """Log (nested) numeric ``metrics`` to ``run`` and, prefixed by the stage, to its parent.

    Returns the flat dict that was logged to the child (non-numeric values are skipped).
    """
    if run is None:
        return {}
    flat = _numeric(flatten(metrics))
    client = MlflowClient(tracking_uri())
    info = client.get_run(run.info.run_id)
    stage = info.data.tags.get("dvc.stage") or info.info.run_name
    client.log_batch(run.info.run_id, metrics=_metric_entities(flat))
    parent = info.data.tags.get(PARENT_TAG)
    if parent:
        client.log_batch(parent, metrics=_metric_entities({f"{stage}.{k}": v for k, v in flat.items()}))
    return flat


def _metric_entities(flat: dict[str, float]) -> list[Any]:
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(key=k, value=v, timestamp=now, step=0) for k, v in flat.items()]


def log_metrics_file(run: mlflow.ActiveRun | None, path: str | Path) -> dict[str, float]:
    """Log a metrics JSON (e.g. ``metrics/vae.json``) via :func:`log_final_metrics` and as artifact."""
    if run is None:
        return {}
    p = Path(path)
    flat = log_final_metrics(run, json.loads(p.read_text()))
    MlflowClient(tracking_uri()).log_artifact(run.info.run_id, str(p), artifact_path="metrics")
    return flat


def log_artifacts(run: mlflow.ActiveRun | None, path: str | Path, artifact_path: str | None = None) -> None:
    """Log a file or a directory's files as artifacts of ``run`` (no-op for ``None``)."""
    if run is None:
        return
    client, p = MlflowClient(tracking_uri()), Path(path)
    if p.is_dir():
        client.log_artifacts(run.info.run_id, str(p), artifact_path=artifact_path)
    else:
        client.log_artifact(run.info.run_id, str(p), artifact_path=artifact_path)
