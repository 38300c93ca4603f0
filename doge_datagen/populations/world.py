"""A model of several populations on one clock: :class:`World`.

How a world runs on the one engine (``doc/populations.md`` has the whole design):

- **One range of global indices.** The populations with transitions lie one after the other
  on the engine's global subject indices (the first population from 0, the next after it),
  and the world is one engine model whose states are all of theirs (state names differ
  between populations) and whose factory hands each index to its population's factory. The
  draws of a subject are therefore keyed by ``(seed, global index, tick)`` as in any model,
  so shards cut the range as they cut one population's.
- **Entity tables** (populations without transitions) take global indices below 0: they are
  never run, only created, from their own creation stream, wherever they are needed. The
  populations' arrivals take those after the initial subjects, as in one model
  (:class:`_WorldArrivals`).
- **References** (:meth:`World.pick`) draw the picked index from the picking subject's own
  stream, and read the picked subject as it was created: rebuilt from its creation stream
  (and cached), never the live object, which may be in another shard.
- **Rows.** A population's ``sinks`` get a row per subject as created (the ``create`` event),
  entity tables first, before any event of the run, from the run that starts at global index
  0 (shard 0 of a sharded run), and are flushed then: a record that refers to a row comes
  after it, in every sink.
- **Messages** (:meth:`World.send`) go to a subject of a population with a ``receive``
  handler, which handles them at the next tick, before any move of that tick, in the order
  (tick sent, sender's global index, order sent), drawing from a stream of its own for that
  tick. The engine calls :meth:`World._tick` at the start of every tick for that; in a
  sharded run the shards swap their messages there, which is also the barrier that keeps
  records behind the rows of shard 0.
"""

import bisect
import math
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from doge_datagen.core.types import SubjectFactory, Transition
from doge_datagen.engine.loop import takes_index
from doge_datagen.engine.randomness import CREATE_TICK, message_tick
from doge_datagen.engine.summary import RunSummary
from doge_datagen.errors import ConfigurationError
from doge_datagen.model import DataOnlineGenerator

__all__ = ["CREATED", "Message", "MessageEvent", "Population", "Ref", "World"]

#: The trigger of the row a population's ``sinks`` get for each subject as it is created.
CREATED = "create"

#: A message on the wire between shards: (tick sent, sender's global index, order sent,
#: receiver's global index, kind, payload).
Wire = Tuple[int, int, int, int, str, Dict[str, Any]]


class _Happening:
    """What a sink gets as ``transition`` for what is not a move: it reads like a
    :class:`~doge_datagen.Transition` (trigger, states, no probability, callback or sinks)."""

    __slots__ = (
        "trigger",
        "from_state",
        "to_state",
        "probability",
        "action_callback",
        "event_sinks",
    )

    def __init__(self, trigger: str, from_state: Optional[str], to_state: Optional[str]) -> None:
        self.trigger = trigger
        self.from_state = from_state
        self.to_state = to_state
        self.probability = None
        self.action_callback = None
        self.event_sinks: List[Any] = []


class CreatedEvent(_Happening):
    """What a population's row sinks get as ``transition`` for a subject's row: the trigger
    ``"create"``, no ``from_state``, the initial state (None for an entity) as ``to_state``."""

    __slots__ = ("population",)

    def __init__(self, population: str, state: Optional[str]) -> None:
        super().__init__(CREATED, None, state)
        self.population = population

    def __repr__(self) -> str:
        return f"CreatedEvent(population={self.population!r}, to_state={self.to_state!r})"


class MessageEvent(_Happening):
    """What a receiver's sinks get as ``transition`` for a message it handled: the message's
    ``kind`` as the trigger, the receiver's state as ``from_state`` and ``to_state`` (a message
    changes attributes, never the state), and the :class:`Message` itself."""

    __slots__ = ("message",)

    def __init__(self, kind: str, state: Optional[str], message: "Message") -> None:
        super().__init__(kind, state, state)
        self.message = message

    def __repr__(self) -> str:
        return f"MessageEvent(trigger={self.trigger!r}, state={self.from_state!r})"


class Ref:
    """A subject of a population, as :meth:`World.pick` gives it: its population, its index in
    the population, its key, and its attributes as it was created (read as ``ref.name``)."""

    __slots__ = ("population", "index", "_subject")

    def __init__(self, population: "Population", index: int, subject: Any = None) -> None:
        self.population = population
        self.index = index
        self._subject = subject

    @property
    def subject(self) -> Any:
        """The subject as it was created (rebuilt from its creation stream when needed)."""
        if self._subject is None:
            self._subject = self.population.as_created(self.index)
        return self._subject

    @property
    def key(self) -> Any:
        """The value of the population's key attribute (the index when it has none)."""
        name = self.population.key
        return self.index if name is None else getattr(self.subject, name)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.subject, name)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Ref)
            and other.population is self.population
            and other.index == self.index
        )

    def __hash__(self) -> int:
        return hash((self.population.name, self.index))

    def __repr__(self) -> str:
        return f"Ref({self.population.name!r}, {self.index})"


class Message:
    """A message a subject handles: ``kind``, ``sender`` and ``receiver`` (:class:`Ref`), the
    tick it was sent at (``sent_at``; it is handled at the next one), its place among the
    sender's messages of that tick (``seq``), and the payload, read as ``message.amount`` or
    ``message.payload["amount"]``."""

    __slots__ = ("kind", "sender", "receiver", "sent_at", "seq", "payload")

    def __init__(
        self, kind: str, sender: Ref, receiver: Ref, sent_at: int, seq: int, payload: Dict[str, Any]
    ) -> None:
        self.kind = kind
        self.sender = sender
        self.receiver = receiver
        self.sent_at = sent_at
        self.seq = seq
        self.payload = payload

    def __getattr__(self, name: str) -> Any:
        try:
            return self.payload[name]
        except KeyError:
            raise AttributeError(
                f"message {self.kind!r} has no {name!r} (its payload has {sorted(self.payload)})"
            ) from None

    def __repr__(self) -> str:
        return (
            f"Message({self.kind!r}, from {self.sender!r} to {self.receiver!r} at tick "
            f"{self.sent_at}, {self.payload!r})"
        )


class Population:
    """One population of a :class:`World` (made by :meth:`World.add_population` or
    :meth:`World.add_entities`)."""

    def __init__(
        self,
        world: "World",
        name: str,
        generator: Optional[DataOnlineGenerator[Any]],
        factory: Any,
        size: int,
        key: Optional[str],
        sinks: Sequence[Any],
        receive: Optional[Callable[[Any, Message], Any]],
        receive_sinks: Any,
    ) -> None:
        self.world = world
        self.name = name
        #: The population's model (states, transitions...), None for an entity table.
        self.generator = generator
        self._factory = factory
        self._size = size
        #: The attribute that identifies a subject (its primary key in a table), or None.
        self.key = key
        #: The sinks that get each subject's row as it is created.
        self.sinks = list(sinks)
        self.receive = receive
        #: The sinks of the message events, by kind (``None`` for any kind), and all of them.
        self.receive_sinks_by_kind: Dict[Optional[str], List[Any]] = (
            {str(kind): list(sinks) for kind, sinks in receive_sinks.items()}
            if isinstance(receive_sinks, Mapping)
            else {None: list(receive_sinks)}
        )
        found: Dict[int, Any] = {}
        for listed in self.receive_sinks_by_kind.values():
            for sink in listed:
                found.setdefault(id(sink), sink)
        self.receive_sinks = list(found.values())
        #: The global index of the population's subject 0 (set when the world is assembled).
        self.offset = 0
        self._made: Dict[int, Any] = {}
        self._counted = 0  # subjects a counting factory (create() without index) has made
        self._create: Optional[Callable[..., Any]] = None  # the factory's create, this run
        self._with_index = False
        #: The global index and the tick of each subject that arrived during the run, in
        #: order (subject ``size + k`` is arrival ``k``): every shard draws every arrival.
        self.arrived_globals: List[int] = []
        self.arrived_ticks: List[int] = []
        self._cumulative: Dict[Any, List[float]] = {}

    def sinks_for(self, kind: str) -> List[Any]:
        """The sinks a message of ``kind`` goes to once handled."""
        by_kind = self.receive_sinks_by_kind
        return by_kind.get(kind, []) if None not in by_kind else by_kind[None]

    @property
    def factory(self) -> Any:
        """The subject factory: the generator's (read when a run starts), or the table's."""
        return self.generator.subject_factory if self.generator is not None else self._factory

    @property
    def size(self) -> int:
        return self.generator.subjects_num if self.generator is not None else self._size

    @property
    def entities(self) -> bool:
        """Whether this is a table of entities (no transitions, never run)."""
        return self.generator is None

    def __repr__(self) -> str:
        kind = "entities" if self.entities else "population"
        return f"<{kind} {self.name!r}: {self.size} subjects>"

    # -- creating ------------------------------------------------------------------------------

    def _creator(self) -> Callable[..., Any]:
        """The factory's ``create``, and whether it takes the index: read once per run, since
        looking at a signature costs more than making a subject."""
        if self._create is None:
            self._create = getattr(self.factory, "create", self.factory)
            self._with_index = takes_index(self._create)
        return self._create

    def counts(self) -> bool:
        """Whether the factory counts its subjects (its ``create`` takes no index)."""
        self._creator()
        return not self._with_index

    def make(self, index: int) -> Any:
        """Call the factory for the population's subject ``index`` (with ``datagen.random``
        keyed by the caller). A factory whose ``create`` takes no index is called for the
        indices before as well, as the engine does for a shard, so it counts the same."""
        create = self._create
        if create is None:
            create = self._creator()
        if self._with_index:
            return create(index)
        if index < self._counted:
            raise ConfigurationError(
                f"population {self.name!r}: subject {index} is needed again (referred to, or "
                "in another run), and its factory's create() takes no index, so it cannot be "
                "made again: give create an index parameter"
            )
        while self._counted < index:
            create()
            self._counted += 1
        self._counted += 1
        return create()

    def global_index(self, index: int) -> int:
        """The engine's global index of the population's subject ``index`` (an arrival's
        after the initial subjects')."""
        if index < self.size:
            return self.offset + index
        return self.arrived_globals[index - self.size]

    def existing(self, tick: int) -> int:
        """How many subjects the population has at the start of ``tick``: the initial ones and
        those that arrived at an earlier tick."""
        return self.size + bisect.bisect_left(self.arrived_ticks, tick)

    def as_created(self, index: int) -> Any:
        """Subject ``index`` as it was created: made again from its creation stream (the
        global index's), once per process."""
        made = self._made.get(index)
        if made is None:
            known = self.size + len(self.arrived_globals)
            if not 0 <= index < known:
                raise ConfigurationError(
                    f"population {self.name!r} has subjects 0 .. {known - 1}, not {index}"
                )
            made = self._made[index] = self.world._make_keyed(self, index)
        return made

    def ref(self, index: int) -> Ref:
        """Subject ``index`` of this population, as a :class:`Ref`."""
        known = self.size + len(self.arrived_globals)
        if not 0 <= index < known:
            raise ConfigurationError(
                f"population {self.name!r} has subjects 0 .. {known - 1}, not {index}"
            )
        return Ref(self, index)

    def cumulative(self, how: Any, size: int) -> List[float]:
        """The cumulative weights of a pick (``("by", attribute)`` or ``("zipf", s)``) over
        the population's first ``size`` subjects, worked out once per process (and extended
        as subjects arrive)."""
        table = self._cumulative.get(how)
        if table is None or len(table) < size:
            table = table or []
            total = table[-1] if table else 0.0
            if how[0] == "zipf":
                s = how[1]
                for rank in range(len(table) + 1, size + 1):
                    total += rank**-s
                    table.append(total)
            else:
                name = how[1]
                for j in range(len(table), size):
                    weight = getattr(self.as_created(j), name)
                    if not isinstance(weight, (int, float)) or weight < 0 or weight != weight:
                        raise ConfigurationError(
                            f"population {self.name!r}: subject {j} has {name}={weight!r}, not a "
                            "weight (a number >= 0)"
                        )
                    total += weight
                    table.append(total)
            self._cumulative[how] = table
        return table


class World(DataOnlineGenerator[Any]):
    """Several populations that share a clock and a seed, refer to and act on each other.

    :param tick_ms: the length of a tick in milliseconds, for every population.
    :param ticks_num: how many ticks to run (``None``: until stopped).
    :param timestamp_start: the timestamp of tick 0 (as :class:`DataOnlineGenerator`'s).
    :param seed: the seed of every population's draws.

    Add populations with :meth:`add_population` (a :class:`DataOnlineGenerator` describing
    states, transitions and factory; its own seed and clock are the world's) and tables with
    :meth:`add_entities`; then :meth:`start`, :func:`~doge_datagen.run_sharded`, the metrics
    and the command line take the world as they take one model.
    """

    def __init__(
        self,
        tick_ms: int,
        ticks_num: Optional[int],
        timestamp_start: Any = 0,
        *,
        seed: Any = None,
    ) -> None:
        super().__init__(
            ["world"], "world", _Dispatcher(self), 0, tick_ms, ticks_num, timestamp_start, seed=seed
        )
        self.states = []
        self._by_state = {}
        self.populations: Dict[str, Population] = {}
        self._active: List[Population] = []
        self._starts: List[int] = []
        #: The messages sent since the tick began, as they travel: :data:`Wire` tuples, whose
        #: first three items are the order they are handled in.
        self._outbox: List[Wire] = []
        self._seq: Dict[int, int] = {}
        self._seq_tick = -1
        self._exchange: Any = None
        self._receivers = False
        self._every_tick = False
        self._rows_pending = False
        self._arrival_map: Dict[int, Tuple[Population, int]] = {}
        #: Rows and message events this run wrote, by sink (the summary's events per sink
        #: count them beside the moves').
        self._written: Dict[int, int] = {}
        self._arrived_here: Dict[str, int] = {}
        #: Messages of the last run: sent, delivered (handled and written), vetoed (the
        #: handler returned a false value), undelivered (still on their way when the run
        #: stopped before its end).
        self.messages: Dict[str, int] = _no_messages()
        #: The message edges the graph and the analysis show, as ``(population, trigger,
        #: receiving population, kind)`` (:meth:`declare_messages`).
        self.message_edges: List[Tuple[str, str, str, str]] = []

    # -- building ------------------------------------------------------------------------------

    def add_population(
        self,
        name: str,
        generator: DataOnlineGenerator[Any],
        *,
        key: Optional[str] = None,
        sinks: Iterable[Any] = (),
        receive: Optional[Callable[[Any, Message], Any]] = None,
        receive_sinks: Any = (),
    ) -> Population:
        """Add a population described by ``generator`` (its states, transitions, factory and
        ``subjects_num``; its seed and clock give way to the world's).

        :param key: the attribute that identifies a subject (a row's primary key).
        :param sinks: sinks that get a row per subject as created (trigger ``"create"``),
            before any event of the run.
        :param receive: ``receive(subject, message)`` handles a message sent to one of the
            population's subjects, at the tick after it was sent and before the subject's own
            move; it may change the subject's attributes. A true result sends the message
            event to ``receive_sinks``: a list, or a mapping of message kind to list.
        """
        if not isinstance(generator, DataOnlineGenerator) or isinstance(generator, World):
            raise ConfigurationError(
                f"population {name!r}: give a DataOnlineGenerator, got {type(generator).__name__}"
            )
        if generator.tick_ms != self.tick_ms:
            raise ConfigurationError(
                f"population {name!r} has tick_ms={generator.tick_ms!r}, the world "
                f"{self.tick_ms!r}: the populations of a world share its clock"
            )
        if receive is not None and not callable(receive):
            raise ConfigurationError(f"population {name!r}: receive must be callable")
        population = self._add(
            name, generator, generator.subject_factory, 0, key, sinks, receive, receive_sinks
        )
        # Every population draws from the world's streams (its callbacks reach them through
        # its own datagen.random and datagen.fake, which now are the world's).
        generator.random = self.random
        generator.seed = self.seed
        self._assemble()
        return population

    def add_entities(
        self,
        name: str,
        factory: Any,
        size: int,
        *,
        key: Optional[str] = None,
        sinks: Iterable[Any] = (),
    ) -> Population:
        """Add a table of ``size`` entities (products, merchants) made by ``factory`` (a
        :class:`~doge_datagen.SubjectFactory` or a callable, given the index when it takes
        one), each from its own creation stream. Entities never move; ``sinks`` get a row
        for each, before any other row or event of the run."""
        from doge_datagen.engine import validators

        size = validators.check_count(f"population {name!r} size", size)
        if not (hasattr(factory, "create") or callable(factory)):
            raise ConfigurationError(f"population {name!r}: the factory must be callable")
        population = self._add(name, None, factory, size, key, sinks, None, ())
        self._assemble()
        return population

    def declare_messages(
        self, population: str, trigger: str, to: str, kind: str = "message"
    ) -> None:
        """Say that ``population``'s transition ``trigger`` sends a message of ``kind`` to a
        subject of ``to`` at each of its events: the graph draws the edge, and the analysis
        gives the messages' rate as that transition's. (Sending works without it.)"""
        source = self._population(population)
        self._population(to)
        if source.generator is None or not any(
            t.trigger == trigger for t in source.generator.transitions
        ):
            raise ConfigurationError(
                f"declare_messages: population {population!r} has no transition {trigger!r}"
            )
        self.message_edges.append((population, trigger, to, kind))

    def _add(self, name: str, *args: Any) -> Population:
        if not isinstance(name, str) or not name or not name.isidentifier():
            raise ConfigurationError(f"a population's name must be an identifier, got {name!r}")
        if name in self.populations:
            raise ConfigurationError(f"population {name!r} is already in the world")
        if self._last_run is not None and self._last_run.running:
            raise ConfigurationError("populations cannot be added while the world runs")
        population = Population(self, name, *args)
        self.populations[name] = population
        return population

    def _assemble(self) -> None:
        """The engine's view of the world: every population's states and transitions in one
        model, and the global index of each population's subject 0."""
        owner: Dict[str, str] = {}
        states: List[str] = []
        transitions: List[Transition] = []
        by_state: Dict[str, List[Transition]] = {}
        self._active = [p for p in self.populations.values() if not p.entities]
        offset = 0
        self._starts = []
        for population in self._active:
            generator = population.generator
            assert generator is not None
            for state in generator.states:
                if state in owner:
                    raise ConfigurationError(
                        f"state {state!r} is in populations {owner[state]!r} and "
                        f"{population.name!r}: the states of a world's populations have "
                        "different names"
                    )
                owner[state] = population.name
                states.append(state)
            transitions.extend(generator.transitions)
            for state in generator.states:
                by_state[state] = generator.transitions_from(state)
            population.offset = offset
            self._starts.append(offset)
            offset += population.size
        # Entity tables take the global indices below 0 (the engine's arrivals take those
        # after the populations'): -E .. -1, in the order the tables were added.
        low = -sum(p.size for p in self.populations.values() if p.entities)
        for population in self.populations.values():
            if population.entities:
                population.offset = low
                low += population.size
        self.states = states
        self.transitions = transitions
        self._by_state = by_state
        self.initial_state = self._active[0].generator.initial_state if self._active else ""  # type: ignore[union-attr]
        self.subjects_num = sum(p.size for p in self._active)

    def add_transition(self, *args: Any, **kwargs: Any) -> Transition:
        raise ConfigurationError(
            "a world's transitions belong to its populations: add them to a population's generator"
        )

    def validate(self) -> None:
        for population in self._active:
            assert population.generator is not None
            population.generator.validate()
            population.generator.random = self.random
            population.generator.seed = self.seed
        self._assemble()
        if not self.populations:
            raise ConfigurationError("a world needs at least one population")
        for population in self.populations.values():
            if population.receive_sinks and population.receive is None:
                raise ConfigurationError(
                    f"population {population.name!r} has receive_sinks but no receive handler"
                )
        from doge_datagen.engine import validators

        self.ticks_num = validators.check_optional_count("ticks_num", self.ticks_num)
        self.tick_ms = validators.check_tick_ms(self.tick_ms)
        self.timestamp_start = validators.check_timestamp("timestamp_start", self.timestamp_start)

    def initial_ranges(self) -> List[Tuple[int, int, str]]:
        """``(first, stop, initial state)`` of each population's global indices (the engine
        starts each range in its own state)."""
        return [
            (p.offset, p.offset + p.size, p.generator.initial_state)  # type: ignore[union-attr]
            for p in self._active
        ]

    @property
    def sinks(self) -> List[Any]:
        """Every distinct sink: the entity tables' and the populations' row sinks first (they
        open first and close first), then the events' and the messages'."""
        found: Dict[int, Any] = {}
        ordered = sorted(self.populations.values(), key=lambda p: not p.entities)
        for population in ordered:
            for sink in population.sinks:
                found.setdefault(id(sink), sink)
        for transition in self.transitions:
            for sink in transition.event_sinks:
                found.setdefault(id(sink), sink)
        for population in self.populations.values():
            for sink in population.receive_sinks:
                found.setdefault(id(sink), sink)
        return list(found.values())

    def population_of(self, index: int) -> Population:
        """The population of global subject ``index``."""
        if index >= self.subjects_num:
            return self._locate(index)[0]
        k = bisect.bisect_right(self._starts, index) - 1
        if k < 0:
            for population in self.populations.values():
                start = population.offset
                if population.entities and start <= index < start + population.size:
                    return population
            raise ConfigurationError(f"no population has global subject index {index}")
        return self._active[k]

    def analyze(self, **options: Any) -> Any:
        """The world's analysis (:class:`~doge_datagen.populations.analysis.WorldAnalysis`):
        each population's (:meth:`DataOnlineGenerator.analyze`), by name, with each
        population's events per second and the declared messages' rates."""
        from doge_datagen.populations.analysis import WorldAnalysis

        self.validate()
        out = {}
        for population in self._active:
            generator = population.generator
            assert generator is not None
            generator.ticks_num = self.ticks_num
            generator.timestamp_start = self.timestamp_start
            out[population.name] = generator.analyze(**options)
        return WorldAnalysis.of(self, out)

    # -- during a run: references and messages -------------------------------------------------

    def pick(
        self,
        population: str,
        *,
        by: Optional[str] = None,
        zipf: Optional[float] = None,
    ) -> Ref:
        """A subject of ``population``, drawn from the calling subject's stream: uniformly, in
        proportion to its attribute ``by`` (as created), or by popularity (``zipf=s``: index
        ``j`` with weight ``1 / (j + 1) ** s``, so subject 0 is the most popular)."""
        target = self._population(population)
        size = target.existing(self._now())
        if size == 0:
            raise ConfigurationError(f"population {population!r} is empty: nothing to pick")
        rng: Any = self.random
        if by is not None and zipf is not None:
            raise ConfigurationError("pick by an attribute or by zipf, not both")
        if by is None and zipf is None:
            return Ref(target, rng.randrange(size))
        if zipf is not None:
            if not isinstance(zipf, (int, float)) or not zipf > 0 or math.isinf(zipf):
                raise ConfigurationError(f"pick({population!r}): zipf must be > 0, got {zipf!r}")
            table = target.cumulative(("zipf", float(zipf)), size)
        else:
            table = target.cumulative(("by", by), size)
        if table[size - 1] <= 0:
            raise ConfigurationError(
                f"pick({population!r}, by={by!r}): every subject has {by} = 0, nothing to pick"
            )
        j = bisect.bisect_right(table, rng.random() * table[size - 1], 0, size)
        return Ref(target, min(j, size - 1))

    def ref(self, population: str, index: int) -> Ref:
        """Subject ``index`` of ``population``."""
        return self._population(population).ref(index)

    def _now(self) -> int:
        """The tick of what is being handled (an event, a message, a creation)."""
        rng: Any = self.random
        t = rng._t
        if t >= 0:
            return int(t)
        if t < CREATE_TICK:
            return message_tick(t)
        run = self._last_run
        return run._creating_at if run is not None else 0

    def _locate(self, index: int) -> Tuple[Population, int]:
        """The population of global subject ``index`` and its index in it."""
        if index >= self.subjects_num:
            try:
                return self._arrival_map[index]
            except KeyError:
                raise ConfigurationError(f"no subject has global index {index}") from None
        population = self.population_of(index)
        return population, index - population.offset

    def send(self, receiver: Ref, kind: str = "message", **payload: Any) -> None:
        """Send a message to ``receiver`` (a :class:`Ref`) from the subject whose event (or
        message) is being handled. It is handled at the next tick, before the receiver's own
        move, by its population's ``receive`` handler. The payload's values cross processes
        in a sharded run: give plain values (a subject's key, not a :class:`Ref`)."""
        run = self._last_run
        rng: Any = self.random
        if run is None or not run.running or rng._i is None or rng._t == CREATE_TICK:
            raise ConfigurationError(
                "send() is for actions and message handlers, while the world runs"
            )
        if not isinstance(receiver, Ref) or receiver.population.world is not self:
            raise ConfigurationError(
                f"send(): the receiver must be a Ref of this world, got {receiver!r}"
            )
        target = receiver.population
        if target.receive is None:
            raise ConfigurationError(
                f"send(): population {target.name!r} has no receive handler, so it cannot "
                f"receive {kind!r}"
            )
        tick = rng._t if rng._t > CREATE_TICK else message_tick(rng._t)
        if tick != self._seq_tick:
            self._seq.clear()
            self._seq_tick = tick
        sender = run.first + rng._i
        seq = self._seq.get(sender, 0)
        self._seq[sender] = seq + 1
        self._outbox.append(
            (tick, sender, seq, target.global_index(receiver.index), kind, dict(payload))
        )
        self.messages["sent"] += 1

    def _population(self, name: str) -> Population:
        try:
            return self.populations[name]
        except KeyError:
            from difflib import get_close_matches

            close = get_close_matches(name, list(self.populations), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigurationError(
                f"no population {name!r} in the world{hint}; it has {sorted(self.populations)}"
            ) from None

    def _make_keyed(self, population: Population, index: int) -> Any:
        """Make ``population``'s subject ``index`` from its creation stream, whatever stream
        ``datagen.random`` is on now (which is put back after)."""
        run = self._last_run
        rng: Any = self.random
        first = run.first if run is not None else 0
        if run is None or not run.running:
            rng.begin(0)
        counting = population.counts()
        if counting and not population.entities:
            raise ConfigurationError(
                f"population {population.name!r} is referred to, so its subjects are made "
                "again as they were created, by index: give its factory's create an index "
                "parameter"
            )
        # An entity factory that counts makes the whole table, in order, once.
        indices = range(population.size) if counting else (index,)
        saved = (rng._i, rng._t, rng._s, rng._tb, rng.gauss_next)
        try:
            made = None
            for j in indices:
                rng._i = population.global_index(j) - first
                rng._t, rng._tb, rng._s, rng.gauss_next = CREATE_TICK, None, None, None
                made = population.make(j)
                if counting:
                    population._made[j] = made
            return population._made[index] if counting else made
        finally:
            rng._i, rng._t, rng._s, rng._tb, rng.gauss_next = saved

    # -- the engine's hooks ---------------------------------------------------------------------

    def start_range(self, first: int = 0, stop: Optional[int] = None, **options: Any) -> RunSummary:
        self._exchange = options.pop("exchange", None)
        if options.get("checkpoint") is not None or options.get("resume") is not None:
            raise ConfigurationError("checkpoints of a world are not supported yet")
        self.messages = _no_messages()
        self._outbox = []
        self._seq.clear()
        self._seq_tick = -1
        for population in self.populations.values():
            population._made.clear()
            population._counted = 0
            population._create = None
            population.arrived_globals = []
            population.arrived_ticks = []
            population._cumulative.clear()
        self._arrival_map = {}
        self._arrived_here = {name: 0 for name in self.populations}
        self._written = {}
        self._rows_pending = False
        self._dispatcher_reset()
        try:
            summary = super().start_range(first, stop, **options)
        finally:
            self.messages["undelivered"] += len(self._outbox)
            self._outbox = []
        summary.messages = dict(self.messages)
        from doge_datagen.engine.summary import sink_labels

        sinks = self.sinks
        for label, sink in zip(sink_labels(sinks), sinks):
            if id(sink) in self._written:
                summary.events_per_sink[label] = (
                    summary.events_per_sink.get(label, 0) + self._written[id(sink)]
                )
        return summary

    def _dispatcher_reset(self) -> None:
        factory = self.subject_factory
        if isinstance(factory, _Dispatcher):
            factory.world = self

    def _attach_run(self, run: Any) -> None:
        super()._attach_run(run)
        run.created.append(self._created)
        self._receivers = any(p.receive is not None for p in self._active)
        arriving_rows = any(
            p.generator is not None and p.generator.arrivals is not None and p.sinks
            for p in self._active
        )
        # Shards meet at every tick when messages go between them, or when rows of subjects
        # that arrived must be in their sinks before another shard refers to them.
        self._every_tick = self._receivers or arriving_rows
        if self._exchange is not None or self._every_tick:
            run.ticker = self._tick

    def _created(self, tick: Optional[int], positions: Sequence[int]) -> None:
        """The run's subjects are made: the run that starts at global index 0 writes every
        row (entity tables first), then flushes those sinks."""
        run = self._last_run
        if run is None:
            return
        if tick is not None:
            self._arrival_rows(run, tick, positions)
            return
        if run.first != 0:
            return
        stamp = run.timestamp_start
        written: Dict[int, Any] = {}
        ordered = sorted(self.populations.values(), key=lambda p: not p.entities)
        for population in ordered:
            if not population.sinks:
                continue
            event = CreatedEvent(
                population.name,
                None if population.generator is None else population.generator.initial_state,
            )
            sinks = population.sinks
            for sink in sinks:
                self._written[id(sink)] = self._written.get(id(sink), 0) + population.size
            for j in range(population.size):
                g = population.offset + j
                if not population.entities and run.first <= g < run.stop:
                    subject = run.subjects[g - run.first]  # as just created
                else:
                    subject = population.as_created(j)
                for sink in sinks:
                    sink.collect(stamp, subject, event)
            for sink in sinks:
                written[id(sink)] = sink
        for sink in written.values():
            flush = getattr(sink, "flush", None)
            if callable(flush):
                flush()

    @property
    def exchanges_messages(self) -> bool:
        """Whether the shards of a sharded run of this world meet at the start of ticks: at
        every tick when a population receives messages, at tick 0 when a population writes
        rows (so that no shard writes a record before shard 0 has written the rows)."""
        return any(p.receive is not None or p.sinks for p in self.populations.values())

    def _arrival_rows(self, run: Any, tick: int, positions: Sequence[int]) -> None:
        """Rows of the subjects that arrived at ``tick`` in this run (flushed at the start of
        the next tick, before the shards meet: another shard refers to them from then on)."""
        tick_ms = self.tick_ms
        stamp = run.timestamp_start + (
            tick * tick_ms if isinstance(tick_ms, int) else round(tick * tick_ms)
        )
        for position in positions:
            population, _ = self._locate(run.first + position)
            if population.sinks:
                event = CreatedEvent(population.name, population.generator.initial_state)  # type: ignore[union-attr]
                subject = run.subjects[position]
                for sink in population.sinks:
                    sink.collect(stamp, subject, event)
                    self._written[id(sink)] = self._written.get(id(sink), 0) + 1
                self._rows_pending = True

    def make_arrivals(
        self, key: int, timestamp_start: int, tick_ms: Any, n_ticks: float, shard: Tuple[int, int]
    ) -> Any:
        """The engine's arrivals for the world: every population's, merged (None without)."""
        if not any(
            p.generator is not None and p.generator.arrivals is not None for p in self._active
        ):
            return None
        return _WorldArrivals(self, key, timestamp_start, tick_ms, n_ticks, shard)

    def initial_state_of(self, index: int) -> str:
        """The initial state of global subject ``index`` (an arrival's population's)."""
        population, _ = self._locate(index)
        return population.generator.initial_state  # type: ignore[union-attr]

    def arrived_states(self) -> List[Tuple[str, int]]:
        """This run's arrivals, counted by their initial state (the engine's state counts)."""
        return [
            (p.generator.initial_state, self._arrived_here.get(p.name, 0))  # type: ignore[union-attr]
            for p in self._active
        ]

    def _tick(self, tick: int) -> None:
        """Tick ``tick`` begins: the messages sent at the tick before are handled (after
        swapping them with the other shards, in a sharded run)."""
        if self._rows_pending:
            self._rows_pending = False
            for population in self._active:
                for sink in population.sinks:
                    flush = getattr(sink, "flush", None)
                    if callable(flush):
                        flush()
        incoming, self._outbox = self._outbox, []
        exchange = self._exchange
        if exchange is not None and (tick == 0 or self._every_tick):
            run = self._last_run
            assert run is not None
            first, stop = run.first, run.stop
            total = self.subjects_num
            shard, shards = run.arrivals_shard
            local: List[Wire] = []
            remote: List[Wire] = []
            for wire in incoming:
                g = wire[3]
                if first <= g < stop if g < total else (g - total) % shards == shard:
                    local.append(wire)
                else:
                    remote.append(wire)
            incoming = local + exchange.swap(tick, remote)
        if not incoming:
            return
        # (tick sent, sender's global index, order sent) tell every two messages apart.
        incoming.sort(key=_order)
        self._deliver(tick, incoming)

    def _message(self, wire: Wire) -> Message:
        sent_at, sender, seq, receiver, kind, payload = wire
        origin, sender_index = self._locate(sender)
        target, receiver_index = self._locate(receiver)
        return Message(
            kind,
            Ref(origin, sender_index),
            Ref(target, receiver_index),
            sent_at,
            seq,
            payload,
        )

    def _deliver(self, tick: int, incoming: List[Wire]) -> None:
        run = self._last_run
        assert run is not None
        rng: Any = self.random
        states = self.states
        key = message_tick(tick)
        tick_ms = self.tick_ms
        stamp = run.timestamp_start + (
            tick * tick_ms if isinstance(tick_ms, int) else round(tick * tick_ms)
        )
        positions: Dict[int, Optional[int]] = {}
        counts = self.messages
        written = self._written
        saved = (rng._i, rng._t, rng._s, rng._tb, rng.gauss_next)
        try:
            rng._t, rng._tb = key, None
            for wire in incoming:
                g = wire[3]
                i = g - run.first
                if not 0 <= i < len(run.subjects):
                    continue  # another shard's subject (the exchange sends only this shard's)
                message = self._message(wire)
                target = message.receiver.population
                subject = run.subjects[i]
                move = run.pending[i]
                state = states[move[-1]] if move is not None else None
                rng._i, rng._s, rng.gauss_next = i, positions.get(i), None
                try:
                    handled = target.receive(subject, message)  # type: ignore[misc]
                except BaseException as exc:
                    if hasattr(exc, "add_note"):
                        exc.add_note(
                            f"while subject {message.receiver.index} of population "
                            f"{target.name!r} handled {message!r} at tick {tick}"
                        )
                    raise
                positions[i] = rng._s
                if handled:
                    counts["delivered"] += 1
                    event = MessageEvent(message.kind, state, message)
                    for sink in target.sinks_for(message.kind):
                        sink.collect(stamp, subject, event)
                        written[id(sink)] = written.get(id(sink), 0) + 1
                else:
                    counts["vetoed"] += 1
        finally:
            rng._i, rng._t, rng._s, rng._tb, rng.gauss_next = saved


class _Dispatcher(SubjectFactory[Any]):
    """The world's subject factory for the engine: global index ``g`` is made by the factory
    of the population that holds it, as that population's subject ``g - offset``."""

    def __init__(self, world: World) -> None:
        self.world = world

    def create(self, index: int) -> Any:
        world = self.world
        if 0 <= index < world.subjects_num:  # an initial subject: once per subject, kept short
            population = world._active[bisect.bisect_right(world._starts, index) - 1]
            return population.make(index - population.offset)
        population, local = world._locate(index)
        world._arrived_here[population.name] += 1
        return population.make(local)


class _WorldArrivals:
    """The arrivals of every population of a world, merged as the engine's
    :class:`~doge_datagen.engine.timevarying.Arrivals` gives them: at a tick, each population's
    (a Poisson number from its own key), in the order the populations were added. Arrival ``j``
    of the world gets global index ``subjects_num + j`` and belongs to shard ``j % K``; every
    shard draws them all, so each knows every population's arrivals and their indices."""

    def __init__(
        self,
        world: World,
        key: int,
        timestamp_start: int,
        tick_ms: Any,
        n_ticks: float,
        shard: Tuple[int, int],
    ) -> None:
        from doge_datagen.core.keys import derive_key
        from doge_datagen.engine.timevarying import Arrivals

        self.world = world
        self.shard, self.shards = shard
        self.total = 0
        self.tick = 0
        self.sources = [
            (
                p,
                Arrivals(
                    p.generator.arrivals,
                    derive_key(f"arrivals/{p.name}", key),
                    timestamp_start,
                    tick_ms,
                    n_ticks,
                    0,
                ),
            )
            for p in world._active
            if p.generator is not None and p.generator.arrivals is not None
        ]
        self.heads = [source.next() for _, source in self.sources]

    def next(self) -> Tuple[float, List[int]]:
        tick = min(head[0] for head in self.heads)
        if tick == math.inf:
            return math.inf, []
        world = self.world
        mine: List[int] = []
        for k, (population, source) in enumerate(self.sources):
            at, drawn = self.heads[k]
            if at != tick:
                continue
            for _ in drawn:
                g = world.subjects_num + self.total
                local = population.size + len(population.arrived_globals)
                population.arrived_globals.append(g)
                population.arrived_ticks.append(int(tick))
                world._arrival_map[g] = (population, local)
                if self.total % self.shards == self.shard:
                    mine.append(g)
                self.total += 1
            self.heads[k] = source.next()
        self.tick = int(tick) + 1
        return tick, mine


def _no_messages() -> Dict[str, int]:
    return {"sent": 0, "delivered": 0, "vetoed": 0, "undelivered": 0}


def _order(wire: Wire) -> Tuple[int, int, int]:
    """The order messages are handled in: tick sent, sender's global index, order sent."""
    return wire[0], wire[1], wire[2]
