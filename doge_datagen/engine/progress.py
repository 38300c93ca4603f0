"""Progress of a long run: ticks done, simulated time, events per second, and what each sink
delivered and failed to deliver (for sinks that count it).

A tqdm progress bar is drawn on standard error; where tqdm cannot be imported, a plain line
is written there instead, at most twice a second.
"""

import sys
import time
from typing import Any, Optional, Sequence, TextIO

from doge_datagen.core.delivery import delivery_counts
from doge_datagen.core.text import utc_clock

_INTERVAL_SECONDS = 0.5


def sink_counts(sinks: Sequence[Any], labels: Sequence[str]) -> str:
    parts = []
    for sink, label in zip(sinks, labels):
        counts = delivery_counts(sink)
        if counts is not None:
            parts.append(f"{label} {counts[0]} ok/{counts[1]} failed")
    return ", ".join(parts)


class ProgressReporter:
    """Called by the engine as the run goes; draws at most every half second."""

    def __init__(
        self,
        total_ticks: Optional[int],
        sinks: Sequence[Any],
        labels: Sequence[str],
        file: Optional[TextIO] = None,
        use_tqdm: bool = True,
    ) -> None:
        self.total = total_ticks
        self.sinks = list(sinks)
        self.labels = list(labels)
        self.file = file or sys.stderr
        self.began = time.monotonic()
        self.next_draw = 0.0
        self.bar: Any = None
        self.done = 0
        if use_tqdm:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total_ticks, unit="tick", file=self.file, dynamic_ncols=True)

    def update(
        self, ticks_done: int, timestamp_ms: float, events: int, force: bool = False
    ) -> None:
        now = time.monotonic()
        if not force and now < self.next_draw:
            return
        self.next_draw = now + _INTERVAL_SECONDS
        elapsed = max(now - self.began, 1e-9)
        rate = events / elapsed
        details = f"{utc_clock(timestamp_ms)} | {events} events, {rate:,.0f}/s"
        counts = sink_counts(self.sinks, self.labels)
        if counts:
            details += f" | {counts}"
        if self.bar is not None:
            self.bar.update(ticks_done - self.done)
            self.bar.set_postfix_str(details, refresh=True)
        else:
            of = f" of {self.total}" if self.total is not None else ""
            line = f"tick {ticks_done}{of} | {details}"
            print(line, file=self.file, flush=True)
        self.done = ticks_done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
