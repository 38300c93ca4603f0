"""The model: subjects, transitions, sinks, and the :class:`DataOnlineGenerator` that holds them.

A generator is a description: states, transitions with their probabilities, callbacks and
sinks, a subject factory and the run's size. Building one has no side effects (sinks open
their files and connections when a run starts). :meth:`DataOnlineGenerator.start` checks the
whole model again, then hands it to :mod:`doge_datagen.engine`, which keeps everything that
changes during a run in a run object of its own.
"""

import logging
import random
from datetime import datetime
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generic,
    Iterable,
    List,
    Optional,
    Sequence,
    TypeVar,
    Union,
)

from doge_datagen.core.types import ActionCallback, EventSink, Subject, SubjectFactory, Transition
from doge_datagen.engine import loop as engine
from doge_datagen.engine import validators
from doge_datagen.engine.randomness import SubjectRandom
from doge_datagen.engine.summary import RunSummary
from doge_datagen.errors import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from doge_datagen.analysis.markov import ModelAnalysis
    from doge_datagen.engine.loop import Run
    from doge_datagen.values import Fake

_LOGGER = logging.getLogger(__name__)

__all__ = [
    "DataOnlineGenerator",
    "EventSink",
    "Subject",
    "SubjectFactory",
    "Transition",
]

S = TypeVar("S")


class DataOnlineGenerator(Generic[S]):
    """A probabilistic state machine traversed by ``subjects_num`` subjects.

    :param states: the names of the states.
    :param initial_state: the state every subject starts in.
    :param subject_factory: a :class:`SubjectFactory` (or any callable returning a subject).
    :param subjects_num: how many subjects to create.
    :param tick_ms: the length of a tick in milliseconds (timestamps are rounded to whole
        milliseconds when it is fractional).
    :param ticks_num: how many ticks to run; ``None`` runs until :meth:`stop` (or, in the
        main thread, SIGINT or SIGTERM).
    :param timestamp_start: the timestamp of tick 0: whole epoch milliseconds or a
        ``datetime``; ``None`` means the time at which :meth:`start` is called.
    :param seed: makes the run reproducible; ``None`` picks one at random (see :attr:`seed`).
    :param arrivals: new subjects per tick during the run (see :attr:`arrivals`).
    """

    #: The trigger the first releases gave to staying in a state for a tick (never emitted).
    STAY_TRIGGER = "__stay"

    def __init__(
        self,
        states: Iterable[str],
        initial_state: str,
        subject_factory: Union[SubjectFactory[S], Callable[..., S]],
        subjects_num: int,
        tick_ms: int,
        ticks_num: Optional[int],
        timestamp_start: Union[int, float, datetime, None] = 0,
        *,
        seed: Any = None,
        arrivals: Any = None,
    ) -> None:
        self.states: List[str] = validators.check_states(states)
        if initial_state not in self.states:
            raise ConfigurationError(
                f"initial state {initial_state!r} is not one of the states {self.states!r}"
            )
        if not (hasattr(subject_factory, "create") or callable(subject_factory)):
            raise ConfigurationError(
                f"subject_factory must be a SubjectFactory or a callable, got {subject_factory!r}"
            )
        self.initial_state = initial_state
        self.subject_factory = subject_factory
        self.subjects_num = validators.check_count("subjects_num", subjects_num)
        self.ticks_num = validators.check_optional_count("ticks_num", ticks_num)
        self.tick_ms: Union[int, float] = validators.check_tick_ms(tick_ms)
        self.timestamp_start: Optional[int] = validators.check_timestamp(
            "timestamp_start", timestamp_start
        )
        if seed is None:
            seed = random.SystemRandom().randrange(1 << 63)
        self.seed: Any = seed
        #: A generator seeded from :attr:`seed`, for factories and callbacks. It is re-seeded
        #: at every :meth:`start`, so a run can be repeated exactly. While a subject is
        #: created or handles an event, its draws come from that subject's own stream
        #: (:class:`~doge_datagen.randomness.SubjectRandom`), so they do not depend on the
        #: other subjects of the run.
        self.random: random.Random = SubjectRandom(seed)
        self._fake: Optional[Fake] = None
        self.transitions: List[Transition] = []
        self._by_state: Dict[str, List[Transition]] = {state: [] for state in self.states}
        self._stopping: bool = False
        self._last_run: Optional[Run] = None
        self.arrivals = arrivals

    @property
    def fake(self) -> "Fake":
        """Realistic values and distributions drawn from :attr:`random` (names, e-mail
        addresses, addresses, ``fake.normal(...)``...; see :mod:`doge_datagen.values`): while
        a subject is created or handles an event, from that subject's own stream, so a
        subject gets the same values in any run and any shard. Made on first use, in the
        ``en_US`` locale; ``datagen.fake = Fake(datagen.random, "de_DE", datagen)`` (or
        ``datagen.fake_locale = "de_DE"``) changes the model's locale."""
        fake = self._fake
        if fake is None or fake._rng is not self.random:
            from doge_datagen.values import Fake

            locale = fake.locale if fake is not None else "en_US"
            fake = self._fake = Fake(self.random, locale, self)
        return fake

    @fake.setter
    def fake(self, value: "Fake") -> None:
        from doge_datagen.values import Fake

        if not isinstance(value, Fake):
            raise ConfigurationError(f"datagen.fake must be a Fake, got {value!r}")
        self._fake = value

    @property
    def fake_locale(self) -> str:
        """The locale of :attr:`fake` (``"en_US"`` until set)."""
        return self.fake.locale

    @fake_locale.setter
    def fake_locale(self, locale: str) -> None:
        from doge_datagen.values import Fake

        self._fake = Fake(self.random, locale, self)

    @property
    def arrivals(self) -> Any:
        """New subjects per tick while the run goes on: ``None`` (a fixed population), a mean
        number per tick, or a rate times a profile (``2.0 * hourly([...])``).

        Each tick brings a Poisson number of them with that mean. They are created when they
        arrive, in the initial state, with global indices after the initial subjects
        (``subjects_num``, ``subjects_num + 1``, ...), and move from the tick they arrive at.
        A subject leaves the population by reaching a final state.
        """
        return self._arrivals

    @arrivals.setter
    def arrivals(self, value: Any) -> None:
        self._arrivals = validators.check_arrivals(value)

    # -- model -------------------------------------------------------------------------------

    def add_transition(
        self,
        trigger: str,
        from_state: str,
        to_state: str,
        probability: Any,
        action_callback: Optional[ActionCallback] = None,
        event_sinks: Optional[Sequence[EventSink]] = None,
    ) -> Transition:
        """Add a transition taken with ``probability`` percent per tick; return it.

        ``probability`` may also be a base times a profile (``0.5 * hourly([...])``, see
        :mod:`doge_datagen.profiles`): at each tick the transition is then taken with the
        base times the profile's factor at that tick's timestamp, percent.

        A run's model is fixed when its subjects are created: a factory, callback or sink
        that adds a transition during a run gets a ``ConfigurationError``.
        """
        if self._last_run is not None and self._last_run.running:
            raise ConfigurationError(
                f"add_transition({trigger!r}, {from_state!r}, {to_state!r}) during a run: the "
                "model of a run is fixed when its subjects are created; add transitions "
                "before start()"
            )
        transition = Transition(trigger, from_state, to_state, probability, action_callback)
        transition.event_sinks = self._check_transition(transition, event_sinks)
        outgoing = self._by_state[from_state] + [transition]
        validators.check_outgoing(from_state, outgoing)
        self._by_state[from_state].append(transition)
        self.transitions.append(transition)
        return transition

    def _check_transition(
        self,
        transition: Transition,
        event_sinks: Any,
        states: Optional[Dict[str, List[Transition]]] = None,
    ) -> List[Any]:
        """Check one transition on its own; return its sinks as a list. The states are
        looked up in a dict keyed by them (``states``, by default the model's own), not in
        the list, so that adding a transition costs the same with thousands of states."""
        trigger = transition.trigger
        if not isinstance(trigger, str):
            raise ConfigurationError(f"trigger must be a string, got {trigger!r}")
        where = f"transition {trigger!r} from {transition.from_state!r}"
        known = self._by_state if states is None else states
        validators.check_state(where, "from_state", transition.from_state, known)
        validators.check_state(where, "to_state", transition.to_state, known)
        validators.check_probability(where, transition.probability)
        validators.check_callback(where, transition.action_callback)
        return validators.check_sinks(where, event_sinks)

    def validate(self) -> None:
        """Check the whole model again, as it is now.

        Transitions are plain objects that callers may change after ``add_transition``
        (``t.probability = 5``); :meth:`start` calls this so that such a change cannot make
        a run silently wrong. Raises :class:`ConfigurationError` naming the culprit.
        """
        by_state: Dict[str, List[Transition]] = {state: [] for state in self.states}
        for transition in self.transitions:
            transition.event_sinks = self._check_transition(
                transition, transition.event_sinks, by_state
            )
            by_state[transition.from_state].append(transition)
        for state, outgoing in by_state.items():
            validators.check_outgoing(state, outgoing)
        self._by_state = by_state
        if self.initial_state not in self.states:
            raise ConfigurationError(
                f"initial state {self.initial_state!r} is not one of the states {self.states!r}"
            )
        self.subjects_num = validators.check_count("subjects_num", self.subjects_num)
        self.ticks_num = validators.check_optional_count("ticks_num", self.ticks_num)
        self.tick_ms = validators.check_tick_ms(self.tick_ms)
        self.timestamp_start = validators.check_timestamp("timestamp_start", self.timestamp_start)
        self.arrivals = self._arrivals

    @property
    def transition_matrix(self) -> Dict[str, Dict[str, Transition]]:
        """``{from_state: {trigger: transition}}`` for every state (read-only view)."""
        return {state: {t.trigger: t for t in ts} for state, ts in self._by_state.items()}

    @property
    def probability_matrix(self) -> Dict[str, Dict[str, float]]:
        """``{from_state: {trigger: probability}}`` for every state (read-only view)."""
        return {
            state: {t.trigger: t.probability for t in ts} for state, ts in self._by_state.items()
        }

    def transitions_from(self, state: str) -> List[Transition]:
        """The transitions leaving ``state``, in the order they were added."""
        if state not in self._by_state:
            raise ConfigurationError(f"state {state!r} is not one of the states {self.states!r}")
        return list(self._by_state[state])

    @property
    def sinks(self) -> List[Any]:
        """Every distinct sink used by a transition, in order of first use."""
        found: Dict[int, Any] = {}
        for transition in self.transitions:
            for sink in transition.event_sinks:
                found.setdefault(id(sink), sink)
        return list(found.values())

    # -- running -----------------------------------------------------------------------------

    @property
    def subjects(self) -> List[Any]:
        """The subjects of the last :meth:`start`, in creation order."""
        return self._last_run.subjects if self._last_run is not None else []

    def subject_states(self) -> List[str]:
        """The state of each subject (by creation order) after the last :meth:`start`."""
        return self._last_run.subject_states() if self._last_run is not None else []

    @property
    def subjects_states(self) -> Dict[Any, str]:
        """``{subject: state}`` for the subjects of the last :meth:`start`, as the first
        releases kept it; it needs hashable subjects (:meth:`subject_states` does not)."""
        if self._last_run is None:
            return {}
        run = self._last_run
        states = self.states
        pairs = [
            (subject, states[move[-1]])
            for subject, move in zip(run.subjects, run.pending)
            if move is not None
        ]
        try:
            return dict(pairs)
        except TypeError as exc:
            raise TypeError(
                f"subjects_states needs hashable subjects ({exc}); "
                "subject_states() gives the states in creation order"
            ) from None

    @property
    def timestamp(self) -> Optional[int]:
        """The simulated time in epoch milliseconds.

        While a run goes on, callbacks, factories and sinks read here the timestamp of the
        event they handle (the same the sinks are given); after a run, the timestamp of the
        tick after its last one (``timestamp_start + ticks_num * tick_ms`` for a run that
        completed); before any run, :attr:`timestamp_start` (``None`` when that is the time
        :meth:`start` is called).
        """
        if self._last_run is None:
            return self.timestamp_start
        return self._last_run.now()

    def start(
        self,
        speed: Optional[float] = None,
        *,
        progress: bool = False,
        metrics_port: Union[int, str, None] = None,
        metrics: Any = None,
        rate: Optional[float] = None,
        checkpoint: Any = None,
        checkpoint_every: Optional[float] = 10.0,
        resume: Any = None,
        force: bool = False,
        if_exists: Optional[str] = None,
    ) -> RunSummary:
        """Run the ticks, then close every sink; return a :class:`RunSummary`.

        :param speed: ``None`` runs as fast as possible; a number paces the run so that tick
            ``t`` is emitted ``t * tick_ms / speed`` milliseconds after the start (1.0 is real
            time, 60 one simulated minute per second). Late ticks are emitted at once and
            their lag is reported in :attr:`RunSummary.lag`.
        :param progress: draw the run's progress on standard error.
        :param metrics_port: while the run goes on, serve Prometheus ``/metrics``, a status
            page at ``/`` and ``/healthz`` on this port of 127.0.0.1, or on ``"HOST:PORT"``
            (see :mod:`doge_datagen.metrics`). A port in use is a ``ConfigurationError``
            before any sink is opened.
        :param metrics: a :class:`~doge_datagen.metrics.MetricsServer` of the caller's to
            report to instead; it stays open after the run.
        :param rate: instead of ``speed``: the events per second of wall time to aim at. The
            speed is worked out by :meth:`analyze` (the run's expected events over its paced
            duration, or the long-run rate without a tick limit); the summary shows the rate
            asked for and the one achieved.
        :param checkpoint: a file to write the run's state to, between ticks, every
            ``checkpoint_every`` seconds (``None``: only at the end) and when the run ends or
            stops (:mod:`doge_datagen.engine.checkpoint`). Subjects must be picklable.
        :param resume: a checkpoint to go on from: the events after it are those the
            uninterrupted run gives after its tick, and file sinks are cut back to where they
            were. A model that differs from the one that wrote it is a
            ``ConfigurationError`` naming what differs, unless ``force``. The summary's counts
            are the whole run's, from tick 0.
        :param if_exists: what the sinks do with data already where they write:
            ``"append"``, ``"replace"`` (truncate a file, delete a table's rows or a stream;
            nothing the run would not write) or ``"fail"`` (refuse to run when there is
            some). ``None``, the default, keeps each sink as it was in 1.0.4: files replace,
            servers (databases, Redis, Kafka, buses) append. A sink that cannot look (a
            message bus) appends, and refuses ``"replace"`` and ``"fail"``. The summary's
            :attr:`~RunSummary.appended` says for each sink that can tell whether it appended
            to data that was there.
        """
        if rate is not None:
            if speed is not None:
                raise ConfigurationError("give speed or rate, not both")
            from doge_datagen.analysis.markov import speed_for_rate

            self.validate()
            speed = speed_for_rate(self.analyze(), rate)
        if speed is not None:
            speed = validators.check_positive("speed", speed)
        self.validate()
        server, owned = None, False
        if metrics is not None or metrics_port is not None:
            from doge_datagen.metrics.exporter import open_metrics

            server, owned = open_metrics(metrics, metrics_port)
        try:
            summary = self.start_range(
                speed=speed,
                progress=progress,
                metrics=server,
                checkpoint=checkpoint,
                checkpoint_every=checkpoint_every,
                resume=resume,
                force=force,
                if_exists=if_exists,
            )
        finally:
            if owned and server is not None:
                server.close()
        summary.speed = speed
        summary.rate_asked = None if rate is None else float(rate)
        return summary

    def start_range(self, first: int = 0, stop: Optional[int] = None, **options: Any) -> RunSummary:
        """Run the subjects of global index ``first .. stop - 1`` (all by default) now, as one
        shard of a sharded run does, and return what they did.

        ``options`` are :func:`doge_datagen.engine.run`'s (``speed``, ``progress``,
        ``timestamp_start``, ``metrics``, ``shard``, ``arrivals_shard``, ``wall_start``).
        The model must be valid (:meth:`validate`); :meth:`start` checks it, then calls this.
        """
        if self._last_run is not None and self._last_run.running:
            # The run's state (datagen.random's keys, the stop flag, datagen.subjects) is the
            # model's: a second run of it would change the first one's under its feet.
            raise ConfigurationError(
                "start() while a run of the same model goes on (from a factory, callback, sink "
                "or another thread): a model runs one run at a time"
            )
        self._stopping = False
        return engine.run(self, first=first, stop=stop, on_start=self._attach_run, **options)

    def _attach_run(self, run: "Run") -> None:
        """The engine's call when a run of this model begins: the run behind
        :attr:`subjects`, :meth:`subject_states`, :meth:`now` and the values."""
        self._last_run = run

    def analyze(self, **options: Any) -> "ModelAnalysis":
        """What the model will do, worked out from its probabilities without running it:
        the per-tick matrix, long-run shares, dwell times, expected events per trigger and per
        sink (see :mod:`doge_datagen.analysis`; ``subjects_num=`` and ``ticks_num=`` override
        the model's own)."""
        from doge_datagen.analysis.markov import analyze

        return analyze(self, **options)

    def stop(self) -> None:
        """Ask a running :meth:`start` to finish: the current tick completes, the sinks are
        flushed and closed and the summary is returned. Safe from another thread or a signal
        handler."""
        self._stopping = True
