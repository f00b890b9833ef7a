"""The ``data`` params section: which source, where, and what to do with bad input.

Bad input raises :class:`IngestError` naming the file/row, or, with ``data.on_error: skip``, is
logged and counted per split and reason (:class:`ErrorPolicy`).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Literal

from pipeline.config import ParamsError, check_choice, param

log = logging.getLogger(__name__)

ON_ERROR = ("raise", "skip")


@dataclass(frozen=True)
class DataConfig:
    """The ``data`` params section."""

    source: Literal["synthetic", "openpose", "pt_skels", "pose"] = "synthetic"
    path: str = "data/synthetic"  # source root; for synthetic the synthesize stage's output
    on_error: Literal["raise", "skip"] = "raise"  # skip: log and count bad files/rows
    max_coordinate: float = param(1.0e5, gt=0)  # OpenPose: |x|, |y| beyond this many pixels is a bad frame

    def __post_init__(self) -> None:
        if not self.path:
            raise ParamsError(f"params.yaml: data.path={self.path!r} is invalid; expected a path")


class IngestError(ValueError):
    """Bad source data: the message names the file/row and the problem."""


class ErrorPolicy:
    """``data.on_error``: raise on bad input, or log it and count it per split and reason."""

    def __init__(self, on_error: str = "raise") -> None:
        self.skip = check_choice(on_error, ON_ERROR, "data.on_error") == "skip"
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)

    def bad(self, split: str, reason: str, message: str, exc: Exception | None = None) -> None:
        """Raise :class:`IngestError` (or re-raise ``exc``), or log and count a skip."""
        if not self.skip:
            if isinstance(exc, ValueError) and str(exc) == message:
                raise exc
            raise IngestError(message) from exc
        log.warning("skipped (%s): %s", reason, message)
        self.counts[split][reason] += 1
