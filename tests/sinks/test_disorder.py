"""Disordered sinks: late, duplicated and dropped events, with the undisturbed truth beside.

The statistical checks have a false-alarm rate of ``ALPHA`` (one in a million) each: their
limits are the binomial distribution's own quantiles for that rate (``scipy.stats``). The
seeds are fixed, so every test here is deterministic.
"""

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

import pytest
from scipy import stats

from doge_datagen import DataOnlineGenerator, InMemorySink
from doge_datagen.errors import ConfigurationError, DeliveryError
from doge_datagen.sinks.base import Sink
from doge_datagen.sinks.disorder import DisorderedSink, parse_duration_ms
from doge_datagen.sinks.registry import Records, SinkURLError, build_sink

ALPHA = 1e-6
T0 = 1_700_000_000_000


@dataclass
class Walker:
    """A subject whose attribute changes at every move: a late row must show the old value."""

    n: int
    moves: int = 0


class Walkers:
    def create(self, index: int) -> Walker:
        return Walker(index)


def count_move(subject: Walker, transition: Any) -> bool:
    subject.moves += 1
    return True


def row(timestamp: int, subject: Walker, transition: Any) -> Dict[str, Any]:
    return {"ts": timestamp, "n": subject.n, "moves": subject.moves, "event": transition.trigger}


def walk(sink: Any, subjects: int, ticks: int, tick_ms: int = 1000, p: float = 100.0, seed=1):
    """Two states, each left at ``p`` percent a tick; every move goes to ``sink``."""
    datagen = DataOnlineGenerator(
        ["left", "right"], "left", Walkers(), subjects, tick_ms, ticks, T0, seed=seed
    )
    datagen.add_transition("go", "left", "right", p, count_move, [sink])
    datagen.add_transition("back", "right", "left", p, count_move, [sink])
    return datagen


def disordered(seed=None, **options: Any) -> Tuple[DisorderedSink, InMemorySink, InMemorySink]:
    inner, truth = InMemorySink(row, name="inner"), InMemorySink(row, name="truth")
    return DisorderedSink(inner, truth=truth, seed=seed, **options), inner, truth


def values(sink: InMemorySink) -> List[Tuple[int, int, int, str]]:
    return [tuple(e.value.values()) for e in sink.events]  # type: ignore[misc]


def after_a_later_event(stream: List[Tuple[int, ...]]) -> List[Tuple[int, ...]]:
    """The events of ``stream`` that arrive after one with a later event time."""
    found, latest = [], None
    for event in stream:
        if latest is not None and event[0] < latest:
            found.append(event)
        latest = event[0] if latest is None else max(latest, event[0])
    return found


def binomial_limits(n: int, p: float) -> Tuple[float, float]:
    return stats.binom.ppf(ALPHA / 2, n, p), stats.binom.isf(ALPHA / 2, n, p)


def test_rates_are_within_their_binomial_limits() -> None:
    sink, inner, truth = disordered(late=0.05, max_delay_ms=10_000, duplicate=0.01, drop=0.001)
    summary = walk(sink, 2000, 100).start()
    n = len(truth.events)
    assert n == summary.events == 200_000
    for name, p in (("late", 0.05), ("duplicated", 0.01), ("dropped", 0.001)):
        low, high = binomial_limits(n, p)
        assert low <= getattr(sink, name) <= high, (name, getattr(sink, name), low, high)
    # Every event is accounted for: passed on once, twice, or not at all.
    assert len(inner.events) == n - sink.dropped + sink.duplicated
    delivery = summary.delivery["inner"]
    assert delivery == {
        "delivered": len(inner.events),
        "failed": 0,
        "dropped": sink.dropped,
        "duplicated": sink.duplicated,
        "late": sink.late,
        "truth_delivered": n,
        "truth_failed": 0,
    }
    # Each fate is drawn for each event apart: the late share is the same among events of
    # even and of odd subjects, and among the first and second half of the ticks.
    late = Counter()
    for event in after_a_later_event(values(inner)):
        late[event[1] % 2, event[0] < T0 + 50_000] += 1
    table = [[late[0, True], late[1, True]], [late[0, False], late[1, False]]]
    assert stats.chi2_contingency(table).pvalue > ALPHA


def test_the_truth_is_the_undisturbed_run_and_the_stream_holds_the_same_events() -> None:
    sink, inner, truth = disordered(late=0.05, max_delay_ms=5000, duplicate=0.01, drop=0.01)
    walk(sink, 300, 60).start()
    plain = InMemorySink(row)
    walk(plain, 300, 60).start()
    assert values(truth) == values(plain)
    # The disturbed stream: the truth's events, minus the dropped, plus the copies; a late
    # event keeps its event time and the subject's attributes as they were at the event.
    kept = Counter(values(inner))
    expected = Counter(values(truth))
    assert sum((expected - kept).values()) == sink.dropped > 0
    assert sum((kept - expected).values()) == sink.duplicated > 0
    assert all(k - 1 <= expected[e] <= k for e, k in kept.items())


def test_late_events_keep_their_time_and_come_after_later_ones() -> None:
    # Every subject moves at every 1 ms tick: a late event has later events to follow.
    at_close: List[bool] = []

    class Noting(InMemorySink):
        def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
            at_close.append(not sink.is_open)
            super().collect(timestamp, subject, transition)

    truth = InMemorySink(row)
    inner = Noting(row)
    sink = DisorderedSink(inner, truth=truth, late=0.1, max_delay_ms=20)
    walk(sink, 50, 400, tick_ms=1).start()
    stream = values(inner)
    late = after_a_later_event(stream)
    # Only a late event of the last tick has no later event to follow: it comes at close.
    last = stream[-1][0]
    unseen = [e for e, closing in zip(stream, at_close) if closing and e[0] == last]
    assert len(late) == sink.late - len(unseen) > 1000
    assert Counter(stream) == Counter(values(truth))
    held = set(late) | set(unseen)
    latest = stream[0][0]
    for event in stream:
        if event in held and event not in unseen:
            # After at least one event of a later time, and never more than max_delay later.
            assert event[0] < latest <= event[0] + 20
        latest = max(latest, event[0])
    # Events not held back come in the truth's order.
    assert [e for e in stream if e not in held] == [e for e in values(truth) if e not in held]


def test_a_seed_gives_the_same_stream_and_another_seed_another() -> None:
    streams = []
    for seed in (5, 5, 6):
        sink, inner, _ = disordered(late=0.05, max_delay_ms=5000, duplicate=0.02, drop=0.02)
        walk(sink, 200, 50, seed=seed).start()
        streams.append(values(inner))
    assert streams[0] == streams[1]
    assert streams[0] != streams[2]
    # An explicit seed overrides the run's.
    fixed = []
    for run_seed in (5, 6):
        sink, inner, _ = disordered(seed="fixed", late=0.05, max_delay_ms=5000, drop=0.02)
        walk(sink, 200, 50, seed=run_seed).start()
        fixed.append(Counter(values(inner)))
    assert fixed[0] != Counter(streams[0])


def test_an_event_meets_the_same_fate_whatever_part_of_the_subjects_runs() -> None:
    """Fates are keyed by subject and time, not by arrival order: two halves of the subjects
    run apart (as shards do) drop, copy and delay the same events as the whole run."""

    def fates(first: int, stop: int) -> Tuple[Counter, List[Tuple[int, ...]]]:
        sink, inner, truth = disordered(late=0.1, max_delay_ms=3, duplicate=0.05, drop=0.05)
        walk(sink, 400, 40, tick_ms=1, seed=9).start_range(first, stop)
        kept = Counter(values(inner))
        expected = Counter(values(truth))
        return kept - expected + (expected - kept), after_a_later_event(values(inner))

    whole_changed, whole_late = fates(0, 400)
    low_changed, low_late = fates(0, 150)
    high_changed, high_late = fates(150, 400)
    assert whole_changed == low_changed + high_changed
    assert set(whole_late) == set(low_late) | set(high_late)


def test_events_still_held_are_passed_on_at_close_in_release_order() -> None:
    inner = InMemorySink(lambda ts, s, t: s)
    sink = DisorderedSink(inner, late=1.0, max_delay_ms=60_000, seed=3)
    move = walk(inner, 1, 1).transitions[0]
    with sink:
        for i in range(100):
            sink.collect(T0 + i, i, move)
        assert len(inner.events) < 100 and sink.held + len(inner.events) == 100
    assert sink.held == 0 and sink.late == 100
    assert sorted(e.subject for e in inner.events) == list(range(100))
    assert inner.closed == 1
    # Those passed on at close came after every other, in the order of their release.
    assert inner.events != sorted(inner.events, key=lambda e: e.timestamp)


class Refusing(Sink):
    """Takes ``room`` events, then refuses every one."""

    def __init__(self, room: int) -> None:
        self.name = "refusing"
        self.room = room

    def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
        if self.delivered >= self.room:
            raise self.delivery_error("full", 1)
        self.delivered += 1


def test_held_events_the_inner_sink_refuses_at_close_are_counted_as_failed() -> None:
    inner = Refusing(room=10)
    sink = DisorderedSink(inner, late=1.0, max_delay_ms=1000, seed=1)
    move = walk(inner, 1, 1).transitions[0]
    sink.open()
    for i in range(30):
        sink.collect(T0, i, move)
    with pytest.raises(DeliveryError) as info:
        sink.close()
    assert sink.delivered == 10 and sink.failed == 20
    assert "19 late events not passed on" in str(info.value)


def test_a_paced_run_releases_a_late_event_on_the_wall_clock() -> None:
    """One event at the first tick and none after: in a fast run the late event can only be
    passed on at close; in a paced run it arrives while the run still waits for its ticks,
    at or after the tick of its release time."""
    seen: List[Tuple[bool, Any]] = []

    class Watching(InMemorySink):
        def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
            run = datagen._last_run
            seen.append((wrapper.is_open, run.pacer.tick if run.pacer else None))
            super().collect(timestamp, subject, transition)

    inner = Watching(row)
    wrapper = DisorderedSink(inner, late=1.0, max_delay_ms=4000, seed=2)
    datagen = DataOnlineGenerator(["a", "b"], "a", Walkers(), 1, 1000, 40, T0, seed=1)
    datagen.add_transition("once", "a", "b", 100, event_sinks=[wrapper])
    datagen.start()
    assert len(inner.events) == 1 and seen == [(False, None)]  # at close
    seen.clear()
    datagen.start(speed=20)  # 50 ms a tick
    assert len(inner.events) == 2 and inner.events[1].timestamp == T0
    ((open_, tick),) = seen
    assert open_ and 1 <= tick <= 40


def test_a_paced_run_puts_late_events_where_a_fast_run_does() -> None:
    streams = []
    for speed in (None, 25):
        sink, inner, _ = disordered(late=0.3, max_delay_ms=3000, duplicate=0.1, drop=0.1)
        walk(sink, 4, 30, p=30, seed=4).start(speed=speed)
        streams.append(values(inner))
    assert streams[0] == streams[1]
    assert after_a_later_event(streams[0])


@pytest.mark.parametrize(
    ("query", "culprit"),
    [
        ("late=2", "late='2'"),
        ("late=-0.1", "late='-0.1'"),
        ("duplicate=often", "duplicate='often'"),
        ("drop=nan", "drop='nan'"),
        ("late=0.1&max_delay=soon", "max_delay"),
        ("late=0.1&max_delay=0s", "max_delay='0s'"),
        ("late=0.6&drop=0.6", "must not exceed 1"),
        ("late=0.1&truth=", "truth= names no sink"),
        ("late=0.1&truth=nowhere%3Ax", "no sink scheme 'nowhere'"),
        ("late=0.1&truth=jsonl%3At.jsonl%3Flate%3D0.1", "the truth sink"),
    ],
)
def test_url_settings_that_are_wrong_are_named(tmp_path: Any, query: str, culprit: str) -> None:
    with pytest.raises(SinkURLError) as info:
        build_sink(f"jsonl:{tmp_path}/e.jsonl?{query}", Records(row=row))
    assert culprit in str(info.value)


def test_wrong_python_arguments_are_named() -> None:
    inner = InMemorySink()
    for options, culprit in (
        ({"late": 1.5}, "late"),
        ({"drop": True}, "drop"),
        ({"duplicate": float("inf")}, "duplicate"),
        ({"max_delay_ms": 0}, "max_delay_ms"),
        ({"max_delay_ms": 1.5}, "max_delay_ms"),
        ({"truth": inner}, "truth"),
        ({"truth": object()}, "truth"),
    ):
        with pytest.raises(ConfigurationError, match=culprit):
            DisorderedSink(inner, **options)


def test_durations() -> None:
    assert [parse_duration_ms(t) for t in ("250", "250ms", "1.5s", "10m", "2h", "1d")] == [
        250,
        250,
        1500,
        600_000,
        7_200_000,
        86_400_000,
    ]
    with pytest.raises(ValueError, match="10 minutes"):
        parse_duration_ms("10 minutes")


def test_a_url_disorders_a_file_and_writes_the_truth_to_another(tmp_path: Any) -> None:
    records = Records(row=row)
    url = (
        f"jsonl:{tmp_path}/out.jsonl?late=0.05&max_delay=10s&duplicate=0.01&drop=0.01"
        f"&truth=jsonl%3A{tmp_path}/truth.jsonl"
    )
    sink = build_sink(url, records)
    assert isinstance(sink, DisorderedSink) and sink.max_delay_ms == 10_000
    summary = walk(sink, 200, 60, seed=8).start()
    plain = build_sink(f"jsonl:{tmp_path}/plain.jsonl", records)
    walk(plain, 200, 60, seed=8).start()
    truth = (tmp_path / "truth.jsonl").read_text()
    assert truth == (tmp_path / "plain.jsonl").read_text()
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    (counts,) = summary.delivery.values()
    assert counts["delivered"] == len(out) == summary.events - sink.dropped + sink.duplicated
    assert counts["truth_delivered"] == summary.events and counts["late"] == sink.late > 0


def windowed_counts(
    stream: List[Dict[str, Any]], window_ms: int, lateness_ms: int
) -> Tuple[Dict[int, int], List[Dict[str, Any]]]:
    """A stream processor's tumbling windows: an event whose window the watermark (the
    latest event time seen, less ``lateness_ms``) has passed is dropped as too late."""
    counts: Dict[int, int] = defaultdict(int)
    too_late = []
    watermark = None
    for event in stream:
        start = event["ts"] - event["ts"] % window_ms
        if watermark is not None and start + window_ms <= watermark:
            too_late.append(event)
            continue
        counts[start] += 1
        seen = event["ts"] - lateness_ms
        watermark = seen if watermark is None else max(watermark, seen)
    return dict(counts), too_late


def test_a_watermarked_consumer_checked_against_the_truth() -> None:
    """The README's example: 1-minute windows over the disturbed stream, against the truth's
    windows. With 2 minutes of allowed lateness the consumer misses exactly the late events
    it drops; with more than the longest delay it misses none."""
    sink, inner, truth = disordered(late=0.05, max_delay_ms=600_000)
    walk(sink, 100, 240, tick_ms=10_000, p=20).start()
    stream = [e.value for e in inner.events]
    expected, _ = windowed_counts([e.value for e in truth.events], 60_000, 0)
    late = set(after_a_later_event(values(inner)))

    counted, too_late = windowed_counts(stream, 60_000, 120_000)
    missing = Counter(expected) - Counter(counted)
    assert sum(missing.values()) == len(too_late) > 0
    assert {tuple(e.values()) for e in too_late} <= late
    for event in too_late:
        start = event["ts"] - event["ts"] % 60_000
        assert missing[start] > 0
    assert len(too_late) < len(late) <= sink.late

    counted, too_late = windowed_counts(stream, 60_000, 600_000 + 60_000)
    assert counted == expected and too_late == []


class Slotted:
    __slots__ = ("a", "b")


class Mixed(Slotted):
    pass


def test_a_late_event_is_a_copy_of_its_subject_as_it_was() -> None:
    from doge_datagen.demo import User
    from doge_datagen.sinks.disorder import _snapshot

    user = User(1, 100, 0)
    user.note = "kept"  # type: ignore[attr-defined]
    copied = _snapshot(user)
    user.balance = 0
    assert type(copied) is User and copied is not user
    assert (copied.user_id, copied.balance, copied.note) == (1, 100, "kept")
    mixed = Mixed()
    mixed.a, mixed.c = 1, 2  # "b" never set
    copied = _snapshot(mixed)
    assert (copied.a, copied.c, hasattr(copied, "b")) == (1, 2, False)
    walker = Walker(3, moves=4)
    copied = _snapshot(walker)
    walker.moves = 5
    assert copied == Walker(3, moves=4)
    frozen = frozenset({1})
    assert _snapshot(frozen) == frozen and _snapshot([1, 2]) == [1, 2]


def test_the_readme_watermark_example_runs_as_written(capsys: Any) -> None:
    from support.docs import code_blocks, page

    (code,) = [b for b in code_blocks(page("doc/sinks.md")) if "DisorderedSink(" in b]
    namespace: Dict[str, Any] = {}
    exec(compile(code, "doc/sinks.md", "exec"), namespace)
    sink, summary = namespace["sink"], namespace["summary"]
    assert 0 < len(namespace["too_late"]) <= sink.late
    (counts,) = summary.delivery.values()
    assert counts["late"] == sink.late and counts["truth_delivered"] == counts["delivered"]
    assert f"{sink.late} events came late" in capsys.readouterr().out


def test_the_command_line_summary_shows_what_was_done_to_the_events(tmp_path: Any) -> None:
    import io

    from doge_datagen.cli.main import print_summary

    truth = Refusing(room=50)
    sink, inner, _ = disordered(late=0.1, max_delay_ms=2000, duplicate=0.1, drop=0.1)
    sink.truth = truth
    with pytest.raises(DeliveryError) as info:
        walk(sink, 20, 10).start()
    out = io.StringIO()
    print_summary(info.value.summary, out)  # type: ignore[attr-defined]
    text = out.getvalue()
    assert (
        f"  inner: {sink.late} late, {sink.duplicated} duplicated, {sink.dropped} dropped; "
        "truth: 50 delivered, 1 failed" in text
    )
    assert "(1 not delivered)" in text


def test_the_c_and_the_python_collect_disorder_alike(monkeypatch: Any) -> None:
    import doge_datagen.engine.loop as engine

    if engine._speedups is None:
        pytest.skip("the C extension is not built")
    streams, kinds = [], []
    for pure in (False, True):
        if pure:
            monkeypatch.setattr(engine, "_speedups", None)
        sink, inner, _ = disordered(late=0.05, max_delay_ms=5000, duplicate=0.02, drop=0.02)
        walk(sink, 300, 60, seed=12).start()
        streams.append(values(inner))
        # Beyond 64 bits, the C collect hands the event to the Python one.
        quiet = DisorderedSink(inner, late=0.01, max_delay_ms=1, seed=1)
        with quiet:
            kinds.append(type(quiet.collect).__name__)
            quiet.collect(2**70, Walker(1), walk(inner, 1, 1).transitions[0])
        assert inner.events[-1].timestamp == 2**70 and quiet.late == 0
    assert kinds == ["DisorderCollect", "function"]
    assert streams[0] == streams[1]


def test_delays_are_uniform_from_one_millisecond_to_max_delay() -> None:
    """Held events' release times less their event times, in ten equal bins: a chi-square
    test at ALPHA, and every delay within 1 ms to max_delay_ms."""
    inner = InMemorySink()
    sink = DisorderedSink(inner, late=0.5, max_delay_ms=1000, seed=11)
    move = walk(inner, 1, 1).transitions[0]
    sink.open()
    for i in range(20_000):
        sink.collect(T0, i, move)
    delays = [release - T0 for release, _, _, _, _ in sink._held]
    sink.close()
    assert len(delays) == sink.late and 1 <= min(delays) and max(delays) <= 1000
    counts = Counter((d - 1) // 100 for d in delays)
    observed = [counts[k] for k in range(10)]
    assert stats.chisquare(observed).pvalue > ALPHA
