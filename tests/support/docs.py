"""The user documentation as the tests read it: README.md and the pages of doc/ that hold its
long sections.

The README keeps the quick start and links to one page per long section. Read in the order of
:data:`PAGES` after the README, the text holds every section in the README's order of
sections, so the Python blocks still make one program (the README's own blocks come first,
the pages' build on them) and a sentence is found wherever it moved.
"""

import re
from pathlib import Path
from typing import List

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

#: The pages that hold the README's long sections, in the order of those sections.
PAGES = (
    "doc/profiles.md",
    "doc/values.md",
    "doc/sinks.md",
    "doc/analysis.md",
    "doc/fitting.md",
    "doc/scaling.md",
    "doc/cli.md",
    "doc/checkpoints.md",
    "doc/metrics.md",
)


def page(name: str) -> str:
    """One file's text, by its path from the repository root (``"doc/sinks.md"``)."""
    return (ROOT / name).read_text(encoding="utf-8")


def user_docs() -> str:
    """README.md, then every page of :data:`PAGES`, one text."""
    return "\n\n".join(page(name) for name in ("README.md", *PAGES))


def code_blocks(text: str, kind: str = "python") -> List[str]:
    """The bodies of the text's fenced blocks of one kind (```python ... ```)."""
    return re.findall(rf"```{kind}\n(.*?)```", text, re.DOTALL)
