"""A fitted model (:class:`~doge_datagen.fit.FittedModel`) written as a model file:
``doge-datagen fit ... -o model.yaml``.

The file holds what the Python module of ``fit -o model.py`` holds: the states, the start,
each transition's estimate in percent per tick with its 95 % interval as a comment, and the
hourly or weekly factors of a fitted profile; events go to standard output as JSON lines
with the log's field names (``--sink events=URL`` sends them elsewhere).
"""

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, List, Union

__all__ = ["fitted_model_text", "write_fitted_model"]


def _q(text: str) -> str:
    """A string as a YAML scalar (JSON's quoting is YAML's)."""
    return json.dumps(text)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def _round_down(value: float, digits: int = 6) -> float:
    """Rounded down to ``digits`` significant digits, so that the written factors of a state
    add up to at most what the fitted ones do."""
    if value <= 0 or not math.isfinite(value):
        return 0.0 if value <= 0 else value
    scale = 10.0 ** (digits - 1 - math.floor(math.log10(value)))
    return math.floor(value * scale) / scale


def fitted_model_text(model: Any) -> str:
    """The model file of a fitted model."""
    subject_field, timestamp_field, trigger_field, from_field, to_field = model.field_names
    lines: List[str] = []
    w = lines.append
    w(f"# A model fitted by doge-datagen from {model.rows} rows of an event log.")
    w(f"# Window: {_iso(model.start)} to {_iso(model.end)}, {model.ticks} ticks of")
    w(f"# {model.tick_ms} ms, {model.subjects} subjects. Each probability is the maximum-")
    w("# likelihood estimate in percent per tick; the comment beside it gives its 95% interval")
    w("# (Wilson), the moves seen and the subject-ticks spent in the from state. Run it with:")
    w("#   doge-datagen run THIS_FILE.yaml [--sink events=URL]")
    w("name: fitted")
    w(f"states: [{', '.join(_q(s) for s in model.states)}]")
    shares = ", ".join(f"{s} {100 * v:.2f}%" for s, v in model.initial_shares.items())
    w(f"initial_state: {_q(model.initial_state)}  # shares at the start of the log: {shares}")
    w(f"subjects: {model.subjects}")
    w(f"tick_ms: {model.tick_ms}")
    w(f"ticks: {model.ticks}")
    w(f"timestamp_start: {model.start}  # {_iso(model.start)}; now starts at the current time")
    w("subject:")
    w("  subject_id: index")
    w("transitions:")
    for t in model.transitions:
        w(f"  - trigger: {_q(t.trigger)}")
        w(f"    from: {_q(t.from_state)}")
        w(f"    to: {_q(t.to_state)}")
        note = (
            f"# {t.low:.6g} to {t.high:.6g} % (95%), {t.events} moves in {t.exposure} subject-ticks"
        )
        probability = repr(round(t.probability, 12))
        if t.profile is None:
            w(f"    probability: {probability}  {note}")
        else:
            where = "hour of day" if t.profile.kind == "hourly" else "hour of the week from Monday"
            w(f"    probability:  {note}")
            w(f"      base: {probability}")
            w(f"      # {t.profile.kind} factors, per {where} (UTC)")
            factors = [repr(_round_down(f)) for f in t.profile.factors]
            w(f"      {t.profile.kind}: [{', '.join(factors)}]")
        w("    sinks: [events]")
    w("sinks:")
    w("  events:")
    w("    url: 'print:'")
    w("    record:")
    for name, source in (
        (timestamp_field, "timestamp"),
        (subject_field, "subject_id"),
        (trigger_field, "trigger"),
        (from_field, "from_state"),
        (to_field, "to_state"),
    ):
        w(f"      {_q(name)}: {source}")
    return "\n".join(lines) + "\n"


def write_fitted_model(model: Any, path: Union[str, "Path"]) -> Path:
    """Write :func:`fitted_model_text` to ``path``; return the path."""
    target = Path(path)
    target.write_text(fitted_model_text(model), encoding="utf-8")
    return target
