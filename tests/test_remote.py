"""The default DVC remote and README's way back to the baseline on a fresh clone (issue 16).

A new user found no DVC remote (every ``dvc push`` failed) and README's ``git checkout -- params.yaml
dvc.lock metrics/ && dvc checkout`` failing on a fresh clone (``Checkout failed``), which left
``models/`` empty and ``data/lifted`` deleted: a fresh clone's DVC cache is empty. Now
``.dvc/config`` names a default remote outside the work tree (``~/...``, shared by the user's
clones on the machine) and the recipe is ``dvc pull; dvc repro``.

The slow tests run the tiny profile up to ``pretrain_vae`` in a temporary git copy ("the lead's"),
``dvc push`` with the committed config alone (``HOME`` points to a temporary folder, so the default
remote lands there and nothing is written outside tmp), then in a fresh ``git clone`` of it run an
experiment that changes ``data/lifted`` and ``models/vae`` and README's recipe (scoped to
``pretrain_vae`` as README says, so that the copy's default-profile entries of the later stages
stay out of it): once with that remote, once with the clone's remote overridden
(``dvc remote modify --local``) to an empty folder. CUDA is hidden so the rerun is byte-identical.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.tools import smoke

ROOT = Path(__file__).resolve().parents[1]
DVC = str(Path(sys.executable).parent / "dvc")
REMOTE = "storage"
DEFAULT_URL = "~/.local/share/nar-slp-kd/dvc-remote"
# README's recipe, verbatim (the slow tests run its one-stage form on pretrain_vae)
BACK_TO_BASELINE = "git checkout -- params.yaml dvc.lock metrics/ plots/"
RESTORE = "dvc pull; dvc repro"
RESTORE_STAGE = "dvc pull --with-deps <stage>; dvc repro <stage>"
EXPERIMENT = ["-S", "profiles.tiny.vae.epochs=1", "-S", "profiles.tiny.lift.iterations=5"]
OUTS = ("data/lifted", "models/vae")


def test_the_default_remote_is_a_folder_outside_the_work_tree() -> None:
    from dvc.config import Config

    conf = Config(dvc_dir=str(ROOT / ".dvc"), validate=False).load_one("repo")
    assert conf["core"]["remote"] == REMOTE
    url = conf["remote"][REMOTE]["url"]
    assert getattr(url, "def_path", None) == DEFAULT_URL  # kept as written: expanded per user
    path = Path(url)
    assert path.is_absolute() and path == Path(os.path.expanduser(DEFAULT_URL))
    assert not path.is_relative_to(ROOT)
    # the per-clone override (dvc remote modify --local) stays out of git
    assert "/config.local" in (ROOT / ".dvc" / ".gitignore").read_text().split()


def test_readme_gives_the_recipe_and_the_overrides() -> None:
    readme = (ROOT / "README.md").read_text()
    for text in (BACK_TO_BASELINE, RESTORE, RESTORE_STAGE, DEFAULT_URL):
        assert text in readme, text
    assert "&& dvc checkout" not in readme  # the recipe that fails on a fresh clone
    for scheme in ("s3://", "ssh://"):
        assert f"dvc remote modify --local {REMOTE} url {scheme}" in readme, scheme


def run(cmd: list[str], cwd: Path, env: dict[str, str], ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if ok:
        assert proc.returncode == 0, (cmd, (proc.stdout + proc.stderr)[-4000:])
    return proc


def lock_md5(repo: Path, path: str) -> str:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    found = {o["md5"] for s in lock["stages"].values() for o in s.get("outs", []) if o["path"] == path}
    assert len(found) == 1, (path, found)
    return found.pop()


def files(repo: Path, top: str) -> dict[str, str]:
    return {
        str(p.relative_to(repo)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((repo / top).rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def experimented(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The lead's copy (tiny profile, ``dvc repro pretrain_vae`` committed and pushed to the default
    remote) and a fresh clone of it after ``dvc exp run`` changed ``data/lifted`` and ``models/vae``."""
    if shutil.which("git") is None or not Path(DVC).exists():
        pytest.skip("dvc/git not installed")
    tmp = tmp_path_factory.mktemp("remote")
    env = smoke.clean_env() | {
        "HOME": str(tmp / "home"),  # the default remote ~/... lands in tmp
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
        "CUDA_VISIBLE_DEVICES": "",  # CPU: reruns are byte-identical
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    lead = smoke.make_tiny_repo(tmp / "lead")
    run([DVC, "repro", "-q", "pretrain_vae"], lead, env)
    run(["git", "add", "-A"], lead, env)
    run(["git", "commit", "-qm", "tiny baseline"], lead, env)
    pushed = run([DVC, "push"], lead, env)  # no remote configured by hand
    remote = Path(DEFAULT_URL.replace("~", env["HOME"], 1))
    assert (remote / "files" / "md5").is_dir(), pushed.stdout + pushed.stderr
    status = run([DVC, "status", "--cloud", "--with-deps", "pretrain_vae"], lead, env)
    assert f"Cache and remote '{REMOTE}' are in sync" in status.stdout, status.stdout

    clone = tmp / "clone"
    run(["git", "clone", "-q", str(lead), str(clone)], tmp, env)
    run([DVC, "exp", "run", *EXPERIMENT, "pretrain_vae"], clone, env)
    for out in OUTS:
        assert lock_md5(clone, out) != lock_md5(lead, out), out  # the experiment changed it
    return {"tmp": tmp, "env": env, "lead": lead, "clone": clone}


def restore(repo: Path, env: dict[str, str], pulled: bool) -> str:
    """README's recipe for pretrain_vae; ``pulled``: whether ``dvc pull`` is expected to succeed.
    Returns ``dvc repro``'s output."""
    run(BACK_TO_BASELINE.split(), repo, env)
    pull = run([DVC, "pull", "--with-deps", "pretrain_vae"], repo, env, ok=pulled)
    if not pulled:
        assert pull.returncode != 0
        for out in OUTS:
            assert out in pull.stdout + pull.stderr, (out, pull.stdout + pull.stderr)
    repro = run([DVC, "repro", "pretrain_vae"], repo, env)
    status = run([DVC, "status", "--with-deps", "pretrain_vae"], repo, env)
    assert "Data and pipelines are up to date" in status.stdout, status.stdout
    assert run(["git", "diff", "HEAD", "--name-only", "--", "params.yaml"], repo, env).stdout == ""
    return repro.stdout + repro.stderr


def assert_baseline(repo: Path, lead: Path) -> None:
    for out in OUTS:
        assert lock_md5(repo, out) == lock_md5(lead, out), out
        assert files(repo, out) == files(lead, out), out


@pytest.mark.slow
@pytest.mark.e2e
def test_fresh_clone_back_to_the_baseline_from_the_remote(experimented: dict, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(experimented["clone"], repo, symlinks=True)
    out = restore(repo, experimented["env"], pulled=True)
    assert "Running stage" not in out, out[-3000:]  # all restored by the pull
    assert_baseline(repo, experimented["lead"])
    assert run(["git", "status", "--porcelain"], repo, experimented["env"]).stdout == ""


@pytest.mark.slow
@pytest.mark.e2e
def test_fresh_clone_back_to_the_baseline_without_remote_content(experimented: dict, tmp_path: Path) -> None:
    """The clone's remote overridden to an empty folder (a fresh clone elsewhere, nothing pushed):
    ``dvc pull`` fails naming the missing outputs, ``dvc repro`` reruns just their stages."""
    repo, env = tmp_path / "repo", experimented["env"]
    shutil.copytree(experimented["clone"], repo, symlinks=True)
    run([DVC, "remote", "modify", "--local", REMOTE, "url", str(tmp_path / "empty")], repo, env)
    listed = run([DVC, "remote", "list"], repo, env).stdout
    assert str(tmp_path / "empty") in listed, listed
    out = restore(repo, env, pulled=False)
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage '")}
    assert ran == {"lift", "pretrain_vae"}, out[-3000:]  # ingest, normalise: in the clone's cache
    assert_baseline(repo, experimented["lead"])  # same machine, CPU: byte for byte
