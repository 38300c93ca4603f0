"""Why the engine's loop carries an inlined copy of its one draw (``engine.next_move``).

    python bench/bench_draw.py [--subjects 10000] [--ticks 1000] [--dense-ticks 100]

The reference is the same loop calling ``next_move`` once per event instead: it is made here
from the engine's own source by replacing the inlined block (between its two marker
comments) with the call, so both sides run the same code but for that block. The dense model
(every subject moves every tick) is where the copy pays; the sparse banking model shows what
it costs there. ``tests/engine/test_engine.py`` holds the loop's copy in step with ``next_move``.

Both sides run the Python loop (``engine._speedups`` set to None while they are timed); a
third row shows what the C loop (``_speedups.c``) makes of the same models.
"""

import argparse
import inspect
import textwrap
from typing import Any, Callable, List

import bench_dense
from common import Row, banking, print_table, timed

from doge_datagen.engine import loop as engine

_BEGIN = "# next_move(key, table, first + i, following), inlined"
_END = "if at == following:"
_CALL = """\
at, pending[i] = next_move(self.key, table, self.first + i, following)
if at is None:
    continue
"""


def loop_calling_next_move() -> Callable[..., None]:
    """``Run.loop`` with its inlined draw replaced by a call to ``next_move``."""
    source = textwrap.dedent(inspect.getsource(engine.Run.loop))
    begin, end = source.index(_BEGIN), source.index(_END)
    indent = source[source.rindex("\n", 0, begin) + 1 : begin]
    source = source[:begin] + textwrap.indent(_CALL, indent).lstrip() + indent + source[end:]
    namespace: dict = {}
    exec(compile(source, "<loop calling next_move>", "exec"), vars(engine).copy(), namespace)
    return namespace["loop"]


def _time(make: Callable[[], Any], loop: Callable[..., None], speedups: Any = None) -> float:
    original, original_speedups = engine.Run.loop, engine._speedups
    engine.Run.loop = loop  # type: ignore[method-assign]
    engine._speedups = speedups
    try:
        return timed(lambda: make()[0].start(), repeat=3)
    finally:
        engine.Run.loop = original  # type: ignore[method-assign]
        engine._speedups = original_speedups


def run(subjects: int, ticks: int, dense_ticks: int, seed: int = 1) -> List[Row]:
    calling = loop_calling_next_move()
    rows: List[Row] = []
    for label, make in (
        (f"sparse banking {subjects:,}x{ticks:,}", lambda: banking(subjects, ticks, seed)),
        (
            f"dense ping-pong {subjects:,}x{dense_ticks:,}",
            lambda: bench_dense.ping_pong(subjects, dense_ticks, seed),
        ),
    ):
        datagen, sink = make()
        datagen.start()
        inlined_seconds = _time(make, engine.Run.loop)
        called_seconds = _time(make, calling)
        rows.append(
            (
                f"{label}: loop with its copy of the draw vs calling next_move",
                f"{inlined_seconds:.3f}s ({sink.count:,} ev)",
                f"{called_seconds:.3f}s",
                called_seconds / inlined_seconds,
                "(speed-up the copy buys)",
                True,
            )
        )
        if engine._speedups is not None:
            c_seconds = _time(make, engine.Run.loop, engine._speedups)
            rows.append(
                (
                    f"{label}: the C loop vs the Python loop",
                    f"{c_seconds:.3f}s",
                    f"{inlined_seconds:.3f}s",
                    inlined_seconds / c_seconds,
                    "(shown)",
                    True,
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--ticks", type=int, default=1_000)
    parser.add_argument("--dense-ticks", type=int, default=100)
    args = parser.parse_args()
    print_table(run(args.subjects, args.ticks, args.dense_ticks))


if __name__ == "__main__":
    main()
