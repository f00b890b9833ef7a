"""The house rules of ``pipeline/``, checked on its import graph and against dvc.yaml.

- no import circle; no stage imports a stage; libraries never import stages or tools, and import
  only packages of a lower layer (or their own package); tools do not import each other;
- package ``__init__.py`` files hold only a docstring (so no stage depends on them);
- dvc.yaml is right by construction: each stage's code deps are exactly the modules it imports
  (transitively, inside ``pipeline/``), its data deps and outs are its ``STAGE`` declaration, and
  its params are the declared keys plus ``profiles.${profile}.<section>`` of each section;
- every stage module's ``--help`` describes it and runs nothing.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "pipeline"
# Library layers, lowest first: a library module imports its own package or a lower layer.
LAYERS = [
    {"config"},
    {"data"},
    {"synth", "preprocess", "lifting", "models"},
    {"evaluation", "inference", "baselines"},
    {"training"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer} | {"stages": 9, "tools": 9}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def module_path(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


@cache
def imports(name: str) -> frozenset[str]:
    """Modules of ``pipeline`` imported by module ``name`` anywhere in it (also inside functions)."""
    tree = ast.parse(modules()[name].read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}: relative import (use absolute pipeline.* imports)"
            if not (node.module or "").startswith("pipeline"):
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if module_path(sub) else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pipeline"))
    return frozenset(m for m in found if m in modules() and m != name)


def package_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def stage_names() -> list[str]:
    return sorted(m.rsplit(".", 1)[1] for m in modules() if m.startswith("pipeline.stages."))


def closure(name: str) -> set[str]:
    """``name`` and every ``pipeline`` module it imports, transitively."""
    seen, todo = set(), [name]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(imports(m))
    return seen


def code_deps(stage: str) -> list[str]:
    """dvc.yaml code deps of a stage: the files of its import closure, package ``__init__`` aside."""
    files = {modules()[m].relative_to(ROOT).as_posix() for m in closure(f"pipeline.stages.{stage}")}
    return sorted(f for f in files if not f.endswith("__init__.py"))


def test_no_import_cycle() -> None:
    graph = {m: imports(m) for m in modules()}
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycles.append(" -> ".join([*stack[stack.index(n) :], n]))
            elif n not in state:
                visit(n, [*stack, n])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_imports_run_down_the_layers() -> None:
    wrong = []
    for m in modules():
        pkg = package_of(m)
        for n in imports(m):
            target = package_of(n)
            if pkg == "stages" and target == "stages":
                wrong.append(f"{m} -> {n}: a stage imports a stage")
            elif pkg == "tools" and target == "tools" and m.split(".")[:3] != n.split(".")[:3]:
                wrong.append(f"{m} -> {n}: a tool imports another tool")
            elif pkg not in ("stages", "tools") and target in ("stages", "tools"):
                wrong.append(f"{m} -> {n}: a library imports a {target[:-1]}")
            elif pkg not in ("stages", "tools") and pkg != target and RANK[target] >= RANK[pkg]:
                wrong.append(f"{m} -> {n}: {pkg} (layer {RANK[pkg]}) imports {target} (layer {RANK[target]})")
    assert wrong == []


def test_every_package_is_in_a_layer() -> None:
    packages = {package_of(m) for m in modules()} - {""}
    assert packages <= set(RANK), packages - set(RANK)


def test_package_inits_hold_only_a_docstring() -> None:
    for p in modules().values():
        if p.name == "__init__.py":
            body = ast.parse(p.read_text()).body
            assert len(body) == 1 and isinstance(body[0], ast.Expr), f"{p}: code in a package __init__"
            assert isinstance(body[0].value, ast.Constant) and body[0].value.value.strip(), p


def _dvc_stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _names(entries: list) -> list[str]:
    """Paths (or param keys) of a dvc.yaml list whose items are strings or one-key mappings."""
    return [e if isinstance(e, str) else next(iter(e)) for e in entries or []]


def test_dvc_yaml_stages_are_the_stage_modules() -> None:
    assert sorted(_dvc_stages()) == stage_names()


@pytest.mark.parametrize("stage", stage_names())
def test_dvc_yaml_matches_the_stage(stage: str) -> None:
    spec = _dvc_stages()[stage]
    decl = importlib.import_module(f"pipeline.stages.{stage}").STAGE
    assert decl.name == stage
    assert spec["cmd"] == f"python -m pipeline.stages.{stage}"
    deps = _names(spec.get("deps"))
    code = [d for d in deps if d.startswith("pipeline/")]
    expected = code_deps(stage)
    listing = "\n".join(f"      - {d}" for d in expected)
    assert sorted(code) == expected, f"dvc.yaml stage {stage!r}: its code deps should be\n{listing}"
    assert sorted(d for d in deps if not d.startswith("pipeline/")) == sorted(decl.deps)
    sections = [k for k in decl.params if k != "seed"]
    want = [*decl.params, *sorted({f"profiles.${{profile}}.{k.split('.')[0]}" for k in sections})]
    assert sorted(_names(spec.get("params"))) == sorted(want)
    outs = _names(spec.get("outs")) + _names(spec.get("metrics")) + _names(spec.get("plots"))
    assert sorted(outs) == sorted(decl.outs)


def test_every_profile_lists_every_section() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    sections = {k for k, v in params.items() if isinstance(v, dict) and k not in ("profiles", "tracking")}
    for name, overlay in params["profiles"].items():
        missing = sorted(sections - set(overlay))
        assert set(overlay) == sections, f"profiles.{name}: sections {missing} missing"


# Runs every stage module as ``python -m`` does (runpy, ``__main__``) with the given arguments, in one
# process so that torch & co. are imported once; prints each stage's exit status and output.
_RUN_STAGES = """
import contextlib, io, json, runpy, sys
out, args, stages = {}, json.loads(sys.argv[1]), sys.argv[2:]
for stage in stages:
    sys.argv = [stage, *args]
    buf, code = io.StringIO(), None
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        try:
            runpy.run_module(f"pipeline.stages.{stage}", run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            code = exc.code
    out[stage] = [code, buf.getvalue()]
print(json.dumps(out))
"""


def _run_stages(args: list[str], cwd: Path) -> dict[str, list]:
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_STAGES, json.dumps(args), *stage_names()],
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.slow
def test_stage_help_runs_nothing(tmp_path: Path) -> None:
    """``--help`` from an empty directory (no params.yaml, no data) describes the stage and runs
    nothing; any other argument is refused."""
    for stage, (code, text) in _run_stages(["--help"], tmp_path).items():
        assert code == 0, (stage, text)
        decl = importlib.import_module(f"pipeline.stages.{stage}").STAGE
        for item in (f"pipeline.stages.{stage}", *decl.outs, *decl.deps, *decl.params):
            assert item in text, (stage, item)
    assert list(tmp_path.iterdir()) == []  # wrote nothing
    for stage, (code, text) in _run_stages(["--epochs", "3"], tmp_path).items():
        assert code == 2 and "unrecognized arguments: --epochs 3" in text, (stage, text)
    assert list(tmp_path.iterdir()) == []


def test_stage_modules_run_main() -> None:
    """Every stage module ends in ``if __name__ == "__main__": main()`` (what ``python -m`` runs)."""
    for stage in stage_names():
        tree = ast.parse(modules()[f"pipeline.stages.{stage}"].read_text())
        assert ast.unparse(tree.body[-1]) == "if __name__ == '__main__':\n    main()", stage


@pytest.mark.slow
def test_committed_dvc_lock_matches_the_code_and_params():
    """A code or params edit without its dvc.lock update makes every fresh clone's `dvc repro`
    rerun the stage, including the committed evaluators (train_fgd_encoder, train_backtranslator)."""
    dvc = Path(sys.executable).parent / "dvc"
    if not dvc.exists():
        pytest.skip("dvc not installed")
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "pipeline", "params.yaml", "dvc.yaml", "dvc.lock"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    if dirty.returncode != 0 or dirty.stdout.strip():
        pytest.skip("uncommitted changes to the pipeline, params or dvc files (or no git checkout)")
    proc = subprocess.run(
        [str(dvc), "status", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    stale = {
        stage: sorted(
            path for path in change["changed deps"] if path.startswith("pipeline/") or path == "params.yaml"
        )
        for stage, changes in json.loads(proc.stdout or "{}").items()
        for change in changes
        if isinstance(change, dict) and "changed deps" in change
    }
    stale = {stage: paths for stage, paths in stale.items() if paths}
    assert not stale, f"dvc.lock is stale for code/params (update it, e.g. dvc commit or dvc repro): {stale}"
