"""Types of the C speed-ups (_speedups.c)."""

from typing import Any, Callable, List, Optional, Tuple

# The loop contract between run_ticks and Run.loop (engine.py) is in doc/c-loop.md.
def run_ticks(
    context: Tuple[Any, ...],
    subjects: List[Any],
    pending: List[Any],
    tick: int,
    next_arrival: float,
) -> Tuple[int, Optional[int], bool]: ...
def schedule_all(
    context: Tuple[Any, ...], pending: List[Any], count: int, table: List[Any], start: int = 0
) -> None: ...
def randint_method(cls: type, fallback: Callable[[Any, int, int], int]) -> Any: ...

# A capsule: randint's draw for other C code (values/_cvalues.c), without a call.
_bound_randint: Any

def disorder_collect(
    inner: Callable[..., Any],
    truth: Optional[Callable[..., Any]],
    held: List[Any],
    release: Callable[[int], Any],
    special: Callable[..., Any],
    counted: Callable[[int], int],
    rng: Any,
    fallback: Callable[..., Any],
    start: int,
    late_below: int,
) -> Callable[[int, Any, Any], None]: ...

# While on, Python's allocator takes new arenas from chunks advised to use huge pages (Linux);
# returns whether it was on before (engine.loop._making_many).
def huge_arenas(on: bool) -> bool: ...
