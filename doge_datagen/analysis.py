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
``import doge_datagen`` stays light.
"""

import json
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from doge_datagen.errors import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from doge_datagen.doge import DataOnlineGenerator

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
    #: ``{from_state: {to_state: probability per tick}}``, staying included; rows sum to 1.
    matrix: Dict[str, Dict[str, float]]
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
    #: The 168 hours of that week, as labels (UTC).
    hour_labels: List[str] = field(default_factory=list)
    #: Expected events per trigger in each hour of a week in the long run (all subjects).
    hourly_events: List[Dict[str, float]] = field(default_factory=list)
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
        if self.arrivals_per_tick is not None:
            line = f"Arrivals: {_fmt(self.arrivals_per_tick)} new subjects per tick on average"
            if self.run_arrivals is not None and self.run_population is not None:
                line += (
                    f"; {_fmt(self.run_arrivals)} expected during the run, "
                    f"{_fmt(self.run_population)} subjects at its end"
                )
            out.append(line + ".")
            if self.arrivals_steady_events_per_tick is not None:
                total = sum(self.arrivals_steady_events_per_tick.values())
                active = _fmt(self.arrivals_steady_active or 0)
                out.append(
                    f"With arrivals the population settles at {active} "
                    f"subjects not in a final state, making {_fmt(total)} events per tick "
                    f"({_fmt(total / self.seconds_per_tick)} per second)."
                )
            else:
                out.append(
                    "With arrivals the events per tick do not settle: subjects pile up in "
                    "states where they still fire events, or the rate varies over time."
                )
        out.append("")
        out.append("Per-tick transition matrix (row: from, column: to):")
        rows = [["", *self.states]]
        for a in self.states:
            rows.append([a, *(_prob(self.matrix[a][b]) for b in self.states)])
        out.extend(_table(rows))
        out.append("")
        out.append("States:")
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
        out.extend(_table(rows))
        if self.absorption or self.closed_classes:
            out.append("")
            out.append("Where subjects end up (from the initial state):")
            rows = [["final state or closed class", "probability"]]
            rows.extend([s, _percent(p)] for s, p in self.absorption.items())
            rows.extend([" + ".join(c), _percent(p)] for c, p in self.closed_classes)
            out.extend(_table(rows))
            if self.ticks_to_absorption is not None:
                out.append(
                    f"  expected time to get there: {_fmt(self.ticks_to_absorption)} ticks "
                    f"({_duration(self.ticks_to_absorption * self.seconds_per_tick)})"
                )
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
        lines.extend(_table(rows))
        lines.append("")
        lines.append("Expected events per day of the week, long run:")
        rows = [["day", *header[1:]]]
        for d, day in enumerate(self.day_totals()):
            rows.append([self.hour_labels[24 * d][:14], *(_fmt(day[n]) for n in names)])
        lines.extend(_table(rows))
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
        return _table(rows)


# -- the analysis ---------------------------------------------------------------------------


HOUR_MS = 3_600_000.0
WEEK_HOURS = 168


def analyze(
    datagen: "DataOnlineGenerator",
    *,
    subjects_num: Optional[int] = None,
    ticks_num: Any = ...,
) -> ModelAnalysis:
    """Work out what ``datagen`` will do without running it; see :class:`ModelAnalysis`.

    ``subjects_num`` and ``ticks_num`` default to the model's own.
    """
    model = _Model(datagen)
    states = model.states
    n_states = len(states)
    subjects = datagen.subjects_num if subjects_num is None else subjects_num
    ticks = datagen.ticks_num if ticks_num is ... else ticks_num
    init = model.init
    start_ms = model.start_ms
    tick_ms = model.tick_ms

    # The long run. Constant probabilities: the per-tick matrix itself. With profiles: the
    # chain from one week start to the next (the product of a week of per-tick matrices), whose
    # long run is then walked through one more week for the averages and the hourly figures.
    week_ticks = max(1, round(WEEK_HOURS * HOUR_MS / tick_ms))
    x0 = np.zeros(n_states)
    x0[init] = 1.0
    hourly: Optional[List[Dict[str, float]]] = None
    if model.constant:
        matrix = model.matrix(model.probs_at(start_ms))
        long_run, classes, class_probability, ticks_to_absorption = _long_run(matrix, init)
        init_recurrent = ticks_to_absorption is None
        week = _walk(model, long_run, start_ms, week_ticks, bins=WEEK_HOURS)
    else:
        first = _walk(model, x0, start_ms, week_ticks, product=True)
        assert first.product is not None
        at_week_start, classes, class_probability, steps = _long_run(first.product, init)
        init_recurrent = steps is None
        week = _walk(model, at_week_start, start_ms, week_ticks, bins=WEEK_HOURS)
        long_run = week.occupancy / week_ticks
        matrix = week.matrix_sum / week_ticks
        ticks_to_absorption = None
    steady_per_transition = week.events / week_ticks
    assert week.binned is not None
    hour_labels = [_hour_label(start_ms + h * HOUR_MS) for h in range(WEEK_HOURS)]

    # Moves to another state (self-loops fire events but keep the subject where it is).
    exit_probability = [
        float(sum(matrix[i, j] for j in range(n_states) if j != i)) for i in range(n_states)
    ]
    reach = _reachability(matrix)
    reachable = reach[init]
    dwell: Dict[str, Optional[float]] = {}
    for i, s in enumerate(states):
        if exit_probability[i] <= 0:
            dwell[s] = None
        elif model.constant or long_run[i] <= 0:
            dwell[s] = 1.0 / exit_probability[i]
        else:
            # Little's law: time-averaged occupancy over the flow out per tick (exact in the
            # long run, whatever the profiles do).
            out_flow = sum(
                steady_per_transition[k]
                for k, t in enumerate(model.transitions)
                if model.frm[k] == i and model.to[k] != i
            )
            dwell[s] = float(long_run[i] / out_flow) if out_flow > 0 else None

    final_states = [s for s, e in zip(states, exit_probability) if e <= 0.0]
    absorption: Dict[str, float] = {}
    closed_classes: List[Tuple[List[str], float]] = []
    if not init_recurrent:
        for members, chance in zip(classes, class_probability):
            if len(members) == 1:
                absorption[states[members[0]]] = chance
            else:
                closed_classes.append(([states[j] for j in members], chance))

    triggers: List[str] = []
    for t in model.transitions:
        if t.trigger not in triggers:
            triggers.append(t.trigger)
    sinks, labels = _sinks(datagen)

    def events(
        per_transition: "np.ndarray", scale: float = subjects
    ) -> Tuple[Dict[str, float], Dict[str, float]]:
        """Per trigger and per sink, from expected events per transition of one subject (or
        of the whole population, with ``scale`` 1)."""
        per_trigger = dict.fromkeys(triggers, 0.0)
        per_sink = dict.fromkeys(labels, 0.0)
        for k, t in enumerate(model.transitions):
            n = scale * float(per_transition[k])
            per_trigger[t.trigger] += n
            for sink in t.event_sinks:
                per_sink[labels[sinks.index(sink)]] += n
        return per_trigger, per_sink

    steady, steady_sinks = events(steady_per_transition)
    hourly = [events(week.binned[h])[0] for h in range(WEEK_HOURS)]
    run_events = run_sinks = run_end = None
    run_arrivals = run_population = None
    if ticks is not None:
        # Expected numbers of subjects (not shares): arrivals add to them as the run goes.
        run = _walk(model, subjects * x0, start_ms, ticks, arrivals=True)
        run_events, run_sinks = events(run.events, 1.0)
        population = float(run.end.sum())
        run_end = {
            s: float(run.end[i]) / population if population else 0.0 for i, s in enumerate(states)
        }
        if model.arrivals is not None:
            run_arrivals = run.arrived
            run_population = population
    # With a constant arrival rate and final states that fire nothing, the active population
    # settles: each arrival spends N[init, j] ticks in transient state j on average, so a
    # steady a * N[init, j] subjects are there, and their events per tick settle too.
    steady_arrivals: Optional[Dict[str, float]] = None
    steady_active: Optional[float] = None
    if model.arrivals is not None and not model.varies and ticks_to_absorption is not None:
        rate = model.arrivals_at(start_ms)
        in_classes = {j for members in classes for j in members}
        fires_in_classes = any(
            model.frm[k] in in_classes and p > 0 for k, p in enumerate(model.fixed)
        )
        if not fires_in_classes:
            transient = [i for i in range(n_states) if reachable[i] and i not in in_classes]
            q = matrix[np.ix_(transient, transient)]
            row = np.linalg.inv(np.eye(len(transient)) - q)[transient.index(init)]
            active = np.zeros(n_states)
            active[transient] = rate * row
            per_transition = active[model.frm] * model.fixed
            steady_arrivals = events(per_transition, 1.0)[0]
            steady_active = float(active.sum())

    fires = {
        t.trigger
        for k, t in enumerate(model.transitions)
        if model.max_probability(k) > 0 and reachable[model.frm[k]]
    }
    callback_triggers = [
        t
        for t in triggers
        if any(x.action_callback is not None for x in model.transitions if x.trigger == t)
    ]
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
    return ModelAnalysis(
        states=states,
        initial_state=datagen.initial_state,
        subjects=subjects,
        ticks=ticks,
        tick_ms=float(tick_ms),
        matrix={
            a: {b: float(matrix[i, j]) for j, b in enumerate(states)} for i, a in enumerate(states)
        },
        stationary={s: float(long_run[i]) for i, s in enumerate(states)},
        dwell=dwell,
        events_per_tick=steady,
        sink_events_per_tick=steady_sinks,
        run_events=run_events,
        run_sink_events=run_sinks,
        run_end_shares=run_end,
        final_states=final_states,
        absorption=absorption,
        closed_classes=closed_classes,
        ticks_to_absorption=ticks_to_absorption,
        unreachable_states=[s for i, s in enumerate(states) if not reachable[i]],
        never_firing_triggers=[t for t in triggers if t not in fires],
        callback_triggers=callback_triggers,
        notes=notes,
        profiled=not model.constant,
        week_start_ms=start_ms,
        hour_labels=hour_labels,
        hourly_events=hourly,
        transition_events_per_tick=[subjects * float(v) for v in steady_per_transition],
        arrivals_per_tick=week.arrived / week_ticks if model.arrivals is not None else None,
        arrivals_steady_events_per_tick=steady_arrivals,
        arrivals_steady_active=steady_active,
        run_arrivals=run_arrivals,
        run_population=run_population,
    )


class _Model:
    """The parts of a generator the analysis reads, with probabilities as fractions."""

    def __init__(self, datagen: "DataOnlineGenerator") -> None:
        from doge_datagen.profiles import Profiled

        self.states = list(datagen.states)
        index = {s: i for i, s in enumerate(self.states)}
        self.init = index[datagen.initial_state]
        self.transitions = list(datagen.transitions)
        self.frm = np.array([index[t.from_state] for t in self.transitions], dtype=int)
        self.to = np.array([index[t.to_state] for t in self.transitions], dtype=int)
        self.tick_ms = float(datagen.tick_ms)
        start: Optional[float] = datagen.timestamp_start
        if start is None:  # the run starts when start() is called: analyse from this minute
            start = time.time() // 60 * 60_000
        self.start_ms = float(start)
        self.profiled: List[Tuple[int, Profiled]] = []
        for k, t in enumerate(self.transitions):
            probability: Any = t.probability
            if isinstance(probability, Profiled):
                self.profiled.append((k, probability))
        arrivals: Any = getattr(datagen, "arrivals", None)
        self.arrivals: Any = arrivals
        self.arrivals_profiled = isinstance(arrivals, Profiled)
        self.constant = not self.profiled
        self.step = all(p.step for _, p in self.profiled) and (
            not self.arrivals_profiled or arrivals.step
        )
        # Whether the probabilities or the arrival rate change over time.
        self.varies = bool(self.profiled) or self.arrivals_profiled
        self.fixed = np.array(
            [
                0.0 if isinstance(t.probability, Profiled) else float(t.probability) / 100.0
                for t in self.transitions
            ]
        )

    def probs_at(self, ms: float) -> "np.ndarray":
        if self.constant:
            return self.fixed
        probs = self.fixed.copy()
        for k, p in self.profiled:
            probs[k] = p.value_ms(ms) / 100.0
        return probs

    def arrivals_at(self, ms: float) -> float:
        if self.arrivals is None:
            return 0.0
        if self.arrivals_profiled:
            return float(self.arrivals.value_ms(ms))
        return float(self.arrivals)

    def max_probability(self, k: int) -> float:
        for j, p in self.profiled:
            if j == k:
                return float(p.max)
        return float(self.fixed[k])

    def next_change_ms(self, ms: float) -> float:
        """The first instant after ``ms`` at which some probability may change."""
        if not self.varies:
            return math.inf
        if not self.step:
            return ms  # a callable may change at every tick
        changes = [p.profile.next_change_ms(ms) for _, p in self.profiled]
        if self.arrivals_profiled:
            changes.append(self.arrivals.profile.next_change_ms(ms))
        return min((c for c in changes if c is not None), default=math.inf)

    def matrix(self, probs: "np.ndarray") -> "np.ndarray":
        n = len(self.states)
        matrix = np.zeros((n, n))
        np.add.at(matrix, (self.frm, self.to), probs)
        matrix[np.diag_indices(n)] += np.clip(1.0 - matrix.sum(axis=1), 0.0, None)
        return matrix


@dataclass
class _Walk:
    end: "np.ndarray"  # occupancy after the ticks
    occupancy: "np.ndarray"  # occupancy summed over the ticks
    events: "np.ndarray"  # expected events per transition
    matrix_sum: "np.ndarray"  # per-tick matrices summed over the ticks
    binned: Optional["np.ndarray"]  # expected events per hour from the start, per transition
    product: Optional["np.ndarray"]  # the product of the per-tick matrices
    arrived: float = 0.0  # expected arrivals


def _walk(
    model: _Model,
    x: "np.ndarray",
    start_ms: float,
    ticks: int,
    bins: int = 0,
    product: bool = False,
    arrivals: bool = False,
) -> _Walk:
    """Step the expected occupancy ``x`` (of one subject, or numbers of subjects) through
    ``ticks`` ticks from ``start_ms``, a run of ticks with the same probabilities at a time
    (matrix powers).

    With ``arrivals``, new subjects join the initial state at each tick before the moves, as
    the engine does: ``x_(t+1) = (x_t + a_t e) P``. The walk then carries ``[x, 1]`` through
    the augmented matrix ``[[P, 0], [a e P, 1]]``, whose powers sum the arrivals too.
    """
    n = len(model.states)
    occupancy = np.zeros(n)
    events = np.zeros(len(model.transitions))
    matrix_sum = np.zeros((n, n))
    binned = np.zeros((bins, len(model.transitions))) if bins else None
    prod = np.eye(n) if product else None
    arrived = 0.0
    entry = np.zeros(n)
    entry[model.init] = 1.0
    for m, probs, rate, hour in _segments(model, start_ms, ticks, bins):
        matrix = model.matrix(probs)
        if not arrivals or rate == 0.0:
            if m == 1:
                occupied = x
                x = x @ matrix
                power = matrix
            else:
                power, summed = _power_sum(matrix, m)
                occupied = x @ summed
                x = x @ power
        elif m == 1:
            occupied = x + rate * entry
            x = occupied @ matrix
            power = matrix
        else:
            augmented = np.zeros((n + 1, n + 1))
            augmented[:n, :n] = matrix
            augmented[n, :n] = rate * matrix[model.init]
            augmented[n, n] = 1.0
            big_power, summed = _power_sum(augmented, m)
            total = np.append(x, 1.0) @ summed
            occupied = total[:n] + total[n] * rate * entry
            x = (np.append(x, 1.0) @ big_power)[:n]
            power = matrix if prod is None else np.linalg.matrix_power(matrix, m)
        arrived += rate * m
        occupancy += occupied
        step_events = occupied[model.frm] * probs
        events += step_events
        matrix_sum += m * matrix
        if binned is not None and hour < bins:
            binned[hour] += step_events
        if prod is not None:
            prod = prod @ power
    return _Walk(x, occupancy, events, matrix_sum, binned, prod, arrived)


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
    profiles = [p for _, p in model.profiled]

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
        probs = model.fixed.copy()
        for (k, _), value in zip(model.profiled, values):
            probs[k] = value / 100.0
        yield m, probs, values[-1], int((ms - start_ms) // HOUR_MS)
        t += m
        values = following


def _long_run(
    matrix: "np.ndarray", init: int
) -> Tuple["np.ndarray", List[List[int]], List[float], Optional[float]]:
    """Where a chain with this per-step ``matrix`` is in the long run from state ``init``:
    ``(shares, closed classes, chance of ending in each, expected steps to get there)``."""
    n_states = len(matrix)
    reach = _reachability(matrix)
    reachable = reach[init]
    recurrent = [_recurrent(reach, i) for i in range(n_states)]
    classes: List[List[int]] = []
    seen: set = set()
    for i in range(n_states):
        if reachable[i] and recurrent[i] and i not in seen:
            members = [j for j in range(n_states) if reach[i][j]]
            seen.update(members)
            classes.append(members)
    transient = [i for i in range(n_states) if reachable[i] and not recurrent[i]]
    steps: Optional[float]
    if recurrent[init]:
        class_probability = [1.0 if init in c else 0.0 for c in classes]
        steps = None
    else:
        q = matrix[np.ix_(transient, transient)]
        fundamental = np.linalg.inv(np.eye(len(transient)) - q)
        row = fundamental[transient.index(init)]
        class_probability = [float(row @ matrix[np.ix_(transient, c)].sum(axis=1)) for c in classes]
        steps = float(row.sum())
    shares = np.zeros(n_states)
    for members, chance in zip(classes, class_probability):
        shares[members] += chance * _stationary(matrix[np.ix_(members, members)])
    return shares, classes, class_probability, steps


def _recurrent(reach: List[List[bool]], i: int) -> bool:
    """Every state reachable from ``i`` leads back to ``i``."""
    return all(reach[j][i] for j in range(len(reach)) if reach[i][j])


def _hour_label(ms: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000.0, timezone.utc).strftime("%a %Y-%m-%d %H:%M UTC")


def speed_for_rate(analysis: ModelAnalysis, rate: float) -> float:
    """The ``speed`` at which a run of the analysed model produces ``rate`` events per second
    of wall time, on average over the run (or in the long run, without a tick limit)."""
    if (
        isinstance(rate, bool)
        or not isinstance(rate, (int, float))
        or not rate > 0
        or not math.isfinite(rate)
    ):
        raise ConfigurationError(
            f"rate must be a positive number of events per second, got {rate!r}"
        )
    per_second = analysis.expected_events_per_second()
    if not per_second > 0:
        where = (
            f"in its {analysis.ticks} ticks" if analysis.ticks is not None else "in the long run"
        )
        raise ConfigurationError(
            f"the model is expected to produce no events {where}, "
            f"so no speed gives {rate:g} events/s"
        )
    return float(rate) / per_second


# -- helpers --------------------------------------------------------------------------------


def _sinks(datagen: "DataOnlineGenerator") -> Tuple[List[Any], List[str]]:
    from doge_datagen.summary import sink_labels

    sinks = list(datagen.sinks)
    return sinks, sink_labels(sinks)


def _reachability(matrix: "np.ndarray") -> List[List[bool]]:
    """``reach[i][j]``: ``j`` can be reached from ``i`` (every state reaches itself)."""
    n = len(matrix)
    reach = []
    for i in range(n):
        found = [False] * n
        found[i] = True
        stack = [i]
        while stack:
            a = stack.pop()
            for b in range(n):
                if not found[b] and matrix[a, b] > 0:
                    found[b] = True
                    stack.append(b)
        reach.append(found)
    return reach


def _stationary(block: "np.ndarray") -> "np.ndarray":
    """The stationary distribution of an irreducible stochastic matrix: ``pi P = pi``,
    ``sum(pi) = 1`` (unique, periodic or not)."""
    n = len(block)
    system = np.vstack([block.T - np.eye(n), np.ones((1, n))])
    rhs = np.zeros(n + 1)
    rhs[-1] = 1.0
    pi, *_ = np.linalg.lstsq(system, rhs, rcond=None)
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def _power_sum(matrix: "np.ndarray", n: int) -> Tuple["np.ndarray", "np.ndarray"]:
    """``(P^n, P^0 + ... + P^(n-1))`` by doubling: about ``2 log2(n)`` matrix products."""
    size = len(matrix)
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


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400.0), ("hours", 3600.0), ("minutes", 60.0)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


def _table(rows: Sequence[Sequence[str]]) -> List[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for k, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths))
        ]
        lines.append("  " + "  ".join(cells).rstrip())
        if k == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    return lines
