"""Pictures of the model analysis: expected events per hour over a week, per trigger.

matplotlib is an optional extra (``pip install 'doge-datagen[plot]'``), imported here only;
the figure is drawn on an Agg canvas of its own, so no global pyplot state is touched and no
display is needed.
"""

import json
import math
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence

from doge_datagen.analysis.markov import HOUR_MS, WEEK_HOURS
from doge_datagen.errors import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from doge_datagen.analysis.markov import ModelAnalysis

__all__ = ["check_plot_path", "observed_hourly", "plot_rates"]


def observed_hourly(
    path: str, analysis: "ModelAnalysis", *, trigger_keys: Sequence[str] = ("trigger", "event")
) -> Dict[str, List[float]]:
    """Events per hour of the analysis' week, per trigger, read from a JSON Lines file of
    events (each line an object with ``timestamp`` in epoch ms and the trigger under
    ``trigger`` or ``event``, as the demo writes them).

    A run longer than a week is folded onto it: each hour of the week holds the mean over
    the times the run covered it (from the first event's hour to the last one's); hours it
    never covered are NaN.
    """
    triggers = {name.strip(): name for name in analysis.events_per_tick}
    counts: Dict[str, List[float]] = {name: [0.0] * WEEK_HOURS for name in triggers.values()}
    start = analysis.week_start_ms
    first: Optional[int] = None
    last: Optional[int] = None
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                timestamp = float(record["timestamp"])
                key = next(k for k in trigger_keys if k in record)
                name = str(record[key]).strip()
            except (ValueError, KeyError, TypeError, StopIteration) as exc:
                raise ConfigurationError(
                    f"{path} line {number}: expected a JSON object with 'timestamp' (epoch ms) "
                    f"and one of {list(trigger_keys)} ({type(exc).__name__}: {exc})"
                ) from None
            if name not in triggers:
                raise ConfigurationError(
                    f"{path} line {number}: trigger {name!r} is not one of the model's "
                    f"{sorted(triggers)}"
                )
            hour = math.floor((timestamp - start) / HOUR_MS)
            first = hour if first is None else min(first, hour)
            last = hour if last is None else max(last, hour)
            counts[triggers[name]][hour % WEEK_HOURS] += 1
    covered = [0] * WEEK_HOURS
    if first is not None and last is not None:
        for hour in range(first, last + 1):
            covered[hour % WEEK_HOURS] += 1
    return {
        name: [c / n if n else math.nan for c, n in zip(values, covered)]
        for name, values in counts.items()
    }


def check_plot_path(path: str) -> str:
    """The format of a plot to be written to ``path`` (its suffix), checked before anything is
    worked out or printed: a format matplotlib cannot write is a ``ConfigurationError``."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install 'doge-datagen[plot]'") from exc
    suffix = path.rpartition(".")[2].lower() if "." in path.rpartition("/")[2] else ""
    known = FigureCanvasBase.get_supported_filetypes()
    if suffix not in known:
        raise ConfigurationError(
            f"cannot plot to {path!r}: "
            + (f"format {suffix!r} is not one matplotlib writes" if suffix else "no suffix")
            + f" (give one of {', '.join(sorted(known))})"
        )
    return suffix


def plot_rates(
    analysis: "ModelAnalysis",
    path: str,
    *,
    observed: Optional[str] = None,
    triggers: Optional[Sequence[str]] = None,
    title: Optional[str] = None,
) -> str:
    """Draw the expected events per hour of each trigger over a week in the long run (all
    subjects) into ``path`` (PNG, SVG or PDF by its extension); with ``observed`` (a JSON
    Lines file of a run's events, see :func:`observed_hourly`) lay the run's counts over the
    curves. Returns the path written."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("plotting needs matplotlib: pip install 'doge-datagen[plot]'") from exc
    names = list(triggers) if triggers is not None else list(analysis.events_per_tick)
    for name in names:
        if name not in analysis.events_per_tick:
            raise ConfigurationError(
                f"trigger {name!r} is not one of the model's {list(analysis.events_per_tick)}"
            )
    seen = observed_hourly(observed, analysis) if observed is not None else None
    figure = Figure(figsize=(12, 5.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    hours = list(range(WEEK_HOURS))
    for n, name in enumerate(names):
        color = f"C{n % 10}"
        axes.plot(
            hours,
            [hour[name] for hour in analysis.hourly_events],
            color=color,
            label=name.strip(),
        )
        if seen is not None:
            axes.plot(
                hours,
                seen[name],
                color=color,
                linestyle="none",
                marker=".",
                markersize=4,
            )
    axes.set_xlim(0, WEEK_HOURS)
    axes.set_ylim(bottom=0)
    axes.set_xticks(range(0, WEEK_HOURS + 1, 24))
    axes.set_xticklabels([*(label[:3] for label in analysis.hour_labels[::24]), ""])
    axes.set_xticks(range(0, WEEK_HOURS, 6), minor=True)
    axes.grid(True, which="major", alpha=0.4)
    axes.set_xlabel(f"hour of the week from {analysis.hour_labels[0]}")
    axes.set_ylabel("events per hour")
    axes.set_title(
        title
        or f"Expected events per hour, {analysis.subjects:,} subjects, in the long run"
        + (" (lines), observed (dots)" if seen is not None else "")
    )
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    figure.savefig(path, dpi=110)
    return path
