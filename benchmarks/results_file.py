"""benchmarks/RESULTS.md, one section per benchmark: each run replaces its own section and keeps the others."""

from __future__ import annotations

import re
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(heading: str, section: str, path: Path = RESULTS) -> None:
    """Replace the section under the line ``## {heading}`` (up to the next ``## ``) with ``section``, or append it."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    found = re.search(rf"^## {re.escape(heading)}$", text, re.MULTILINE)  # the heading itself, not a mention of it
    if found is None:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", found.start() + 1)
        text = text[: found.start()] + section + (text[end + 1 :] if end != -1 else "")
    path.write_text(text)
