"""The validate stage: every params section checked before DVC removes any stage's outputs, and
no ``-S`` value silently replaced by a profile (issue 15, items 3 and 4)."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import PARAMS_VALID, deep_merge, load_params, profile_conflicts
from pipeline.stages import validate

ROOT = Path(__file__).resolve().parents[1]


def repo_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def resolved(raw: dict, tmp_path: Path) -> dict:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_params(path)


@pytest.mark.parametrize("profile", ["default", "tiny", "paper"])
def test_repo_params_are_valid_for_every_profile(profile: str, tmp_path: Path) -> None:
    raw = repo_params() | {"profile": profile}
    assert validate.problems(resolved(raw, tmp_path), raw, repo_params()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vae": {"loss": "foo"}}, "vae.loss='foo' is invalid; expected one of 'bce', 'mse'"),
        ({"student": {"epochs": 2.5}}, "student.epochs=2.5 is invalid; expected an integer"),
        ({"train": {"precision": "bogus"}}, "train.precision='bogus' is invalid; expected one of ['auto'"),
        ({"train": {"strategy": "nope"}}, "train.strategy='nope' is invalid"),
        ({"train": {"accelerator": "abacus"}}, "train.accelerator='abacus' is invalid"),
        ({"data": {"source": "nope"}}, "data.source='nope' is invalid"),
        ({"synthetic": {"n_train": -1}}, "synthetic.n_train=-1 is invalid"),
        ({"lift": {"iterations": "ten"}}, "lift.iterations='ten' is invalid"),
        ({"nslpg": {"variants": ["base", "nope"]}}, "nslpg.variants"),
        (
            {"evaluate": {"systems": ["gt", "pt_fp"]}},
            "evaluate.systems[1]='pt_fp': 'fp' is not in progressive.variants",
        ),
        ({"tracking": {"experiment": 3}}, "tracking.experiment must be a string"),
    ],
)
def test_a_bad_value_is_named(change: dict, message: str, tmp_path: Path) -> None:
    raw = deep_merge(repo_params(), change)
    found = validate.problems(resolved(raw, tmp_path), raw, repo_params())
    assert len(found) == 1 and message in found[0], found


def test_every_problem_is_reported_not_only_the_first(tmp_path: Path) -> None:
    raw = deep_merge(repo_params(), {"vae": {"loss": "foo"}, "seed": -1, "loss": {"distil": -1}})
    found = validate.problems(resolved(raw, tmp_path), raw, repo_params())
    assert len(found) == 3
    assert any("seed=-1" in m for m in found) and any("loss.distil=-1" in m for m in found)


def test_a_plain_key_changed_under_a_profile_that_replaces_it_is_refused(tmp_path: Path) -> None:
    """``-S student.epochs=5 -S profile=tiny`` used to train the tiny profile's 2 epochs while
    params.yaml (and ``dvc exp show``) said 5."""
    base = repo_params()
    raw = copy.deepcopy(base)
    raw["profile"], raw["student"]["epochs"] = "tiny", 5
    found = validate.problems(resolved(raw, tmp_path), raw, base)
    assert found == [
        "params.yaml: student.epochs=5 (changed from 8) is replaced by profile 'tiny': "
        "profiles.tiny.student.epochs=2; set -S profiles.tiny.student.epochs=5 instead (or drop the profile)"
    ]
    # the profile's own entry is the way, and a plain key the profile does not touch is kept
    raw["student"]["epochs"], raw["profiles"]["tiny"]["student"]["epochs"] = 8, 5
    raw["student"]["lr"] = 0.5
    assert validate.problems(resolved(raw, tmp_path), raw, base) == []
    assert resolved(raw, tmp_path)["student"]["epochs"] == 5
    assert resolved(raw, tmp_path)["student"]["lr"] == 0.5


def test_profile_conflicts_edge_cases() -> None:
    base = repo_params()
    raw = copy.deepcopy(base)
    raw["profile"], raw["student"]["epochs"] = "tiny", 2  # changed to what the profile sets: no conflict
    assert profile_conflicts(raw, base) == []
    raw["student"]["epochs"] = 5
    assert profile_conflicts(raw, None) == []  # no committed params.yaml (outside git): not checked
    raw["profile"] = "default"  # the default profile replaces nothing
    assert profile_conflicts(raw, base) == []
    raw["profile"], raw["synthetic"]["n_train"] = "paper", 10  # other profiles, several keys
    assert [m.split(" ")[0] for m in profile_conflicts(raw, base)] == [
        "synthetic.n_train=10",
        "student.epochs=5",
    ]


def test_main_writes_its_constant_out_only_when_valid(workspace, capsys) -> None:
    root = workspace()
    validate.main([])
    out = root / PARAMS_VALID
    assert json.loads(out.read_text()) == validate.CONTENT
    before = out.read_bytes()
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["vae"]["loss"] = "foo"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out.unlink()
    with pytest.raises(SystemExit, match=r"1 problem\(s\) in params.yaml; no stage ran"):
        validate.main([])
    assert not out.exists()
    params["vae"]["loss"] = "mse"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    validate.main([])
    assert out.read_bytes() == before  # the same bytes for any valid params: nothing downstream reruns


def test_every_other_stage_depends_on_the_validate_out() -> None:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert next(iter(stages)) == "validate"
    for name, spec in stages.items():
        if name != "validate":
            assert PARAMS_VALID in spec["deps"], name
    out = stages["validate"]["outs"][0][PARAMS_VALID]
    assert out == {"cache": False, "persist": True}  # DVC never deletes it before the check
    assert json.loads((ROOT / PARAMS_VALID).read_text()) == validate.CONTENT  # committed, current


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for top in ("models", "data", "metrics"):
        for p in sorted((root / top).rglob("*")):
            if p.is_file():
                out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def repo_with_outputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A git copy of the repository (tiny profile committed) where ``dvc repro pretrain_vae`` ran
    and its dvc.lock is committed: outputs in place and in sync, as after a user's run."""
    from pipeline.tools.smoke import clean_env, make_tiny_repo

    tmp = tmp_path_factory.mktemp("validate")
    repo = make_tiny_repo(tmp / "repo")  # committed copy, profile: tiny
    env = {**clean_env(), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@t", "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}"}
    dvc = str(Path(sys.executable).parent / "dvc")
    for cmd in [[dvc, "repro", "-q", "pretrain_vae"], ["git", "add", "-A"], ["git", "commit", "-qm", "vae"]]:
        proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, (cmd, (proc.stdout + proc.stderr)[-3000:])
    assert (repo / "models/vae/model.pt").is_file() and (repo / "metrics/vae.json").is_file()
    return repo, env


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["-S", "vae.loss=foo"], "vae.loss='foo' is invalid"),
        (["-S", "student.epochs=5"], "set -S profiles.tiny.student.epochs=5 instead"),
        (["-S", "data.source=nope"], "data.source='nope' is invalid"),
        (["-S", "train.precision=bogus"], "train.precision='bogus' is invalid"),
    ],
)
def test_dvc_exp_run_with_a_bad_param_changes_no_output(
    args: list[str], named: str, repo_with_outputs: tuple[Path, dict[str, str]]
) -> None:
    """``dvc exp run -S <bad>`` fails naming the key, and nothing under models/, data/ or
    metrics/ changes (DVC used to delete models/vae and metrics/vae.json before pretrain_vae
    found vae.loss=foo; data.source=nope rewrote the synthetic corpus)."""
    repo, env = repo_with_outputs
    before = _snapshot(repo)
    dvc = str(Path(sys.executable).parent / "dvc")
    proc = subprocess.run(
        [dvc, "exp", "run", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300
    )
    subprocess.run(["git", "checkout", "-q", "params.yaml"], cwd=repo, check=True)
    assert proc.returncode != 0
    assert named in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    assert _snapshot(repo) == before


@pytest.mark.parametrize(
    "override", ["loss.distil=0", "student.text_encoder=transformer", "vae.loss=mse", "student.seed=3"]
)
def test_a_dvc_set_changes_one_line_of_params_yaml(override: str, tmp_path: Path) -> None:
    """``dvc exp run -S key=value`` rewrites params.yaml through DVC's YAML writer
    (``dvc.utils.hydra.apply_overrides``, what ``-S`` calls); params.yaml is kept in that form, so
    the only change is the line of the key (it used to reflow lists and blank every ``null``: a
    50-line diff)."""
    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", path)
    apply_overrides(str(path), [override])
    before = (ROOT / "params.yaml").read_text().split("\n")
    after = path.read_text().split("\n")
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    key, value = override.split("=")
    assert len(changed) == 1, changed
    assert changed[0][1].lstrip().startswith(f"{key.split('.')[-1]}: {value}")


def test_a_bad_trainer_value_stops_a_stage_before_its_mlflow_run_opens(workspace) -> None:
    """Run directly (without DVC's validate stage first), a training stage checks Lightning's values
    before it opens MLflow runs (``train.precision=bogus`` used to fail inside Lightning after)."""
    from pipeline.config import Params, ParamsError
    from pipeline.training import engine

    root = workspace(train={"precision": "bogus"})
    params = Params(load_params(root / "params.yaml"), ("seed", "vae", "train"), "pretrain_vae")
    stage = validate.Stage("pretrain_vae", ("seed", "vae", "train"), (), ("models/vae_ckpt",))
    config = engine.FitConfig(epochs=1, batch_size=2, lr=1e-3)
    run = engine.training_run(stage, params, root / "models/vae_ckpt", {}, 0, config)
    with pytest.raises(ParamsError, match=r"train.precision='bogus' is invalid"), run:
        pass
    assert not (root / "mlflow.db").exists() and not (root / "mlruns").exists()
    assert not (root / "models").exists()
