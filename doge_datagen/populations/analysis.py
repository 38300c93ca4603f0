"""What a world will do, from its populations' analyses: :class:`WorldAnalysis`.

The populations of a world draw independently of each other (a subject's draws are keyed by
the seed, its global index and the tick), so each population's figures are those of its own
generator analysed alone (:meth:`~doge_datagen.DataOnlineGenerator.analyze`), and a declared
message edge (:meth:`~doge_datagen.populations.World.declare_messages`) carries one message
per event of its sending trigger: its rate is that trigger's expected events.

This floor sits above the analysis but does not import it: a population's analysis is read
through the attributes every :class:`~doge_datagen.analysis.ModelAnalysis` has
(``events_per_tick``, ``run_events``, ``seconds_per_tick``, ``to_dict``, ``format_text``).
"""

import json
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional

from doge_datagen.core.text import text_table

__all__ = ["EntityTable", "MessageRate", "WorldAnalysis"]

VETO_NOTE = (
    "Message rates are those of their sending triggers: an action that vetoes its move, or "
    "sends no message, makes fewer messages than these figures."
)


@dataclass(frozen=True)
class EntityTable:
    """A table of entities of the world: its name, how many rows and its key attribute."""

    name: str
    size: int
    key: Optional[str]


@dataclass(frozen=True)
class MessageRate:
    """The expected rate of a declared message edge: ``population``'s transition ``trigger``
    sends a ``kind`` message to a subject of ``to`` at each of its events."""

    population: str
    trigger: str
    to: str
    kind: str
    #: Long-run expected messages per tick (all the sending population's subjects).
    per_tick: float
    #: Long-run expected messages per second of simulated time.
    per_second: float
    #: Expected messages over the run's ticks, start-up included (None without a tick limit).
    run: Optional[float]
    #: ``run`` divided by the run's duration in simulated seconds (None without a tick limit).
    run_per_second: Optional[float]

    def to_dict(self) -> Dict[str, Any]:
        return {
            "population": self.population,
            "trigger": self.trigger,
            "to": self.to,
            "kind": self.kind,
            "per_tick": self.per_tick,
            "per_second": self.per_second,
            "run": self.run,
            "run_per_second": self.run_per_second,
        }


class WorldAnalysis(Mapping[str, Any]):
    """The analysis of a :class:`~doge_datagen.populations.World`.

    A mapping of population name to that population's
    :class:`~doge_datagen.analysis.ModelAnalysis` (``analysis["users"].stationary``), for the
    populations with transitions, with the world's figures beside it:

    - ``events_per_tick`` / ``events_per_second``: each population's long-run expected events
      (all its transitions, all its subjects);
    - ``run_events``: each population's expected events over the run's ticks (None without
      a tick limit);
    - ``messages``: a :class:`MessageRate` per declared message edge;
    - ``entities``: an :class:`EntityTable` per table of entities.
    """

    def __init__(
        self,
        populations: Mapping[str, Any],
        messages: List[MessageRate],
        entities: List[EntityTable],
        *,
        ticks: Optional[int],
        tick_ms: float,
    ) -> None:
        self.populations: Dict[str, Any] = dict(populations)
        self.messages = list(messages)
        self.entities = list(entities)
        self.ticks = ticks
        self.tick_ms = tick_ms

    @classmethod
    def of(cls, world: Any, analyses: Mapping[str, Any]) -> "WorldAnalysis":
        """The world's analysis from its populations' (``analyses``, by name)."""
        messages = []
        for population, trigger, to, kind in world.message_edges:
            a = analyses[population]
            per_tick = float(a.events_per_tick.get(trigger, 0.0))
            run = None if a.run_events is None else float(a.run_events.get(trigger, 0.0))
            seconds = a.ticks * a.seconds_per_tick if a.ticks else 0.0
            messages.append(
                MessageRate(
                    population,
                    trigger,
                    to,
                    kind,
                    per_tick,
                    per_tick / a.seconds_per_tick,
                    run,
                    None if run is None else (run / seconds if seconds else 0.0),
                )
            )
        entities = [
            EntityTable(p.name, p.size, p.key) for p in world.populations.values() if p.entities
        ]
        return cls(analyses, messages, entities, ticks=world.ticks_num, tick_ms=world.tick_ms)

    # -- the mapping: population name -> ModelAnalysis ------------------------------------

    def __getitem__(self, name: str) -> Any:
        try:
            return self.populations[name]
        except KeyError:
            raise KeyError(
                f"no population {name!r} with transitions in the analysis; it has "
                f"{sorted(self.populations)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.populations)

    def __len__(self) -> int:
        return len(self.populations)

    # -- figures ---------------------------------------------------------------------------

    @property
    def seconds_per_tick(self) -> float:
        return self.tick_ms / 1000.0

    @property
    def events_per_tick(self) -> Dict[str, float]:
        """Long-run expected events per tick, per population."""
        return {n: float(a.total_events_per_tick) for n, a in self.populations.items()}

    @property
    def events_per_second(self) -> Dict[str, float]:
        """Long-run expected events per second of simulated time, per population."""
        return {n: v / self.seconds_per_tick for n, v in self.events_per_tick.items()}

    @property
    def run_events(self) -> Optional[Dict[str, float]]:
        """Expected events over the run's ticks, per population (None without a tick limit)."""
        if self.ticks is None:
            return None
        return {n: float(a.run_total_events or 0.0) for n, a in self.populations.items()}

    @property
    def total_events_per_second(self) -> float:
        return sum(self.events_per_second.values())

    def messages_per_second(self, to: Optional[str] = None) -> float:
        """Long-run expected messages per second, all of them or those sent to ``to``."""
        return sum(m.per_second for m in self.messages if to is None or m.to == to)

    def expected_events_per_second(self) -> float:
        """Events per second of simulated time a run is expected to produce, all populations:
        averaged over the run's ticks when it has a limit, else the long-run figure (what
        ``start(rate=...)`` paces by)."""
        return float(sum(a.expected_events_per_second() for a in self.populations.values()))

    # -- output ----------------------------------------------------------------------------

    def to_dict(self) -> Dict[str, Any]:
        """Plain data for ``--format json``: the world's figures and each population's."""
        return {
            "ticks": self.ticks,
            "tick_ms": self.tick_ms,
            "events_per_tick": self.events_per_tick,
            "events_per_second": self.events_per_second,
            "run_events": self.run_events,
            "messages": [m.to_dict() for m in self.messages],
            "entities": [{"name": e.name, "size": e.size, "key": e.key} for e in self.entities],
            "populations": {n: a.to_dict() for n, a in self.populations.items()},
        }

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        return self.format_text()

    def __repr__(self) -> str:
        return (
            f"<WorldAnalysis: populations {list(self.populations)}, "
            f"{len(self.entities)} entity tables, {len(self.messages)} message edges>"
        )

    def format_text(self) -> str:
        run = f"{self.ticks} ticks" if self.ticks is not None else "no tick limit"
        out: List[str] = [
            f"World analysis: {_count(len(self.populations), 'population')}, "
            f"{_count(len(self.entities), 'entity table')}, "
            f"ticks of {_fmt(self.seconds_per_tick)} s, {run}",
            "",
            "Populations:",
        ]
        header = ["population", "subjects", "events per tick (long run)", "per second (long run)"]
        header.append("messages in per second")
        if self.ticks is not None:
            header += [f"events in {self.ticks} ticks", "per second (this run)"]
        rows = [header]
        seconds = (self.ticks or 0) * self.seconds_per_tick
        for name, a in self.populations.items():
            row = [
                name,
                str(a.subjects),
                _fmt(a.total_events_per_tick),
                _fmt(a.total_events_per_second),
                _fmt(self.messages_per_second(name)),
            ]
            if self.ticks is not None:
                total = float(a.run_total_events or 0.0)
                row += [_fmt(total), _fmt(total / seconds if seconds else 0.0)]
            rows.append(row)
        out.extend(text_table(rows))
        if self.entities:
            out += ["", "Entity tables:"]
            rows = [["table", "rows", "key"]]
            rows += [[e.name, str(e.size), e.key or "(index)"] for e in self.entities]
            out.extend(text_table(rows))
        if self.messages:
            out += ["", "Messages (one per event of the sending trigger):"]
            header = ["from", "trigger", "to", "kind", "per tick (long run)", "per second"]
            if self.ticks is not None:
                header += [f"in {self.ticks} ticks", "per second (this run)"]
            rows = [header]
            for m in self.messages:
                row = [m.population, m.trigger, m.to, m.kind, _fmt(m.per_tick), _fmt(m.per_second)]
                if m.run is not None:
                    row += [_fmt(m.run), _fmt(m.run_per_second or 0.0)]
                rows.append(row)
            out.extend(text_table(rows, left=4))
            out.append(VETO_NOTE)
        for name, a in self.populations.items():
            out += ["", f"== Population {name!r} ==", ""]
            out.append(a.format_text().rstrip())
        return "\n".join(out).rstrip() + "\n"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _fmt(value: float) -> str:
    """As the single model's report writes its figures."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"
