"""How the package reads durations from text, and writes numbers of seconds, instants and
aligned tables as text: the run summary, the analysis report, the status page and the command
line use these.
"""

import re
from datetime import datetime, timezone
from typing import List, Optional, Sequence

__all__ = ["describe_seconds", "duration_ms", "text_table", "utc_clock"]

_UNITS = (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0))
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|min|m|h|d)?\s*$")
_UNIT_MS = {
    None: 1.0,
    "ms": 1.0,
    "s": 1000.0,
    "m": 60_000.0,
    "min": 60_000.0,
    "h": 3_600_000.0,
    "d": 86_400_000.0,
}


def duration_ms(text: str) -> Optional[float]:
    """``500ms``, ``30s``, ``10m`` (or ``10min``), ``2h``, ``1d`` or a bare number of
    milliseconds, in milliseconds; ``None`` for anything else."""
    found = _DURATION.match(text)
    if found is None:
        return None
    return float(found.group(1)) * _UNIT_MS[found.group(2)]


def describe_seconds(seconds: float) -> str:
    """A duration in the largest unit it reaches, three significant digits:
    ``42 s``, ``1.5 minutes``, ``2 hours``, ``3.5 days``."""
    for unit, size in _UNITS:
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def utc_clock(timestamp_ms: float, suffix: str = "") -> str:
    """Epoch milliseconds as ``YYYY-MM-DD HH:MM:SS`` in UTC, then ``suffix``; an instant a
    ``datetime`` cannot hold as ``N ms``."""
    try:
        moment = datetime.fromtimestamp(timestamp_ms / 1000.0, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return f"{timestamp_ms:.0f} ms"
    return moment.strftime("%Y-%m-%d %H:%M:%S") + suffix


def text_table(
    rows: Sequence[Sequence[str]], *, left: int = 1, header: bool = True, indent: str = "  "
) -> List[str]:
    """The lines of an aligned table: the first ``left`` columns flush left, the others flush
    right, two spaces between columns, each line after ``indent``, trailing spaces dropped.
    With ``header``, the first row is the header and a rule of dashes follows it."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i < left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ]
        lines.append(indent + "  ".join(cells).rstrip())
        if header and k == 0:
            lines.append(indent + "  ".join("-" * w for w in widths))
    return lines
