"""The ratios the project promises: one line each, with its target, and the README's table.

Each benchmark returns rows of ``(scenario, ours, reference, ratio, target, met)``
(:data:`common.Row`). A :class:`Promise` names the rows it holds to a target (a pattern on
the scenario, so that the sizes in a scenario's name do not matter) and decides, from the
measured ratio alone, whether the target is met: ``bench/run_all.py`` judges every row by its
promise, not by what the benchmark wrote, and reports a benchmark whose own verdict disagrees.

This module imports nothing of doge-datagen's or of the benchmarks', so that the README's
table can be checked against :data:`PROMISES` without running anything
(``tests/docs/test_bench_promises.py``).
"""

import math
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = [
    "PROMISES",
    "Promise",
    "Result",
    "judge",
    "markdown_table",
    "replace_table",
    "TABLE_START",
    "TABLE_END",
]

#: The README's table lives between these two lines.
TABLE_START = "<!-- performance table: python bench/run_all.py --markdown README.md -->"
TABLE_END = "<!-- end of the performance table -->"

Row = Tuple[str, str, str, float, str, bool]


@dataclass(frozen=True)
class Promise:
    """A ratio the project promises.

    ``op`` is how the ratio must compare with ``value``: ``">="``, ``"<="``, ``"<"``, ``"=="``,
    or ``"within"`` (``value`` to ``high``, both included). ``step`` is the run_all step that
    measures it, ``pattern`` a regular expression that the rows' scenario names match
    (searched, not anchored). A promise over several rows (the analysis of four chains, say) is
    met when every one of them meets it.
    """

    category: str
    what: str
    step: str
    pattern: str
    op: str
    value: float
    high: Optional[float] = None

    def __post_init__(self) -> None:
        if self.op not in (">=", "<=", "<", "==", "within"):
            raise ValueError(f"{self.what}: unknown comparison {self.op!r}")
        if (self.op == "within") != (self.high is not None):
            raise ValueError(f"{self.what}: 'within' and only it takes a high end")

    @property
    def target(self) -> str:
        if self.op == "within":
            return f"{self.value:g}x to {self.high:g}x"
        return f"{self.op} {self.value:g}x"

    def met(self, ratio: float) -> bool:
        if math.isnan(ratio):
            return False
        if self.op == ">=":
            return ratio >= self.value
        if self.op == "<=":
            return ratio <= self.value
        if self.op == "<":
            return ratio < self.value
        if self.op == "==":
            return ratio == self.value
        assert self.high is not None
        return self.value <= ratio <= self.high

    def worst(self, ratios: Sequence[float]) -> float:
        """The ratio of ``ratios`` furthest from meeting the target: the one the README shows."""
        if self.op == ">=":
            return min(ratios)
        if self.op in ("<=", "<"):
            return max(ratios)
        centre = self.value if self.high is None else (self.value + self.high) / 2
        return max(ratios, key=lambda r: abs(r - centre))

    def matches(self, scenario: str) -> bool:
        return re.search(self.pattern, scenario) is not None


def _p(category: str, what: str, step: str, pattern: str, op: str, value: float, high=None):  # type: ignore[no-untyped-def]
    return Promise(category, what, step, pattern, op, value, high)


#: Every promise, in the README's order.
PROMISES: List[Promise] = [
    # -- the engine
    _p("engine", "banking model: engine vs a tuned per-tick loop (speed-up)", "engine",
       r"^sparse banking .*, engine vs tuned per-tick$", ">=", 50),
    _p("engine", "banking model: engine vs a plain per-tick loop (speed-up)", "engine",
       r"^sparse banking .*, engine vs plain per-tick$", ">=", 50),
    _p("engine", "1-second ticks vs 1-minute ticks, same events (time)", "engine",
       r"^banking 1-s ticks .* vs 1-min$", "<=", 1.3),
    _p("engine", "dense model (every subject moves every tick) vs a tuned per-tick loop",
       "dense", r"^dense ping-pong .*, engine vs tuned per-tick$", ">=", 1),
    _p("engine", "per-subject random streams vs one random.Random (time)", "randomness",
       r"per-subject streams vs plain random\.Random$", "<=", 1.2),
    _p("engine", "1,000,000 subjects: cost per event vs a small population", "scale",
       r"cost/event vs .* subjects$", "<=", 1.3),
    _p("engine", "1,000,000 subjects: peak memory vs holding the subjects", "scale",
       r": peak memory vs holding the subjects$", "<=", 1.5),
    _p("engine", "demo into JSON Lines, one core, vs the first release (speed-up)", "demo",
       r"^demo --sink jsonl .*, one core \(CPU s\), vs ", ">=", 2.5),
    # -- pacing
    _p("pacing", "paced run: p99 lag of a tick vs the tick's interval", "pacing",
       r"^paced .* ticks of .* lag median/p99/max$", "<", 1),
    _p("pacing", "paced run: drift at the end vs the tick's interval", "pacing",
       r"^paced run: drift at the end", "<", 1),
    _p("pacing", "rate asked for vs rate achieved", "rate",
       r"^paced run asked for .* events/s", "within", 0.95, 1.05),
    # -- sinks
    _p("sinks", "Kafka sink vs a plain Producer loop (rate)", "sinks",
       r"^Kafka sink vs plain Producer loop", ">=", 0.8),
    _p("sinks", "DB sink (PostgreSQL) vs psycopg2 COPY, same mapper, collect + close (rate)",
       "sinks", r"^DB sink \(PostgreSQL\) vs psycopg2 COPY, same mapper, collect \+ close",
       ">=", 0.8),
    _p("sinks", "DB sink (PostgreSQL) vs psycopg2 COPY, set-up included (rate)", "sinks",
       r"^DB sink \(PostgreSQL\) vs psycopg2 COPY, set-up included", ">=", 0.7),
    _p("sinks", "DB sink (PostgreSQL) vs SQLAlchemy executemany (rate)", "sinks",
       r"^DB sink \(PostgreSQL\) vs SQLAlchemy executemany", ">=", 1),
    _p("sinks", "file sink (JSON Lines) vs json.dumps into a buffered file (rate)", "sinks",
       r"^file sink \(JSON Lines\) vs json\.dumps", ">=", 0.8),
    _p("sinks", "a user's model, dict mapper: JSON Lines vs a counting sink (rate)",
       "user_sinks", r"^shop model, dict mapper: JSON Lines vs counting sink$", ">=", 0.5),
    _p("sinks", "a user's model, dict mapper: CSV vs a counting sink (rate)", "user_sinks",
       r"^shop model, dict mapper: CSV vs counting sink$", ">=", 0.5),
    _p("sinks", "a user's model, dict mapper: Kafka (JSON values) vs a counting sink (rate)",
       "user_sinks", r"^shop model, dict mapper: Kafka \(json values\) vs counting sink$",
       ">=", 0.4),
    _p("sinks", "demo into JSON Lines on the generic sinks vs the demo's own sink (rate)",
       "user_sinks", r"^demo --sink jsonl .* \(same bytes\) vs ", ">=", 1),
    _p("sinks", "Redis Streams, RabbitMQ, MQTT, NATS and Parquet sinks vs their clients' loops",
       "buses", r"^(Redis Streams|RabbitMQ|MQTT|NATS JetStream|Parquet) sink vs ", ">=", 0.8),
    _p("sinks", "Protobuf sink vs the Avro sink (rate)", "registry_formats",
       r"^Protobuf sink vs Avro sink", ">=", 0.8),
    _p("sinks", "disordered JSON Lines (late, duplicated, dropped events) vs plain (time)",
       "disorder", r"^disordered JSON Lines vs plain \(", "<=", 1.2),
    _p("sinks", "Debezium envelopes into JSON Lines vs plain records (rate)", "changes",
       r"^Debezium envelopes into JSON Lines vs plain records", ">=", 0.5),
    _p("sinks", "DB sink upsert mode vs append mode, PostgreSQL (rate)", "changes",
       r"^DB sink upsert mode vs append mode, PostgreSQL", ">=", 0.5),
    _p("sinks", "soak: peak memory after the first minute vs at one minute", "soak",
       r"^soak .*: peak memory after", "<=", 1.1),
    _p("sinks", "soak: p99 lag of the paced ticks vs the tick", "soak",
       r"^soak: lag p99 of the paced ticks$", "<", 1),
    _p("sinks", "soak: what Kafka, PostgreSQL and the file hold vs the summary", "soak",
       r"^soak: Kafka / PostgreSQL / JSONL hold", "==", 1),
    # -- sharding
    _p("sharding", "demo into JSON Lines, 2 workers vs 1 process, the run (speed-up)",
       "sharded", r"^demo into JSON Lines .* workers vs 1 process: the run$", ">=", 1.7),
    _p("sharding", "banking into a counting sink, 2 workers vs 1 process, the run (speed-up)",
       "sharded", r"^banking into a counting sink .* workers vs 1: the run$", ">=", 1.7),
    # -- populations
    _p("populations", "two populations vs one of the same subjects, per event (time)",
       "populations", r"^two populations vs one, per event", "<=", 1.2),
    _p("populations", "payments world, 2 workers vs 1 process (speed-up)", "populations",
       r"^payments world, .* 2 workers vs 1 process$", ">=", 1.5),
    _p("populations", "a million messages per simulated second: peak memory, 4x the ticks vs 1x",
       "populations", r"^1M messages per simulated second: peak memory, ", "<=", 1.1),
    # -- checkpoints
    _p("checkpoints", "a run with a checkpoint every 10 s vs without (time)", "checkpoint",
       r"^checkpoint every .* subjects$", "<=", 1.05),
    _p("checkpoints", "a resume of a million subjects to its first busy tick vs 2 s", "checkpoint",
       r"^resume start$", "<=", 1),
    # -- analysis
    _p("analysis", "analyze() vs PyDTMC's stationary distributions, each chain (time)",
       "analysis", r"^analysis of .* vs PyDTMC", "<=", 1),
    _p("analysis", "10,000-state chain with an hourly profile vs one second (CPU time)",
       "analysis", r"^analysis of a 10,000-state profiled chain vs one second", "<", 1),
    # -- fit
    _p("fit", "fit a JSON Lines event log vs a pass that only parses it (time)", "fit",
       r"-row JSON Lines log vs parse-only pass$", "<=", 2),
    _p("fit", "fit with an hourly profile vs the parse-only pass (time)", "fit",
       r" rows with an hourly profile vs parse-only$", "<=", 2),
    _p("fit", "fit vs its own decoding only (time)", "fit",
       r" rows vs its own decoding only", "<=", 3),
    _p("fit", "fit a 10-million-row log vs one minute (wall time)", "fit",
       r"-row JSON Lines log vs one minute \(wall\)$", "<", 1),
    _p("fit", "fit a per-tick state log vs PyDTMC's MLE fit, each chain (time)", "fit-states",
       r"^fit a .*-tick state log of the .* vs PyDTMC", "<=", 1),
    # -- profiles and metrics
    _p("profiles", "hourly login profile vs constant probabilities, per event (time)",
       "profiles", r", hourly login profile vs constant, per event$", "<=", 1.5),
    _p("metrics", "unpaced run with metrics on vs off (time)", "metrics",
       r" unpaced, metrics on vs off$", "<=", 1.1),
    _p("metrics", "one metrics snapshot vs the sampling interval", "metrics",
       r"^one metrics snapshot", "<=", 0.01),
    # -- values
    _p("values", "datagen.fake vs Mimesis, 4 fields per subject (speed-up)", "values",
       r"^values: 4 fields x .* vs mimesis", ">=", 3),
    _p("values", "datagen.fake vs Faker, 4 fields per subject (speed-up)", "values",
       r"^values: 4 fields x .* vs faker", ">=", 50),
    _p("values", "banking demo with 4 fields of values vs without (time)", "values",
       r"^values: banking demo, .* with the 4 fields vs plain$", "<=", 1.5),
    _p("values", "the demo command with --fake vs without (time)", "values",
       r"^values: doge-datagen demo --sink jsonl:, .* --fake vs not$", "<=", 1.5),
    # -- model files
    _p("model files", "examples/banking.yaml vs the same model in Python, counting sinks (rate)",
       "modelfile", r"^banking\.yaml vs Python, counting sinks ", ">=", 0.9),
    _p("model files", "examples/banking.yaml vs the same model in Python, JSON Lines (rate)",
       "modelfile", r"^banking\.yaml vs Python, JSON Lines ", ">=", 0.9),
]  # fmt: skip


@dataclass
class Result:
    """A promise and what a run measured for it: the ratios of its rows (none if it was not
    run), and problems (a step that failed, a benchmark's verdict that disagrees)."""

    promise: Promise
    ratios: List[float]
    problems: List[str]

    @property
    def measured(self) -> Optional[float]:
        return self.promise.worst(self.ratios) if self.ratios else None

    @property
    def met(self) -> Optional[bool]:
        """``None`` when not measured; else whether every row met the target and nothing
        went wrong."""
        if not self.ratios:
            return None
        return not self.problems and all(self.promise.met(r) for r in self.ratios)


def judge(
    rows: Sequence[Row], ran: Sequence[str], failed: Optional[Dict[str, str]] = None
) -> Tuple[List[Result], List[Row]]:
    """Each promise's result from the rows of a run whose steps ``ran`` (``failed`` maps a
    step to its error); and the rows with a target that no promise holds (a benchmark's
    target that this module does not know: it should).

    A row's target is judged from its ratio by its promise; a benchmark that says otherwise
    about its own row is a problem of that promise. A promise of a step that ran but made no
    row is one too (its scenario was renamed, say).
    """
    failed = failed or {}
    results = []
    claimed = set()
    for promise in PROMISES:
        ratios, problems = [], []
        for k, row in enumerate(rows):
            if promise.matches(row[0]):
                claimed.add(k)
                ratios.append(float(row[3]))
                if bool(row[5]) != promise.met(float(row[3])):
                    problems.append(
                        f"the benchmark's own verdict on {row[0]!r} ({row[4]}) disagrees"
                    )
        if promise.step in failed:
            problems.append(f"{promise.step} failed: {failed[promise.step]}")
        elif promise.step in ran and not ratios:
            problems.append(f"{promise.step} made no row matching {promise.pattern!r}")
        results.append(Result(promise, ratios, problems))
    for row in rows:
        holders = [r for r in results if r.promise.matches(row[0])]
        if len(holders) > 1:
            for result in holders:
                result.problems.append(f"{row[0]!r} is held by {len(holders)} promises")
    unclaimed = [row for k, row in enumerate(rows) if k not in claimed and _is_target(row[4])]
    return results, unclaimed


def _is_target(text: str) -> bool:
    """Whether a row's target column states a target (``>= 0.8x``, ``within 10 %``, ``all
    equal``) rather than a remark (``(shown)``, ``(a bound)``, ``-``)."""
    text = str(text).strip()
    return not text.startswith("(") and re.search(r"[<>=]|\d|equal|within", text) is not None


def _ratio(value: Optional[float]) -> str:
    if value is None:
        return "not run"
    if math.isinf(value) or math.isnan(value):
        return str(value)
    return f"{value:.3g}x" if abs(value) < 100 else f"{value:,.0f}x"


def verdict(result: Result) -> str:
    met = result.met
    if met is None:
        return "failed" if result.problems else "not run"
    return "yes" if met else "NO"


def markdown_table(results: Sequence[Result], how: str) -> str:
    """The README's table: one line per promise, in :data:`PROMISES`' order, and a last line
    saying how it was measured (``how``)."""
    lines = [
        "| area | promise | target | measured | met |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        p = result.promise
        lines.append(
            f"| {p.category} | {p.what} | {p.target} | {_ratio(result.measured)} "
            f"| {verdict(result)} |"
        )
    lines.append("")
    lines.append(how)
    return "\n".join(lines)


def table_rows(text: str) -> List[Tuple[str, str, str]]:
    """The (area, promise, target) of each line of the table between the markers in
    ``text``."""
    start, end = text.index(TABLE_START), text.index(TABLE_END)
    found = []
    for line in text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 5 and cells[0] not in ("area", "---"):
            found.append((cells[0], cells[1], cells[2]))
    return found


def replace_table(text: str, table: str) -> str:
    """``text`` with what lies between the markers replaced by ``table``."""
    start, end = text.index(TABLE_START), text.index(TABLE_END)
    if end < start:
        raise ValueError("the table's end marker comes before its start")
    return text[: start + len(TABLE_START)] + "\n" + table + "\n" + text[end:]
