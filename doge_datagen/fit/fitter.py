"""Fit a model from an event log: per-tick transition probabilities (and, optionally, hourly
or weekly profiles) estimated from what real subjects did.

    model = fit_events(rows, tick_ms=60000, subject="user_id", timestamp="ts",
                       from_state="from_state", to_state="to_state", trigger="event")
    print(model.table())
    datagen = model.generator(MyFactory(), 1000, 1440, seed=1)
    model.to_python("model.py")          # then: doge-datagen run model.py:build

Two forms of log are read:

- a log of transitions (``from_state=``, ``to_state=``, optionally ``trigger=``): each row is
  one move of a subject at a time;
- a log of states (``state=``, optionally ``trigger=``): each row says which state a subject
  is in at a time. A row in a new state is a move from the previous one; without ``trigger=``
  a row repeating the current state is only an observation (self-loops cannot be seen), with
  ``trigger=`` every row is an event.

Why these estimates: in the engine a subject in state ``s`` makes one draw per tick and leaves
by transition ``k`` with probability ``p_k``. The likelihood of a log is then
``prod_k p_k ** n_k * (1 - sum_k p_k) ** (X - sum_k n_k)`` per state, where ``n_k`` counts the
moves by ``k`` and ``X`` the subject-ticks spent in ``s`` (its exposure); its maximum is at
``p_k = n_k / X``. The exposure counts the draws exactly as the engine makes them: from the
window start (a draw at the start tick itself) or from the tick after a move, up to and
including the tick of the next move, or up to the end of the window for a subject still in the
state then (censored: it stayed through every remaining draw). Subjects that never moved are
absent from a log of transitions; ``subjects=`` says how many there were in all, and the
missing ones add their whole window in ``initial_state`` to its exposure.

The interval of each probability is Wilson's 95% score interval for ``n_k`` successes in
``X`` trials. A profile bin (an hour of the day, or of the week, in UTC) is estimated the same
way from the moves and the exposure falling in that hour; the fitted profile's factors are the
per-bin estimates divided by the overall one.

Memory: the fit keeps, per subject, its current state and the time and row of its last row;
everything else is a count per state, per transition and per profile bin. Rows are read once,
in the order given; they need to be in time order for each subject, not overall.
"""

from typing import (
    Any,
    Iterable,
    Mapping,
    Optional,
    Tuple,
)

from doge_datagen.fit._rows import (
    EventFile,
    FittedModel,
    FittedProfile,
    FittedTransition,
    _Fit,
    read_events,
)

__all__ = [
    "FittedModel",
    "FittedProfile",
    "FittedTransition",
    "fit_events",
    "read_events",
]


def _engine(needs_rows: bool) -> Any:
    """The columnar fit (numpy) when it applies and numpy is installed, else the row loop.
    Both give the same model; the row loop also handles windows (``start``, ``end``)."""
    if needs_rows:
        return _Fit
    try:
        from doge_datagen.fit._columns import ColumnFit
    except ImportError:  # numpy is missing: the row loop does the same, slower
        return _Fit
    return ColumnFit


def fit_events(
    events: Iterable[Mapping[str, Any]],
    *,
    tick_ms: int,
    subject: str,
    timestamp: str,
    state: Optional[str] = None,
    from_state: Optional[str] = None,
    to_state: Optional[str] = None,
    trigger: Optional[str] = None,
    start: Any = None,
    end: Any = None,
    initial_state: Optional[str] = None,
    subjects: Optional[int] = None,
    hourly: bool = False,
    weekly: bool = False,
) -> FittedModel:
    """Fit a model to ``events``, any iterable of mappings (rows of a JSON Lines or CSV file
    as :func:`read_events` gives them, a database query's rows, dicts).

    Each keyword names a field of the rows: ``subject`` (who), ``timestamp`` (when: epoch
    milliseconds, an ISO 8601 string or a ``datetime``; naive means UTC), and either ``state``
    (a log of states) or ``from_state`` and ``to_state`` (a log of transitions), with an
    optional ``trigger``; without it a transition is named ``"from->to"``.

    :param tick_ms: the tick of the model. Every timestamp must be a whole number of ticks
        from the others.
    :param start: the window's first tick (epoch ms or datetime); by default the earliest
        timestamp. Rows before it only tell each subject's state at the start.
    :param end: the window's end, exclusive; by default one tick after the latest timestamp.
        Rows at or after it are skipped. Subjects still in a state at the end count the
        remaining ticks as exposure (censored).
    :param initial_state: the state subjects are in at the start before their first row in a
        log of states, and the state of the subjects that never appear (see ``subjects``).
        Also the generator's initial state; by default the most common one at the start.
    :param subjects: the size of the population, when subjects that never moved are absent.
    :param hourly: also fit a 24-hour profile (UTC) for every transition.
    :param weekly: also fit a 168-hour profile, from Monday 00:00 UTC (instead of ``hourly``).

    Bad rows raise :class:`~doge_datagen.errors.RecordError` naming the row; bad arguments
    :class:`~doge_datagen.errors.ConfigurationError`.
    """
    if isinstance(events, EventFile):
        where = f"{events.path}, line"
        numbered: Iterable[Tuple[int, Any]] = events.numbered()
    else:
        where = "row"
        numbered = enumerate(events, 1)
    engine = _engine(start is not None or end is not None)
    fit = engine(
        tick_ms=tick_ms,
        subject=subject,
        timestamp=timestamp,
        state=state,
        from_state=from_state,
        to_state=to_state,
        trigger=trigger,
        start=start,
        end=end,
        initial_state=initial_state,
        subjects=subjects,
        hourly=hourly,
        weekly=weekly,
        where=where,
    )
    # The columnar fit reads a file by blocks and a list of rows by slices.
    direct = engine is not _Fit and isinstance(events, (EventFile, list, tuple))
    fit.feed(events if direct else numbered)
    return fit.result()


# -- writing the model as a module --------------------------------------------------------
