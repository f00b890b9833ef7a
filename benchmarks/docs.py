"""Write a benchmark's results into its section of docs/benchmarks.md (shared by the scripts here)."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(heading: str, body: str, docs: Path = DOCS) -> Path:
    """Replace the body of ``## <heading>`` in ``docs`` with ``body`` (append the section if missing)."""
    text = docs.read_text()
    pattern = re.compile(rf"(## {re.escape(heading)}\n)(.*?)(?=\n## |\Z)", re.S)
    if not pattern.search(text):
        text = text.rstrip("\n") + f"\n\n## {heading}\n"
    docs.write_text(pattern.sub(lambda m: m.group(1) + "\n" + body, text, count=1))
    return docs
