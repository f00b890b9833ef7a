"""Params: ``params.yaml`` with profiles, one validator for every section, and each stage's declaration.

``params.yaml`` holds the default value of every key and a ``profiles`` mapping of named overlays
(``default`` = none, ``tiny`` for tests/CI, ``paper`` for the paper's hyper-parameters). The
top-level ``profile`` key selects one (``dvc exp run -S profile=paper``); :func:`load_params`
deep-merges its sections over the defaults. Every profile lists every section (``{}`` when it
changes nothing there), because each DVC stage depends on ``profiles.${profile}.<section>`` of
the sections it reads, and DVC needs those keys to exist.

A params section is validated in one way: a dataclass whose fields are its keys, built by
:func:`parse_section` (unknown, missing and mistyped keys and out-of-range values raise
:class:`ParamsError` naming ``section.key``; ranges come from :func:`param`; cross-key rules
live in the dataclass's ``__post_init__``).

A DVC stage declares what it reads and writes in a :class:`Stage` (``pipeline/stages/*``); the
tests check ``dvc.yaml`` against these declarations and the stage modules' imports.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import logging
import operator
import os
import time
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

PARAMS_FILE = "params.yaml"
_STARTED: dict[str, float] = {}  # stage name -> time.perf_counter() at Stage.start
PARAMS_VALID = "data/params_valid.json"  # the validate stage's out; every other stage depends on it
T = TypeVar("T")


class ParamsError(ValueError):
    """An invalid or missing value in params.yaml."""


# -- loading ----------------------------------------------------------------------------------
def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overlay`` merged in recursively (overlay wins)."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class Params(dict):
    """The resolved params of one stage: only the sections it declares (:attr:`Stage.params`).

    Reading another section raises :class:`ParamsError` (declare it, and list it in dvc.yaml);
    :attr:`resolved` keeps every resolved section, which MLflow records as the experiment's params.
    """

    def __init__(self, resolved: dict[str, Any], sections: Sequence[str], stage: str) -> None:
        super().__init__({k: resolved[k] for k in ("profile", *sections) if k in resolved})
        for key in sections:  # a dotted key ("data.source") declares one key of a section
            top, _, sub = key.partition(".")
            if sub and isinstance(resolved.get(top), dict) and sub in resolved[top]:
                self.setdefault(top, {})[sub] = resolved[top][sub]
        self.resolved, self.stage = resolved, stage
        self.declared = {k.partition(".")[0] for k in sections}

    def __missing__(self, key: str) -> Any:
        if key in self.declared:
            raise ParamsError(f"{PARAMS_FILE}: missing {key!r}")
        raise ParamsError(
            f"stage {self.stage!r} reads params {key!r}, which it does not declare "
            "(add it to the stage's Stage(params=...) and to its params in dvc.yaml)"
        )


def read_yaml(path: Path, what: str, error: type[Exception]) -> Any:
    """The YAML document of ``path``; ``error`` names the file when it is missing or invalid."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise error(f"{path}: {what} not found") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML: {exc}") from exc


def load_params(path: str | os.PathLike[str] = PARAMS_FILE) -> dict[str, Any]:
    """Read params.yaml and apply the selected profile's overlay (``profiles`` is dropped).

    Raises :class:`ParamsError` naming the file when it is unreadable, not a mapping, selects a
    profile that does not exist, or a profile overlays something that is not a section.
    """
    path = Path(path)
    raw = read_yaml(path, "params file", ParamsError)
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping at top level, got {type(raw).__name__}")
    profiles = raw.pop("profiles", None) or {}
    name = raw.get("profile", "default")
    if name not in profiles:
        if name in (None, "default"):
            return raw
        known = ", ".join(sorted(profiles))
        raise ParamsError(f"{path}: profile={name!r} is not defined (known: {known})")
    overlay = profiles[name] or {}
    for key, value in overlay.items():
        if not isinstance(raw.get(key), dict) or not isinstance(value, dict):
            raise ParamsError(f"{path}: profiles.{name}.{key} must overlay a params section with a mapping")
    return deep_merge(raw, overlay)


def profile_conflicts(raw: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[str]:
    """Plain keys changed from ``baseline`` that the selected profile replaces with another value.

    ``raw`` and ``baseline`` are params.yaml documents as read (profiles not applied); the
    baseline is the committed file that ``dvc exp run -S key=value`` starts from. A profile's
    entries are ordinary params (``-S profiles.tiny.student.epochs=5``), and a plain key changed
    while the profile overrides it would be recorded with a value the run never uses: such a
    key is returned as a message naming it, its two values and the profile entry to set instead.
    A changed plain key the profile sets to the same value is no conflict.
    """
    if not isinstance(baseline, Mapping):
        return []
    name = raw.get("profile", "default")
    overlay = ((raw.get("profiles") or {}).get(name) or {}) if isinstance(raw.get("profiles"), dict) else {}
    now = flatten({k: v for k, v in raw.items() if k != "profiles"})
    before = flatten({k: v for k, v in baseline.items() if k != "profiles"})
    out = []
    for key, value in flatten(overlay).items():
        if value == {}:  # an empty overlay of a section changes nothing
            continue
        if key in now and key in before and now[key] != before[key] and now[key] != value:
            out.append(
                f"{key}={now[key]!r} (changed from {before[key]!r}) is replaced by profile {name!r}: "
                f"profiles.{name}.{key}={value!r}; set -S profiles.{name}.{key}={now[key]!r} instead "
                "(or drop the profile)"
            )
    return out


def section(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Return ``params[name]`` or raise a :class:`ParamsError` naming the missing section."""
    try:
        value = params[name]
    except KeyError:
        value = None
    if not isinstance(value, dict):
        raise ParamsError(f"{PARAMS_FILE}: missing section {name!r}")
    return value


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys: ``{"a": {"b": 1}} -> {"a.b": 1}``; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


# -- checks -----------------------------------------------------------------------------------
def check_choice(value: Any, choices: tuple[Any, ...], key: str) -> Any:
    """Raise a :class:`ParamsError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ParamsError(f"{PARAMS_FILE}: {key}={value!r} is invalid; expected one of {choices}")
    return value


def check_positive(value: Any, key: str, *, allow_zero: bool = False) -> Any:
    """Raise a :class:`ParamsError` unless ``value`` is a positive (or zero) number."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ParamsError(f"{PARAMS_FILE}: {key}={value!r} is invalid; expected a number {bound}")
    return value


def check_seed(value: Any, key: str = "seed") -> int:
    """A seed must be an integer >= 0."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ParamsError(f"{PARAMS_FILE}: {key}={value!r} is invalid; expected an integer >= 0")
    return value


# -- sections as dataclasses ------------------------------------------------------------------
def param(
    default: Any = MISSING,
    *,
    factory: Any = None,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    flatten: bool = False,
    derived: bool = False,
) -> Any:
    """A dataclass field of a params section with a range (``gt``/``ge``/``lt``/``le``).

    ``flatten``: a dataclass-typed field whose keys sit directly in the section (a model's
    config inside its training section; ``factory`` builds its default); ``derived``: a field
    :func:`parse_section` never reads (set later from the data, e.g. a model's input width).
    Mutable defaults are copied.
    """
    meta = {"gt": gt, "ge": ge, "lt": lt, "le": le, "flatten": flatten, "derived": derived}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    if isinstance(default, (list, dict)):
        value = default
        return field(default_factory=lambda: copy.deepcopy(value), metadata=meta)
    return field(default=default, metadata=meta)


def parse_section(params: Mapping[str, Any], name: str, cls: type[T]) -> T:
    """Build the dataclass ``cls`` from the section ``params[name]`` (see the module docstring)."""
    return from_mapping(cls, section(params, name), name)


def from_mapping(cls: type[T], raw: Mapping[str, Any], where: str) -> T:
    """``cls(**raw)`` after checking keys, types and ranges; errors name ``<where>.<key>``."""
    if not isinstance(raw, Mapping):
        raise ParamsError(f"{PARAMS_FILE}: {where} must be a mapping, got {raw!r}")
    fields = [f for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    flat = [f for f in fields if f.metadata.get("flatten")]
    readable = {f.name for f in fields if not f.metadata.get("derived") and not f.metadata.get("flatten")}
    inner = {f.name: _readable(hints[f.name]) for f in flat}
    known = readable | {k for keys in inner.values() for k in keys}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ParamsError(
            f"{PARAMS_FILE}: unknown key(s) {', '.join(f'{where}.{k}' for k in unknown)} "
            f"(known: {sorted(known)})"
        )
    kwargs: dict[str, Any] = {}
    for f in fields:
        if f.metadata.get("flatten"):
            sub = {k: raw[k] for k in inner[f.name] if k in raw}
            kwargs[f.name] = from_mapping(hints[f.name], sub, where)
        elif f.name in raw and not f.metadata.get("derived"):
            kwargs[f.name] = _check(raw[f.name], hints[f.name], f"{where}.{f.name}", f.metadata)
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ParamsError(f"{PARAMS_FILE}: missing key {where}.{f.name}")
    try:
        return cls(**kwargs)
    except ParamsError:
        raise
    except (TypeError, ValueError) as exc:
        raise ParamsError(f"{PARAMS_FILE}: {where}: {exc}") from exc


def check_fields(obj: Any, where: str) -> None:
    """Check every field of the dataclass instance ``obj`` against its type and :func:`param` range
    (for configs built in code or read from a saved model's ``config.json``)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        if not f.metadata.get("flatten"):
            _check(getattr(obj, f.name), hints[f.name], f"{where}.{f.name}", f.metadata)


def _readable(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.init and not f.metadata.get("derived")}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _matches(value: Any, tp: Any, key: str) -> tuple[bool, Any]:
    """Whether ``value`` has type ``tp`` (and the value to keep)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return True, value
    if origin is Literal:
        return value in typing.get_args(tp), value
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, out = _matches(value, arg, key)
            if ok:
                return True, out
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:  # an integer is accepted as a float (``fps: 25``)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if tp is str:
        return isinstance(value, str), value
    if origin in (list, tuple):
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            return False, value
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                return False, value
            items = [
                _check(v, a, f"{key}[{i}]", {}) for i, (v, a) in enumerate(zip(value, args, strict=True))
            ]
            return True, tuple(items)
        items = [_check(v, args[0], f"{key}[{i}]", {}) for i, v in enumerate(value)]
        return True, tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(tp):
        return True, from_mapping(tp, value, key)
    raise TypeError(f"{key}: unsupported params type {tp!r}")


# param() range keys: (the sign in messages, the test)
_BOUNDS = {
    "gt": (">", operator.gt),
    "ge": (">=", operator.ge),
    "lt": ("<", operator.lt),
    "le": ("<=", operator.le),
}


def _check(value: Any, tp: Any, key: str, meta: Mapping[str, Any]) -> Any:
    ok, out = _matches(value, tp, key)
    bounds = {k: meta[k] for k in _BOUNDS if meta.get(k) is not None}
    if ok and isinstance(out, (int, float)) and not isinstance(out, bool):
        ok = all(_BOUNDS[k][1](out, limit) for k, limit in bounds.items())
    if not ok:
        rng = " and ".join(f"{_BOUNDS[k][0]} {v:g}" for k, v in bounds.items())
        raise ParamsError(
            f"{PARAMS_FILE}: {key}={value!r} is invalid; expected {_type_name(tp)}{' ' + rng if rng else ''}"
        )
    return out


# -- devices ----------------------------------------------------------------------------------
def resolve_device(value: Any = "auto", key: str = "device") -> Any:
    """``auto`` -> ``cuda`` when available, else ``cpu``; else the named torch device.

    Raises :class:`ParamsError` naming ``key`` for an unknown name or CUDA without a usable GPU.
    """
    import torch  # here: the data stages never need torch

    if str(value) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError) as exc:
        raise ParamsError(f"{key}={value!r} is not a device: {exc}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ParamsError(f"{key}={value!r}: CUDA is not available on this machine (use cpu or auto)")
    return device


# -- stages -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    """What a DVC stage reads and writes, in dvc.yaml's order: ``Stage(name, params, deps, outs)``;
    ``tests/test_layout.py`` checks dvc.yaml against it.

    ``params``: the params.yaml sections (and top-level keys) it reads; dvc.yaml lists each and,
    for sections, ``profiles.${profile}.<section>``. ``deps``: data and models it reads
    (``${data.path}`` as in dvc.yaml), and :data:`PARAMS_VALID` for every stage but ``validate``
    (added here); its code deps are the modules it imports. ``outs``: every
    output, metrics and plots included.
    """

    name: str
    params: tuple[str, ...]
    deps: tuple[str, ...]
    outs: tuple[str, ...]

    def __post_init__(self) -> None:  # paths may be given as Path; kept as the strings of dvc.yaml
        deps = tuple(str(d) for d in self.deps)
        if self.name != "validate" and PARAMS_VALID not in deps:  # params checked before outs go
            deps = (PARAMS_VALID, *deps)
        object.__setattr__(self, "deps", deps)
        object.__setattr__(self, "outs", tuple(str(o) for o in self.outs))

    def start(self, doc: str | None, argv: Sequence[str] | None = None) -> Params:
        """Entry of ``python -m pipeline.stages.<name>``: ``--help`` prints what the stage reads and
        writes and exits; otherwise logging is set up and the declared params are returned."""
        self.parser(doc).parse_args(argv)
        # force: a library imported earlier may have configured the root logger (evaluate printed nothing)
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", force=True)
        _STARTED[self.name] = time.perf_counter()
        return Params(load_params(), self.params, self.name)

    def summary(self, result: str) -> str:
        """Log the stage's one summary line: what it read and wrote, ``result`` (its key figures)
        and the seconds since :meth:`start`; returns the line."""
        seconds = time.perf_counter() - _STARTED.get(self.name, time.perf_counter())
        reads = ", ".join(d for d in self.deps if d != PARAMS_VALID) or "params only"
        line = f"{self.name}: {result} | read {reads} | wrote {', '.join(self.outs)} | {seconds:.1f} s"
        logging.getLogger(f"pipeline.stages.{self.name}").info("%s", line)
        return line

    def out(self, path: str | os.PathLike[str]) -> Path:
        """``path`` when it is (inside) one of the declared outs; :class:`ValueError` otherwise."""
        p = Path(path)
        if not any(p == Path(o) or Path(o) in p.parents for o in self.outs):
            raise ValueError(
                f"stage {self.name!r} writes {p}, which is not one of its outs {list(self.outs)}"
            )
        return p

    def write_json(self, path: str | os.PathLike[str], data: Any) -> Path:
        """Write ``data`` as indented JSON to the declared out ``path`` (parents created)."""
        p = self.out(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(data, indent=1) + "\n")
        return p

    def parser(self, doc: str | None) -> argparse.ArgumentParser:
        """The stage's argument parser: no arguments but ``--help``."""
        summary = (doc or "").strip().split("\n\n")[0]
        reads = [f"params: {', '.join(self.params)} (and the selected profile's overlay of them)"]
        epilog = "\n".join(
            [
                "Params come from params.yaml; the stage takes no other arguments. Run it with "
                f"`dvc repro {self.name}`.",
                "",
                "reads:",
                *(f"  {r}" for r in reads + list(self.deps)),
                "writes:",
                *(f"  {o}" for o in self.outs),
            ]
        )
        return argparse.ArgumentParser(
            prog=f"python -m pipeline.stages.{self.name}",
            description=summary,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
