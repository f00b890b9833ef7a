"""Checks of a baseline's ``variants`` param (shared by :mod:`pipeline.baselines.pt` and
:mod:`pipeline.baselines.nslpg`, kept apart so that each stage depends on its own model only)."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.config import ParamsError


def check_variants(variants: Sequence[str], key: str, known: Sequence[str]) -> None:
    """Raise :class:`ParamsError` naming ``key`` unless ``variants`` is a non-empty list of distinct
    names out of ``known``."""
    if not variants:
        raise ParamsError(f"params.yaml: {key} is empty")
    for i, name in enumerate(variants):
        if name not in known:
            raise ParamsError(
                f"params.yaml: {key}[{i}]={name!r} is invalid; expected one of {', '.join(known)}"
            )
    if len(set(variants)) != len(variants):
        raise ParamsError(f"params.yaml: {key}={list(variants)!r} lists a variant twice")
