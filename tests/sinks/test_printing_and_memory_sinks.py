"""PrintingSink, InMemorySink and CountingSink."""

import io

from support.models import ping_pong

from doge_datagen import CountingSink, DataOnlineGenerator, InMemorySink, PrintingSink


def test_printing_sink_prints_the_format_function_result(capsys):
    sink = PrintingSink(lambda ts, s, t: f"{ts}|{s.n}|{t.trigger}|{t.from_state}>{t.to_state}")
    datagen, _ = ping_pong(2, 2, seed=1)
    for t in datagen.transitions:
        t.event_sinks.append(sink)
    datagen.start()
    assert capsys.readouterr().out.splitlines() == [
        "0|0|hit|ping>pong",
        "0|1|hit|ping>pong",
        "1000|0|back|pong>ping",
        "1000|1|back|pong>ping",
    ]


def test_printing_sink_default_format_and_file():
    out = io.StringIO()
    sink = PrintingSink(file=out)
    datagen, _ = ping_pong(1, 1, seed=1)
    datagen.transitions[0].event_sinks.append(sink)
    datagen.start()
    assert out.getvalue() == "[0] hit: ping -> pong Thing(n=0)\n"


def test_memory_sink_captures_values_at_collect_time():
    sink = InMemorySink(lambda ts, s, t: s.n * 10)
    datagen = DataOnlineGenerator(
        ["a", "b"], "a", lambda: type("S", (), {"n": 0})(), 1, 5, 3, seed=2
    )

    def bump(subject, transition):
        subject.n += 1
        return True

    datagen.add_transition("go", "a", "b", 100, action_callback=bump, event_sinks=[sink])
    datagen.add_transition("back", "b", "a", 100, action_callback=bump, event_sinks=[sink])
    datagen.start()
    assert [e.value for e in sink.events] == [10, 20, 30]
    assert [e.timestamp for e in sink.events] == [0, 5, 10]
    assert sink.triggers() == {"go": 2, "back": 1}
    assert len(sink) == 3 and sink.closed == 1


def test_counting_sink_counts_and_works_as_a_context_manager():
    with CountingSink("n") as counter:
        datagen, _ = ping_pong(3, 4, seed=3)
        datagen.transitions[1].event_sinks.append(counter)
        summary = datagen.start()
    assert counter.count == 6 == summary.events_per_sink["n"]
    assert counter.closed == 2  # once by the run, once by the with block
