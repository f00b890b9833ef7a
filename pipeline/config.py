"""Params loading: ``params.yaml`` plus the overlay of the selected profile.

``params.yaml`` holds the default values of every section and a ``profiles`` mapping of
named overlays (``tiny`` for tests/CI, ``paper`` for the paper's hyper-parameters). The
top-level ``profile`` key selects one (``dvc exp run -S profile=paper``); its values are
deep-merged over the defaults. Every stage reads its sections through :func:`load_params`.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

PARAMS_FILE = "params.yaml"


class ParamsError(ValueError):
    """An invalid or missing value in params.yaml."""


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overlay`` merged in recursively (overlay wins)."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_params(path: str | os.PathLike[str] = PARAMS_FILE) -> dict[str, Any]:
    """Read params.yaml and apply the selected profile's overlay.

    Raises :class:`ParamsError` naming the file when it is unreadable, not a mapping, or
    selects a profile that does not exist.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ParamsError(f"{path}: params file not found") from exc
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping at top level, got {type(raw).__name__}")
    profiles = raw.pop("profiles", {}) or {}
    name = raw.get("profile", "default")
    if name in (None, "default"):
        return raw
    if name not in profiles:
        known = ", ".join(["default", *sorted(profiles)])
        raise ParamsError(f"{path}: profile={name!r} is not defined (known: {known})")
    return deep_merge(raw, profiles[name] or {})


def section(params: dict[str, Any], name: str) -> dict[str, Any]:
    """Return ``params[name]`` or raise a :class:`ParamsError` naming the missing section."""
    if name not in params or not isinstance(params[name], dict):
        raise ParamsError(f"{PARAMS_FILE}: missing section {name!r}")
    return params[name]


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
