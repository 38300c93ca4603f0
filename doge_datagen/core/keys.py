"""SplitMix64 and the key derivation: where every random draw of a run gets its bits.

A run's draws are counter-based: the bits a subject uses at a tick are SplitMix64's output
function of a key, its global index and the tick, so any draw is found without the ones before
it and a subject's events never depend on how many others there are or in which process they
run. Each part that draws (the engine, the subjects' ``datagen.random``, the disordered sink)
derives its own key from the seed here, under a name of its own, so that their streams never
coincide.

The hot loops (``engine/loop.py``, ``engine/timevarying.py``, ``engine/randomness.py`` and the C
loop) carry inlined copies of :func:`mix` and :func:`draw`; each copy names this module.
"""

import hashlib
import math
from typing import Any

__all__ = [
    "GOLDEN",
    "LN_2_POW_32",
    "LOW32",
    "MASK64",
    "MIX1",
    "MIX2",
    "TWO_POW_32",
    "derive_key",
    "draw",
    "engine_key",
    "mix",
]

MASK64 = (1 << 64) - 1
#: SplitMix64's increment (the golden ratio in 64 bits).
GOLDEN = 0x9E3779B97F4A7C15
#: The multipliers of SplitMix64's output function.
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
LOW32 = 0xFFFFFFFF
TWO_POW_32 = 4294967296
LN_2_POW_32 = 32 * math.log(2)


def derive_key(name: str, seed: Any) -> int:
    """A 64-bit key for the stream called ``name`` (``"engine"``, ``"subject-random"``, ...),
    from the seed's ``repr``: stable across processes, machines and Python versions."""
    digest = hashlib.sha256(f"doge-datagen/{name}/".encode() + repr(seed).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def engine_key(seed: Any) -> int:
    """A 64-bit key for the engine's hash, stable across processes and Python versions."""
    return derive_key("engine", seed)


def mix(h: int) -> int:
    """SplitMix64's output function of a 64-bit state."""
    h = ((h ^ (h >> 30)) * MIX1) & MASK64
    h = ((h ^ (h >> 27)) * MIX2) & MASK64
    return h ^ (h >> 31)


def draw(key: int, index: int, tick: int) -> int:
    """The 64 random bits subject ``index`` (global) uses for its draw at ``tick``.

    SplitMix64's output function of ``key + (index * 2**32 + tick) * golden``: a counter-based
    generator, so any subject's draw at any tick is found without the ones before it.
    """
    return mix((key + (index * TWO_POW_32 + tick) * GOLDEN) & MASK64)
