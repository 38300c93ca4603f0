"""Which part of a sharded run the current code runs in, and how a shard names its files.

:func:`doge_datagen.distributed.run_sharded` splits the global subject indices
``0..subjects_num-1`` into contiguous ranges, one per shard, and runs each range in a worker
with the model built there. While a shard runs (its ``build()`` and its run), :func:`current`
returns its :class:`Shard`: a file sink opened then writes its own part, named by
:func:`part_path`, so that the parts of all shards together hold the whole run.

The shard is kept in a context variable, so two shards run by two threads of one Dask worker
each see their own.
"""

import contextvars
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Union

__all__ = ["Shard", "current", "part_path", "running", "split"]


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (from 0), running global subject indices ``start..stop-1``."""

    index: int
    count: int
    start: int
    stop: int

    @property
    def label(self) -> str:
        """``KKKKK-of-NNNNN``, as in part file names."""
        return f"{self.index:05d}-of-{self.count:05d}"

    def __str__(self) -> str:
        return f"shard {self.index} of {self.count} (subjects {self.start}..{self.stop - 1})"


def split(subjects_num: int, count: int) -> List[Shard]:
    """``count`` shards of contiguous subject ranges, as even as whole numbers allow."""
    return [
        Shard(k, count, k * subjects_num // count, (k + 1) * subjects_num // count)
        for k in range(count)
    ]


_CURRENT: "contextvars.ContextVar[Optional[Shard]]" = contextvars.ContextVar(
    "doge_datagen_shard", default=None
)


def current() -> Optional[Shard]:
    """The shard the calling code runs in, or ``None`` outside a sharded run."""
    return _CURRENT.get()


@contextmanager
def running(shard: Optional[Shard]) -> Iterator[None]:
    """Run the block as part of ``shard``."""
    token = _CURRENT.set(shard)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def part_path(path: Union[str, "os.PathLike[str]"], shard: Shard) -> Path:
    """``dir/STEM-KKKKK-of-NNNNN.SUFFIX`` for ``dir/STEM.SUFFIX``: this shard's own part.

    ``events.jsonl`` -> ``events-00001-of-00003.jsonl``; a name without a suffix gets the
    label at its end.
    """
    original = Path(path)
    suffix = original.suffix
    stem = original.name[: -len(suffix)] if suffix else original.name
    return original.with_name(f"{stem}-{shard.label}{suffix}")
