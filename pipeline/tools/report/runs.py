"""The experiment runs of a report: parent runs from the MLflow store, their variants, selection."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.training.tracking import PARENT_KEY_TAG

VARIANT_ORDER = ("full", "w/o KD", "w/o BERT", "MSE-VAE")
PROFILE_ORDER = ("default", "tiny", "paper")


class ReportError(RuntimeError):
    """The store, experiment or runs needed for the report are missing."""


@dataclass
class ExpRun:
    """One parent run (= one DVC experiment) with its params and final metrics."""

    run_id: str
    name: str
    start_time: int
    status: str
    params: dict[str, str]
    metrics: dict[str, float]
    variant: str = ""
    profile: str = ""  # the corpus label, corpus_of(): the params profile (+ the lifting when not knn)
    base_variant: str = ""  # the variant without the seed suffix
    seed: str = ""  # the student's training seed (student.seed, else the global seed)
    older: list[str] = field(default_factory=list)  # names of older runs of the same variant/profile

    @property
    def has_eval(self) -> bool:
        """True when the ``evaluate`` stage logged its metrics to this run."""
        return any(k.startswith("evaluate.") for k in self.metrics)

    def get(self, split: str, system: str, metric: str) -> float | None:
        """``evaluate.<split>.<system>.<metric>`` or None."""
        return self.metrics.get(f"evaluate.{split}.{system}.{metric}")

    @property
    def started(self) -> str:
        """Start time, UTC, to the second."""
        return dt.datetime.fromtimestamp(self.start_time / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def variant_of(params: dict[str, str]) -> str:
    """The ablation variant named by a run's params (see the module docstring)."""
    name = base_variant_of(params)
    seed = _student_seed(params)
    return name if seed is None else f"{name} (seed {seed})"


def _student_seed(params: dict[str, str]) -> str | None:
    """``student.seed`` as logged, or None when unset (MLflow logs null as ``None``)."""
    seed = params.get("student.seed", "None")
    return None if seed in ("None", "null", "") else seed


def seed_of(params: dict[str, str]) -> str:
    """The student's effective training seed: ``student.seed`` when set, else the global ``seed``."""
    seed = _student_seed(params)
    return params.get("seed", "?") if seed is None else seed


def base_variant_of(params: dict[str, str]) -> str:
    """The variant named by ``loss.distil``, ``student.text_encoder`` and ``vae.loss`` (no seed)."""
    parts = []
    try:
        distil = float(params.get("loss.distil", "1"))
    except ValueError:
        distil = 1.0
    if distil == 0:
        parts.append("w/o KD")
    elif distil != 1:
        parts.append(f"KD x{distil:g}")
    encoder = params.get("student.text_encoder", "bert")
    if encoder != "bert":
        parts.append("w/o BERT" if encoder == "transformer" else f"encoder={encoder}")
    vae_loss = params.get("vae.loss", "bce")
    if vae_loss != "bce":
        parts.append(f"{vae_loss.upper()}-VAE")
    return " + ".join(parts) or "full"


def corpus_of(params: dict[str, str]) -> str:
    """The corpus a run's numbers come from: its params ``profile``, plus ``, lift <method>`` when
    ``lift.method`` is not the default ``knn``. Runs of different liftings are never pooled: the
    poses, and the evaluators trained on them, differ. A run that logged the ``lift`` section but no
    ``lift.method`` predates issue 17, when ``viterbi`` was the only method."""
    profile = params.get("profile", "default")
    method = params.get("lift.method")
    if method is None and any(k.startswith("lift.") for k in params):
        method = "viterbi"
    return profile if method in (None, "knn") else f"{profile}, lift {method}"


def variant_key(v: str) -> tuple[int, str]:
    return (VARIANT_ORDER.index(v) if v in VARIANT_ORDER else len(VARIANT_ORDER), v)


def profile_key(p: str) -> tuple[int, str]:
    return (PROFILE_ORDER.index(p) if p in PROFILE_ORDER else len(PROFILE_ORDER), p)


def open_store(uri: str) -> Any:
    """``MlflowClient`` for ``uri``; a ``sqlite:///`` file must exist (never creates an empty store)."""
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            raise ReportError(
                f"no MLflow store at {path} ({uri}): run the pipeline first (`dvc repro` / `dvc exp run`) "
                "or pass --tracking-uri"
            )
    return MlflowClient(uri)


def load_runs(client: Any, experiment: str) -> list[ExpRun]:
    """All parent runs (tag ``nar.parent_key``) of ``experiment``, newest first."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        known = sorted(e.name for e in client.search_experiments())
        raise ReportError(f"experiment {experiment!r} not found in the store (experiments there: {known})")
    runs: list[ExpRun] = []
    token = None
    while True:
        page = client.search_runs(
            [exp.experiment_id], max_results=500, order_by=["attributes.start_time DESC"], page_token=token
        )
        for r in page:
            if PARENT_KEY_TAG not in r.data.tags:
                continue
            params = dict(r.data.params)
            runs.append(
                ExpRun(
                    run_id=r.info.run_id,
                    name=r.info.run_name or r.data.tags.get("dvc.exp_name", "?"),
                    start_time=int(r.info.start_time or 0),
                    status=r.info.status,
                    params=params,
                    metrics=dict(r.data.metrics),
                    variant=variant_of(params),
                    profile=corpus_of(params),
                    base_variant=base_variant_of(params),
                    seed=seed_of(params),
                )
            )
        token = page.token
        if not token:
            break
    if not runs:
        raise ReportError(
            f"experiment {experiment!r} has no experiment runs (parent runs tagged "
            f"{PARENT_KEY_TAG}); run `dvc repro` or `dvc exp run` first"
        )
    runs.sort(key=lambda r: r.start_time, reverse=True)
    return runs


def select(runs: list[ExpRun], profile: str | None = None) -> list[ExpRun]:
    """Newest run with evaluation metrics per (profile, variant), ordered by profile and variant."""
    chosen: dict[tuple[str, str], ExpRun] = {}
    for r in sorted(runs, key=lambda r: r.start_time, reverse=True):
        if not r.has_eval or (profile is not None and r.profile != profile):
            continue
        key = (r.profile, r.variant)
        if key in chosen:
            chosen[key].older.append(r.name)
        else:
            r.older = []
            chosen[key] = r
    if not chosen:
        where = f" of profile {profile!r}" if profile else ""
        raise ReportError(
            f"no experiment run{where} has evaluation metrics (evaluate.*): "
            f"{len(runs)} parent run(s) found, none finished the evaluate stage"
        )
    return sorted(chosen.values(), key=lambda r: (profile_key(r.profile), variant_key(r.variant)))
