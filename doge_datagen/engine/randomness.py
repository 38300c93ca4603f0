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
from typing import Any, Optional

from doge_datagen.core.keys import GOLDEN as _GOLDEN
from doge_datagen.core.keys import MASK64 as _MASK64
from doge_datagen.core.keys import MIX1 as _MIX1
from doge_datagen.core.keys import MIX2 as _MIX2
from doge_datagen.core.keys import derive_key

__all__ = ["SubjectRandom", "CREATE_TICK", "message_tick"]

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


_use_speedups()
