"""MLflow tracking of the stages: one parent run per DVC experiment, one child run per stage.

Store: ``$MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<root>/mlflow.db`` with ``<root>`` =
``$DVC_ROOT`` when set (queued experiments run in a temporary copy that DVC deletes afterwards,
while ``DVC_ROOT`` still names the original repository), else the current directory.

Artifacts. An experiment created here in a sqlite store keeps its artifacts beside the database
file: ``<db dir>/mlartifacts`` (:func:`artifact_root`; ``<root>/mlartifacts`` for the default store,
so queued runs land in the original repository too). MLflow stores that location as an absolute
URI in the experiment (and each run's ``artifact_uri`` under it) and has no API to change it, so a
copied repository (or a copied ``mlflow.db``) would still write into the original's folder:
:func:`experiment_id_of` repairs it — an experiment whose location is another directory's
``mlartifacts`` is moved to this store's, with its runs' and logged models' URIs
(:func:`relocate_artifacts`, an SQL update of the store). Other locations (set by hand, remote
stores, MLflow's defaults) are left as they are.

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

Lineage. DVC skips the stages whose deps did not change, so a parent would lack their metrics
(blank columns when comparing experiments). When a stage's run ends FINISHED,
:func:`log_lineage` logs into the parent the metrics files in the workspace of that stage and of
every stage upstream of it in dvc.yaml (:func:`lineage_metrics`), with the same keys:
``<stage>.<flat key>`` for a JSON file under ``metrics/`` or a ``stats.json`` / ``summary.json``
at the top of a directory out (synthesize's corpus counts, the FGD encoder's summary);
``<stage>.<dir>.<file stem>.<flat key>`` for the files of a directory out under ``metrics/``
(``evaluate.headline.test_student.bleu4``). Only upstream stages: their outputs are those of
this experiment (DVC ran or verified them first), while a downstream stage's files may be the
previous experiment's until it runs. The last stage (``evaluate``) has every stage upstream, so
a complete ``dvc exp run`` gives a complete parent. Values the parent already has are not logged
again; non-numeric values and a top-level ``config`` (a copy of params) are skipped.

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
import math
import os
import posixpath
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import mlflow
import yaml
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from pipeline.config import flatten

PARENT_KEY_TAG = "nar.parent_key"
PARENT_TAG = "mlflow.parentRunId"
PID_TAG, HOST_TAG = "nar.pid", "nar.host"  # the process of a child run (orphan detection)
DEFAULT_EXPERIMENT = "nar-slp-kd"
ARTIFACTS_DIR = "mlartifacts"  # beside the sqlite store
METRICS_DIR = "metrics"  # a stage's JSON outs here are its metrics (lineage)
METRICS_IN_DIR_OUTS = ("stats.json", "summary.json")  # metrics a stage keeps inside a directory out
MAX_METRICS_PER_BATCH = 1000  # MLflow's log_batch limit

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


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///<path>`` tracking URI (absolute), else None."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    return Path(path).resolve() if path and path != ":memory:" else None


def artifact_root(uri: str) -> str | None:
    """``file://<db dir>/mlartifacts`` for a sqlite store (where this module puts an experiment's
    artifacts), else None (MLflow's default)."""
    db = sqlite_path(uri)
    return (db.parent / ARTIFACTS_DIR).as_uri() if db is not None else None


def _local_path(location: str) -> Path | None:
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(location) if parsed.scheme == "" and location.startswith("/") else None


def relocate_artifacts(db: Path, experiment_id: str, old: str, new: str) -> None:
    """Set the artifact location of experiment ``experiment_id`` from ``old`` to ``new`` in the
    sqlite store ``db``, with the URIs of its runs and logged models under ``old`` (MLflow has no
    API for it; the files are not moved)."""
    eid = int(experiment_id)
    with closing(sqlite3.connect(db, timeout=60)) as con, con:
        con.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ? AND artifact_location = ?",
            (new, eid, old),
        )
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, column in (("runs", "artifact_uri"), ("logged_models", "artifact_location")):
            if table in tables:
                con.execute(
                    f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                    f"WHERE experiment_id = ? AND substr({column}, 1, ?) = ?",
                    (new, len(old) + 1, eid, len(old) + 1, old + "/"),
                )


def experiment_id_of(client: MlflowClient, name: str, default_store: bool | None = None) -> str:
    """Id of the MLflow experiment ``name`` (restored when deleted; created when absent).

    In a sqlite store its artifacts are in :func:`artifact_root` (``<db dir>/mlartifacts``); an
    existing experiment whose location is another directory's ``mlartifacts`` (a copied store)
    is relocated there (:func:`relocate_artifacts`). ``default_store`` is ignored (kept for callers:
    every sqlite store is treated alike).
    """
    uri = client.tracking_uri
    want = artifact_root(uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None and exp.lifecycle_stage == "deleted":
        client.restore_experiment(exp.experiment_id)
    if exp is not None:
        old = exp.artifact_location or ""
        here = _local_path(old)
        if want and old != want and here is not None and here.name == ARTIFACTS_DIR:
            log.warning(
                "MLflow experiment %r kept its artifacts in %s (a copied store?): moved to %s for new runs",
                name, old, want,
            )  # fmt: skip
            relocate_artifacts(sqlite_path(uri), exp.experiment_id, old, want)
        return exp.experiment_id
    try:
        return client.create_experiment(name, artifact_location=want)
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
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)  # note: also exports MLFLOW_TRACKING_URI
    client = MlflowClient(uri)
    experiment = (params.get("tracking") or {}).get("experiment") or DEFAULT_EXPERIMENT
    experiment_id = experiment_id_of(client, experiment)
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
        if status == "FINISHED":
            try:
                log_lineage(client, parent_id, stage)
            except Exception as e:  # noqa: BLE001 - the stage's outputs are written: do not fail it
                log.warning("%s: could not log the upstream stages' metrics to the parent run: %s", stage, e)
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


_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")


def metric_key(key: str) -> str | None:
    """``key`` as a valid MLflow metric name: characters other than alphanumerics, ``_ - . : /``
    and spaces become ``_``; slashes too when the name would not be a clean relative path; None
    when longer than MLflow's 250 characters."""
    key = _BAD_KEY_CHARS.sub("_", key)
    norm = posixpath.normpath(key)
    if norm != key or norm in (".", "..") or norm.startswith(("../", "/")):
        key = key.replace("/", "_")
    return key if 0 < len(key) <= 250 and key not in (".", "..") else None


def _metric_entities(flat: dict[str, float]) -> list[Metric]:
    now = int(time.time() * 1000)
    out = []
    for k, v in flat.items():
        key = metric_key(k)
        if key is None:
            log.warning("metric %r skipped: not a valid MLflow metric name", k)
        else:
            out.append(Metric(key=key, value=v, timestamp=now, step=0))
    return out


def _log_metrics(client: MlflowClient, run_id: str, flat: dict[str, float]) -> None:
    """``log_batch`` in chunks of MLflow's limit (1000 metrics per call)."""
    metrics = _metric_entities(flat)
    for start in range(0, len(metrics), MAX_METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + MAX_METRICS_PER_BATCH])


def log_final_metrics(run: mlflow.ActiveRun | None, metrics: dict[str, Any]) -> dict[str, float]:
    """Log (nested) numeric ``metrics`` to ``run`` and, prefixed by the stage, to its parent.

    Returns the flat dict that was logged to the child (non-numeric values are skipped; a name
    MLflow rejects is made valid by :func:`metric_key`).
    """
    if run is None:
        return {}
    flat = _numeric(flatten(metrics))
    client = MlflowClient(tracking_uri())
    info = client.get_run(run.info.run_id)
    stage = info.data.tags.get("dvc.stage") or info.info.run_name
    _log_metrics(client, run.info.run_id, flat)
    parent = info.data.tags.get(PARENT_TAG)
    if parent:
        _log_metrics(client, parent, {f"{stage}.{k}": v for k, v in flat.items()})
    return flat


def read_metrics(path: str | Path) -> dict[str, Any]:
    """A metrics JSON file as a dict, without a top-level ``config`` (a copy of params)."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a metrics file must hold a JSON object")
    return {k: v for k, v in data.items() if k != "config"}


def log_metrics_file(run: mlflow.ActiveRun | None, path: str | Path) -> dict[str, float]:
    """Log a metrics JSON (e.g. ``metrics/vae.json``) via :func:`log_final_metrics` and as artifact."""
    if run is None:
        return {}
    p = Path(path)
    flat = log_final_metrics(run, read_metrics(p))
    MlflowClient(tracking_uri()).log_artifact(run.info.run_id, str(p), artifact_path="metrics")
    return flat


def _entry_paths(entries: Any) -> list[str]:
    """Paths of a dvc.yaml list whose items are strings or one-key mappings."""
    if not isinstance(entries, list):
        return []
    return [e if isinstance(e, str) else next(iter(e)) for e in entries if isinstance(e, (str, dict)) and e]


def _norm(path: str) -> PurePosixPath:
    return PurePosixPath(posixpath.normpath(path.strip().rstrip("/")))


def dvc_stages(root: str | Path = ".") -> dict[str, tuple[list[PurePosixPath], list[PurePosixPath]]]:
    """``{stage: (deps, outs)}`` of ``<root>/dvc.yaml`` (outs with its ``metrics`` and ``plots``);
    ``${a.b}`` in a path is resolved from params.yaml's top level (as DVC does); ``{}`` without
    dvc.yaml. ``foreach``/``matrix`` stages are left out."""
    root = Path(root)
    path = root / "dvc.yaml"
    if not path.is_file():
        return {}
    doc = yaml.safe_load(path.read_text()) or {}
    params_file = root / "params.yaml"
    params = (yaml.safe_load(params_file.read_text()) or {}) if params_file.is_file() else {}

    def resolve(text: str) -> str:
        def lookup(m: re.Match[str]) -> str:
            value: Any = params
            for part in m.group(1).strip().split("."):
                if not isinstance(value, dict) or part not in value:
                    return m.group(0)
                value = value[part]
            return str(value)

        return re.sub(r"\$\{([^}]+)\}", lookup, text)

    out = {}
    for name, spec in (doc.get("stages") or {}).items():
        if not isinstance(spec, dict) or "foreach" in spec or "matrix" in spec:
            continue
        deps = [_norm(resolve(p)) for p in _entry_paths(spec.get("deps"))]
        outs = [
            _norm(resolve(p)) for key in ("outs", "metrics", "plots") for p in _entry_paths(spec.get(key))
        ]
        out[str(name)] = (deps, outs)
    return out


def _overlaps(a: PurePosixPath, b: PurePosixPath) -> bool:
    return a == b or a in b.parents or b in a.parents


def upstream(stages: dict[str, tuple[list[PurePosixPath], list[PurePosixPath]]], stage: str) -> list[str]:
    """``stage`` and every stage it depends on, directly or not (an out of one is, contains or lies
    in a dep of the other), in dvc.yaml's order; ``[]`` for a stage not in ``stages``."""
    if stage not in stages:
        return []
    seen, todo = {stage}, [stage]
    while todo:
        deps = stages[todo.pop()][0]
        for other, (_, outs) in stages.items():
            if other not in seen and any(_overlaps(o, d) for o in outs for d in deps):
                seen.add(other)
                todo.append(other)
    return [s for s in stages if s in seen]


def metrics_files(outs: list[PurePosixPath], root: str | Path = ".") -> list[tuple[str, Path]]:
    """``(key infix, file)`` of the metrics files among a stage's ``outs`` present under ``root``:
    a JSON file under ``metrics/`` (infix ``""``), the JSON files of a directory under
    ``metrics/`` (infix ``<dir>.<file stem>``), and :data:`METRICS_IN_DIR_OUTS` at the top of
    another directory out (infix ``""``)."""
    root, found = Path(root), []
    for out in outs:
        p = root / out
        if out.parts[:1] == (METRICS_DIR,):
            if p.is_file() and p.suffix == ".json":
                found.append(("", p))
            elif p.is_dir():
                found += [(f"{p.name}.{f.stem}", f) for f in sorted(p.glob("*.json")) if f.is_file()]
        elif p.is_dir():
            found += [("", p / n) for n in METRICS_IN_DIR_OUTS if (p / n).is_file()]
    return found


def lineage_metrics(stage: str, root: str | Path = ".") -> dict[str, float]:
    """The numeric metrics of ``stage`` and of every stage upstream of it in ``<root>/dvc.yaml``,
    read from their metrics files in the workspace (:func:`metrics_files`), keyed as the stages log
    them to the parent: ``<stage>.[<infix>.]<flat key>``. Unreadable files are skipped (logged)."""
    stages = dvc_stages(root)
    flat: dict[str, float] = {}
    for name in upstream(stages, stage):
        for infix, path in metrics_files(stages[name][1], root):
            try:
                values = _numeric(flatten(read_metrics(path)))
            except (OSError, ValueError) as e:
                log.warning("%s: %s skipped for the parent run: %s", stage, path, e)
                continue
            prefix = f"{name}.{infix}." if infix else f"{name}."
            flat |= {prefix + k: v for k, v in values.items()}
    return flat


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def log_lineage(client: MlflowClient, parent_id: str, stage: str, root: str | Path = ".") -> dict[str, float]:
    """Log :func:`lineage_metrics` of ``stage`` into the parent run ``parent_id``, leaving out the
    values it already has; returns what was logged."""
    have = client.get_run(parent_id).data.metrics
    flat = lineage_metrics(stage, root)
    new = {}
    for k, v in flat.items():
        key = metric_key(k)
        if key is not None and not (key in have and _same(have[key], v)):
            new[k] = v
    if new:
        _log_metrics(client, parent_id, new)
        log.debug("%s: %d metric(s) of it and its upstream stages logged to the parent run", stage, len(new))
    return new


def log_artifacts(run: mlflow.ActiveRun | None, path: str | Path, artifact_path: str | None = None) -> None:
    """Log a file or a directory's files as artifacts of ``run`` (no-op for ``None``)."""
    if run is None:
        return
    client, p = MlflowClient(tracking_uri()), Path(path)
    if p.is_dir():
        client.log_artifacts(run.info.run_id, str(p), artifact_path=artifact_path)
    else:
        client.log_artifact(run.info.run_id, str(p), artifact_path=artifact_path)
