"""What a run looks like from outside: plain, picklable snapshots of a run or a shard, which the
exporter takes, the shards send to their coordinator and the status page draws."""

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

__all__ = ["SinkCounts", "Snapshot"]


@dataclass
class SinkCounts:
    """One sink's counts: events handed to it, and records delivered and failed (``None``
    for a sink that does not count deliveries)."""

    label: str
    events: int
    delivered: Optional[int] = None
    failed: Optional[int] = None


@dataclass
class Snapshot:
    """The state of one run (or one shard of a run) at one moment; plain, picklable data."""

    model: str
    seed: str
    subjects: int
    ticks_total: Optional[int]
    ticks_done: int
    simulated_time_ms: float
    events: Dict[str, int]
    vetoes: Dict[str, int]
    states: Dict[str, int]
    sinks: List[SinkCounts]
    shard: Optional[str] = None
    speed: Optional[float] = None
    #: Cumulative counts per :data:`LAG_BUCKETS` bound, their sum and count (paced runs).
    lag_buckets: Optional[List[int]] = None
    lag_sum: float = 0.0
    lag_count: int = 0
    #: How many ticks the pacer is behind its wall-clock schedule right now.
    behind_ticks: float = 0.0
    running: bool = True
    error: Optional[str] = None
    taken_at: float = field(default_factory=time.time)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-able data (for /status.json, or a channel that carries no pickles)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Snapshot":
        fields = dict(data)
        fields["sinks"] = [SinkCounts(**sink) for sink in fields.get("sinks", ())]
        return cls(**fields)
