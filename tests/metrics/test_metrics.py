"""Prometheus metrics, the status page and /healthz of a running generator.

The runs are real (banking model, paced against the wall clock, real file sinks); the
metrics are read over HTTP from the server the run starts, and parsed with
``prometheus_client.parser`` as Prometheus would read them.
"""

import collections
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Dict, List, Tuple

import pytest
from support.docs import page
from support.services import require_module

from doge_datagen import ConfigurationError, CountingSink, DataOnlineGenerator, EventSink
from doge_datagen.demo import banking_generator
from doge_datagen.file_sink import FileSink
from doge_datagen.metrics.exporter import MetricsServer, mask_secrets, parse_address

prometheus_parser = require_module("prometheus_client.parser", "metrics")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = "s3cret-Sentinel"


def get(url: str, timeout: float = 10) -> Tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(base: str) -> Dict[str, Any]:
    """``/metrics`` parsed: ``{family name: {labels tuple (sorted items): value}}`` where
    sample names other than the family's own (``_total``, ``_bucket``...) keep their suffix."""
    status, text = get(base + "metrics")
    assert status == 200
    found: Dict[str, Any] = {}
    for family in prometheus_parser.text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[labels] = sample.value
    return found


def by(metric: Dict[Tuple[Any, ...], float], label: str) -> Dict[str, float]:
    return {dict(labels)[label]: value for labels, value in metric.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def banking(tmp_path: Any, subjects: int = 2000, ticks: int = 60, seed: int = 7):
    """The banking model: clickstream into a JSONL file, the rest into counting sinks."""
    clicks = FileSink(
        str(tmp_path / "clicks.jsonl"),
        lambda t, s, tr: {"t": t, "e": tr.trigger},
        name="clickstream",
    )
    trx, balance, loan = CountingSink(), CountingSink(), CountingSink()
    trx.name, balance.name, loan.name = "trx", "balance", "loan"
    datagen = banking_generator(
        clicks,
        trx,
        balance,
        loan,
        subjects_num=subjects,
        ticks_num=ticks,
        seed=seed,
        timestamp_start=1_700_000_000_000,
    )
    return datagen, clicks


def run_in_thread(fn: Any) -> Tuple[threading.Thread, Dict[str, Any]]:
    out: Dict[str, Any] = {}

    def target() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, out


# -- /metrics ------------------------------------------------------------------------------


def test_metrics_scraped_during_a_paced_run_add_up_and_end_equal_to_the_summary(tmp_path):
    datagen, _ = banking(tmp_path)
    # 60 one-minute ticks at 20 ticks/s: about 3 s of wall-clock time to scrape in.
    with MetricsServer(0) as server:
        thread, out = run_in_thread(lambda: datagen.start(speed=1200, metrics=server))
        scrapes: List[Dict[str, Any]] = []
        while thread.is_alive():
            scrapes.append(scrape(server.url))
        thread.join()
        assert "error" not in out, out.get("error")
        summary = out["result"]
        final = scrape(server.url)

    during = [s for s in scrapes if s.get("doge_running", {}).get((), 0) == 1]
    assert len(during) >= 2, "the run ended before it could be scraped twice"
    previous: Dict[str, float] = {}
    for metrics in during:
        # The per-state gauge always accounts for every subject...
        assert sum(metrics["doge_subjects"].values()) == 2000
        # ... and counters only go up.
        events = by(metrics["doge_events_total"], "trigger")
        for trigger, n in events.items():
            assert n >= previous.get(trigger, 0)
        previous = events
    assert sum(by(during[-1]["doge_events_total"], "trigger").values()) < summary.events

    # At the end the counters are the summary's.
    assert by(final["doge_events_total"], "trigger") == summary.events_per_trigger
    vetoes = {k: v for k, v in by(final["doge_vetoes_total"], "trigger").items() if v}
    assert vetoes == summary.vetoed_per_trigger and vetoes  # the banking model vetoes spending
    assert by(final["doge_sink_events_total"], "sink") == summary.events_per_sink
    assert by(final["doge_sink_delivered_records_total"], "sink") == {
        label: d["delivered"] for label, d in summary.delivery.items()
    }
    assert by(final["doge_sink_failed_records_total"], "sink") == {
        label: d["failed"] for label, d in summary.delivery.items()
    }
    assert final["doge_ticks_total"][()] == summary.ticks == 60
    assert final["doge_running"][()] == 0
    assert final["doge_subjects_total"][()] == 2000
    assert final["doge_pacing_behind_ticks"][()] == 0  # finished: not behind anything
    # The gauge by state is where the subjects really are, not just a sum that comes out right.
    assert by(final["doge_subjects"], "state") == {
        state: collections.Counter(datagen.subject_states())[state] for state in datagen.states
    }
    assert final["doge_simulated_time_seconds"][()] == pytest.approx(
        (1_700_000_000_000 + 59 * 60_000) / 1000
    )
    # Every paced tick is in the lag histogram.
    assert final["doge_pacing_lag_seconds_count"][()] == summary.lag.ticks
    assert final["doge_pacing_lag_seconds_bucket"][(("le", "+Inf"),)] == summary.lag.ticks
    assert final["doge_pacing_lag_seconds_sum"][()] == pytest.approx(
        summary.lag.mean * summary.lag.ticks
    )
    info = dict(next(iter(final["doge_run_info"])))
    assert info["seed"] == "7"


def test_metrics_port_serves_while_the_run_goes_on_and_is_released_after(tmp_path):
    datagen, _ = banking(tmp_path, subjects=500, ticks=40)
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    thread, out = run_in_thread(lambda: datagen.start(speed=1200, metrics_port=port))
    seen: List[Dict[str, Any]] = []
    while thread.is_alive():
        try:
            seen.append(scrape(base))
        except (urllib.error.URLError, ConnectionError):
            pass  # not serving yet, or already closed
    thread.join()
    assert "error" not in out, out.get("error")
    assert seen, "nothing was served during the run"
    assert sum(seen[-1]["doge_subjects"].values()) == 500
    # The run's server is gone with the run, and its port can be served again.
    with pytest.raises(urllib.error.URLError):
        get(base)
    with MetricsServer(port) as again:
        assert get(again.url + "healthz")[0] == 200


def test_metrics_from_a_plain_run_match_the_summary_without_pacing(tmp_path):
    datagen, _ = banking(tmp_path, subjects=300, ticks=200)
    with MetricsServer(0) as server:
        summary = datagen.start(metrics=server)
        final = scrape(server.url)
    assert by(final["doge_events_total"], "trigger") == summary.events_per_trigger
    assert "doge_pacing_lag_seconds_count" not in final  # nothing paced, nothing to show


# -- /healthz ------------------------------------------------------------------------------


class FlakySink(EventSink):
    """Delivers records, except every ``every``-th one, which it counts as failed (as a
    broker sink does for records the broker rejected)."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.delivered = 0
        self.failed = 0
        self.name = "flaky"

    def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
        if (self.delivered + self.failed + 1) % self.every == 0:
            self.failed += 1
        else:
            self.delivered += 1


def test_healthz_turns_unhealthy_when_a_sink_fails_records(tmp_path):
    healthy_sink = FlakySink(every=10**9)
    datagen, _ = banking(tmp_path, subjects=200, ticks=100)
    for transition in datagen.transitions:
        transition.event_sinks = [healthy_sink]
    with MetricsServer(0) as server:
        status, body = get(server.url + "healthz")
        assert (status, json.loads(body)["healthy"]) == (200, True)  # no run yet
        datagen.start(metrics=server)
        status, body = get(server.url + "healthz")
        assert (status, json.loads(body)) == (200, {"healthy": True, "problems": []})

        flaky = FlakySink(every=50)
        for transition in datagen.transitions:
            transition.event_sinks = [flaky]
        datagen.start(metrics=server)
        assert flaky.failed > 0
        status, body = get(server.url + "healthz")
    assert status == 503
    problems = json.loads(body)["problems"]
    assert problems == [f"sink flaky failed {flaky.failed} records"]


class ExplodingSink(EventSink):
    def __init__(self) -> None:
        self.seen = 0

    def collect(self, timestamp: int, subject: Any, transition: Any) -> None:
        self.seen += 1
        if self.seen == 5:
            raise RuntimeError(f"broker at postgresql://u:{SECRET}@db/x went away")


def test_healthz_turns_unhealthy_when_a_sink_raises_and_shows_no_password(tmp_path):
    datagen, _ = banking(tmp_path, subjects=200, ticks=100)
    sink = ExplodingSink()
    for transition in datagen.transitions:
        transition.event_sinks = [sink]
    with MetricsServer(0) as server:
        with pytest.raises(RuntimeError):
            datagen.start(metrics=server)
        status, body = get(server.url + "healthz")
        page = get(server.url)[1]
    assert status == 503
    (problem,) = json.loads(body)["problems"]
    assert problem.startswith("the run failed: RuntimeError: broker at postgresql://u:***@db/x")
    assert SECRET not in body and SECRET not in page


def test_healthz_turns_unhealthy_while_the_pacer_is_behind():
    """One subject goes back and forth every 50 ms tick. Its second move asks /healthz,
    stalls for 2 s (40 ticks, more than the 20 allowed) and asks again from the late tick."""
    answers: List[Tuple[int, str]] = []
    server = MetricsServer(0, max_lag_ticks=20)

    def go(subject: Any, transition: Any) -> bool:
        answers.append(get(server.url + "healthz"))
        if len(answers) == 2:
            time.sleep(2.0)
            answers.append(get(server.url + "healthz"))
        return True

    sink = CountingSink()
    datagen = DataOnlineGenerator(["a", "b"], "a", object, 1, 50, 30, seed=1)
    datagen.add_transition("go", "a", "b", 100, action_callback=go, event_sinks=[sink])
    datagen.add_transition("back", "b", "a", 100, event_sinks=[sink])
    with server:
        summary = datagen.start(speed=1, metrics=server)
        after = get(server.url + "healthz")
    assert answers[0][0] == 200, answers[0]
    status, body = answers[2]
    assert status == 503
    (problem,) = json.loads(body)["problems"]
    assert re.fullmatch(r"the pacer is \d+\.\d ticks behind \(more than 20\)", problem), problem
    # Once the run ended it is healthy again; the late tick is in the summary.
    assert after[0] == 200
    assert summary.lag is not None and summary.lag.max >= 1.9


# -- bad input -----------------------------------------------------------------------------


def test_a_port_in_use_is_refused_before_the_run_starts(tmp_path):
    created = []

    class Factory:
        def create(self) -> object:
            created.append(1)
            return object()

    sink = CountingSink()
    datagen = DataOnlineGenerator(["a", "b"], "a", Factory(), 10, 1000, 10, seed=1)
    datagen.add_transition("go", "a", "b", 50, event_sinks=[sink])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(
            ConfigurationError,
            match=rf"metrics address 127\.0\.0\.1:{port} is "
            "already in use",
        ):
            datagen.start(metrics_port=port)
    assert created == [] and sink.count == 0  # no subject was made, no event sent


def test_the_cli_refuses_a_port_in_use_in_one_line_before_writing_anything(tmp_path):
    out = tmp_path / "events.jsonl"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "doge_datagen",
                "demo",
                "--subjects",
                "10",
                "--ticks",
                "5",
                "--sink",
                f"jsonl:{out}",
                "--metrics-port",
                f"127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=str(tmp_path),
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"doge-datagen: error: metrics address 127.0.0.1:{port} is already in use: "
        "pick another --metrics-port (or 0 for a free one)"
    )
    assert not out.exists() or out.read_text() == ""


@pytest.mark.parametrize(
    "address, message",
    [
        ("localhost", "expected PORT or HOST:PORT"),
        ("127.0.0.1:http", "port 'http' is not a number"),
        (70000, "port 70000 is not 0 to 65535"),
        ("::1:9100", "write an IPv6 host in brackets"),
        (True, "must be a port number"),
        (9.5, "must be a port number or 'HOST:PORT'"),
    ],
)
def test_bad_metrics_addresses_are_named(address, message):
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        parse_address(address)


def test_metrics_addresses():
    assert parse_address(9100) == ("127.0.0.1", 9100)
    assert parse_address("9100") == ("127.0.0.1", 9100)
    assert parse_address("0.0.0.0:9100") == ("0.0.0.0", 9100)
    assert parse_address(":9100") == ("0.0.0.0", 9100)
    assert parse_address("[::1]:0") == ("::1", 0)


def test_a_server_on_a_given_address_serves_there():
    with MetricsServer("[::1]:0") as server:
        assert server.url.startswith("http://[::1]:")
        assert get(server.url + "healthz")[0] == 200


def test_prometheus_client_is_not_imported_with_the_package():
    code = "import sys, doge_datagen; assert 'prometheus_client' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- secrets -------------------------------------------------------------------------------


def test_metrics_page_and_health_never_show_a_password(tmp_path, postgres_url):
    """A real PostgreSQL sink opened with a password in its URL, and a sink whose name is a
    URL with a password: none of /metrics, /, /healthz and /status.json shows it."""
    from doge_datagen.db_sink_factory import DbSinkFactory

    url = postgres_url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    assert SECRET in url
    factory = DbSinkFactory(url)
    table = "metrics_secret_events"
    from sqlalchemy import text

    with factory.engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
        connection.execute(text(f"CREATE TABLE {table} (timestamp BIGINT, event VARCHAR(64))"))
    try:
        db = factory.create(table, lambda t, s, tr: {"timestamp": t, "event": tr.trigger})
        named = CountingSink()
        named.name = f"kafka://user:{SECRET}@broker:9092/t?sasl.password={SECRET}"
        datagen, _ = banking(tmp_path, subjects=100, ticks=50)
        for transition in datagen.transitions:
            transition.event_sinks = [db, named]
        with MetricsServer(0) as server:
            summary = datagen.start(metrics=server)
            texts = [
                get(server.url + path)[1] for path in ("metrics", "", "healthz", "status.json")
            ]
        assert summary.events > 0
        for body in texts:
            assert SECRET not in body
        assert "kafka://user:***@broker:9092/t?sasl.password=***" in texts[0]
    finally:
        with factory.engine.begin() as connection:
            connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
        factory.close()


def test_mask_secrets():
    assert mask_secrets("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert mask_secrets("x?password=pw&b=1") == "x?password=***&b=1"
    assert mask_secrets("jsonl:/tmp/a.jsonl") == "jsonl:/tmp/a.jsonl"
    assert mask_secrets("amqp://h/x?secret=a&token=b") == "amqp://h/x?secret=***&token=***"
    assert mask_secrets("basic.auth.user.info=u:pw") == "basic.auth.user.info=***"


# -- the status page in a real browser -------------------------------------------------------


def page_numbers(dom: str) -> Dict[str, float]:
    """The page's headline figures, by element id, from their ``data-value`` attributes."""
    return {
        key: float(value) for key, value in re.findall(r'id="([\w-]+)" data-value="([-\d.]+)"', dom)
    }


@pytest.mark.slow
def test_the_status_page_updates_in_a_browser_during_a_paced_run(tmp_path):
    from support.browser import LiveBrowser, dump_dom, screenshot

    # The demo's banking model at 20 simulated minutes per second for about 25 s.
    datagen, _ = banking(tmp_path, subjects=20_000, ticks=500, seed=3)
    with MetricsServer(
        0, history_seconds=30, refresh_seconds=1, interval=0.5, name="banking demo"
    ) as server:
        thread, out = run_in_thread(lambda: datagen.start(speed=1200, metrics=server))
        try:
            first_dom = dump_dom(server.url)
            first = page_numbers(first_dom)
            assert "banking demo" in first_dom and 'id="seed">3<' in first_dom
            assert '<meta http-equiv="refresh" content="1">' in first_dom
            # Wait (without a time limit on the outcome) until the run has moved on.
            while thread.is_alive() and server.snapshots()[0].ticks_done <= first["ticks-done"]:
                time.sleep(0.1)
            second = page_numbers(dump_dom(server.url))
            assert second["ticks-done"] > first["ticks-done"]
            assert second["events-total"] > first["events-total"]
            assert second["simulated-time"] > first["simulated-time"]
            assert second["subjects"] == first["subjects"] == 20_000

            # One page left open reloads itself: its title carries the event count.
            with LiveBrowser(server.url) as browser:
                titles = set()
                while thread.is_alive() and len(titles) < 3:
                    title = browser.title()
                    if title and "events" in title:
                        titles.add(title)
                    time.sleep(0.2)
            assert len(titles) >= 3, titles

            # A picture for the README, once the chart has 15 s of history.
            while thread.is_alive() and len(server.rates()) < 30:
                time.sleep(0.2)
            # The README's picture is refreshed with DOGE_UPDATE_SCREENSHOT=1; otherwise the
            # shot goes to a temporary directory, so that a test run leaves the tree clean.
            where = ROOT if os.environ.get("DOGE_UPDATE_SCREENSHOT") == "1" else str(tmp_path)
            shot = os.path.join(where, "doc", "status-page.png")
            os.makedirs(os.path.dirname(shot), exist_ok=True)
            screenshot(server.url, shot, width=900, height=1000)
        finally:
            datagen.stop()
            thread.join()
    assert "error" not in out, out.get("error")
    with open(shot, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


# -- the promises of the README's section on metrics, doc/metrics.md ----------------------------

README = page("doc/metrics.md")


def test_the_readme_python_block_serves_and_keeps_the_final_numbers():
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "MetricsServer" in b]
    sink = CountingSink()
    datagen = DataOnlineGenerator(["a", "b"], "a", object, 20, 1000, 30, seed=2)
    datagen.add_transition("go", "a", "b", 30, event_sinks=[sink])
    datagen.add_transition("back", "b", "a", 30, event_sinks=[sink])
    scraped: Dict[str, Any] = {}

    def keep(text: str) -> None:
        url = text.split(": ", 1)[1]
        scraped.update(scrape(url))

    # As written, but on a free port, and reading what it prints.
    namespace: Dict[str, Any] = {"datagen": datagen, "print": keep}
    exec(code.replace("MetricsServer(9100,", "MetricsServer(0,"), namespace)
    summary = namespace["summary"]
    assert by(scraped["doge_events_total"], "trigger") == summary.events_per_trigger
    assert summary.lag is not None  # it was paced


def test_the_readme_scrape_config_targets_the_port_of_the_readme_command():
    import yaml

    (config,) = re.findall(r"```yaml\n(.*?)```", README, re.S)
    job = yaml.safe_load(config)["scrape_configs"][0]
    (target,) = job["static_configs"][0]["targets"]
    command = re.search(r"doge-datagen demo .*--metrics-port (\d+)", README)
    assert command is not None
    assert target == f"localhost:{command.group(1)}"
    assert job.get("metrics_path", "/metrics") == "/metrics"


def test_the_page_reloads_itself_every_2_s_over_5_minutes_without_script(tmp_path):
    datagen, _ = banking(tmp_path, subjects=100, ticks=20)
    with MetricsServer(0) as server:
        datagen.start(metrics=server)
        status, page = get(server.url)
    assert status == 200
    assert "<meta http-equiv='refresh' content='2'>" in page
    assert "up to the last 5 min" in page
    assert "<script" not in page.lower()
    assert "<svg id='rate-chart'" in page


def test_a_server_on_every_interface_answers_on_loopback():
    with MetricsServer(":0") as server:
        assert server.host == "0.0.0.0"
        assert get(server.url + "healthz")[0] == 200


@pytest.mark.parametrize("workers", [[], ["--workers", "2"]], ids=["one process", "2 workers"])
def test_the_cli_serves_metrics_during_a_paced_demo(tmp_path, workers):
    port = free_port()
    out = tmp_path / "events.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "doge_datagen",
            "demo",
            "--subjects",
            "2000",
            "--ticks",
            "120",
            "--speed",
            "3600",
            "--sink",
            f"jsonl:{out}",
            "--metrics-port",
            f"127.0.0.1:{port}",
            *workers,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(tmp_path),
    )
    seen: List[Dict[str, Any]] = []
    while process.poll() is None:
        try:
            seen.append(scrape(f"http://127.0.0.1:{port}/"))
        except (urllib.error.URLError, ConnectionError, http.client.IncompleteRead):
            # Not up yet, or a scrape cut short as the command ends and its server stops.
            time.sleep(0.05)
    stdout, stderr = process.communicate()
    assert process.returncode == 0, stderr
    assert f"status page on http://127.0.0.1:{port}/" in stderr
    assert seen, "the demo's metrics were never served"
    last = seen[-1]
    assert sum(last["doge_subjects"].values()) == 2000
    shards = {dict(labels).get("shard") for labels in last["doge_subjects"]}
    assert shards == ({"0", "1"} if workers else {None})
    if not workers:
        info = dict(next(iter(last["doge_run_info"])))
        assert info["model"] == "banking demo"


def test_a_missing_prometheus_client_names_the_extra():
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from doge_datagen.metrics.exporter import MetricsServer\n"
        "try:\n"
        "    MetricsServer(0)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'doge-datagen[metrics]'" in done.stdout


# -- shards ----------------------------------------------------------------------------------


def shard_model(sink: Any = None) -> DataOnlineGenerator:
    """Two states, no callbacks: what a shard does depends only on the seed and its range."""
    datagen = DataOnlineGenerator(["idle", "busy"], "idle", object, 300, 1000, 200, seed=11)
    sinks = [sink or CountingSink()]
    datagen.add_transition("work", "idle", "busy", 5, event_sinks=sinks)
    datagen.add_transition("rest", "busy", "idle", 20, event_sinks=sinks)
    return datagen


def run_shard_reporting(queue: Any, first: int, stop: int, shard: str) -> None:
    """A shard in another process: its metrics travel back through ``queue``."""
    from doge_datagen.metrics.exporter import ShardReporter

    summary = shard_model().start_range(first, stop, metrics=ShardReporter(queue.put, shard, 0.05))
    queue.put(("summary", shard, summary.events_per_trigger))


def test_each_shard_carries_a_shard_label_and_the_page_adds_them_up():
    """Two shards in two spawned processes send their snapshots back to one server."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    ranges = {"0": (0, 150), "1": (150, 300)}
    processes = [
        context.Process(target=run_shard_reporting, args=(queue, first, stop, shard))
        for shard, (first, stop) in ranges.items()
    ]
    summaries: Dict[str, Dict[str, int]] = {}
    with MetricsServer(0) as server:
        for process in processes:
            process.start()
        while len(summaries) < len(ranges):
            item = queue.get(timeout=120)
            if isinstance(item, tuple):
                summaries[item[1]] = item[2]
            else:
                server.update(item)
        for process in processes:
            process.join(timeout=60)
            assert process.exitcode == 0
        final = scrape(server.url)
        page = get(server.url)[1]
    for shard, (first, stop) in ranges.items():
        mine = {
            dict(labels)["trigger"]: value
            for labels, value in final["doge_events_total"].items()
            if dict(labels)["shard"] == shard
        }
        assert mine == summaries[shard]
        states = [v for k, v in final["doge_subjects"].items() if dict(k)["shard"] == shard]
        assert sum(states) == stop - first
    assert all("shard" in dict(labels) for m in final.values() for labels in m)
    total = sum(sum(s.values()) for s in summaries.values())
    assert f"id='events-total' data-value='{total}'" in page
    assert "id='shards' data-value='2'" in page
    # A single run gives the same events as the two shards together (the draw depends only
    # on the seed and the subject's index).
    assert shard_model().start().events == total


def test_a_snapshot_travels_as_plain_json_and_comes_back_equal(tmp_path):
    from doge_datagen.metrics.exporter import Snapshot

    datagen, _ = banking(tmp_path, subjects=100, ticks=30)
    with MetricsServer(0) as server:
        datagen.start(speed=60_000, metrics=server)
        (snapshot,) = server.snapshots()
    assert snapshot.lag_buckets is not None and snapshot.sinks
    assert Snapshot.from_dict(json.loads(json.dumps(snapshot.to_dict()))) == snapshot


def test_a_trigger_shared_by_several_transitions_counts_all_their_moves():
    """``move`` names two transitions, ``try`` two vetoed ones: the events and the vetoes of a
    trigger are those of all its transitions together, as the sinks and the summary count
    them."""
    from doge_datagen import InMemorySink

    sink = InMemorySink(lambda ts, s, t: t.trigger)
    datagen = DataOnlineGenerator(["a", "b"], "a", object, 200, 1000, 100, seed=8)
    datagen.add_transition("move", "a", "b", 10, event_sinks=[sink])
    datagen.add_transition("move", "b", "a", 20, event_sinks=[sink])
    refuse = lambda subject, transition: False  # noqa: E731
    datagen.add_transition("try", "a", "a", 5, action_callback=refuse, event_sinks=[sink])
    datagen.add_transition("try", "b", "b", 5, action_callback=refuse, event_sinks=[sink])
    with MetricsServer(0) as server:
        summary = datagen.start(metrics=server)
        final = scrape(server.url)
    events = collections.Counter(e.value for e in sink.events)
    assert by(final["doge_events_total"], "trigger") == {"move": events["move"], "try": 0}
    assert summary.events_per_trigger["move"] == events["move"] > 1000
    vetoes = by(final["doge_vetoes_total"], "trigger")
    assert vetoes["try"] == summary.vetoed_per_trigger["try"] > 500


def test_subjects_arriving_during_a_run_are_counted_in_their_states():
    sink = CountingSink()
    datagen = DataOnlineGenerator(
        ["active", "churned"], "active", object, 50, 60_000, 500, seed=4, arrivals=0.5
    )
    datagen.add_transition("buy", "active", "active", 2, event_sinks=[sink])
    datagen.add_transition("churn", "active", "churned", 0.5, event_sinks=[sink])
    with MetricsServer(0) as server:
        summary = datagen.start(metrics=server)
        final = scrape(server.url)
    assert summary.arrivals > 0
    assert final["doge_subjects_total"][()] == summary.subjects == 50 + summary.arrivals
    assert by(final["doge_subjects"], "state") == dict(
        collections.Counter(datagen.subject_states())
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["processes", "dask"])
def test_a_sharded_run_serves_every_shard_with_its_label(tmp_path, backend):
    import functools

    from support import shard_models

    from doge_datagen.distributed.sharded import run_sharded

    build = functools.partial(
        shard_models.demo, "--sink", f"jsonl:{tmp_path / 'events.jsonl'}",
        "--subjects", "2000", "--ticks", "60", "--seed", "3",
    )  # fmt: skip
    server = MetricsServer(0, interval=0.2)
    seen: List[Dict[str, Any]] = []
    done = threading.Event()

    def scraper() -> None:
        while not done.is_set():
            seen.append(scrape(server.url))
            time.sleep(0.1)

    thread = threading.Thread(target=scraper)
    cluster = None
    address = None
    if backend == "dask":
        # A cluster that is up before the run: the shards keep one wall-clock schedule from
        # the run's start, so a cluster still starting would eat the paced part of the run.
        from distributed import LocalCluster

        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        address = cluster.scheduler_address
    with server:
        thread.start()
        try:
            summary = run_sharded(
                build, shards=2, backend=backend, address=address, speed=1200, metrics=server
            )
        finally:
            done.set()
            thread.join()
            if cluster is not None:
                cluster.close()
        final = scrape(server.url)

    def shard_of(labels: Tuple[Any, ...]) -> str:
        return dict(labels)["shard"]

    live = [
        s for s in seen if sorted(shard_of(k) for k, v in s.get("doge_running", {}).items() if v)
        == ["0", "1"]
    ]  # fmt: skip
    assert live, "no scrape saw both shards running"
    for k, part in enumerate(summary.shards):
        events = {
            dict(labels)["trigger"]: v
            for labels, v in final["doge_events_total"].items()
            if shard_of(labels) == str(k)
        }
        assert events == part.events_per_trigger
        subjects = [v for labels, v in final["doge_subjects"].items() if shard_of(labels) == str(k)]
        assert sum(subjects) == part.subjects == 1000
    assert sum(final["doge_events_total"].values()) == summary.events
    assert all("shard" in dict(labels) for m in final.values() for labels in m)


def test_a_sharded_run_refuses_a_port_in_use_before_any_shard_starts(tmp_path):
    import functools

    from support import shard_models

    from doge_datagen.distributed.sharded import run_sharded

    out = tmp_path / "events.jsonl"
    build = functools.partial(shard_models.demo, "--sink", f"jsonl:{out}", "--subjects", "20")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigurationError, match=f"127.0.0.1:{port} is already in use"):
            run_sharded(build, shards=2, metrics_port=port)
    assert not list(tmp_path.iterdir())  # no shard wrote a part


# -- clients that hang up -------------------------------------------------------------------


def test_a_client_that_hangs_up_is_not_printed_and_the_server_goes_on(capfd):
    """socketserver prints a failed request's traceback to stderr; the library does not."""
    with MetricsServer(0) as server:
        try:
            raise BrokenPipeError(32, "Broken pipe")
        except BrokenPipeError:
            server._httpd.handle_error(None, ("127.0.0.1", 1))
        for _ in range(20):
            # GET, then a reset (linger 0) instead of reading the answer
            client = socket.create_connection(("127.0.0.1", server.port))
            client.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            client.close()
        with urllib.request.urlopen(server.url + "/healthz", timeout=10) as answer:
            assert answer.status in (200, 503)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Broken pipe" not in err, err
