"""The status page a :class:`~doge_datagen.metrics.MetricsServer` serves at ``/``.

One small HTML page, rendered on the server from the latest run snapshots: no script, no
front-end framework, no build step. It reloads itself (``<meta http-equiv=refresh>``), and
its chart of events per second per trigger is inline SVG drawn from the server's samples.
Every headline figure sits in an element with an ``id`` and a ``data-value`` attribute, so
a script (or a test driving a browser) can read it.
"""

import html
import math
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from doge_datagen.core.text import describe_seconds, utc_clock
from doge_datagen.engine.pacing import LAG_BUCKETS

if TYPE_CHECKING:  # pragma: no cover
    from doge_datagen.metrics.snapshot import Snapshot

__all__ = ["render_page"]

_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:60em}
h1{font-size:1.3em;margin:0 0 .2em}h2{font-size:1.05em;margin:1.4em 0 .4em}
table{border-collapse:collapse}td,th{padding:.15em .7em;text-align:right}
td:first-child,th:first-child,td.bar-cell{text-align:left}th{border-bottom:1px solid #bbb}
.ok{color:#1a7f37}.bad{color:#c62828;font-weight:bold}.muted{color:#777}
.bar{display:inline-block;height:.8em;background:#1f77b4;vertical-align:middle}
dl{display:grid;grid-template-columns:max-content auto;gap:.1em 1em;margin:0}dt{color:#555}
svg text{font-size:11px;fill:#555}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def render_page(server: Any) -> str:
    snapshots = server.snapshots()
    healthy, problems = server.health()
    title = snapshots[0].model if snapshots else "no run yet"
    total = _combine(snapshots) if snapshots else None
    # The tab's title carries the event count, so that a glance at the tab (or a browser's
    # list of pages) shows the run moving.
    counted = f" \u00b7 {sum(total['events'].values()):,} events" if total else ""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta http-equiv='refresh' content='{server.refresh_seconds:g}'>",
        f"<title>doge-datagen: {_e(title)}{counted}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>doge-datagen: <span id='model'>{_e(title)}</span></h1>",
    ]
    if total is None:
        parts.append("<p class='muted'>No run is attached yet.</p></body></html>")
        return "".join(parts)
    parts.append("<dl>")
    rows = _overview_rows(snapshots, total, healthy, problems)
    parts.extend(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in rows)
    parts.append("</dl>")
    parts.extend(_trigger_section(server, total))
    parts.extend(_states_table(total))
    parts.extend(_sinks_table(total))
    parts.append(
        "<p class='muted'>Reloads every "
        f"{server.refresh_seconds:g} s. <a href='/metrics'>/metrics</a> · "
        "<a href='/healthz'>/healthz</a> · <a href='/status.json'>/status.json</a></p>"
        "</body></html>"
    )
    return "".join(parts)


def _overview_rows(
    snapshots: Sequence["Snapshot"], total: Dict[str, Any], healthy: bool, problems: Sequence[Any]
) -> List[Tuple[str, str]]:
    """The headline figures: ``(label, HTML)`` pairs."""
    status = (
        "<span id='health' class='ok'>healthy</span>"
        if healthy
        else "<span id='health' class='bad'>unhealthy</span>: " + "; ".join(_e(p) for p in problems)
    )
    state = "running" if any(s.running for s in snapshots) else "finished"
    ticks_of = f" of {total['ticks_total']}" if total["ticks_total"] is not None else ""
    lag_p99 = _histogram_quantile(total["lag_buckets"], 0.99)
    rows = [
        ("status", f"{status} <span class='muted'>({state})</span>"),
        ("seed", f"<span id='seed'>{_e(snapshots[0].seed)}</span>"),
        ("subjects", _num("subjects", total["subjects"])),
        (
            "simulated time",
            f"<span id='simulated-time' data-value='{total['sim_ms']:.0f}'>"
            f"{_e(utc_clock(total['sim_ms'], ' UTC'))}</span>",
        ),
        ("ticks done", _num("ticks-done", total["ticks_done"]) + _e(ticks_of)),
        ("events", _num("events-total", sum(total["events"].values()))),
        ("vetoed", _num("vetoes-total", sum(total["vetoes"].values()))),
    ]
    if total["lag_buckets"] is not None:
        rows.append(
            (
                "pacing lag",
                f"<span id='behind-ticks' data-value='{total['behind']:.3f}'>"
                f"{total['behind']:.1f}</span> ticks behind now; "
                f"99% of {total['lag_count']} ticks within "
                f"<span id='lag-p99'>{_e(lag_p99)}</span>",
            )
        )
    if len(snapshots) > 1 or snapshots[0].shard is not None:
        rows.append(("shards", _num("shards", len(snapshots))))
    return rows


def _trigger_section(server: Any, total: Dict[str, Any]) -> List[str]:
    """The chart of events per second per trigger, and the table of the triggers."""
    rates = server.rates()
    triggers = list(total["events"])
    colours = {t: _COLOURS[n % len(_COLOURS)] for n, t in enumerate(triggers)}
    latest = rates[-1][1] if rates else {}
    parts = [
        "<h2>Events per second, by trigger "
        f"(up to the last {_e(describe_seconds(server.history_seconds))})</h2>",
        _chart(rates, triggers, colours, server),
        "<table id='triggers'><tr><th>trigger</th><th>events/s</th><th>events</th>"
        "<th>vetoed</th></tr>",
    ]
    for t in triggers:
        parts.append(
            f"<tr data-trigger='{_e(t)}'><td><span style='color:{colours[t]}'>&#9632;</span> "
            f"{_e(t)}</td><td>{latest.get(t, 0.0):,.1f}</td>"
            f"<td data-value='{total['events'][t]}'>{total['events'][t]:,}</td>"
            f"<td data-value='{total['vetoes'].get(t, 0)}'>{total['vetoes'].get(t, 0):,}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _states_table(total: Dict[str, Any]) -> List[str]:
    parts = [
        "<h2>Subjects by state</h2><table id='states'><tr><th>state</th>"
        "<th>subjects</th><th></th></tr>"
    ]
    biggest = max(total["states"].values(), default=0) or 1
    for name, n in total["states"].items():
        width = round(200 * max(n, 0) / biggest)
        parts.append(
            f"<tr data-state='{_e(name)}'><td>{_e(name)}</td><td data-value='{n}'>{n:,}</td>"
            f"<td class='bar-cell'><span class='bar' style='width:{width}px'></span></td></tr>"
        )
    parts.append("</table>")
    return parts


def _sinks_table(total: Dict[str, Any]) -> List[str]:
    parts = [
        "<h2>Sinks</h2><table id='sinks'><tr><th>sink</th><th>events</th>"
        "<th>delivered</th><th>failed</th></tr>"
    ]
    for label, (n, ok, bad) in total["sinks"].items():
        parts.append(
            f"<tr data-sink='{_e(label)}'><td>{_e(label)}</td><td data-value='{n}'>{n:,}</td>"
            f"<td>{'-' if ok is None else f'{ok:,}'}</td>"
            f"<td class='{'bad' if bad else ''}'>{'-' if bad is None else f'{bad:,}'}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _num(element_id: str, value: int) -> str:
    return f"<span id='{element_id}' data-value='{value}'>{value:,}</span>"


def _combine(snapshots: Sequence["Snapshot"]) -> Dict[str, Any]:
    """The shards of a run added up, for the page."""
    events: Dict[str, int] = {}
    vetoes: Dict[str, int] = {}
    states: Dict[str, int] = {}
    sinks: Dict[str, Tuple[int, Optional[int], Optional[int]]] = {}
    lag_buckets: Optional[List[int]] = None
    lag_count = 0
    for s in snapshots:
        for source, target in ((s.events, events), (s.vetoes, vetoes), (s.states, states)):
            for k, n in source.items():
                target[k] = target.get(k, 0) + n
        for sink in s.sinks:
            n, ok, bad = sinks.get(sink.label, (0, None, None))
            sinks[sink.label] = (
                n + sink.events,
                _add(ok, sink.delivered),
                _add(bad, sink.failed),
            )
        if s.lag_buckets is not None:
            if lag_buckets is None:
                lag_buckets = [0] * len(s.lag_buckets)
            lag_buckets = [a + b for a, b in zip(lag_buckets, s.lag_buckets)]
            lag_count += s.lag_count
    totals = [s.ticks_total for s in snapshots]
    return {
        "events": events,
        "vetoes": vetoes,
        "states": states,
        "sinks": sinks,
        "subjects": sum(s.subjects for s in snapshots),
        # Shards walk the same ticks: the run is as far as its slowest shard.
        "ticks_done": min(s.ticks_done for s in snapshots),
        "ticks_total": None if None in totals else max(t for t in totals if t is not None),
        "sim_ms": min(s.simulated_time_ms for s in snapshots),
        "behind": max(s.behind_ticks for s in snapshots),
        "lag_buckets": lag_buckets,
        "lag_count": lag_count,
    }


def _add(a: Optional[int], b: Optional[int]) -> Optional[int]:
    if a is None and b is None:
        return None
    return (a or 0) + (b or 0)


def _histogram_quantile(cumulative: Optional[List[int]], q: float) -> str:
    if not cumulative or not cumulative[-1]:
        return "-"
    wanted = q * cumulative[-1]
    for le, n in zip(LAG_BUCKETS, cumulative):
        if n >= wanted:
            return "more than 60 s" if le == math.inf else f"{le * 1000:g} ms"
    return "-"  # pragma: no cover


def _chart(
    rates: List[Tuple[float, Dict[str, float]]],
    triggers: Sequence[str],
    colours: Dict[str, str],
    server: Any,
) -> str:
    """A line per trigger: events/s against seconds ago, newest on the right. The time axis
    covers the samples there are (up to the server's history), so a young run fills it."""
    width, height, left, bottom = 640, 180, 56, 18
    oldest = max((ago for ago, _ in rates), default=0.0)
    span = min(server.history_seconds, max(oldest, 10 * server.interval))
    top = max((max(r.values(), default=0.0) for _, r in rates), default=0.0)
    top = _nice(top)
    plot_w, plot_h = width - left - 8, height - bottom - 8
    out = [
        f"<svg id='rate-chart' xmlns='http://www.w3.org/2000/svg' width='{width}' "
        f"height='{height}' viewBox='0 0 {width} {height}' role='img' "
        "aria-label='events per second by trigger'>",
        f"<rect x='{left}' y='8' width='{plot_w}' height='{plot_h}' fill='#fafafa' stroke='#ccc'/>",
    ]
    for frac in (0.0, 0.5, 1.0):
        y = 8 + plot_h * (1 - frac)
        out.append(
            f"<text x='{left - 4}' y='{y + 4:.1f}' text-anchor='end'>{top * frac:,.0f}</text>"
        )
        if 0 < frac:
            out.append(
                f"<line x1='{left}' x2='{left + plot_w}' y1='{y:.1f}' y2='{y:.1f}' stroke='#eee'/>"
            )
    out.append(
        f"<text x='{left}' y='{height - 4}'>-{describe_seconds(span)}</text>"
        f"<text x='{left + plot_w}' y='{height - 4}' text-anchor='end'>now</text>"
    )
    for trigger in triggers:
        points = [
            (
                left + plot_w * (1 - min(ago, span) / span),
                8 + plot_h * (1 - r.get(trigger, 0) / top),
            )
            for ago, r in rates
        ]
        if len(points) == 1:
            x, y = points[0]
            out.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='2' fill='{colours[trigger]}'/>")
        elif points:
            joined = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            out.append(
                f"<polyline fill='none' stroke='{colours[trigger]}' stroke-width='1.5' "
                f"points='{joined}'><title>{_e(trigger)}</title></polyline>"
            )
    out.append("</svg>")
    return "".join(out)


def _nice(value: float) -> float:
    """A round number at least ``value`` for the chart's top (1, 2 or 5 times a power of 10)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover
