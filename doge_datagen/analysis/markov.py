"""What a model will do, worked out from its probabilities without running it.

Like the grapher, the analysis only reads the model (states, transitions, probabilities, sinks,
``subjects_num``, ``ticks_num``, ``tick_ms``); it creates no subject and opens no sink.

Why the figures are exact for the engine: a subject is a Markov chain with one step per tick.
In state ``i`` it takes transition ``k`` with probability ``p_k / 100`` per tick and otherwise
stays, so the per-tick matrix ``P`` holds everything. Subjects draw independently (the engine
hashes seed, subject index and tick), so the population's expectations are ``subjects_num``
times one subject's. From ``P``:

- where a subject is at the start of tick ``t``: ``x_t = x_0 P^t`` with ``x_0`` the initial
  state. The events of tick ``t`` by transition ``k`` are ``x_t[from_k] * p_k``; summed over a
  run's ticks this is the expected count of a run, start-up included (the transient);
- the long run: the states nobody leaves form closed classes; each has a stationary
  distribution, and a subject ends up in a class with the absorption probability that the
  fundamental matrix ``N = (I - Q)^-1`` of the other (transient) states gives. The long-run
  share of a state is the sum over classes of that probability times the class's stationary
  share. Without final states and with every state reachable this is the usual stationary
  distribution;
- the mean dwell in a state: one visit lasts ``1 / (chance per tick of leaving to another
  state)`` ticks (a self-loop fires an event but does not leave).

What it cannot see: action callbacks. A callback that returns a falsy value vetoes a move, the
subject stays where it was, and the measured counts fall short of these figures (for the
vetoed trigger, and for everything downstream of the state it would have reached).

numpy is imported here, and this module only when an analysis is asked for, so that
``import doge_datagen`` stays light; scipy, when installed, only once a model has more states
than :data:`SPARSE_STATES` (or more than 64, for its graph routines).
"""

import json
import math
import time
from dataclasses import dataclass, field
from functools import cached_property
from itertools import chain
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from doge_datagen.core.checks import check_positive
from doge_datagen.core.text import describe_seconds, text_table
from doge_datagen.errors import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from doge_datagen.core.types import Model

__all__ = ["ModelAnalysis", "analyze", "speed_for_rate"]

VETO_NOTE = (
    "The analysis reads probabilities only: it cannot see vetoes by action callbacks. Where a "
    "callback returns a falsy value the move does not happen, and measured counts fall short "
    "of these figures."
)


@dataclass
class ModelAnalysis:
    """The result of :func:`analyze` (``datagen.analyze()``).

    Shares are fractions of the subjects (0..1); per-tick probabilities are fractions too
    (a transition of 30 % is 0.3). Event counts are for all ``subjects`` together. Per second
    means per second of simulated time (``tick_ms``); a run paced at ``speed`` produces
    ``speed`` times as many per second of wall time.
    """

    states: List[str]
    initial_state: str
    subjects: int
    ticks: Optional[int]
    tick_ms: float
    #: Long-run share of the subjects in each state, starting from the initial state.
    stationary: Dict[str, float]
    #: Mean ticks one visit to a state lasts; ``None`` for a state never left.
    dwell: Dict[str, Optional[float]]
    #: Expected events per tick in the long run, per trigger and per sink.
    events_per_tick: Dict[str, float]
    sink_events_per_tick: Dict[str, float]
    #: Expected events of a run of ``ticks`` ticks from the initial state (None without a
    #: tick limit), per trigger and per sink.
    run_events: Optional[Dict[str, float]]
    run_sink_events: Optional[Dict[str, float]]
    #: Expected share of the subjects in each state after ``ticks`` ticks.
    run_end_shares: Optional[Dict[str, float]]
    #: States that no transition leaves for another state.
    final_states: List[str]
    #: Chance that a subject ends in each final state (only final states reachable from the
    #: initial state are listed; empty when the initial state is never left for good).
    absorption: Dict[str, float]
    #: Closed classes of more than one state: ``(states, chance to end up there)``.
    closed_classes: List[Tuple[List[str], float]]
    #: Expected ticks until a subject reaches a final state or a closed class (a subject
    #: that makes that move at tick ``t`` took ``t + 1`` ticks); None if it starts in one.
    ticks_to_absorption: Optional[float]
    unreachable_states: List[str]
    never_firing_triggers: List[str]
    #: Triggers with an action callback: those the analysis cannot vouch for.
    callback_triggers: List[str]
    notes: List[str] = field(default_factory=list)
    #: Whether some probability follows a profile.
    profiled: bool = False
    #: Epoch ms of the first tick: the week of :attr:`hourly_events` starts there.
    week_start_ms: float = 0.0
    #: Long-run expected events per tick of each transition, in the model's order.
    transition_events_per_tick: List[float] = field(default_factory=list)
    #: With arrivals: new subjects per tick (averaged over a week), expected arrivals during
    #: the run and the expected number of subjects at its end (final states included).
    arrivals_per_tick: Optional[float] = None
    run_arrivals: Optional[float] = None
    run_population: Optional[float] = None
    #: With a constant arrival rate into a model whose final states fire nothing: the events
    #: per tick (per trigger) and the subjects not yet in a final state, once they settle
    #: (the initial subjects gone). ``None`` when the population's events grow without bound.
    arrivals_steady_events_per_tick: Optional[Dict[str, float]] = None
    arrivals_steady_active: Optional[float] = None
    # The tables behind the figures that grow with the square of the states or with the
    # week's hours, turned into dicts only when read: :attr:`matrix` (a numpy array, or a
    # scipy sparse matrix for a large model) and :attr:`hourly_events` (168 rows of one
    # column per trigger; with constant probabilities ``("outer", ticks in each hour, events
    # per tick of each trigger)``, whose outer product they are; for a week of seven equal
    # days ``("days", the day's 24 rows)``).
    matrix_table: Any = field(default=None, repr=False, compare=False)
    hourly_table: Any = field(default=None, repr=False, compare=False)

    @cached_property
    def matrix(self) -> Dict[str, Dict[str, float]]:
        """``{from_state: {to_state: probability per tick}}``, staying included; rows sum
        to 1 (the average over the week from the first tick, with profiles)."""
        table = self.matrix_table
        if table is None:
            return {}
        if hasattr(table, "toarray"):
            table = table.toarray()
        states = self.states
        return {a: dict(zip(states, row)) for a, row in zip(states, table.tolist())}

    @cached_property
    def hour_labels(self) -> List[str]:
        """The 168 hours of the week from :attr:`week_start_ms`, as labels (UTC)."""
        return _hour_labels(self.week_start_ms, WEEK_HOURS) if self.hourly_table is not None else []

    @cached_property
    def hourly_events(self) -> List[Dict[str, float]]:
        """Expected events per trigger in each hour of a week in the long run (all
        subjects)."""
        table = self.hourly_table
        if table is None:
            return []
        if isinstance(table, tuple):
            kind, *parts = table
            table = np.outer(*parts) if kind == "outer" else np.tile(parts[0], (7, 1))
        names = list(self.events_per_tick)
        return [dict(zip(names, row)) for row in table.tolist()]

    # -- derived figures ---------------------------------------------------------------------

    @property
    def seconds_per_tick(self) -> float:
        return self.tick_ms / 1000.0

    @property
    def events_per_second(self) -> Dict[str, float]:
        """Long-run expected events per second of simulated time, per trigger."""
        return {k: v / self.seconds_per_tick for k, v in self.events_per_tick.items()}

    @property
    def sink_events_per_second(self) -> Dict[str, float]:
        return {k: v / self.seconds_per_tick for k, v in self.sink_events_per_tick.items()}

    @property
    def total_events_per_tick(self) -> float:
        return sum(self.events_per_tick.values())

    @property
    def total_events_per_second(self) -> float:
        return self.total_events_per_tick / self.seconds_per_tick

    @property
    def run_events_per_tick(self) -> Optional[Dict[str, float]]:
        """The run's expected events per trigger divided by its ticks (start-up included)."""
        if self.run_events is None or not self.ticks:
            return None
        return {k: v / self.ticks for k, v in self.run_events.items()}

    @property
    def run_events_per_second(self) -> Optional[Dict[str, float]]:
        per_tick = self.run_events_per_tick
        if per_tick is None:
            return None
        return {k: v / self.seconds_per_tick for k, v in per_tick.items()}

    @property
    def run_total_events(self) -> Optional[float]:
        return None if self.run_events is None else sum(self.run_events.values())

    def expected_events_per_second(self) -> float:
        """Events per second of simulated time that a run is expected to produce: averaged
        over the run's ticks when it has a limit, else the long-run figure."""
        if self.run_events is not None and self.ticks:
            return sum(self.run_events.values()) / (self.ticks * self.seconds_per_tick)
        return self.total_events_per_second

    # -- output ------------------------------------------------------------------------------

    def to_dict(self) -> Dict[str, Any]:
        """Plain data for ``--format json``."""
        return {
            "states": list(self.states),
            "initial_state": self.initial_state,
            "subjects": self.subjects,
            "ticks": self.ticks,
            "tick_ms": self.tick_ms,
            "matrix": self.matrix,
            "stationary": self.stationary,
            "dwell": self.dwell,
            "events_per_tick": self.events_per_tick,
            "events_per_second": self.events_per_second,
            "sink_events_per_tick": self.sink_events_per_tick,
            "sink_events_per_second": self.sink_events_per_second,
            "run": None
            if self.run_events is None
            else {
                "ticks": self.ticks,
                "events": self.run_events,
                "events_per_tick": self.run_events_per_tick,
                "events_per_second": self.run_events_per_second,
                "sink_events": self.run_sink_events,
                "end_shares": self.run_end_shares,
            },
            "final_states": self.final_states,
            "absorption": self.absorption,
            "closed_classes": [
                {"states": states, "probability": p} for states, p in self.closed_classes
            ],
            "ticks_to_absorption": self.ticks_to_absorption,
            "unreachable_states": self.unreachable_states,
            "never_firing_triggers": self.never_firing_triggers,
            "callback_triggers": self.callback_triggers,
            "notes": self.notes,
            "arrivals": None
            if self.arrivals_per_tick is None
            else {
                "per_tick": self.arrivals_per_tick,
                "run": self.run_arrivals,
                "subjects_at_end": self.run_population,
                "steady_events_per_tick": self.arrivals_steady_events_per_tick,
                "steady_active_subjects": self.arrivals_steady_active,
            },
            "hourly": {
                "hours": self.hour_labels,
                "events": {
                    trigger: [hour[trigger] for hour in self.hourly_events]
                    for trigger in self.events_per_tick
                },
            },
        }

    def to_json(self, indent: Optional[int] = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        return self.format_text()

    def format_text(self) -> str:
        seconds = _fmt(self.seconds_per_tick)
        run = f"{self.ticks} ticks" if self.ticks is not None else "no tick limit"
        out: List[str] = [
            f"Model analysis: {len(self.states)} states, {self.subjects} subjects, "
            f"ticks of {seconds} s, {run}, starting in {self.initial_state!r}",
            "",
        ]
        out.extend(self.notes)
        out.extend(self._arrivals_lines())
        out.append("")
        out.append("Per-tick transition matrix (row: from, column: to):")
        rows = [["", *self.states]]
        for a in self.states:
            rows.append([a, *(_prob(self.matrix[a][b]) for b in self.states)])
        out.extend(text_table(rows))
        out.append("")
        out.append("States:")
        out.extend(self._states_table())
        out.extend(self._ends_lines())
        out.append("")
        out.append(f"Expected events, {self.subjects} subjects:")
        out.extend(self._events_table("trigger", self.events_per_tick, self.run_events))
        out.extend(self._events_table("sink", self.sink_events_per_tick, self.run_sink_events))
        if self.profiled and self.hourly_events:
            out.append("")
            out.extend(self._hourly_tables())
        out.append("")
        out.append("Checks:")
        for label, items in (
            ("unreachable states", self.unreachable_states),
            ("states without exits", self.final_states),
            ("triggers that can never fire", self.never_firing_triggers),
        ):
            out.append(f"  {label}: {', '.join(repr(i) for i in items) if items else 'none'}")
        return "\n".join(out).rstrip() + "\n"

    def _arrivals_lines(self) -> List[str]:
        if self.arrivals_per_tick is None:
            return []
        line = f"Arrivals: {_fmt(self.arrivals_per_tick)} new subjects per tick on average"
        if self.run_arrivals is not None and self.run_population is not None:
            line += (
                f"; {_fmt(self.run_arrivals)} expected during the run, "
                f"{_fmt(self.run_population)} subjects at its end"
            )
        if self.arrivals_steady_events_per_tick is None:
            return [
                line + ".",
                "With arrivals the events per tick do not settle: subjects pile up in "
                "states where they still fire events, or the rate varies over time.",
            ]
        total = sum(self.arrivals_steady_events_per_tick.values())
        active = _fmt(self.arrivals_steady_active or 0)
        return [
            line + ".",
            f"With arrivals the population settles at {active} "
            f"subjects not in a final state, making {_fmt(total)} events per tick "
            f"({_fmt(total / self.seconds_per_tick)} per second).",
        ]

    def _states_table(self) -> List[str]:
        rows = [["state", "long-run share", "mean dwell (ticks)"]]
        for s in self.states:
            dwell = self.dwell[s]
            rows.append(
                [s, _percent(self.stationary[s]), "forever" if dwell is None else _fmt(dwell)]
            )
        if self.run_end_shares is not None:
            rows[0].append(f"share after {self.ticks} ticks")
            for row, s in zip(rows[1:], self.states):
                row.append(_percent(self.run_end_shares[s]))
        return text_table(rows)

    def _ends_lines(self) -> List[str]:
        if not (self.absorption or self.closed_classes):
            return []
        out = ["", "Where subjects end up (from the initial state):"]
        rows = [["final state or closed class", "probability"]]
        rows.extend([s, _percent(p)] for s, p in self.absorption.items())
        rows.extend([" + ".join(c), _percent(p)] for c, p in self.closed_classes)
        out.extend(text_table(rows))
        if self.ticks_to_absorption is not None:
            out.append(
                f"  expected time to get there: {_fmt(self.ticks_to_absorption)} ticks "
                f"({describe_seconds(self.ticks_to_absorption * self.seconds_per_tick)})"
            )
        return out

    def day_profile(self) -> List[Dict[str, float]]:
        """Expected events per trigger in each hour of the day (the 24 hours from the first
        tick's hour), averaged over the days of the long-run week."""
        days = len(self.hourly_events) // 24
        return [
            {
                name: sum(self.hourly_events[24 * d + h][name] for d in range(days)) / days
                for name in self.events_per_tick
            }
            for h in range(24)
        ]

    def day_totals(self) -> List[Dict[str, float]]:
        """Expected events per trigger on each day of the long-run week."""
        return [
            {
                name: sum(hour[name] for hour in self.hourly_events[24 * d : 24 * d + 24])
                for name in self.events_per_tick
            }
            for d in range(len(self.hourly_events) // 24)
        ]

    def _hourly_tables(self) -> List[str]:
        names = list(self.events_per_tick)
        header = ["", *(n.strip() or repr(n) for n in names)]
        lines = ["Expected events per hour of the day, long run (mean over the week's days):"]
        rows = [["hour (UTC)", *header[1:]]]
        for h, hour in enumerate(self.day_profile()):
            rows.append([self.hour_labels[h][-9:-4], *(_fmt(hour[n]) for n in names)])
        lines.extend(text_table(rows))
        lines.append("")
        lines.append("Expected events per day of the week, long run:")
        rows = [["day", *header[1:]]]
        for d, day in enumerate(self.day_totals()):
            rows.append([self.hour_labels[24 * d][:14], *(_fmt(day[n]) for n in names)])
        lines.extend(text_table(rows))
        return lines

    def _events_table(
        self, title: str, steady: Dict[str, float], run: Optional[Dict[str, float]]
    ) -> List[str]:
        if not steady:
            return []
        header = [title, "per tick (long run)", "per second (long run)"]
        if run is not None:
            header += [f"in {self.ticks} ticks", "per second (this run)"]
        names = list(steady)
        rows = [header]
        for name in [*names, None] if title == "trigger" else names:
            value = sum(steady.values()) if name is None else steady[name]
            row = [
                "(all)" if name is None else name.strip() or repr(name),
                _fmt(value),
                _fmt(value / self.seconds_per_tick),
            ]
            if run is not None:
                total = sum(run.values()) if name is None else run[name]
                wall = (self.ticks or 0) * self.seconds_per_tick
                row += [_fmt(total), _fmt(total / wall if wall else 0.0)]
            rows.append(row)
        return text_table(rows)


# -- the analysis ---------------------------------------------------------------------------


HOUR_MS = 3_600_000.0
WEEK_HOURS = 168


#: Above this many states, with scipy installed, the analysis keeps the per-tick chain as a
#: sparse matrix: its structure and long run come from sparse graph routines and solvers, and
#: its walks step one tick at a time. Dense matrix powers, inverses and closures cost the cube
#: of the states, which a few hundred states can still afford and thousands cannot.
SPARSE_STATES = 400
#: A profiled large chain's long run is the week's occupancy once a week in the chain changes
#: no share by more than this (see :func:`_periodic_week`); at most this many weeks are walked.
SETTLED = 1e-15
MAX_WEEKS = 60


def analyze(
    datagen: "Model",
    *,
    subjects_num: Optional[int] = None,
    ticks_num: Any = ...,
) -> ModelAnalysis:
    """Work out what ``datagen`` will do without running it; see :class:`ModelAnalysis`.

    ``subjects_num`` and ``ticks_num`` default to the model's own.
    """
    model = _Model(datagen)
    states = model.states
    subjects = datagen.subjects_num if subjects_num is None else subjects_num
    ticks = datagen.ticks_num if ticks_num is ... else ticks_num
    week_ticks = max(1, round(WEEK_HOURS * HOUR_MS / model.tick_ms))
    x0 = np.zeros(model.n)
    x0[model.init] = 1.0
    long_run = _long_run_of(model, x0, ticks, week_ticks)
    dwell, final_states = _dwell(model, long_run)
    absorption, closed_classes = _where_subjects_end(states, long_run)
    counts = _Counts(model, subjects)
    steady, steady_sinks = counts.events(long_run.steady_per_transition)
    steady_arrivals, steady_active = _settled_arrivals(model, counts, long_run)
    return ModelAnalysis(
        states=states,
        initial_state=datagen.initial_state,
        subjects=subjects,
        ticks=ticks,
        tick_ms=float(model.tick_ms),
        stationary=dict(zip(states, long_run.shares.tolist())),
        dwell=dwell,
        events_per_tick=steady,
        sink_events_per_tick=steady_sinks,
        **_run_figures(model, counts, long_run.run, x0, ticks),
        final_states=final_states,
        absorption=absorption,
        closed_classes=closed_classes,
        ticks_to_absorption=long_run.ticks_to_absorption,
        **_checks(model, counts, long_run.structure[0]),
        profiled=not model.constant,
        week_start_ms=model.start_ms,
        transition_events_per_tick=(subjects * long_run.steady_per_transition).tolist(),
        arrivals_per_tick=_week_arrivals(model, model.start_ms, week_ticks) / week_ticks
        if model.arrivals is not None
        else None,
        arrivals_steady_events_per_tick=steady_arrivals,
        arrivals_steady_active=steady_active,
        matrix_table=long_run.matrix,
        hourly_table=_hourly_table(model, counts, long_run, week_ticks),
    )


@dataclass
class _LongRun:
    """Where one subject is in the long run, and the per-tick chain behind it."""

    shares: "np.ndarray"  # long-run share of each state
    classes: List[List[int]]  # closed classes reached from the initial state
    class_probability: List[float]  # chance of ending in each
    init_recurrent: bool  # whether the initial state is in a closed class
    ticks_to_absorption: Optional[float]
    average: "np.ndarray"  # per-tick probabilities (the week's average, with profiles)
    matrix: Any  # the per-tick matrix of ``average``
    structure: "Structure"  # of ``average``
    steady_per_transition: "np.ndarray"  # long-run expected events per tick, one subject
    binned: Optional["np.ndarray"] = None  # the long-run week's events per hour
    run: "Optional[_Walk]" = None  # the run's walk, of one subject, when the long run needs it


def _long_run_of(
    model: "_Model", x0: "np.ndarray", ticks: Optional[int], week_ticks: int
) -> _LongRun:
    """The long run. Constant probabilities: the per-tick matrix itself, whose long-run shares
    are stationary, so every tick of the week starts from them. With profiles: the chain
    from one week start to the next, whose long run is then walked through one more week for
    the averages and the hourly figures."""
    if not model.constant:
        return _profiled_long_run(model, x0, ticks, week_ticks)
    probs = model.fixed
    matrix = model.matrix(probs)
    structure = _structure(model, probs > 0)
    shares, classes, class_probability, ticks_to_absorption = _long_run(model, matrix, structure)
    return _LongRun(
        shares=shares,
        classes=classes,
        class_probability=class_probability,
        init_recurrent=ticks_to_absorption is None,
        ticks_to_absorption=ticks_to_absorption,
        average=probs,
        matrix=matrix,
        structure=structure,
        steady_per_transition=shares[model.frm] * probs,
    )


def _profiled_long_run(
    model: "_Model", x0: "np.ndarray", ticks: Optional[int], week_ticks: int
) -> _LongRun:
    """The long run of a chain whose probabilities follow profiles: a week in it."""
    start_ms = model.start_ms
    week = None
    run: Optional[_Walk] = None
    if model.sparse:
        # Without arrivals, a run that ends within the week is the start of the walk to
        # the long run.
        shared = model.arrivals is None and ticks is not None and ticks <= week_ticks
        week = _periodic_week(model, x0, start_ms, week_ticks, ticks if shared else None)
        run = None if week is None else week.run
    if week is None:
        product = _week_product(model, start_ms, week_ticks)
        week_structure = _structure_dense(product > 0, model.init)
        at_week_start, classes, class_probability, steps = _long_run(model, product, week_structure)
        init_recurrent = steps is None
        week = _walk(model, at_week_start, start_ms, week_ticks, bins=WEEK_HOURS)
    else:
        classes, class_probability, init_recurrent = week.classes
    shares = week.occupancy / week_ticks
    if week.classes is not None:
        # What the walk left outside the closed classes is below SETTLED: the long run
        # has nobody there, as the week product's has.
        settled = np.zeros(model.n, dtype=bool)
        for members, chance in zip(classes, class_probability):
            settled[members] = chance > 0
        shares[~settled] = 0.0
    average = week.probs_sum / week_ticks
    return _LongRun(
        shares=shares,
        classes=classes,
        class_probability=class_probability,
        init_recurrent=init_recurrent,
        ticks_to_absorption=None,
        average=average,
        matrix=model.matrix(average),
        structure=_structure(model, average > 0),
        steady_per_transition=week.events / week_ticks,
        binned=week.binned,
        run=run,
    )


def _dwell(model: "_Model", long_run: _LongRun) -> Tuple[Dict[str, Optional[float]], List[str]]:
    """The mean ticks of one visit to each state (``None`` for a state never left), and the
    final states (those no transition leaves for another state)."""
    frm, to, states = model.frm, model.to, model.states
    # Moves to another state (self-loops fire events but keep the subject where it is).
    moves = frm != to
    exit_probability = np.bincount(frm[moves], long_run.average[moves], minlength=model.n)
    steady = long_run.steady_per_transition
    out_flow = np.bincount(frm[moves], steady[moves], minlength=model.n)
    dwell: Dict[str, Optional[float]] = {}
    rows = zip(states, exit_probability.tolist(), long_run.shares.tolist(), out_flow.tolist())
    for s, exit_i, share, flow in rows:
        if exit_i <= 0:
            dwell[s] = None
        elif model.constant or share <= 0:
            dwell[s] = 1.0 / exit_i
        else:
            # Little's law: time-averaged occupancy over the flow out per tick (exact in the
            # long run, whatever the profiles do).
            dwell[s] = share / flow if flow > 0 else None
    final_states = [s for s, e in zip(states, exit_probability.tolist()) if e <= 0.0]
    return dwell, final_states


def _where_subjects_end(
    states: List[str], long_run: _LongRun
) -> Tuple[Dict[str, float], List[Tuple[List[str], float]]]:
    """The chance of ending in each final state and in each closed class of more than one
    state (nothing when the initial state is never left for good)."""
    absorption: Dict[str, float] = {}
    closed_classes: List[Tuple[List[str], float]] = []
    if not long_run.init_recurrent:
        for members, chance in zip(long_run.classes, long_run.class_probability):
            if len(members) == 1:
                absorption[states[members[0]]] = chance
            else:
                closed_classes.append(([states[j] for j in members], chance))
    return absorption, closed_classes


class _Counts:
    """Expected events per trigger and per sink, from expected events per transition."""

    def __init__(self, model: "_Model", subjects: int) -> None:
        self.triggers = model.triggers
        self.trigger_of = model.trigger_of
        self.subjects = subjects
        self.labels, self.sink_k, self.sink_of = _sink_table(model.transitions)

    def by_trigger(self, per_transition: "np.ndarray") -> "np.ndarray":
        return np.bincount(self.trigger_of, per_transition, minlength=len(self.triggers))

    def events(
        self, per_transition: "np.ndarray", scale: Optional[float] = None
    ) -> Tuple[Dict[str, float], Dict[str, float]]:
        """Per trigger and per sink, from expected events per transition of one subject (or
        of the whole population, with ``scale`` 1)."""
        if scale is None:
            scale = self.subjects
        per_sink = np.bincount(
            self.sink_of, per_transition[self.sink_k], minlength=len(self.labels)
        )
        return (
            dict(zip(self.triggers, (scale * self.by_trigger(per_transition)).tolist())),
            dict(zip(self.labels, (scale * per_sink).tolist())),
        )


def _hourly_table(model: "_Model", counts: _Counts, long_run: _LongRun, week_ticks: int) -> Any:
    """The long-run week's events per hour and trigger, for :attr:`ModelAnalysis.hourly_table`."""
    subjects = counts.subjects
    if long_run.binned is None:  # constant: every tick of the week makes the long run's events
        ticks_per_hour = _hour_ticks(model.tick_ms, week_ticks)
        return (
            "outer",
            ticks_per_hour,
            subjects * counts.by_trigger(long_run.steady_per_transition),
        )
    hourly = subjects * _hourly_by_trigger(long_run.binned, model.trigger_of, len(counts.triggers))
    if len(hourly) == 24:  # the same day seven times
        return ("days", hourly)
    return hourly


def _run_figures(
    model: "_Model",
    counts: _Counts,
    run: "Optional[_Walk]",
    x0: "np.ndarray",
    ticks: Optional[int],
) -> Dict[str, Any]:
    """The expected events, end shares and arrivals of a run of ``ticks`` ticks (all
    ``None`` without a tick limit), as fields of :class:`ModelAnalysis`."""
    figures: Dict[str, Any] = dict.fromkeys(
        ("run_events", "run_sink_events", "run_end_shares", "run_arrivals", "run_population")
    )
    if ticks is None:
        return figures
    # Expected numbers of subjects (not shares): arrivals add to them as the run goes.
    subjects = counts.subjects
    if run is None:
        run = _walk(model, subjects * x0, model.start_ms, ticks, arrivals=True)
    else:
        run.end, run.events = subjects * run.end, subjects * run.events
    figures["run_events"], figures["run_sink_events"] = counts.events(run.events, 1.0)
    population = float(run.end.sum())
    shares = (run.end / population if population else np.zeros(model.n)).tolist()
    figures["run_end_shares"] = dict(zip(model.states, shares))
    if model.arrivals is not None:
        figures["run_arrivals"] = run.arrived
        figures["run_population"] = population
    return figures


def _settled_arrivals(
    model: "_Model", counts: _Counts, long_run: _LongRun
) -> Tuple[Optional[Dict[str, float]], Optional[float]]:
    """With a constant arrival rate and final states that fire nothing, the active population
    settles: each arrival spends N[init, j] ticks in transient state j on average, so a
    steady a * N[init, j] subjects are there, and their events per tick settle too. Returns
    those events per trigger and those subjects (``None`` where nothing settles)."""
    if model.arrivals is None or model.varies or long_run.ticks_to_absorption is None:
        return None, None
    frm = model.frm
    rate = model.arrivals_at(model.start_ms)
    in_classes = np.zeros(model.n, dtype=bool)
    for members in long_run.classes:
        in_classes[members] = True
    if np.any(in_classes[frm] & (model.fixed > 0)):
        return None, None
    transient = np.flatnonzero(long_run.structure[0] & ~in_classes)
    row = _fundamental_row(long_run.matrix, transient, model.init)
    active = np.zeros(model.n)
    active[transient] = rate * row
    per_transition = active[frm] * model.fixed
    return counts.events(per_transition, 1.0)[0], float(active.sum())


def _checks(model: "_Model", counts: _Counts, reachable: "np.ndarray") -> Dict[str, Any]:
    """The states and triggers worth a warning, and the notes on what the figures leave out,
    as fields of :class:`ModelAnalysis`."""
    triggers = model.triggers
    fires = counts.by_trigger(((model.max_probs > 0) & reachable[model.frm]).astype(float)) > 0
    callbacks = list(map(attrgetter("action_callback"), model.transitions))
    callback_triggers: List[str] = []
    if callbacks.count(None) < len(callbacks):
        with_callback = np.array([c is not None for c in callbacks], dtype=float)
        called = (counts.by_trigger(with_callback) > 0).tolist()
        callback_triggers = [t for t, c in zip(triggers, called) if c]
    return {
        "unreachable_states": [s for s, r in zip(model.states, reachable.tolist()) if not r],
        "never_firing_triggers": [t for t, f in zip(triggers, fires.tolist()) if not f],
        "callback_triggers": callback_triggers,
        "notes": _notes(model, callback_triggers),
    }


def _notes(model: "_Model", callback_triggers: List[str]) -> List[str]:
    notes = [VETO_NOTE]
    if callback_triggers:
        notes.append(
            "Triggers with an action callback (they may veto): "
            + ", ".join(repr(t) for t in callback_triggers)
            + "."
        )
    if model.arrivals is not None:
        notes.append(
            "New subjects arrive during the run (in the initial state): the run figures count "
            "them, the long-run figures describe where one subject goes and what it does."
        )
    if not model.constant:
        notes.append(
            "Probabilities follow profiles: the matrix is the average over a week from the "
            "first tick, and the long-run figures are averages over a week in the long run "
            "(as if that week repeated)."
        )
    return notes


def _week_arrivals(model: "_Model", start_ms: float, week_ticks: int) -> float:
    """Expected arrivals over the week from ``start_ms``."""
    return sum(rate * m for m, _, rate, _ in _segments(model, start_ms, week_ticks, 0))


def _hour_ticks(tick_ms: float, week_ticks: int) -> "np.ndarray":
    """How many of the week's ticks fall in each of its hours (counted from the first tick,
    as :func:`_segments` bins them)."""
    first = np.ceil(np.arange(WEEK_HOURS + 1) * HOUR_MS / tick_ms)
    return np.diff(np.minimum(first, week_ticks))


def _hourly_by_trigger(binned: "np.ndarray", trigger_of: "np.ndarray", n: int) -> "np.ndarray":
    """Per-transition events per hour (rows) summed per trigger (columns)."""
    hours, k = binned.shape
    if n == k and np.array_equal(trigger_of, np.arange(k)):
        return binned
    index = (np.arange(hours)[:, None] * n + trigger_of[None, :]).ravel()
    return np.bincount(index, binned.ravel(), minlength=hours * n).reshape(hours, n)


class _Model:
    """The parts of a generator the analysis reads, with probabilities as fractions, in
    arrays built once: every later step is a vector operation over them."""

    def __init__(self, datagen: "Model") -> None:
        from doge_datagen.profiles import Profiled

        self.states = list(datagen.states)
        self.n = n = len(self.states)
        index = {s: i for i, s in enumerate(self.states)}
        self.init = index[datagen.initial_state]
        self.transitions = list(datagen.transitions)
        transitions = self.transitions
        k = len(transitions)

        def column(name: str, codes: Dict[Any, int]) -> "np.ndarray":
            values = map(codes.__getitem__, map(attrgetter(name), transitions))
            return np.fromiter(values, dtype=np.intp, count=k)

        self.frm = column("from_state", index)
        self.to = column("to_state", index)
        names = list(map(attrgetter("trigger"), transitions))
        self.triggers: List[str] = list(dict.fromkeys(names))
        if len(self.triggers) == k:  # every transition its own trigger
            self.trigger_of = np.arange(k)
        else:
            trigger_index = {t: i for i, t in enumerate(self.triggers)}
            self.trigger_of = np.fromiter(map(trigger_index.__getitem__, names), np.intp, k)
        self.tick_ms = float(datagen.tick_ms)
        start: Optional[float] = datagen.timestamp_start
        if start is None:  # the run starts when start() is called: analyse from this minute
            start = time.time() // 60 * 60_000
        self.start_ms = float(start)
        self.profiles: List[Any] = []
        probabilities = list(map(attrgetter("probability"), transitions))
        self.profiled_k = np.zeros(0, dtype=np.intp)
        self.bases = np.zeros(0)
        self.groups = np.zeros(0, dtype=np.intp)
        try:  # plain numbers (a profiled probability has no float value)
            self.fixed = np.array(probabilities, dtype=float) / 100.0
        except TypeError:
            self._read_profiles(probabilities)
        arrivals: Any = getattr(datagen, "arrivals", None)
        self.arrivals: Any = arrivals
        self.arrivals_profiled = isinstance(arrivals, Profiled)
        self.constant = not len(self.profiled_k)
        self.step = all(p.step for p in self.profiles) and (
            not self.arrivals_profiled or arrivals.step
        )
        # Whether the probabilities or the arrival rate change over time.
        self.varies = not self.constant or self.arrivals_profiled
        maxima = np.array([float(p.max) for p in self.profiles], dtype=float)
        self.max_probs = self.fixed.copy()
        self.max_probs[self.profiled_k] = self.bases * maxima[self.groups]
        self.sparse = n > SPARSE_STATES and _scipy() is not None
        self._pattern: Any = None
        self._probs: Dict[Tuple[float, ...], np.ndarray] = {}
        self._data: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}

    def _read_profiles(self, probabilities: List[Any]) -> None:
        """Profiled probabilities: a base per transition times one of the distinct profiles,
        each profile read once per change."""
        from doge_datagen.profiles import Profiled

        flags = [isinstance(p, Profiled) for p in probabilities]
        self.profiled_k = np.flatnonzero(flags)
        if len(self.profiled_k) == len(probabilities):
            profiled = probabilities
        else:
            profiled = [probabilities[j] for j in self.profiled_k.tolist()]
        self.bases = np.fromiter(map(attrgetter("base"), profiled), float, len(profiled))
        profiles = list(map(attrgetter("profile"), profiled))
        ids = np.fromiter(map(id, profiles), dtype=np.int64, count=len(profiles))
        _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        order = np.argsort(first)  # the profiles in order of first use
        rank = np.empty(len(order), dtype=np.intp)
        rank[order] = np.arange(len(order))
        self.groups = rank[inverse.ravel()]
        self.profiles = [profiles[j] for j in first[order].tolist()]
        if len(profiled) == len(probabilities):
            self.fixed = np.zeros(len(probabilities))
        else:
            fixed = [0.0 if f else float(p) / 100.0 for p, f in zip(probabilities, flags)]
            self.fixed = np.array(fixed, dtype=float)

    def probs_from(self, values: Sequence[float]) -> "np.ndarray":
        """The per-tick probabilities when the distinct profiles read ``values`` (the same
        array for the same values, read-only: an hour of the day recurs every day)."""
        key = tuple(values)
        probs = self._probs.get(key)
        if probs is None:
            probs = self.fixed.copy()
            probs[self.profiled_k] = self.bases * np.array(values, dtype=float)[self.groups] / 100.0
            if len(self._probs) < 1000:
                self._probs[key] = probs
        return probs

    def probs_at(self, ms: float) -> "np.ndarray":
        if self.constant:
            return self.fixed
        return self.probs_from([p.value_ms(ms) for p in self.profiles])

    def arrivals_at(self, ms: float) -> float:
        if self.arrivals is None:
            return 0.0
        if self.arrivals_profiled:
            return float(self.arrivals.value_ms(ms))
        return float(self.arrivals)

    def next_change_ms(self, ms: float) -> float:
        """The first instant after ``ms`` at which some probability may change."""
        if not self.varies:
            return math.inf
        if not self.step:
            return ms  # a callable may change at every tick
        changes = [p.next_change_ms(ms) for p in self.profiles]
        if self.arrivals_profiled:
            changes.append(self.arrivals.profile.next_change_ms(ms))
        return min((c for c in changes if c is not None), default=math.inf)

    def stay(self, probs: "np.ndarray") -> "np.ndarray":
        """Each state's chance per tick of taking no transition."""
        return np.clip(1.0 - np.bincount(self.frm, probs, minlength=self.n), 0.0, None)

    def matrix(self, probs: "np.ndarray") -> Any:
        """The per-tick matrix: a numpy array, or a scipy sparse matrix for a large model."""
        n = self.n
        if self.sparse:
            return self.stepper(probs).T.tocsr()
        cells = np.bincount(self.frm * n + self.to, probs, minlength=n * n).astype(float)
        cells = cells.reshape(n, n)
        cells[np.diag_indices(n)] += self.stay(probs)
        return cells

    def times(self, probs: "np.ndarray", matrix: "np.ndarray") -> Callable[[Any], Any]:
        """``v -> v P`` for the dense per-tick ``matrix``: from the transitions when they are
        few beside the matrix's cells, else the matrix product."""
        n = self.n
        if len(probs) + n > n * n // 4:
            return matrix.T.dot
        frm, to, stay = self.frm, self.to, self.stay(probs)
        return lambda v: v * stay + np.bincount(to, v[frm] * probs, minlength=n)

    def stepper(self, probs: "np.ndarray") -> Any:
        """The transpose of the per-tick matrix as a scipy CSR matrix, ``x P`` being
        ``stepper @ x``: one entry per transition and one per state (staying), in a layout
        computed once; only the values change from one set of probabilities to the next."""
        if self._pattern is None:
            sparse = _scipy()
            n = self.n
            diagonal = np.arange(n)
            rows = np.concatenate([self.to, diagonal])
            cols = np.concatenate([self.frm, diagonal])
            order = np.lexsort((cols, rows))
            indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
            table = sparse.csr_matrix((np.zeros(len(rows)), cols[order], indptr), shape=(n, n))
            self._pattern = (order, table)
        order, table = self._pattern
        known = self._data.get(id(probs))
        if known is not None and known[0] is probs:
            table.data = known[1]
        else:
            table.data = np.concatenate([probs, self.stay(probs)])[order]
            if len(self._data) < 1000:
                self._data[id(probs)] = (probs, table.data)
        return table

    def times_sparse(self, probs: "np.ndarray") -> Callable[[Any], Any]:
        """``v -> v P`` for a large model: the sparse transpose times ``v``."""
        table = self.stepper(probs)
        if _csr_matvec is None:
            return table.dot
        n, indptr, indices, data = self.n, table.indptr, table.indices, table.data

        def times(v: "np.ndarray") -> "np.ndarray":
            out = np.zeros(n)
            _csr_matvec(n, n, indptr, indices, data, v, out)
            return out

        return times


@dataclass
class _Walk:
    end: "np.ndarray"  # occupancy after the ticks
    occupancy: "np.ndarray"  # occupancy summed over the ticks
    events: "np.ndarray"  # expected events per transition
    probs_sum: "np.ndarray"  # per-tick probabilities summed over the ticks
    # Expected events per hour from the start, per transition (24 rows: a day that repeats).
    binned: Optional["np.ndarray"]
    arrived: float = 0.0  # expected arrivals
    #: For a week walked to its long run: (closed classes, chance of each, whether the
    #: initial state is in one), and the walk of a run that started it.
    classes: Any = None
    run: Any = None


def _walk(
    model: _Model,
    x: "np.ndarray",
    start_ms: float,
    ticks: int,
    bins: int = 0,
    arrivals: bool = False,
) -> _Walk:
    """Step the expected occupancy ``x`` (of one subject, or numbers of subjects) through
    ``ticks`` ticks from ``start_ms``, a run of ticks with the same probabilities at a time.

    With ``arrivals``, new subjects join the initial state at each tick before the moves, as
    the engine does: ``x_(t+1) = (x_t + a_t e) P``. A run of ``m`` ticks is stepped one tick
    at a time (a vector times the matrix), or, where that costs more, taken as matrix powers
    by doubling; there the walk carries ``[x, 1]`` through the augmented matrix
    ``[[P, 0], [a e P, 1]]``, whose powers sum the arrivals too. Runs with the same
    probabilities and length (the same hour of another day) reuse their powers.
    """
    n = model.n
    occupancy = np.zeros(n)
    events = np.zeros(len(model.transitions))
    probs_sum = np.zeros(len(model.transitions))
    binned = np.zeros((bins, len(model.transitions))) if bins else None
    arrived = 0.0
    init = model.init
    powers: Dict[Any, Tuple[np.ndarray, np.ndarray]] = {}
    for m, probs, rate, hour in _segments(model, start_ms, ticks, bins):
        rate = rate if arrivals else 0.0
        if model.sparse:
            occupied, x = _steps(model.times_sparse(probs), x, m, rate, init)
        else:
            matrix = model.matrix(probs)
            if m == 1 or m * (n * n + 2000) <= 2 * m.bit_length() * (n**3 + 2000):
                occupied, x = _steps(model.times(probs, matrix), x, m, rate, init)
            elif rate == 0.0:
                key = (probs.tobytes(), m, 0.0)
                if key not in powers:
                    powers[key] = _power_sum(matrix, m)
                power, summed = powers[key]
                occupied = x @ summed
                x = x @ power
            else:
                key = (probs.tobytes(), m, rate)
                if key not in powers:
                    augmented = np.zeros((n + 1, n + 1))
                    augmented[:n, :n] = matrix
                    augmented[n, :n] = rate * matrix[init]
                    augmented[n, n] = 1.0
                    powers[key] = _power_sum(augmented, m)
                big_power, summed = powers[key]
                total = np.append(x, 1.0) @ summed
                occupied = total[:n]
                occupied[init] += total[n] * rate
                x = (np.append(x, 1.0) @ big_power)[:n]
        arrived += rate * m
        occupancy += occupied
        step_events = occupied[model.frm] * probs
        events += step_events
        probs_sum += m * probs
        if binned is not None and hour < bins:
            binned[hour] += step_events
    return _Walk(x, occupancy, events, probs_sum, binned, arrived)


def _steps(
    times: Callable[["np.ndarray"], "np.ndarray"], x: "np.ndarray", m: int, rate: float, init: int
) -> Tuple["np.ndarray", "np.ndarray"]:
    """``m`` ticks one at a time: ``(occupancy summed over them, occupancy after them)``;
    ``times(v)`` is ``v P``, ``rate`` subjects join state ``init`` before each tick's moves."""
    occupied = np.zeros(len(x))
    for _ in range(m):
        if rate:
            x = x.copy()
            x[init] += rate
        occupied += x
        x = times(x)
    return occupied, x


def _week_product(model: _Model, start_ms: float, ticks: int) -> "np.ndarray":
    """The product of the per-tick matrices of ``ticks`` ticks from ``start_ms`` (dense):
    the chain from one week start to the next."""
    product = np.eye(model.n)
    powers: Dict[Any, np.ndarray] = {}
    for m, probs, _, _ in _segments(model, start_ms, ticks, 0):
        key = (probs.tobytes(), m)
        if key not in powers:
            powers[key] = np.linalg.matrix_power(model.matrix(probs), m)
        product = product @ powers[key]
    return product


def _periodic_week(
    model: _Model,
    x: "np.ndarray",
    start_ms: float,
    week_ticks: int,
    record: Optional[int] = None,
) -> Optional[_Walk]:
    """The long-run week of a large profiled chain, stepped one tick at a time from the
    occupancy ``x`` at the week's start, or ``None`` where this does not apply (the dense
    week product then decides). With ``record`` (at most a week), the first week's walk is
    also a run of that many ticks: its walk is kept as the result's ``run``.

    Why this is the same long run: if every state keeps a chance of staying at every tick,
    the week's chain can wait anywhere, so a state reaches another over weeks exactly when
    some tick of the week has a transition that way: its closed classes are those of the
    week-averaged chain, and none is periodic. The walk from the initial state then settles
    into a periodic orbit, the long run the week product gives. Walking week after week, it
    is there once an hour ends with every share within :data:`SETTLED` of the same hour a
    week before: from then on each week repeats the last, so one week of the orbit is the
    hours walked last from the week start up to then and the hours of the week before after
    them. When the week is seven times the same day (daily profiles), its orbit is that of
    the day, the same argument a day at a time: the walk goes by days, and the week is its
    day seven times.
    """
    week_segments = list(_segments(model, start_ms, week_ticks, WEEK_HOURS))
    day = _same_days(week_segments)
    segments = week_segments if day is None else day
    if not _can_always_stay(model, segments):
        return None
    # One more hour when the ticks overrun the week.
    hours = 24 if day is not None else max(WEEK_HOURS, segments[-1][3] + 1)
    probs_sum = np.zeros(len(model.transitions))
    for m, probs, _, _ in week_segments:
        probs_sum += m * probs
    if record is not None and record > sum(m for m, _, _, _ in segments):
        record = None  # a run longer than a day: walked on its own
    walker = _HourlyWalk(model, segments, hours, x, record)
    week_start = x
    for week in range(MAX_WEEKS if day is None else 7 * MAX_WEEKS):
        week_start = x
        x, settled = walker.walk(x, week)
        if settled:
            break
    else:
        return None
    reachable, recurrent, classes = _structure(model, probs_sum > 0)
    chances = [float(week_start[members].sum()) for members in classes]
    days = 7 if day is not None else 1  # the week: the day's figures seven times
    occupancy, binned = walker.occupancy, walker.binned
    walk = _Walk(
        x, days * occupancy.sum(axis=0), days * binned.sum(axis=0), probs_sum, binned[:WEEK_HOURS]
    )
    walk.classes = (classes, chances, bool(recurrent[model.init]))
    walk.run = walker.run
    return walk


def _can_always_stay(model: _Model, segments: List[Tuple[int, Any, float, int]]) -> bool:
    """Whether every state keeps a chance of staying at every tick of ``segments``."""
    frm = model.frm
    moves = frm != model.to
    checked: Dict[int, np.ndarray] = {}
    for _, probs, _, _ in segments:
        if id(probs) not in checked:
            checked[id(probs)] = probs
            leaving = np.bincount(frm[moves], probs[moves], minlength=model.n)
            if leaving.size and leaving.max() >= 1.0:
                return False
    return True


class _HourlyWalk:
    """The passes of :func:`_periodic_week` over its segments, one after another: each hour's
    end, occupancy and events are filed by hour of the pass. With ``record``, the first
    ``record`` ticks of the first pass are also kept as a run's walk (``run``)."""

    def __init__(
        self,
        model: _Model,
        segments: List[Tuple[int, Any, float, int]],
        hours: int,
        x: "np.ndarray",
        record: Optional[int],
    ) -> None:
        n, k = model.n, len(model.transitions)
        self.model = model
        self.segments = segments
        self.record = record
        self.ends = np.zeros((hours, n))
        self.occupancy = np.zeros((hours, n))
        self.binned = np.zeros((hours, k))
        self.run_events = np.zeros(k)
        self.run: Optional[_Walk] = None
        if record == 0:
            self.run = _Walk(x, np.zeros(n), self.run_events, np.zeros(k), None)

    def walk(self, x: "np.ndarray", week: int) -> Tuple["np.ndarray", bool]:
        """One pass from the occupancy ``x``: ``(occupancy where it stopped, whether an hour
        ended where it did a pass before)``; the pass stops at such an hour."""
        n, k = self.model.n, len(self.model.transitions)
        hour = self.segments[0][3]
        occupied_hour = np.zeros(n)
        events_hour = np.zeros(k)
        t = 0
        for m, probs, _, seg_hour in self.segments:
            if seg_hour != hour:
                settled = _close_hour(self.ends, self.occupancy, hour, x, occupied_hour, week)
                self.binned[hour] = events_hour
                if settled:
                    return x, True
                hour, occupied_hour, events_hour = seg_hour, np.zeros(n), np.zeros(k)
            occupied, x, events = self._ticks(probs, x, t, m)
            t += m
            occupied_hour += occupied
            events_hour += events
        settled = _close_hour(self.ends, self.occupancy, hour, x, occupied_hour, week)
        self.binned[hour] = events_hour
        return x, settled

    def _ticks(
        self, probs: "np.ndarray", x: "np.ndarray", t: int, m: int
    ) -> Tuple["np.ndarray", "np.ndarray", "np.ndarray"]:
        """``m`` ticks from tick ``t`` of a pass: ``(occupancy summed over them, occupancy
        after them, events per transition)``, keeping the run's walk where it ends."""
        model, record = self.model, self.record
        frm, init = model.frm, model.init
        times = model.times_sparse(probs)
        if self.run is None and record is not None and t + m >= record:
            before, x = _steps(times, x, record - t, 0.0, init)
            self.run_events += before[frm] * probs
            self.run = _Walk(x, np.zeros(model.n), self.run_events, np.zeros(len(probs)), None)
            after, x = _steps(times, x, t + m - record, 0.0, init)
            occupied = before + after
            return occupied, x, occupied[frm] * probs
        occupied, x = _steps(times, x, m, 0.0, init)
        events = occupied[frm] * probs
        if self.run is None:
            self.run_events += events
        return occupied, x, events


def _same_days(segments: List[Tuple[int, Any, float, int]]) -> Optional[List[Any]]:
    """The first day's runs of :func:`_segments` over a week, when the week's are those
    seven times over (the same lengths, probabilities and arrivals, hour for hour); else
    ``None``. Equal probabilities are the same array (see :meth:`_Model.probs_from`)."""
    day = [s for s in segments if s[3] < 24]
    if not day or len(segments) != 7 * len(day):
        return None
    for d in range(1, 7):
        for (m, probs, rate, hour), other in zip(day, segments[d * len(day) :]):
            if other != (m, other[1], rate, hour + 24 * d) or other[1] is not probs:
                return None
    return day


def _close_hour(
    ends: "np.ndarray",
    occupancy: "np.ndarray",
    hour: int,
    x: "np.ndarray",
    occupied: "np.ndarray",
    week: int,
) -> bool:
    """File an hour of :func:`_periodic_week`; whether it ended where it did a week before."""
    settled = week > 0 and float(np.max(np.abs(ends[hour] - x))) <= SETTLED
    ends[hour], occupancy[hour] = x, occupied
    return settled


def _segments(
    model: _Model, start_ms: float, ticks: int, bins: int
) -> Iterator[Tuple[int, "np.ndarray", float, int]]:
    """The ticks from ``start_ms`` as runs ``(length, probabilities, arrivals per tick, hour
    from the start)`` over which nothing changes and, when ``bins`` is set, no hour ends."""
    tick_ms = model.tick_ms

    def hour_end(ms: float) -> float:
        return start_ms + ((ms - start_ms) // HOUR_MS + 1) * HOUR_MS

    if model.step:
        t = 0
        while t < ticks:
            ms = start_ms + t * tick_ms
            change = model.next_change_ms(ms)
            if bins:
                change = min(change, hour_end(ms))
            if math.isinf(change):
                m = ticks - t
            else:
                # The ticks from t on whose timestamp comes before the change.
                m = min(ticks - t, max(1, math.ceil((change - start_ms) / tick_ms) - t))
                while m > 1 and start_ms + (t + m - 1) * tick_ms >= change:
                    m -= 1
            yield m, model.probs_at(ms), model.arrivals_at(ms), int((ms - start_ms) // HOUR_MS)
            t += m
        return
    # A callable may change at any tick: read every tick once and join equal neighbours.
    profiles = model.profiles

    def read(t: int) -> List[float]:
        ms = start_ms + t * tick_ms
        return [p.value_ms(ms) for p in profiles] + [model.arrivals_at(ms)]

    t = 0
    values = read(0) if ticks > 0 else []
    while t < ticks:
        ms = start_ms + t * tick_ms
        end = hour_end(ms) if bins else math.inf
        m = 1
        following: List[float] = []
        while t + m < ticks:
            following = read(t + m)
            if start_ms + (t + m) * tick_ms >= end or following != values:
                break
            m += 1
        probs = model.probs_from(values[:-1]) if not model.constant else model.fixed
        yield m, probs, values[-1], int((ms - start_ms) // HOUR_MS)
        t += m
        values = following


_SCIPY: Any = None
_csr_matvec: Any = None


def _scipy() -> Any:
    """``scipy.sparse`` with its graph routines and solvers loaded, or ``None`` without
    scipy (the dense tables then serve every size)."""
    global _SCIPY
    if _SCIPY is None:
        try:
            import scipy.sparse
            import scipy.sparse.csgraph
            import scipy.sparse.linalg  # noqa: F401
        except ImportError:
            _SCIPY = False
        else:
            _SCIPY = scipy.sparse
            global _csr_matvec
            try:  # the product the sparse matrices' own ``dot`` ends in, without its checks
                from scipy.sparse._sparsetools import csr_matvec

                # [[1, 2]] @ [3, 4] is 11: the private routine is the one expected.
                out = np.zeros(1)
                csr_matvec(1, 2, np.array([0, 2]), np.array([0, 1]), np.array([1.0, 2.0]),
                           np.array([3.0, 4.0]), out)  # fmt: skip
                if out[0] == 11.0:
                    _csr_matvec = csr_matvec
            except Exception:  # pragma: no cover - a scipy that moved or changed it
                pass
    return _SCIPY or None


Structure = Tuple["np.ndarray", "np.ndarray", List[List[int]]]


def _structure(model: _Model, positive: "np.ndarray") -> Structure:
    """Which states the initial state reaches, which are recurrent (every state they reach
    leads back), and the closed classes it reaches (each sorted, in order of their first
    state), over the transitions marked ``positive``."""
    moves = positive & (model.frm != model.to)
    src, dst = model.frm[moves], model.to[moves]
    n = model.n
    if model.sparse or (n > 64 and _scipy() is not None):
        return _structure_sparse(n, src, dst, model.init)
    if n <= 32:
        return _structure_small(n, src.tolist(), dst.tolist(), model.init)
    adjacency = np.zeros((n, n), dtype=bool)
    adjacency[src, dst] = True
    return _structure_dense(adjacency, model.init)


def _structure_small(n: int, src: List[int], dst: List[int], init: int) -> Structure:
    """:func:`_structure` of a few states, by a search from each in plain Python (cheaper
    there than any array's set-up)."""
    after: List[List[int]] = [[] for _ in range(n)]
    for a, b in zip(src, dst):
        after[a].append(b)
    reach: List[set] = []
    for i in range(n):
        seen = {i}
        todo = [i]
        while todo:
            for b in after[todo.pop()]:
                if b not in seen:
                    seen.add(b)
                    todo.append(b)
        reach.append(seen)
    recurrent = [all(i in reach[j] for j in reach[i]) for i in range(n)]
    classes: List[List[int]] = []
    placed: set = set()
    for i in sorted(reach[init]):
        if recurrent[i] and i not in placed:
            placed.update(reach[i])
            classes.append(sorted(reach[i]))
    reachable = np.zeros(n, dtype=bool)
    reachable[list(reach[init])] = True
    return reachable, np.array(recurrent, dtype=bool), classes


def _structure_dense(adjacency: "np.ndarray", init: int) -> Structure:
    """:func:`_structure` from a boolean adjacency matrix: its transitive closure by
    repeated squaring (``log2(n)`` products)."""
    n = len(adjacency)
    reach = adjacency | np.eye(n, dtype=bool)
    while True:
        ones = reach.astype(np.float64)
        wider = (ones @ ones) > 0
        if np.array_equal(wider, reach):
            break
        reach = wider
    recurrent = ~np.any(reach & ~reach.T, axis=1)
    reachable = reach[init].copy()
    classes: List[List[int]] = []
    seen = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(reachable & recurrent).tolist():
        if not seen[i]:
            members = np.flatnonzero(reach[i])
            seen[members] = True
            classes.append(members.tolist())
    return reachable, recurrent, classes


def _structure_sparse(n: int, src: "np.ndarray", dst: "np.ndarray", init: int) -> Structure:
    """:func:`_structure` from the edges, with scipy's strongly connected components: the
    closed classes are the components no edge leaves."""
    sparse = _scipy()
    from scipy.sparse import csgraph

    graph = sparse.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n, n))
    count, labels = csgraph.connected_components(graph, directed=True, connection="strong")
    leaves = np.zeros(count, dtype=bool)
    across = labels[src] != labels[dst]
    leaves[labels[src[across]]] = True
    recurrent = ~leaves[labels]
    order = csgraph.breadth_first_order(graph, init, directed=True, return_predecessors=False)
    reachable = np.zeros(n, dtype=bool)
    reachable[order] = True
    by_label: Dict[int, List[int]] = {}
    settled = np.flatnonzero(reachable & recurrent)
    for i, label in zip(settled.tolist(), labels[settled].tolist()):
        by_label.setdefault(label, []).append(i)
    return reachable, recurrent, list(by_label.values())


def _long_run(
    model: _Model, matrix: Any, structure: Structure
) -> Tuple["np.ndarray", List[List[int]], List[float], Optional[float]]:
    """Where a chain with this per-step ``matrix`` (dense, or scipy sparse) is in the long
    run from the initial state: ``(shares, closed classes, chance of ending in each,
    expected steps to get there)``."""
    reachable, recurrent, classes = structure
    init = model.init
    steps: Optional[float]
    if recurrent[init]:
        class_probability = [1.0 if init in c else 0.0 for c in classes]
        steps = None
    else:
        transient = np.flatnonzero(reachable & ~recurrent)
        row = _fundamental_row(matrix, transient, init)
        into = matrix[transient]
        class_probability = [
            float(row @ np.asarray(into[:, c].sum(axis=1)).ravel()) for c in classes
        ]
        steps = float(row.sum())
    shares = np.zeros(len(reachable))
    for members, chance in zip(classes, class_probability):
        if chance:
            shares[members] += chance * _stationary(matrix, members)
    return shares, classes, class_probability, steps


def _fundamental_row(matrix: Any, transient: "np.ndarray", init: int) -> "np.ndarray":
    """Row ``init`` of the fundamental matrix ``N = (I - Q)^-1`` of the ``transient`` states
    (sorted; ``init`` among them): expected ticks spent in each before leaving them, from one
    solve of ``(I - Q)^T y = e_init`` rather than the whole inverse."""
    size = len(transient)
    unit = np.zeros(size)
    unit[int(np.searchsorted(transient, init))] = 1.0
    if hasattr(matrix, "toarray"):
        sparse = _scipy()
        from scipy.sparse.linalg import spsolve

        q = matrix[transient][:, transient]
        system = (sparse.identity(size, format="csr") - q).T.tocsc()
        return np.asarray(spsolve(system, unit)).ravel()
    q = matrix[np.ix_(transient, transient)]
    return np.linalg.solve((np.eye(size) - q).T, unit)


def _stationary(matrix: Any, members: List[int]) -> "np.ndarray":
    """The stationary distribution of the closed class ``members`` (irreducible, so unique,
    periodic or not): ``pi P = pi`` and ``sum(pi) = 1``.

    A dense block is solved by Grassmann, Taksar and Heyman's elimination, which adds and
    divides only positive numbers: every share comes out to a relative precision near the
    machine's, small shares too, where a general solver's rounding is relative to the
    largest. A sparse one (a large model) by a sparse solve, one balance equation (redundant)
    replaced by the sum."""
    size = len(members)
    if size == 1:
        return np.ones(1)
    if not hasattr(matrix, "toarray"):
        return _gth(matrix[np.ix_(members, members)])
    sparse = _scipy()
    from scipy.sparse.linalg import spsolve

    rhs = np.zeros(size)
    rhs[-1] = 1.0
    block = matrix[members][:, members]
    system = (block.T - sparse.identity(size, format="csr")).tolil()
    system[size - 1, :] = np.ones(size)
    pi = np.clip(np.asarray(spsolve(system.tocsc(), rhs)).ravel(), 0.0, None)
    return pi / pi.sum()


def _gth(block: "np.ndarray") -> "np.ndarray":
    """The stationary distribution of an irreducible stochastic ``block`` (see
    :func:`_stationary`): states are eliminated from the last, each one's moves folded into
    the others' (``a[i, j] += a[i, k] a[k, j] / sum_(j<k) a[k, j]``), then the shares are
    rebuilt from the first."""
    a = np.array(block, dtype=float)
    size = len(a)
    for k in range(size - 1, 0, -1):
        out = a[k, :k].sum()
        a[:k, k] /= out
        a[:k, :k] += np.outer(a[:k, k], a[k, :k])
    pi = np.zeros(size)
    pi[0] = 1.0
    for k in range(1, size):
        pi[k] = pi[:k] @ a[:k, k]
    return pi / pi.sum()


def _hour_labels(start_ms: float, hours: int) -> List[str]:
    from datetime import datetime, timedelta, timezone

    first = datetime.fromtimestamp(start_ms / 1000.0, timezone.utc)
    return [(first + timedelta(hours=h)).strftime("%a %Y-%m-%d %H:%M UTC") for h in range(hours)]


def speed_for_rate(analysis: ModelAnalysis, rate: float) -> float:
    """The ``speed`` at which a run of the analysed model produces ``rate`` events per second
    of wall time, on average over the run (or in the long run, without a tick limit)."""
    rate = check_positive("rate", rate)
    per_second = analysis.expected_events_per_second()
    if not per_second > 0:
        where = (
            f"in its {analysis.ticks} ticks" if analysis.ticks is not None else "in the long run"
        )
        raise ConfigurationError(
            f"the model is expected to produce no events {where}, "
            f"so no speed gives {rate:g} events/s"
        )
    return rate / per_second


# -- helpers --------------------------------------------------------------------------------


def _sink_table(transitions: Sequence[Any]) -> Tuple[List[str], "np.ndarray", "np.ndarray"]:
    """The sinks' labels, in order of first use, and which transition (by position) feeds
    which sink (by position), as two parallel arrays (a sink listed twice by a transition
    counts its events twice)."""
    from doge_datagen.engine.summary import sink_labels

    if len(transitions) < 256:  # a loop costs less than the arrays' set-up
        position: Dict[int, int] = {}
        found: List[Any] = []
        feeds_k: List[int] = []
        feeds_sink: List[int] = []
        for k, t in enumerate(transitions):
            for sink in t.event_sinks:
                j = position.get(id(sink))
                if j is None:
                    j = position[id(sink)] = len(found)
                    found.append(sink)
                feeds_k.append(k)
                feeds_sink.append(j)
        return (
            sink_labels(found),
            np.array(feeds_k, dtype=np.intp),
            np.array(feeds_sink, dtype=np.intp),
        )
    lists = list(map(attrgetter("event_sinks"), transitions))
    lengths = np.fromiter(map(len, lists), dtype=np.intp, count=len(lists))
    flat = list(chain.from_iterable(lists))
    ids = np.fromiter(map(id, flat), dtype=np.int64, count=len(flat))
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty(len(order), dtype=np.intp)
    rank[order] = np.arange(len(order))
    sinks = [flat[i] for i in first[order].tolist()]
    feeds = np.repeat(np.arange(len(lists)), lengths)
    return sink_labels(sinks), feeds, rank[inverse.ravel()]


def _power_sum(matrix: "np.ndarray", n: int) -> Tuple["np.ndarray", "np.ndarray"]:
    """``(P^n, P^0 + ... + P^(n-1))`` by doubling: about ``2 log2(n)`` matrix products.

    A small matrix goes as the block matrix ``[[P, I], [0, I]]``, whose ``n``-th power holds
    both in its top row: one product per step instead of two, and fewer calls."""
    size = len(matrix)
    if size <= 32:
        block = np.zeros((2 * size, 2 * size))
        block[:size, :size] = matrix
        block[:size, size:] = block[size:, size:] = np.eye(size)
        top = np.linalg.matrix_power(block, n)[:size]
        return top[:, :size], top[:, size:]
    power = np.eye(size)
    summed = np.zeros((size, size))
    # Walk the bits of n from the top: (B, A) for m becomes (B^2, A + B A) for 2m, and then
    # (B P, A + B) for 2m + 1.
    for bit in bin(n)[2:] if n > 0 else "":
        summed = summed + power @ summed
        power = power @ power
        if bit == "1":
            summed = summed + power
            power = power @ matrix
    return power, summed


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _prob(value: float) -> str:
    return "0" if value == 0 else f"{value:.6g}"


def _percent(value: float) -> str:
    return f"{value * 100:.4g} %"
