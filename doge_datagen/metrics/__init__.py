"""Watching a run: Prometheus metrics, the status page and the health check.

- :mod:`~doge_datagen.metrics.exporter`: the :class:`MetricsServer` and what it reads of a run;
- :mod:`~doge_datagen.metrics.status_page`: the HTML status page it serves.
"""

from doge_datagen.metrics.exporter import (
    LAG_BUCKETS,
    MetricsServer,
    RunProbe,
    ShardReporter,
    SinkCounts,
    Snapshot,
    mask_secrets,
    open_metrics,
    parse_address,
)

__all__ = [
    "LAG_BUCKETS",
    "MetricsServer",
    "RunProbe",
    "ShardReporter",
    "SinkCounts",
    "Snapshot",
    "mask_secrets",
    "open_metrics",
    "parse_address",
]
