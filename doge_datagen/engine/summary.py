"""What a run did: :class:`RunSummary`, and the names sinks go by in it."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from doge_datagen.core.text import text_table

if TYPE_CHECKING:  # pragma: no cover
    from doge_datagen.engine.pacing import LagStats

__all__ = ["RunSummary", "sink_labels"]


def sink_labels(sinks: Sequence[Any]) -> List[str]:
    """Readable, unique names for sinks: their ``name`` attribute or their class name.

    The summary, the progress display and error notes all use these, so one sink is called
    the same everywhere; a second sink with the same name gets ``#2``.
    """
    labels: List[str] = []
    seen: Dict[str, int] = {}
    for sink in sinks:
        base = str(getattr(sink, "name", None) or type(sink).__name__)
        seen[base] = seen.get(base, 0) + 1
        labels.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return labels


@dataclass
class RunSummary:
    """What a call to :meth:`DataOnlineGenerator.start` did."""

    seed: Any
    subjects: int
    ticks: Optional[int]
    events: int = 0
    vetoed: int = 0
    elapsed_seconds: float = 0.0
    events_per_trigger: Dict[str, int] = field(default_factory=dict)
    vetoed_per_trigger: Dict[str, int] = field(default_factory=dict)
    events_per_sink: Dict[str, int] = field(default_factory=dict)
    #: Delivered and failed record counts of the sinks that keep them (Kafka, databases, files).
    delivery: Dict[str, Dict[str, int]] = field(default_factory=dict)
    stopped: bool = False
    timestamp_start: Optional[float] = None
    #: Subjects that arrived during the run (``DataOnlineGenerator.arrivals``); ``subjects``
    #: counts them too.
    arrivals: int = 0
    lag: Optional["LagStats"] = None
    #: The signals (SIGINT, SIGTERM) a run without a tick limit received, in order: one asks
    #: for a graceful stop, a second one also cuts the sinks' remaining waits short.
    signals: List[int] = field(default_factory=list)
    #: The pace of the run (``None``: as fast as possible).
    speed: Optional[float] = None
    #: The events per second of wall time asked for with ``start(rate=...)``.
    rate_asked: Optional[float] = None
    #: The summaries of the shards of a sharded run, by shard number (empty otherwise).
    shards: List["RunSummary"] = field(default_factory=list)
    #: A world's messages (:mod:`doge_datagen.populations`): sent, delivered, vetoed and
    #: undelivered (sent at the last tick); empty for a model of one population.
    messages: Dict[str, int] = field(default_factory=dict)
    #: For each sink that can tell (files, SQL tables, Redis streams): whether it found data
    #: where it wrote and added to it (True), or started empty or replaced it (False).
    appended: Dict[str, bool] = field(default_factory=dict)

    @classmethod
    def merge(
        cls, parts: Sequence["RunSummary"], elapsed_seconds: Optional[float] = None
    ) -> "RunSummary":
        """One summary for the shards of a run: counts add, lag is combined, and ``parts``
        are kept in :attr:`shards`.

        ``elapsed_seconds`` is the whole run's wall time (by default the longest part's).
        Combined lag: ticks, late ticks and the mean over all parts; the largest maximum,
        drift and p99 (no more than 1 % of all ticks can be later than the largest of the
        parts' p99); the tick-weighted median of the parts' medians.
        """
        if not parts:
            raise ValueError("nothing to merge")
        first = parts[0]
        if elapsed_seconds is None:
            elapsed_seconds = max(p.elapsed_seconds for p in parts)
        merged = cls(
            seed=first.seed,
            subjects=sum(p.subjects for p in parts),
            ticks=_max_ticks([p.ticks for p in parts]),
            events=sum(p.events for p in parts),
            vetoed=sum(p.vetoed for p in parts),
            elapsed_seconds=elapsed_seconds,
            events_per_trigger=_add([p.events_per_trigger for p in parts]),
            vetoed_per_trigger=_add([p.vetoed_per_trigger for p in parts]),
            events_per_sink=_add([p.events_per_sink for p in parts]),
            delivery={},
            stopped=any(p.stopped for p in parts),
            timestamp_start=first.timestamp_start,
            arrivals=sum(p.arrivals for p in parts),
            lag=_combine_lag([p.lag for p in parts if p.lag is not None]),
            signals=sorted({s for p in parts for s in p.signals}),
            speed=first.speed,
            rate_asked=first.rate_asked,
            shards=list(parts),
            messages=_add([p.messages for p in parts]),
        )
        labels: Dict[str, None] = {}
        for part in parts:
            labels.update(dict.fromkeys(part.delivery))
        for label in labels:
            counted = [p.delivery[label] for p in parts if label in p.delivery]
            merged.delivery[label] = _add(counted)
        return merged

    @property
    def events_per_second(self) -> float:
        return self.events / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def rate_line(self) -> str:
        """The rate asked for with ``rate=`` against the one achieved."""
        asked = self.rate_asked or 0.0
        achieved = self.events_per_second
        share = f" ({achieved / asked * 100:.1f} %)" if asked else ""
        return (
            f"rate: asked for {asked:,.0f} events/s, achieved {achieved:,.0f} events/s{share} "
            f"at speed {self.speed or 0:.4g}"
        )

    def __str__(self) -> str:
        lines = [
            f"{self.events} events from {self.subjects} subjects over {self.ticks} ticks "
            f"in {self.elapsed_seconds:.3f} s (seed {self.seed!r}, {self.vetoed} vetoed)"
        ]
        if self.rate_asked is not None:
            lines.append(f"  {self.rate_line()}")
        for title, counts in (("trigger", self.events_per_trigger), ("sink", self.events_per_sink)):
            if counts:
                lines.append(f"  per {title}:")
                rows = [(name, f"{n:>10}") for name, n in counts.items()]
                lines.extend(text_table(rows, header=False, indent="    "))
        return "\n".join(lines)


def _add(counts: Sequence[Dict[str, int]]) -> Dict[str, int]:
    total: Dict[str, int] = {}
    for part in counts:
        for name, n in part.items():
            total[name] = total.get(name, 0) + n
    return total


def _max_ticks(ticks: Sequence[Optional[int]]) -> Optional[int]:
    known = [t for t in ticks if t is not None]
    return max(known) if known else None


def _combine_lag(stats: Sequence["LagStats"]) -> Optional["LagStats"]:
    if not stats:
        return None
    from doge_datagen.engine.pacing import LagStats

    ticks = sum(s.ticks for s in stats)
    by_median = sorted(stats, key=lambda s: s.median)
    half, seen, median = ticks / 2, 0, by_median[-1].median
    for s in by_median:
        seen += s.ticks
        if seen >= half:
            median = s.median
            break
    return LagStats(
        ticks=ticks,
        median=median,
        p99=max(s.p99 for s in stats),
        max=max(s.max for s in stats),
        mean=sum(s.mean * s.ticks for s in stats) / ticks if ticks else 0.0,
        late_ticks=sum(s.late_ticks for s in stats),
        drift=max(s.drift for s in stats),
    )
