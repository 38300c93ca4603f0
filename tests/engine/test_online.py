"""Online runs: pacing against the wall clock, running until stopped, signals, progress."""

import os
import signal
import threading
import time
from datetime import datetime, timezone

import pytest
from support.models import ping_pong

from doge_datagen import ConfigurationError, DataOnlineGenerator, EventSink, InMemorySink
from doge_datagen.engine.pacing import Pacer


class FakeClock:
    """A clock that only moves when slept on, by the time asked plus a fixed overshoot."""

    def __init__(self, overshoot: float = 0.0) -> None:
        self.now = 100.0
        self.overshoot = overshoot
        self.sleeps = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds + self.overshoot


def test_pacer_aims_at_the_absolute_schedule_so_overshoot_does_not_accumulate():
    fake = FakeClock(overshoot=0.003)  # every sleep wakes up 3 ms late
    pacer = Pacer(100, 10.0, lambda: False, clock=fake.clock, sleep=fake.sleep)
    for tick in range(200):
        pacer.wait(tick)
        fake.now += 0.001  # the tick's own work
    stats = pacer.stats()
    assert stats.ticks == 200
    # Each tick is at most one overshoot late, however many ticks came before it.
    assert stats.max <= 0.003 + 1e-9
    assert stats.drift <= 0.003 + 1e-9
    assert fake.now == pytest.approx(100.0 + 199 * 0.01 + 0.001, abs=0.004)


def test_pacer_emits_a_late_tick_at_once_and_reports_its_lag():
    fake = FakeClock()
    pacer = Pacer(1000, 1.0, lambda: False, clock=fake.clock, sleep=fake.sleep)
    pacer.wait(0)
    fake.now += 5.5  # tick 0's work took five and a half ticks
    sleeps = fake.sleeps
    assert pacer.wait(1) == pytest.approx(4.5)
    assert fake.sleeps == sleeps  # no waiting for a tick that is already late
    pacer.wait(6)  # back on schedule: tick 6 is due at +6 s
    assert fake.now == pytest.approx(106.0)
    stats = pacer.stats()
    assert stats.max == pytest.approx(4.5) and stats.late_ticks == 1 and stats.drift == 0


def test_pacer_wakes_up_when_asked_to_stop():
    fake = FakeClock()
    stop = []
    pacer = Pacer(60_000, 1.0, lambda: bool(stop), clock=fake.clock, sleep=fake.sleep)
    pacer.idle = lambda: stop.append(True)
    pacer.wait(10)  # due in ten minutes
    assert fake.now - 100.0 <= 0.05 + 1e-9  # one short slice, not ten minutes


def test_paced_run_never_emits_a_tick_before_its_time():
    seen = []

    class WallClockSink(EventSink):
        def collect(self, timestamp, subject, transition):
            seen.append((timestamp, time.monotonic()))

    datagen, _ = ping_pong(2, 15, seed=1)
    datagen.tick_ms = 20
    for t in datagen.transitions:
        t.event_sinks.append(WallClockSink())
    began = time.monotonic()
    summary = datagen.start(speed=2.0)
    assert len(seen) == 30
    for timestamp, wall in seen:
        tick = timestamp // 20
        assert wall >= began + tick * 0.020 / 2.0
    assert summary.lag is not None and summary.lag.ticks == 15


@pytest.mark.parametrize("speed", [0, -1, float("nan"), float("inf"), "fast", True])
def test_bad_speed_is_refused(speed):
    datagen, _ = ping_pong(1, 1, seed=1)
    with pytest.raises(ConfigurationError, match="speed"):
        datagen.start(speed=speed)


def test_stop_from_another_thread_completes_the_tick_and_closes_sinks():
    datagen, sink = ping_pong(7, None, seed=2)
    reached = threading.Event()

    class Trigger(EventSink):
        def __init__(self):
            self.closed = 0
            self.count = 0

        def collect(self, timestamp, subject, transition):
            self.count += 1
            if self.count == 5000:
                reached.set()

        def close(self):
            self.closed += 1

    trigger = Trigger()
    datagen.transitions[0].event_sinks.append(trigger)
    stopper = threading.Thread(target=lambda: (reached.wait(30), datagen.stop()))
    stopper.start()
    summary = datagen.start()
    stopper.join()
    assert summary.stopped
    assert summary.events == len(sink.events) >= 5000
    assert len(sink.events) % 7 == 0  # every subject moves every tick: whole ticks only
    assert summary.ticks * 7 == len(sink.events)
    assert sink.closed == 1 and trigger.closed == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_run_without_a_tick_limit(signum):
    previous = signal.getsignal(signum)

    class SendSignal(EventSink):
        def __init__(self):
            self.count = 0

        def collect(self, timestamp, subject, transition):
            self.count += 1
            if self.count == 300:
                os.kill(os.getpid(), signum)

    datagen, sink = ping_pong(3, None, seed=3)
    datagen.transitions[1].event_sinks.append(SendSignal())
    summary = datagen.start()
    assert summary.stopped
    assert summary.events == len(sink.events) and len(sink.events) % 3 == 0
    assert len(sink.events) >= 600
    assert signal.getsignal(signum) is previous  # the handler is put back


def test_a_signal_after_stop_asks_the_sinks_to_hurry():
    """``stop()`` called, the sinks closing: a signal now cuts their remaining waits short
    (``hurry()``), as a second signal does. The sink's close waits (up to 10 s) for that."""

    class SlowToClose(EventSink):
        def __init__(self):
            self.count = 0
            self.hurried = 0
            self.hurried_when_closed = None

        def collect(self, timestamp, subject, transition):
            self.count += 1
            if self.count == 300:
                datagen.stop()

        def hurry(self):
            self.hurried += 1

        def close(self):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # a flush that waits for its server, until hurried
                if self.hurried:
                    break
                time.sleep(0.01)
            self.hurried_when_closed = self.hurried

    datagen, sink = ping_pong(3, None, seed=3)
    slow = SlowToClose()
    datagen.transitions[0].event_sinks.append(slow)
    summary = datagen.start()
    assert summary.stopped and summary.signals == [signal.SIGINT]
    assert slow.hurried_when_closed == 1
    assert summary.events == len(sink.events) and len(sink.events) % 3 == 0


def test_a_finite_run_leaves_signal_handlers_alone():
    seen = []

    def callback(subject, transition):
        seen.append(signal.getsignal(signal.SIGTERM))
        return True

    datagen = DataOnlineGenerator(["a", "b"], "a", object, 1, 1, 1, seed=4)
    datagen.add_transition("go", "a", "b", 100, action_callback=callback)
    before = signal.getsignal(signal.SIGTERM)
    datagen.start()
    assert seen == [before]


def test_a_run_without_a_tick_limit_ends_when_nobody_can_move():
    sink = InMemorySink()
    datagen = DataOnlineGenerator(["a", "b"], "a", object, 4, 1000, None, seed=5)
    datagen.add_transition("go", "a", "b", 3, event_sinks=[sink])
    summary = datagen.start()
    assert len(sink.events) == 4 and not summary.stopped
    assert summary.ticks == max(e.timestamp for e in sink.events) // 1000 + 1


def test_timestamp_start_as_a_datetime_and_as_now():
    start = datetime(2024, 5, 17, 12, 30, tzinfo=timezone.utc)
    datagen, sink = ping_pong(1, 2, timestamp_start=start, seed=6)
    datagen.start()
    assert [e.timestamp for e in sink.events] == [1715949000000, 1715949001000]

    datagen, sink = ping_pong(1, 2, timestamp_start=None, seed=6)
    before = time.time() * 1000
    summary = datagen.start()
    after = time.time() * 1000
    assert before - 1 <= sink.events[0].timestamp <= after + 1
    assert summary.timestamp_start == sink.events[0].timestamp


def test_bad_timestamp_start_is_named():
    with pytest.raises(ConfigurationError, match="timestamp_start.*'yesterday'"):
        ping_pong(1, 1, timestamp_start="yesterday")


def test_progress_is_drawn_on_stderr_only_when_asked(capsys):
    datagen, _ = ping_pong(2, 50, seed=7)
    datagen.start()
    assert capsys.readouterr().err == ""
    datagen.start(progress=True)
    err = capsys.readouterr().err
    assert "100 events" in err and "50/50" in err
