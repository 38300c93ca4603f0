"""What a sink says it delivered: the one reading of a sink's counts that the run summary, the
progress line and the metrics share, so that they always agree."""

from typing import Any, Dict, Optional, Tuple

__all__ = ["delivery_counts", "extra_counts"]


def delivery_counts(sink: Any) -> Optional[Tuple[int, int]]:
    """``(delivered, failed)`` of a sink that counts them, else ``None``.

    The run summary and the progress display both read a sink's counts through this one
    function, so they always agree.
    """
    delivered = getattr(sink, "delivered", None)
    failed = getattr(sink, "failed", None)
    if delivered is None and failed is None:
        return None
    return int(delivered or 0), int(failed or 0)


def extra_counts(sink: Any) -> Dict[str, int]:
    """What a sink counts beside delivered and failed records (a disordered sink's dropped,
    duplicated and late events), for the run summary; empty for most sinks."""
    counts = getattr(sink, "extra_counts", None)
    return dict(counts()) if callable(counts) else {}
