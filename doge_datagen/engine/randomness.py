"""``datagen.random``: a ``random.Random`` whose draws belong to the subject being handled.

While the engine creates subject ``i``, or handles its event at tick ``t`` (the action callback
and the sinks), every draw from :class:`SubjectRandom` comes from a stream keyed by
``(seed, i, t)``: a counter-based generator (SplitMix64 over a per-event starting point), so
what a subject draws does not depend on which other subjects ran before it, how many there
are, or in which process or shard it runs. Outside those moments (building the model, code
run before or after :meth:`~doge_datagen.DataOnlineGenerator.start`) it is a plain
``random.Random`` seeded from the same seed.

Every method of ``random.Random`` works on top of :meth:`SubjectRandom.random` and
:meth:`SubjectRandom.getrandbits` (``randint``, ``choice``, ``shuffle``, ``sample``,
``uniform``, ``gauss``, ``choices``...). ``randint`` has a shorter path for whole numbers,
since callbacks draw on every event.
"""

import random
import threading
from typing import Any, List, Optional

from doge_datagen.core.keys import GOLDEN as _GOLDEN
from doge_datagen.core.keys import MASK64 as _MASK64
from doge_datagen.core.keys import MIX1 as _MIX1
from doge_datagen.core.keys import MIX2 as _MIX2
from doge_datagen.core.keys import derive_key
from doge_datagen.errors import ConfigurationError

__all__ = [
    "SubjectRandom",
    "CREATE_TICK",
    "message_tick",
    "event_id",
    "event_base",
    "numbered_event_ids",
    "running",
]

# Odd constants that spread the subject index and the tick over 64 bits before mixing.
_SPREAD_I = 0xD1B54A32D192ED03
_SPREAD_T = 0xAEF17502108EF2D9
_TWO_POW_53 = 9007199254740992.0
_TWO_POW_64 = 1 << 64

#: The tick a subject's creation is keyed with: before tick 0, so that it never coincides
#: with an event's.
CREATE_TICK = -1


def message_tick(tick: int) -> int:
    """The tick key of the messages a subject handles at ``tick`` (and back: the function is
    its own inverse): below ``CREATE_TICK``, so that the stream of a subject's messages at a
    tick is none of its events' or its creation's."""
    return -3 - tick


def _stream_key(seed: Any) -> int:
    """A 64-bit key for the per-subject streams, stable across processes and versions."""
    return derive_key("subject-random", seed)


class SubjectRandom(random.Random):
    """A ``random.Random`` that the engine points at one subject and tick at a time.

    Outside a creation or an event it is the Mersenne Twister of the base class, seeded with
    the seed: a plain ``random.Random``. The engine keys it with :meth:`begin` (once per run)
    and by setting the subject and tick of each creation and event; draws then come from
    that ``(seed, global index, tick)`` stream, from its start.
    """

    # The engine sets the keys at every event and busy tick, and every draw reads them: in
    # slots, the C loop and randint reach them at a fixed place in the object instead of
    # through the instance dict. (gauss_next, random.Random's own, is one too, so that a fresh
    # event can clear it as cheaply.)
    __slots__ = ("_i", "_t", "_s", "_key", "_base", "_tb", "gauss_next")

    _i: Optional[int]  # the run-local index of the subject being handled, None when unkeyed
    _t: int  # its tick (CREATE_TICK while it is created)
    _s: Optional[int]  # the stream's position, None before the first draw of this event
    _key: int  # from the seed
    _base: int  # _key with the run's first global index (and golden) folded in
    _tb: Optional[int]  # _base with the current tick folded in (None: not worked out yet)

    def __init__(self, x: Any = None) -> None:
        self._i = None
        self._t = CREATE_TICK
        self._s = None
        self._key = self._base = self._tb = 0
        super().__init__(x)  # calls seed(x)

    def seed(self, a: Any = None, version: int = 2) -> None:
        """Seed the Mersenne Twister (as ``random.Random.seed``) and the per-subject streams."""
        super().seed(a, version)
        self._key = _stream_key(a)
        self.begin(0)

    # -- keying, by the engine ---------------------------------------------------------------
    # Stream (i, t) is the Weyl sequence start + n * golden, n = 0, 1, ..., put through
    # SplitMix64's output function (as SplitMix64 itself is), with
    # start = key + i * SPREAD_I + (t + 2) * SPREAD_T + golden. Neighbouring subjects and ticks
    # start far apart and the output function's avalanche makes their draws independent
    # (tests/test_randomness.py checks pairs of neighbours).

    def begin(self, first: int) -> None:
        """A run over global indices from ``first`` starts: local index ``i`` is global
        ``first + i`` (folded into the key once: the arithmetic is modulo 2**64)."""
        self._base = (self._key + first * _SPREAD_I + _GOLDEN) & _MASK64
        self._i = None
        self.at_tick(CREATE_TICK)

    def at_tick(self, tick: int) -> None:
        """The engine moves on to ``tick`` (``CREATE_TICK`` while creating subjects). The
        engine's loop sets ``_t`` and clears ``_tb`` itself; ``_tb`` is worked out at the
        first draw of the tick (most ticks of a sparse model draw nothing)."""
        self._t = tick
        self._tb = None

    def key(self, index: Optional[int], tick: int = CREATE_TICK) -> None:
        """Draw from the stream of (run-local) subject ``index`` at ``tick`` from now on, from
        its start; ``None`` goes back to the plain generator. (The engine's loop calls
        :meth:`at_tick` once per tick and sets ``_i`` and ``_s`` itself, which is cheaper.)"""
        if tick != self._t:
            self.at_tick(tick)
        self._i = index
        self._s = None

    def _start(self) -> int:
        """The first position of the current stream (and a fresh Gaussian state)."""
        i = self._i
        assert i is not None
        # A fresh event starts with no Gaussian value held back from someone else's draws.
        self.gauss_next = None
        tb = self._tb
        if tb is None:
            tb = self._tb = (self._base + (self._t + 2) * _SPREAD_T) & _MASK64
        return (tb + i * _SPREAD_I) & _MASK64

    # -- the core every random.Random method builds on --------------------------------------
    # The arithmetic is written out in each method: they run inside callbacks, once or more
    # per event, and a call costs as much as the mixing itself.

    def _next64(self) -> int:
        s = self._s
        s = self._start() if s is None else (s + _GOLDEN) & _MASK64
        self._s = s
        z = ((s ^ (s >> 30)) * _MIX1) & _MASK64
        z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
        return z ^ (z >> 31)

    def random(self) -> float:
        """A float in [0, 1) with 53 random bits."""
        if self._i is None:
            return super().random()
        s = self._s
        s = self._start() if s is None else (s + _GOLDEN) & _MASK64
        self._s = s
        z = ((s ^ (s >> 30)) * _MIX1) & _MASK64
        z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
        return ((z ^ (z >> 31)) >> 11) / _TWO_POW_53

    def getrandbits(self, k: int) -> int:
        """An integer with ``k`` random bits."""
        if self._i is None:
            return super().getrandbits(k)
        if k < 0:
            raise ValueError("number of bits must be non-negative")
        if k <= 64:
            return self._next64() >> (64 - k)
        bits = 0
        filled = 0
        while filled < k:
            bits |= self._next64() << filled
            filled += 64
        return bits & ((1 << k) - 1)

    def _randbelow(self, n: int) -> int:
        """A whole number in ``[0, n)``, without bias (the excess is drawn again)."""
        if self._i is None or n > _TWO_POW_64:
            return self._randbelow_with_getrandbits(n)  # type: ignore[attr-defined,no-any-return]
        shift = 64 - n.bit_length()
        s = self._s
        s = self._start() if s is None else (s + _GOLDEN) & _MASK64
        while True:
            z = ((s ^ (s >> 30)) * _MIX1) & _MASK64
            z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
            r = (z ^ (z >> 31)) >> shift
            if r < n:
                self._s = s
                return r
            s = (s + _GOLDEN) & _MASK64

    def randint(self, a: int, b: int) -> int:
        """A whole number in ``[a, b]``, both ends included."""
        i = self._i
        if i is not None and type(a) is int and type(b) is int:
            n = b - a + 1
            shift = 64 - n.bit_length()
            if n > 0 and shift >= 0:
                s = self._s
                if s is None:
                    self.gauss_next = None
                    tb = self._tb
                    if tb is None:
                        tb = self._tb = (self._base + (self._t + 2) * _SPREAD_T) & _MASK64
                    s = (tb + i * _SPREAD_I) & _MASK64
                else:
                    s = (s + _GOLDEN) & _MASK64
                while True:
                    z = ((s ^ (s >> 30)) * _MIX1) & _MASK64
                    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
                    r = (z ^ (z >> 31)) >> shift
                    if r < n:
                        self._s = s
                        return a + r
                    s = (s + _GOLDEN) & _MASK64
        return super().randint(a, b)

    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        if self._i is not None and self._s is None:
            self._s = self._start()  # drops a value held back from an earlier event
        return super().gauss(mu, sigma)

    def __reduce__(self) -> Any:
        return (type(self), (), self.__getstate__())

    def __getstate__(self) -> Any:
        return (self.getstate(), self._key, self._base, self._i, self._t, self._tb, self._s)

    def __setstate__(self, state: Any) -> None:
        base, self._key, self._base, self._i, self._t, self._tb, self._s = state
        self.setstate(base)


def _use_speedups() -> None:
    """With the C speed-ups built, ``randint`` (the draw callbacks make most, once or more per
    event) is the same method in C; anything it does not cover (other argument types, an
    unkeyed generator, a subclass that turns the keys into properties) goes to the Python
    ``randint`` above, kept as ``_randint_py``."""
    import os

    if os.environ.get("DOGE_DATAGEN_PURE_PYTHON", "") not in ("", "0"):
        return
    try:
        from doge_datagen.engine import _speedups
    except ImportError:  # pragma: no cover - a checkout without the built extension
        return
    python_randint = SubjectRandom.randint
    SubjectRandom._randint_py = python_randint  # type: ignore[attr-defined]
    SubjectRandom.randint = _speedups.randint_method(  # type: ignore[method-assign]
        SubjectRandom, python_randint
    )


# -- event ids -------------------------------------------------------------------------------
# Event ids: a stable name for the event being handled, ``SEED:SUBJECT:TICK:N``.
#
# The engine's events are a function of the seed, the subject's global index and the tick (the
# randomness is keyed by them), so the id of an event is the same in every run of the model:
# in one process, in any shard of a sharded run, and after a resume from a checkpoint, where a
# sink that delivers at least once gives an event again with the id it had. A consumer that
# keeps the ids it has seen drops the repeats.
#
# ``SUBJECT`` is the subject's global index; ``TICK`` the tick of the event, ``c`` while the
# subject is created, ``mT`` for a message handled at tick ``T`` (a model of populations);
# ``N`` numbers the records one event gives one sink when it gives several (0 by default).
# The seed is the model's as ``str`` gives it: an unseeded model's events and ids differ from
# run to run.
#
# The id is read from the run's keys while an event is handled: in a callback, a sink's
# ``collect``, a value function or a record (``event_id`` as a field's source). Elsewhere there
# is no event, and asking is a :class:`~doge_datagen.errors.ConfigurationError`.

# The run of this thread that began last: what a record's ``event_id`` reads (a record is
# called with the event only, not with its model).
_current = threading.local()


def running(run: Any) -> None:
    """The engine's call when ``run`` begins in this thread."""
    _current.run = run


def event_id(datagen: Any = None, n: int = 0) -> str:
    """The id of the event being handled: by ``datagen``'s run, or (``None``) by the run of
    this thread; ``n`` numbers the records one event gives one sink when it gives several."""
    return f"{event_base(datagen)}:{n}"


def event_base(datagen: Any = None) -> str:
    """The id of the event being handled without its record number: ``SEED:SUBJECT:TICK``."""
    run = getattr(_current, "run", None) if datagen is None else _run_of(datagen)
    rng = getattr(run, "rng", None)
    index = getattr(rng, "_i", None)
    if run is None or index is None or not getattr(run, "running", False):
        raise ConfigurationError(
            "event_id: no event is being handled (it is known in a callback, a sink's "
            "collect, a value function or a record, during a run)"
        )
    tick: int = rng._t  # type: ignore[union-attr]
    if tick == CREATE_TICK:
        when = "c"
    elif tick < CREATE_TICK:
        when = f"m{message_tick(tick)}"
    else:
        when = str(tick)
    return f"{run.model.seed}:{run.first + index}:{when}"


def numbered_event_ids(datagen: Any = None) -> Any:
    """A function giving the id of the event being handled, numbered: ``N`` is 0 at its
    first call for an event and one more at each next call for the same event (a record
    that a sink is given twice for one event, listed twice among the transition's sinks)."""
    last: List[Any] = ["", 0]

    def next_id() -> str:
        base = event_base(datagen)
        if base == last[0]:
            last[1] += 1
        else:
            last[0], last[1] = base, 0
        return f"{base}:{last[1]}"

    return next_id


def _run_of(datagen: Any) -> Any:
    """The run of a model (the last one it began), or the model itself when it is a run."""
    return getattr(datagen, "_last_run", datagen)


_use_speedups()
